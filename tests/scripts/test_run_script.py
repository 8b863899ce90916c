"""`bash scripts/run.sh` as a new user runs it, from a copy of the project with its own `.env`:
the shell wins over `.env` (quoted values included), the page's URL is printed once the system is
ready, `/` leads to the page, the log holds no per-task lines, and Ctrl-C stops every process
cleanly (no WorkerLostError, no traceback, nothing left running)."""

import contextlib
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import requests
from django.conf import settings

from tests.fixtures import processes
from tests.fixtures.processes import ARTIFACTS, free_port, proc_stat_fields, process_tree_pids

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
NOT_COPIED = shutil.ignore_patterns(
    ".git", ".venv", ".local", ".env", "staticfiles", "test-artifacts", "bench-artifacts",
    "__pycache__", ".pytest_cache", ".ruff_cache", ".hypothesis",
)  # fmt: skip


def dry_run(*args: str, dotenv: str = "", **environment: str) -> str:
    """What run.sh says it would start, with this .env and these shell variables."""
    env_file = ARTIFACTS / "run-dry.env"
    ARTIFACTS.mkdir(exist_ok=True)
    env_file.write_text(dotenv)
    env = {k: v for k, v in os.environ.items() if k not in {"BINANCE_BASE_URL", "SIMULATOR"}}
    env.update(VOLSPIKE_ENV_FILE=str(env_file), **environment)
    result = subprocess.run(
        ["bash", "scripts/run.sh", "--dry-run", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    return result.stderr


def test_the_real_exchange_from_the_shell_runs_no_simulator_whatever_env_says():
    said = dry_run(
        dotenv="BINANCE_BASE_URL='http://127.0.0.1:8090'\n",
        BINANCE_BASE_URL="https://fapi.binance.com",
    )
    assert "would start: web worker poller beat streams; exchange https://fapi.binance.com" in said


def test_no_simulator_flag_and_setting():
    assert "beat streams; exchange https://fapi.binance.com" in dry_run("--no-simulator")
    assert "beat streams; exchange https://fapi.binance.com" in dry_run(dotenv="SIMULATOR=off\n")
    said = dry_run(dotenv='SIMULATOR="auto"\nSIM_PORT="8091"\n')
    assert "beat streams simulator; exchange http://127.0.0.1:8091" in said


@pytest.fixture
def project_copy(tmp_path) -> Path:
    """The project as a new user has it (its own .local, staticfiles and .env); the venv shared."""
    copy = tmp_path / "volspike-oi"
    shutil.copytree(ROOT, copy, ignore=NOT_COPIED)
    (copy / ".venv").symlink_to(ROOT / ".venv")
    return copy


def read(path: Path) -> str:
    return path.read_text(errors="replace")


def wait_for_text(log: Path, process: subprocess.Popen, pattern: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if match := re.search(pattern, read(log)):
            return match.group(0)
        if process.poll() is not None:
            pytest.fail(f"run.sh exited ({process.returncode}) before {pattern!r}:\n{read(log)}")
        time.sleep(0.5)
    pytest.fail(f"run.sh did not print {pattern!r} in {timeout} s; see {log}")


def test_run_sh_prints_the_page_once_ready_and_stops_cleanly(
    project_copy, transactional_db, redis_client
):
    web_port, sim_port = free_port(), free_port()
    # Quoted values, as a user writes them; the exchange URL of .env is wrong on purpose.
    (project_copy / ".env").write_text(
        f'WEB_PORT="{web_port}"\n'
        f"SIM_PORT='{sim_port}'  # the simulator's port\n"
        "BINANCE_BASE_URL=http://127.0.0.1:9\n"
        'SIM_SYMBOLS="120"\n'
    )
    env = processes.test_process_env(
        DJANGO_SETTINGS_MODULE="volspike.settings.local",
        REDIS_URL=settings.REDIS_URL,
        BINANCE_BASE_URL=f"http://127.0.0.1:{sim_port}",  # the shell wins over .env
    )
    for name in ("WEB_PORT", "SIM_PORT", "SIM_SYMBOLS", "CELERY_BROKER_URL", "VOLSPIKE_ENV_FILE"):
        env.pop(name, None)
    log = ARTIFACTS / "run-sh.log"
    ARTIFACTS.mkdir(exist_ok=True)
    with log.open("wb") as output:
        # A session of its own: its process group is what a terminal's Ctrl-C signals.
        run = subprocess.Popen(
            ["bash", "scripts/run.sh"],
            cwd=project_copy,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        base = f"http://127.0.0.1:{web_port}"
        wait_for_text(log, run, r"\[run\] ready \(\d+ liquid symbols\)", 240)
        assert f"[run]   the page   {base}/ " in read(log)
        assert f"[run]   API docs   {base}/api/docs/" in read(log)
        assert f"exchange http://127.0.0.1:{sim_port} " in read(log)
        page = requests.get(f"{base}/", timeout=10)
        assert page.url == f"{base}/debug/open-interest"
        assert page.status_code == 200

        time.sleep(15)  # steady state: polls dispatched every 2 s
        steady = read(log)
        assert "oi.poll_dispatch" in steady  # the banner lists the tasks
        for per_task in (r"Task oi\.\w+\[[-0-9a-f]+\] (received|succeeded)", "Sending due task"):
            assert not re.search(per_task, steady)

        pids = process_tree_pids(run.pid)
        assert len(pids) >= 10  # honcho, 5 processes, celery pools
        interrupted_at = len(read(log))
        os.killpg(run.pid, signal.SIGINT)
        run.wait(20)
    finally:
        if run.poll() is None:  # the test failed before its Ctrl-C: stop everything it started
            # (respawn.sh runs each command in a session of its own, so the group is not enough)
            tree = process_tree_pids(run.pid)
            os.killpg(run.pid, signal.SIGKILL)
            for pid in tree:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            run.wait()
    shutdown = read(log)[interrupted_at:]
    assert "SIGINT received" in shutdown
    for noise in ("Traceback", "WorkerLostError", "SIGKILL", "sample skipped", "[respawn]"):
        assert noise not in shutdown, shutdown

    def running() -> list[str]:
        """The processes of the tree still alive (zombies waiting to be reaped are not)."""
        alive = []
        for pid in pids:
            try:
                if (proc_stat_fields(pid) or ["Z"])[0] != "Z":
                    alive.append(f"{pid}: {Path(f'/proc/{pid}/cmdline').read_bytes()!r}")
            except OSError:
                pass  # exited meanwhile
        return alive

    deadline = time.monotonic() + 5
    while running() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert running() == []
