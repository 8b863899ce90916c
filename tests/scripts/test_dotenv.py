"""`.env` has one parser (volspike/dotenv.py) and the real environment wins, for every consumer:
Django's settings, the shell scripts (scripts/lib.sh load_env) and scripts/services.sh."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from tests.fixtures import processes
from volspike import dotenv

ROOT = Path(__file__).resolve().parents[2]

DOTENV = r"""
# a comment, then a blank line

export LOG_LEVEL=WARNING
TELEGRAM_CHAT_ID='-100 #not a comment $HOME'
ALERT_WEBHOOK_URL="https://hooks.example/a?b=1#frag"   # a comment
OI_REMOTE_INGEST_TOKEN="quote \" backslash \\ end"
EXCHANGE_INFO_PROXY_URL=http://proxy.example/info#frag # a comment
BINANCE_BASE_URL="http://127.0.0.1:1"
OI_REMOTE_INGEST_URL='$HOME\$x'
"""
# What each consumer must see: BINANCE_BASE_URL comes from the shell, which wins.
EXPECTED = {
    "LOG_LEVEL": "WARNING",
    "TELEGRAM_CHAT_ID": "-100 #not a comment $HOME",
    "ALERT_WEBHOOK_URL": "https://hooks.example/a?b=1#frag",
    "OI_REMOTE_INGEST_TOKEN": 'quote " backslash \\ end',
    "EXCHANGE_INFO_PROXY_URL": "http://proxy.example/info#frag",
    "BINANCE_BASE_URL": "https://fapi.binance.com",
    "OI_REMOTE_INGEST_URL": "$HOME\\$x",  # no expansion, no reference to another variable
}


@pytest.fixture
def env_file(tmp_path) -> Path:
    path = tmp_path / ".env"
    path.write_text(DOTENV)
    return path


def clean_environment(env_file: Path, **extra: str) -> dict[str, str]:
    """The environment of a fresh shell: none of the keys under test set, except `extra`."""
    environment = {k: v for k, v in os.environ.items() if k not in EXPECTED}
    environment.update(VOLSPIKE_ENV_FILE=str(env_file), **extra)
    return environment


def test_parser_reads_quotes_comments_and_export():
    values = dotenv.parse(DOTENV)
    assert values == {**EXPECTED, "BINANCE_BASE_URL": "http://127.0.0.1:1"}


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("NO_EQUALS_SIGN", "expected KEY=value"),
        ("1BAD=x", "expected KEY=value"),
        ("OPEN='never closed", "never closed"),
        ('TRAILING="x" y', "unexpected 'y'"),
    ],
)
def test_parser_names_the_file_line_and_reason(line, reason):
    with pytest.raises(dotenv.DotenvError) as error:
        dotenv.parse(f"OK=1\n{line}\n", "my.env")
    assert str(error.value).startswith("my.env:2: ")
    assert reason in str(error.value)


def test_load_never_replaces_a_variable_the_environment_sets(env_file):
    environ = {"BINANCE_BASE_URL": "https://fapi.binance.com", "LOG_LEVEL": ""}
    dotenv.load(environ, env_file)
    assert environ["BINANCE_BASE_URL"] == "https://fapi.binance.com"
    assert environ["LOG_LEVEL"] == ""  # set, even empty, in the shell: the shell wins
    assert environ["TELEGRAM_CHAT_ID"] == EXPECTED["TELEGRAM_CHAT_ID"]


def test_django_settings_see_the_file_and_the_shell_wins(env_file):
    script = (
        "import json, django; django.setup(); from django.conf import settings as s; "
        f"print(json.dumps({{k: getattr(s, k) for k in {sorted(EXPECTED)!r}}}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=clean_environment(
            env_file,
            BINANCE_BASE_URL="https://fapi.binance.com",
            DJANGO_SETTINGS_MODULE="volspike.settings.local",
        ),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    import json

    assert json.loads(result.stdout) == EXPECTED


def test_shell_scripts_see_the_same_values(env_file):
    printer = "; ".join(f'printf "%s\\0" "${key}"' for key in sorted(EXPECTED))
    result = subprocess.run(
        ["bash", "-c", f". scripts/lib.sh; load_env; {printer}"],
        cwd=ROOT,
        env=clean_environment(env_file, BINANCE_BASE_URL="https://fapi.binance.com"),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert dict(zip(sorted(EXPECTED), result.stdout.split("\0")[:-1], strict=True)) == EXPECTED


def test_shell_scripts_stop_on_a_bad_line_with_its_place(tmp_path):
    bad = tmp_path / ".env"
    bad.write_text("GOOD=1\nREDIS_URL='redis://x\n")
    result = subprocess.run(
        ["bash", "-c", ". scripts/lib.sh; load_env; echo went-on"],
        cwd=ROOT,
        env=clean_environment(bad),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "went-on" not in result.stdout
    assert f"{bad}:2: the ' quote is never closed" in result.stderr


def test_services_script_takes_database_url_from_the_file_and_redis_url_from_the_shell(
    tmp_path, db
):
    """A quoted DATABASE_URL in .env is used; the .env's REDIS_URL (nothing listens there) loses
    to the shell's. The database already connects, so no superuser and no root are needed."""
    database = settings.DATABASES["default"]
    url = processes.test_process_env()["DATABASE_URL"]
    env_file = tmp_path / ".env"
    env_file.write_text(f'DATABASE_URL="{url}"  # quoted\nREDIS_URL=redis://127.0.0.1:1/0\n')
    environment = clean_environment(env_file, REDIS_URL=settings.REDIS_URL)
    environment.pop("DATABASE_URL", None)
    result = subprocess.run(
        ["bash", "scripts/services.sh"], cwd=ROOT, env=environment, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert (
        f"postgres ready: {database['NAME']} at {database['HOST']}:{database['PORT']} "
        f"as {database['USER']}" in result.stderr
    )
    redis_port = settings.REDIS_URL.rsplit(":", 1)[1].split("/")[0]
    assert f"redis answers on 127.0.0.1:{redis_port}" in result.stderr
