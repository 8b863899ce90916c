"""Helpers of the deployment tests: render deploy/ templates with deploy/render.sh (as install.sh
does) and read systemd unit files, so that the tests run exactly the files a user installs."""

import re
import shlex
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
UNITS = ("volspike-web", "volspike-worker", "volspike-poller", "volspike-beat")


def render(template: Path, **values: str) -> str:
    """deploy/render.sh TEMPLATE NAME=value ...: the text a user's install gets."""
    result = subprocess.run(
        [
            "bash",
            str(DEPLOY / "render.sh"),
            str(template),
            *(f"{k}={v}" for k, v in values.items()),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def unit_directives(text: str) -> dict[str, list[str]]:
    """Every `Key=value` of a unit file (all sections), values in order of appearance."""
    directives: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, value = line.partition("=")
        directives.setdefault(key.strip(), []).append(value.strip())
    return directives


def env_file_values(text: str) -> dict[str, str]:
    """NAME=value lines of a systemd EnvironmentFile (comments and blank lines skipped)."""
    values = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip().strip('"')
    return values


def exec_start_argv(unit_text: str, env: dict[str, str], hostname: str = "test") -> list[str]:
    """ExecStart= as systemd runs it: ${NAME} and $NAME from the environment, %% and %h... kept
    to the one specifier the units use (%%h is a literal %h, which Celery expands)."""
    (command,) = unit_directives(unit_text)["ExecStart"]

    def expand(match: re.Match) -> str:
        name = match.group(1) or match.group(2)
        return env[name]

    expanded = re.sub(r"\$\{(\w+)\}|\$(\w+)", expand, command).replace("%%", "%")
    return shlex.split(expanded)


def wait_answering(url: str, timeout: float, process=None, **kwargs) -> None:
    """Until `url` answers at all (any status); a busy machine may be slow to, so read timeouts
    count as "not yet". Fails early when `process` (a ManagedProcess) exits."""
    import time

    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.process.poll() is not None:
            raise RuntimeError(f"{process.name} exited early; see {process.log_path}")
        try:
            requests.get(url, timeout=3, **kwargs)
            return
        except requests.RequestException:
            time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


def celery_command(kind: str, name: str, queues: str = "", concurrency: int = 1) -> list[str]:
    """The Procfile's worker or beat command for a test process (as tests/fixtures/processes)."""
    import sys
    import uuid

    from tests.fixtures.processes import ARTIFACTS

    base = [sys.executable, "-m", "celery", "-A", "volspike", kind, "-l", "INFO"]
    if kind == "beat":
        ARTIFACTS.mkdir(exist_ok=True)
        return [*base, "--schedule", str(ARTIFACTS / f"celerybeat-schedule-{uuid.uuid4().hex[:8]}")]
    return [*base, "-Q", queues, "--concurrency", str(concurrency), "--without-gossip",
            "--without-mingle", "-n", f"{name}@%h"]  # fmt: skip


def start_all(specs: dict[str, list[str]], env: dict[str, str], started: list) -> dict:
    """Start every process at once (a busy machine boots them in parallel), appending each to
    `started` for the caller's clean-up; wait until each says it is up. Name -> ManagedProcess."""
    from tests.fixtures.processes import ManagedProcess, wait_for_log

    processes = {}
    for name, argv in specs.items():
        processes[name] = ManagedProcess(name, argv, env)
        started.append(processes[name])
    for name, process in processes.items():
        wait_for_log(process, "beat: Starting" if "beat" in specs[name] else "ready.", 60)
    return processes


def apt_install(package: str, command: str) -> str:
    """The path of `command`, installing `package` from the OS packages first when it is missing
    (as root, without letting the package start a service of its own). Fails, never skips."""
    import os
    import shutil

    import pytest

    search = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    if found := shutil.which(command, path=search):
        return found
    if os.geteuid() != 0:
        pytest.fail(
            f"{command} is not installed and this test is not root: apt-get install -y {package}"
        )
    policy = Path("/usr/sbin/policy-rc.d")
    created = not policy.exists()
    if created:
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
    apt = ["apt-get", "-o", "DPkg::Lock::Timeout=180", "-qq"]
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        subprocess.run([*apt, "update"], check=False, env=environment)
        subprocess.run(
            [*apt, "install", "-y", "--no-install-recommends", package], check=True, env=environment
        )
    finally:
        if created:
            policy.unlink()
    return shutil.which(command, path=search) or pytest.fail(f"{package} gave no {command}")
