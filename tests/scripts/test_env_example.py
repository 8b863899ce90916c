"""Every line of .env.example is safe to copy as it is: a verbatim copy gives usable settings."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from volspike import dotenv

ROOT = Path(__file__).resolve().parents[2]


def fresh_shell_environment(env_file: Path) -> dict[str, str]:
    """A login shell's environment: nothing of the project set, .env is the copy."""
    keep = ("PATH", "HOME", "LANG", "TMPDIR")
    environment = {k: os.environ[k] for k in keep if k in os.environ}
    environment["VOLSPIKE_ENV_FILE"] = str(env_file)
    return environment


def test_every_line_parses_and_names_the_run_settings():
    values = dotenv.read(ROOT / ".env.example")
    assert values["WEB_PORT"] == "8000"
    assert values["SIM_PORT"] == "8090"
    assert values["SIMULATOR"] == "auto"
    # An empty secret key would break admin logins; a broker pinned apart from REDIS_URL would
    # keep the old one after REDIS_URL changes; a pinned exchange URL would ignore SIM_PORT.
    for unset in ("DJANGO_SECRET_KEY", "CELERY_BROKER_URL", "BINANCE_BASE_URL"):
        assert unset not in values


def test_a_verbatim_copy_gives_usable_local_settings(tmp_path):
    env_file = tmp_path / ".env"
    shutil.copy(ROOT / ".env.example", env_file)
    environment = fresh_shell_environment(env_file)
    environment["DJANGO_SETTINGS_MODULE"] = "volspike.settings.local"
    script = """
import json, django
django.setup()
from django.conf import settings
from django.core import signing
from django.core.management import call_command
call_command("check")
print(json.dumps({
    "secret_key": settings.SECRET_KEY,
    "signed": signing.loads(signing.dumps({"session": 1})),
    "debug": settings.DEBUG,
    "broker": settings.CELERY_BROKER_URL,
    "redis": settings.REDIS_URL,
    "exchange": settings.BINANCE_BASE_URL,
    "database": settings.DATABASES["default"]["NAME"],
    "min_delta_usd": settings.OI_MIN_DELTA_USD,
    "ws_origins": settings.WS_ALLOWED_ORIGINS,
    "csrf_origins": settings.CSRF_TRUSTED_ORIGINS,
}))
"""
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=environment, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert len(loaded["secret_key"]) >= 50  # sessions (the admin login) are signed with it
    assert loaded["signed"] == {"session": 1}
    assert loaded["debug"] is True
    assert loaded["broker"] == loaded["redis"] == "redis://127.0.0.1:6379/0"
    assert loaded["exchange"] == "http://127.0.0.1:8090"
    assert loaded["database"] == "volspike"
    assert loaded["min_delta_usd"] is None
    assert loaded["ws_origins"] == []
    assert loaded["csrf_origins"] == []


def test_a_verbatim_copy_is_read_by_the_shell_scripts(tmp_path):
    env_file = tmp_path / ".env"
    shutil.copy(ROOT / ".env.example", env_file)
    result = subprocess.run(
        ["bash", "-c", '. scripts/lib.sh; load_env; echo "$WEB_PORT $SIM_PORT $SIMULATOR"'],
        cwd=ROOT,
        env=fresh_shell_environment(env_file),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["8000", "8090", "auto"]
