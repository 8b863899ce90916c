"""The deployment end to end, as deploy/install.sh sets it up, on 127.0.0.1 and free ports:

- nginx (installed from the OS packages where missing) with deploy/nginx's site, rendered by
  deploy/render.sh, and a self-signed certificate;
- web, worker, poller and beat started from the commands of deploy/systemd's units, with the
  environment file made from deploy/production.env.example (production settings), as a non-root
  user, from a copy of the application (as /opt/volspike/app is a copy);
- the simulator as the exchange.

Then: headless Chromium loads the page over https and gets live frames over wss, an admin logs in
over HTTPS, a 20,000-row batch is posted through the proxy, plain HTTP redirects (but /health
answers), static files come from nginx. Prints the time to ready and each process's memory.
"""

import contextlib
import os
import pwd
import re
import secrets
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from django.conf import settings

from tests.deploy.support import (
    DEPLOY,
    ROOT,
    UNITS,
    apt_install,
    env_file_values,
    exec_start_argv,
    render,
    unit_directives,
    wait_answering,
)
from tests.fixtures.processes import ARTIFACTS, free_port, process_tree_pids, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

SERVICE_USER = "volspike-e2e"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"]
INGEST_ROWS = 20_000


# --- set-up ------------------------------------------------------------------------------------


def service_account() -> tuple[str, int, int] | None:
    """The non-root user the system runs as: a system user made here when the test is root;
    None (this very user) when the test already runs as a non-root user."""
    if os.geteuid() != 0:
        return None
    with contextlib.suppress(KeyError):
        entry = pwd.getpwnam(SERVICE_USER)
        return SERVICE_USER, entry.pw_uid, entry.pw_gid
    subprocess.run(
        ["useradd", "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
         "--shell", "/usr/sbin/nologin", SERVICE_USER],
        check=False,
    )  # fmt: skip
    entry = pwd.getpwnam(SERVICE_USER)  # (another run may have made it meanwhile)
    return SERVICE_USER, entry.pw_uid, entry.pw_gid


def as_account(account) -> dict:
    if account is None:
        return {}
    _, uid, gid = account
    return {"user": uid, "group": gid, "extra_groups": []}


def chown(path: Path, account) -> None:
    if account is not None:
        os.chown(path, account[1], account[2])


def service_venv(base: Path, account) -> Path:
    """A virtualenv the service user can run, as install.sh makes /opt/volspike/venv: its own
    interpreter link (this run's may sit under a private home, e.g. pyenv in /root) and, instead
    of a second pip install, this checkout's installed packages (a .pth file)."""
    wanted = "{}.{}".format(*sys.version_info[:2])
    candidates = [os.path.realpath(sys._base_executable), f"/usr/bin/python{wanted}"]
    for python in candidates:
        try:
            answer = subprocess.run(
                [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                capture_output=True, text=True, check=False, **as_account(account),
            )  # fmt: skip
        except OSError:
            continue
        if answer.returncode == 0 and answer.stdout.strip() == wanted:
            break
    else:
        pytest.fail(f"no Python {wanted} the service user can run among {candidates}")
    venv = base / "venv"
    subprocess.run([python, "-m", "venv", "--without-pip", str(venv)], check=True)
    packages = sysconfig.get_paths()["purelib"]
    (next(venv.glob("lib/python*/site-packages")) / "project-packages.pth").write_text(
        f"import site; site.addsitedir({packages!r})\n"
    )
    # What this interpreter needs beyond them (e.g. async-timeout below Python 3.11.3, Debian 12's
    # 3.11.2), as pip install -r requirements.txt would in a fresh venv.
    subprocess.run(
        [venv / "bin" / "python", "-m", "pip", "install", "-q", "--disable-pip-version-check",
         "-r", str(ROOT / "requirements.txt")],
        check=True,
    )  # fmt: skip
    for name, module in (("uvicorn", "uvicorn.main"), ("celery", "celery.__main__")):
        script = venv / "bin" / name
        script.write_text(
            f"#!{venv}/bin/python\nimport sys\nfrom {module} import main\nsys.exit(main())\n"
        )
        script.chmod(0o755)
    return venv


def env_file_text(values: dict[str, str]) -> str:
    """deploy/production.env.example with these lines' values replaced (each must be there)."""
    text = (DEPLOY / "production.env.example").read_text()
    for name, value in values.items():
        text, count = re.subn(rf"^{name}=.*$", f"{name}={value}", text, flags=re.MULTILINE)
        assert count == 1, f"{name} is not a line of production.env.example"
    return text


class UnitProcess:
    """One unit's ExecStart, run as systemd would: its user, working directory and environment
    only; stopped with SIGTERM to the main process (KillMode=mixed), SIGKILL after a timeout."""

    def __init__(self, name: str, unit_text: str, env_file: dict[str, str], account) -> None:
        unit = unit_directives(unit_text)
        environment = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", **env_file}
        environment.update(v.split("=", 1) for v in unit.get("Environment", []))
        self.name = name
        self.argv = exec_start_argv(unit_text, environment)
        ARTIFACTS.mkdir(exist_ok=True)
        self.log_path = ARTIFACTS / f"deploy-e2e-{name}.log"
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            self.argv, cwd=unit["WorkingDirectory"][0], env=environment, stdout=self._log,
            stderr=subprocess.STDOUT, start_new_session=True, **as_account(account),
        )  # fmt: skip
        self._terminated = False

    def terminate(self) -> None:
        """SIGTERM to the main process, once."""
        if self.process.poll() is None and not self._terminated:
            self.process.send_signal(signal.SIGTERM)
            self._terminated = True

    def stop(self, timeout: float = 20.0) -> None:
        if self.process.poll() is None:
            self.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._log.close()


def memory_kib(root_pid: int) -> tuple[int, int, int]:
    """(processes, RSS, PSS) in KiB of a process and its children, from smaps_rollup."""
    rss = pss = 0
    pids = process_tree_pids(root_pid)
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                key, _, value = line.partition(":")
                if key == "Rss":
                    rss += int(value.split()[0])
                elif key == "Pss":
                    pss += int(value.split()[0])
    return len(pids), rss, pss


# --- the test ----------------------------------------------------------------------------------


def test_the_production_deployment_end_to_end(sim, redis_client):
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} not found: apt-get install -y chromium")
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    test_started = time.monotonic()

    def phase(text: str) -> None:
        print(f"  +{time.monotonic() - test_started:.1f} s {text}")

    nginx = apt_install("nginx", "nginx")
    account = service_account()
    base = Path(tempfile.mkdtemp(prefix="volspike-e2e-"))
    base.chmod(0o755)
    started: list[UnitProcess] = []
    nginx_process: subprocess.Popen | None = None
    try:
        # --- the install, as deploy/install.sh does it ------------------------------------
        app = base / "app"
        shutil.copytree(
            ROOT, app, symlinks=True,
            ignore=shutil.ignore_patterns(
                ".git", ".venv", ".env", ".local", "staticfiles", "test-artifacts", "__pycache__",
                ".pytest_cache", ".ruff_cache",
            ),
        )  # fmt: skip
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(app)], check=False)
        venv = service_venv(base, account)
        static, state, tls, proxy = (base / d for d in ("static", "state", "tls", "nginx"))
        for directory in (state, tls, proxy):
            directory.mkdir(mode=0o750)
            chown(directory, account)

        web_port, http_port, https_port = free_port(), free_port(), free_port()
        database = settings.DATABASES["default"]
        env_values = {
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
            "DJANGO_STATIC_ROOT": str(static),
            "DATABASE_URL": f"postgres://{database['USER']}:{database['PASSWORD']}@"
            f"{database['HOST']}:{database['PORT']}/{database['NAME']}",
            "REDIS_URL": settings.REDIS_URL,
            "WEB_PORT": str(web_port),
            "BINANCE_BASE_URL": sim.base_url,
        }
        env_file = base / "volspike.env"
        env_file.write_text(env_file_text(env_values))
        env_file.chmod(0o640)
        if account is not None:
            os.chown(env_file, 0, account[2])
        env = env_file_values(env_file.read_text())
        assert env["DJANGO_SETTINGS_MODULE"] == "volspike.settings.production"

        # collectstatic (as root, into a directory nginx reads); the schema is the test's own
        manage_env = {"PATH": os.environ["PATH"], **env}
        subprocess.run(
            [sys.executable, "manage.py", "collectstatic", "--no-input", "-v0"],
            cwd=app, env=manage_env, check=True,
        )  # fmt: skip
        check = subprocess.run(
            [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
            cwd=app, env=manage_env, capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert check.returncode == 0, check.stdout + check.stderr

        # TLS: a self-signed certificate for 127.0.0.1
        cert, key = tls / "cert.pem", tls / "key.pem"
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
             "-keyout", str(key), "-out", str(cert)],
            check=True, capture_output=True,
        )  # fmt: skip
        for path in (cert, key):
            chown(path, account)

        # --- the system, from the units -------------------------------------------------
        unit_values = {
            "APP_DIR": str(app), "VENV_DIR": str(venv), "ENV_FILE": str(env_file),
            "USER": account[0] if account else pwd.getpwuid(os.getuid()).pw_name,
            "STATE_DIR": str(state),
        }  # fmt: skip
        phase("installed: app, venv, environment file, static files, certificate")
        start = time.monotonic()
        for name in UNITS:
            unit_text = render(DEPLOY / "systemd" / f"{name}.service", **unit_values)
            assert unit_directives(unit_text)["EnvironmentFile"] == [str(env_file)]
            started.append(UnitProcess(name, unit_text, env, account))

        # --- nginx with the shipped site ---------------------------------------------------
        site = proxy / "volspike.conf"
        site.write_text(
            render(
                DEPLOY / "nginx" / "volspike.conf",
                DOMAIN="127.0.0.1", HTTP_PORT=str(http_port), HTTPS_PORT=str(https_port),
                HTTPS_PORT_SUFFIX=f":{https_port}", WEB_PORT=str(web_port),
                TLS_CERT=str(cert), TLS_KEY=str(key), STATIC_ROOT=str(static),
                NGINX_PROXY_PARAMS=str(DEPLOY / "nginx" / "volspike-proxy.conf"),
            )
        )  # fmt: skip
        temp = "\n".join(
            f"  {kind}_temp_path {proxy}/{kind};"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        main = proxy / "nginx.conf"
        main.write_text(
            f"worker_processes 1;\npid {proxy}/nginx.pid;\nerror_log {proxy}/error.log warn;\n"
            "events { worker_connections 256; }\n"
            "http {\n  include /etc/nginx/mime.types;\n  default_type application/octet-stream;\n"
            f"  access_log {proxy}/access.log;\n{temp}\n  include {site};\n}}\n"
        )
        nginx_args = [nginx, "-p", str(proxy), "-c", str(main), "-e", str(proxy / "error.log")]
        tested = subprocess.run(
            [*nginx_args, "-t"], capture_output=True, text=True, check=False, **as_account(account)
        )  # fmt: skip
        assert tested.returncode == 0, tested.stderr
        nginx_process = subprocess.Popen(
            [*nginx_args, "-g", "daemon off;"], **as_account(account)
        )  # fmt: skip
        https = f"https://127.0.0.1:{https_port}"
        wait_answering(f"{https}/health", 60, verify=str(cert))  # checked against our certificate

        phase("nginx started while the units boot")

        # then it gets ready (universe, polling, beat, poller) through the proxy
        def ready() -> bool:
            for unit in started:
                assert unit.process.poll() is None, f"{unit.name} exited; see {unit.log_path}"
            with contextlib.suppress(requests.RequestException):
                return requests.get(f"{https}/health/ready", verify=str(cert), timeout=5).ok
            return False

        wait_until(
            ready,
            90,
            f"not ready: {requests.get(f'{https}/health/ready', verify=str(cert), timeout=5).text}",
        )
        time_to_ready = time.monotonic() - start
        phase("ready")
        # an admin, made as the README tells an operator to (manage.py with the production env)
        password = secrets.token_urlsafe(16)
        create_admin = subprocess.Popen(  # runs while the HTTP checks below do
            [venv / "bin" / "python", "manage.py", "createsuperuser", "--no-input",
             "--username", "e2e-admin", "--email", "admin@example.com"],
            cwd=app, env={**manage_env, "DJANGO_SUPERUSER_PASSWORD": password},
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **as_account(account),
        )  # fmt: skip

        # plain HTTP moves to HTTPS, except the probes' two paths
        http = f"http://127.0.0.1:{http_port}"
        moved = requests.get(f"{http}/debug/open-interest?x=1", allow_redirects=False, timeout=5)
        assert moved.status_code == 301
        assert moved.headers["Location"] == f"{https}/debug/open-interest?x=1"
        assert requests.get(f"{http}/health", timeout=5).status_code == 200
        assert requests.get(f"{http}/health/ready", timeout=5).status_code == 200
        page_answer = requests.get(f"{https}/debug/open-interest", verify=str(cert), timeout=10)
        assert page_answer.status_code == 200
        assert page_answer.headers["Strict-Transport-Security"].startswith("max-age=3600")

        # static files come from nginx (the web process has no static file server)
        css = "/static/dashboard/open_interest.css"
        from_nginx = requests.get(f"{https}{css}", verify=str(cert), timeout=5)
        assert from_nginx.status_code == 200 and "nginx" in from_nginx.headers["Server"]
        from_web = requests.get(
            f"http://127.0.0.1:{web_port}{css}", headers={"X-Forwarded-Proto": "https"}, timeout=5
        )
        assert from_web.status_code == 404

        # a 20,000-row batch through the proxy
        from common.services import api_token_create

        _, token = api_token_create(name="e2e-writer")
        at = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
        rows = [
            {"symbol": f"E2E{i % 200:03d}USDT", "openInterest": f"{1000 + i}.5",
             "timestamp": (at + timedelta(seconds=i // 200)).isoformat().replace("+00:00", "Z")}
            for i in range(INGEST_ROWS)
        ]  # fmt: skip
        ingest = requests.post(
            f"{https}/api/market/open-interest/ingest",
            json={"timestamp": rows[-1]["timestamp"], "source": "snapshot", "data": rows},
            headers={"Authorization": f"Token {token}"}, verify=str(cert), timeout=60,
        )  # fmt: skip
        assert ingest.status_code == 200, ingest.text[:500]
        assert ingest.json()["inserted"] == INGEST_ROWS
        body_mib = len(ingest.request.body) / 2**20

        n_symbols = requests.get(
            f"{https}/api/market/open-interest/liquid-universe", verify=str(cert), timeout=10
        ).json()["counts"]["members"]

        output, _ = create_admin.communicate(timeout=60)
        assert create_admin.returncode == 0, output.decode(errors="replace")
        phase("HTTP checks and the 20,000-row ingest done")
        # Chromium: the page over https, live frames over wss, the admin over HTTPS
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            context = browser.new_context(ignore_https_errors=True)
            page = context.new_page()
            sockets: list[str] = []
            updates: list[str] = []

            def on_websocket(ws) -> None:
                sockets.append(ws.url)
                ws.on(
                    "framereceived",
                    lambda payload: updates.append(str(payload))
                    if "open_interest_update" in str(payload) else None,
                )  # fmt: skip

            page.on("websocket", on_websocket)
            request_failures: list[str] = []
            page.on("response", lambda r: request_failures.append(f"{r.status} {r.url}")
                    if r.status >= 400 else None)  # fmt: skip
            page.goto(f"{https}/debug/open-interest")
            page.wait_for_function(
                f"document.querySelectorAll('#screener-body tr').length === {n_symbols}",
                timeout=20_000,
            )
            deadline = time.monotonic() + 20
            while not updates and time.monotonic() < deadline:
                page.wait_for_timeout(200)
            assert sockets and all(
                url.startswith(f"wss://127.0.0.1:{https_port}/ws/") for url in sockets
            )
            assert updates, "no open_interest_update frame over wss within 20 s"

            page.goto(f"{https}/admin/login/?next=/admin/")
            page.fill("#id_username", "e2e-admin")
            page.fill("#id_password", password)
            page.click("input[type=submit]")
            try:
                page.wait_for_url(f"{https}/admin/", timeout=15_000)
            except PlaywrightTimeout:
                page.screenshot(path=str(ARTIFACTS / "deploy-e2e-failure.png"), full_page=True)
                raise AssertionError(f"admin login failed: {request_failures}") from None
            assert "Site administration" in page.content()
            session = next(c for c in context.cookies() if c["name"] == "sessionid")
            assert session["secure"] and session["httpOnly"]
            browser.close()

        phase("browser checks done")
        # the figures: time to ready, and memory per process in production settings
        lines = [
            f"time to ready (processes started -> /health/ready 200 through nginx): "
            f"{time_to_ready:.1f} s ({n_symbols} liquid symbols)",
            f"ingest through the proxy: {INGEST_ROWS} rows, {body_mib:.1f} MiB body",
        ]
        total_rss = total_pss = 0
        for unit in started:
            count, rss, pss = memory_kib(unit.process.pid)
            total_rss, total_pss = total_rss + rss, total_pss + pss
            lines.append(
                f"{unit.name}: {count} processes, RSS {rss / 1024:.0f} MiB, PSS {pss / 1024:.0f} MiB"
            )
        lines.append(
            f"web+worker+poller+beat: RSS {total_rss / 1024:.0f} MiB, PSS {total_pss / 1024:.0f} MiB"
        )
        count, rss, pss = memory_kib(nginx_process.pid)
        lines.append(
            f"nginx: {count} processes, RSS {rss / 1024:.0f} MiB, PSS {pss / 1024:.0f} MiB"
        )
        report = "\n".join(lines)
        print("\n" + report)
        (ARTIFACTS / "deploy-e2e-figures.txt").write_text(report + "\n")
    finally:
        if nginx_process is not None:
            nginx_process.terminate()
            nginx_process.wait(10)
        for unit in started:  # every unit stops at once, as systemctl stop of the target would
            unit.terminate()
        for unit in reversed(started):
            unit.stop()
        shutil.rmtree(base, ignore_errors=True)
