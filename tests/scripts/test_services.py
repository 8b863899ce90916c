"""scripts/services.sh: uses DATABASE_URL and REDIS_URL as they are (host, port, passwords), starts
only what does not answer, and says clearly what it cannot do instead of failing on a sudo that
never prompts."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import redis as redis_lib

from tests.fixtures import processes
from tests.fixtures.processes import free_port

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def project_copy(tmp_path) -> Path:
    """The scripts in a directory of their own (its .local/redis), the venv shared."""
    copy = tmp_path / "volspike-oi"
    copy.mkdir()
    for name in ("scripts", "volspike", "requirements.txt", "requirements-dev.txt"):
        source = ROOT / name
        (shutil.copytree if source.is_dir() else shutil.copy)(source, copy / name)
    (copy / ".venv").symlink_to(ROOT / ".venv")
    return copy


def services(cwd: Path, **environment: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env.update(environment)
    return subprocess.run(
        ["bash", "scripts/services.sh"],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_starts_a_redis_with_the_password_of_redis_url_and_refuses_a_wrong_one(project_copy, db):
    port = free_port()
    url = f"redis://:s3cret%23x@127.0.0.1:{port}/2"
    dsn = processes.test_process_env()["DATABASE_URL"]
    started = services(project_copy, DATABASE_URL=dsn, REDIS_URL=url)
    try:
        assert started.returncode == 0, started.stderr
        assert f"starting redis on 127.0.0.1:{port}" in started.stderr
        assert redis_lib.Redis.from_url(url).ping()
        with pytest.raises(redis_lib.AuthenticationError):
            redis_lib.Redis(port=port).ping()

        again = services(project_copy, DATABASE_URL=dsn, REDIS_URL=url)
        assert again.returncode == 0, again.stderr
        assert f"redis answers on 127.0.0.1:{port}" in again.stderr

        wrong = services(project_copy, DATABASE_URL=dsn, REDIS_URL=url.replace("s3cret", "nope"))
        assert wrong.returncode == 1
        assert f"redis on 127.0.0.1:{port} refuses the user or password of REDIS_URL" in (
            wrong.stderr
        )
    finally:
        redis_lib.Redis.from_url(url).shutdown(nosave=True)


def test_a_database_elsewhere_that_does_not_answer_is_reported_not_started(project_copy):
    # 192.0.2.0/24 is reserved for documentation: nothing answers there.
    result = services(
        project_copy, DATABASE_URL="postgres://u:p@192.0.2.1:5433/oi", REDIS_URL="redis://x:1/0"
    )
    assert result.returncode == 1
    assert (
        "postgres at 192.0.2.1:5433 does not answer; start it or fix DATABASE_URL" in result.stderr
    )
