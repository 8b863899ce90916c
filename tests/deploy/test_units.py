"""The systemd units of deploy/systemd: valid for systemd (systemd-analyze verify), running the
Procfile's commands as a non-root user, restarted without a crash loop, stopped gracefully."""

import re
import shlex
import subprocess
import sys
from pathlib import Path

from tests.deploy.support import DEPLOY, ROOT, UNITS, apt_install, render, unit_directives

ALL_UNITS = (*UNITS, "volspike-streams", "volspike-simulator")


def rendered_units(tmp_path: Path) -> dict[str, str]:
    env_file = tmp_path / "volspike.env"
    env_file.write_text((DEPLOY / "production.env.example").read_text())
    texts = {}
    for name in (*ALL_UNITS, "volspike.target"):
        filename = name if name.endswith(".target") else f"{name}.service"
        text = render(
            DEPLOY / "systemd" / filename,
            APP_DIR=str(ROOT), VENV_DIR=str(Path(sys.executable).parent.parent),
            ENV_FILE=str(env_file), USER="volspike", STATE_DIR=str(tmp_path / "state"),
        )  # fmt: skip
        (tmp_path / filename).write_text(text)
        texts[name] = text
    return texts


def test_systemd_analyze_verify_finds_nothing_to_say(tmp_path):
    systemd_analyze = apt_install("systemd", "systemd-analyze")
    rendered_units(tmp_path)
    files = sorted(str(p) for p in tmp_path.iterdir() if p.suffix in {".service", ".target"})
    result = subprocess.run(
        [systemd_analyze, "verify", "--man=no", *files],
        capture_output=True, text=True, cwd=tmp_path, check=False,
    )  # fmt: skip
    # Unknown keys and unparsable values are only warnings (exit 0): any output is a failure.
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr


def test_every_unit_runs_as_the_service_user_and_restarts_without_a_crash_loop(tmp_path):
    for name, text in rendered_units(tmp_path).items():
        if name.endswith(".target"):
            continue
        unit = unit_directives(text)
        assert unit["User"] == ["volspike"] and unit["Group"] == ["volspike"], name
        assert unit["Restart"] == ["always"], name
        assert float(unit["RestartSec"][0]) >= 2, name
        assert int(unit["StartLimitBurst"][0]) * float(unit["RestartSec"][0]) < int(
            unit["StartLimitIntervalSec"][0]
        ), f"{name}: the start limit would never trip"
        assert len(unit["EnvironmentFile"]) == 1, name
        for dependency in ("postgresql.service", "redis-server.service"):
            assert dependency in unit["After"][0].split(), name
            assert dependency in unit["Wants"][0].split(), name
        for hardening in ("NoNewPrivileges", "PrivateTmp", "ProtectHome", "RestrictSUIDSGID"):
            assert unit[hardening] == ["yes"], f"{name}: {hardening}"
        assert unit["ProtectSystem"] == ["strict"], name
        assert unit["CapabilityBoundingSet"] == [""], name


def test_stops_are_graceful(tmp_path):
    units = {name: unit_directives(text) for name, text in rendered_units(tmp_path).items()}
    for name in UNITS:
        # SIGTERM to the main process only: Celery's warm shutdown, uvicorn's graceful one
        assert units[name]["KillSignal"] == ["SIGTERM"], name
        assert units[name]["KillMode"] == ["mixed"], name
    web_args = shlex.split(units["volspike-web"]["ExecStart"][0])
    graceful = float(web_args[web_args.index("--timeout-graceful-shutdown") + 1])
    assert graceful < float(units["volspike-web"]["TimeoutStopSec"][0])
    for name in ("volspike-worker", "volspike-poller"):
        # running tasks may take the hard time limit (90 s) before the worker exits
        assert float(units[name]["TimeoutStopSec"][0]) > 90, name


def procfile_commands() -> dict[str, list[str]]:
    commands = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        if ":" in line and not line.startswith("#"):
            name, _, command = line.partition(":")
            commands[name.strip()] = shlex.split(command)
    return commands


def normalised(argv: list[str]) -> list[str]:
    """A command without its supervisor and venv prefix, with the port variables' defaults dropped
    and the beat schedule's directory and the %h specifier's escaping left out."""
    if argv and argv[0].endswith("respawn.sh"):
        argv = argv[1:]
    out = []
    for arg in argv:
        arg = arg.replace(".venv/bin/", "").replace("{{VENV_DIR}}/bin/", "")
        arg = "env" if arg == "/usr/bin/env" else arg
        arg = arg.replace("%%h", "%h")
        # ${NAME:-default} (shell) is ${NAME} in a unit, its default in the environment file
        arg = re.sub(r"\$\{(\w+):-[^}]*\}", r"${\1}", arg)
        if arg.endswith("celerybeat-schedule"):
            arg = "celerybeat-schedule"
        out.append(arg)
    return out


# Production-only flags of the web unit: uvicorn behind nginx, stopped gracefully.
WEB_UNIT_EXTRA_ARGS = [
    "--proxy-headers", "--forwarded-allow-ips", "127.0.0.1", "--timeout-graceful-shutdown", "20",
]  # fmt: skip


def test_units_run_the_procfile_commands():
    """A change of the Procfile (say, another worker pool) must reach the units too."""
    procfile = procfile_commands()
    for name in ALL_UNITS:
        process = name.removeprefix("volspike-")
        if process == "simulator" and process not in procfile:
            continue  # the demo's simulator may be started otherwise than by the Procfile
        text = (DEPLOY / "systemd" / f"{name}.service").read_text()
        unit_argv = normalised(shlex.split(unit_directives(text)["ExecStart"][0]))
        if process == "web":
            start = next(
                i for i in range(len(unit_argv))
                if unit_argv[i : i + len(WEB_UNIT_EXTRA_ARGS)] == WEB_UNIT_EXTRA_ARGS
            )  # fmt: skip
            del unit_argv[start : start + len(WEB_UNIT_EXTRA_ARGS)]
        procfile_argv = normalised(procfile[process])
        if procfile_argv[:1] == ["scripts/linger.sh"]:
            # honcho's grace for the demo's simulator; systemd orders stops itself (After=)
            procfile_argv = procfile_argv[2:]
        assert unit_argv == procfile_argv, (
            f"{name}.service and the Procfile's {process} line differ: {unit_argv} != "
            f"{procfile_argv}"
        )


def test_render_refuses_to_leave_a_placeholder_unfilled(tmp_path):
    result = subprocess.run(
        ["bash", str(DEPLOY / "render.sh"), str(DEPLOY / "nginx" / "volspike.conf"),
         "DOMAIN=oi.example.com"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 1 and not result.stdout
    assert "no value for" in result.stderr and "{{TLS_CERT}}" in result.stderr
