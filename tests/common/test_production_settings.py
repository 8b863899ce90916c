"""Production settings: secrets only from the environment, and Django's deploy checks pass."""

import importlib
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    environment.update(DJANGO_SETTINGS_MODULE="volspike.settings.production", **env)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
    )


def test_production_passes_check_deploy_without_warnings():
    result = manage(
        "check", "--deploy", "--fail-level", "WARNING",
        DJANGO_SECRET_KEY="x" * 20 + "a-long-random-production-secret-0123456789",
        DJANGO_ALLOWED_HOSTS="oi.example.com",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_refuses_to_start_without_a_secret_key():
    result = manage("check", DJANGO_ALLOWED_HOSTS="oi.example.com")
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr


PRODUCTION_ENV = {
    "DJANGO_SECRET_KEY": "x" * 20 + "a-long-random-production-secret-0123456789",
    "DJANGO_ALLOWED_HOSTS": "oi.example.com",
}


def production_settings(monkeypatch, **env: str) -> ModuleType:
    """volspike.settings.production as a process with this environment would load it (read
    afresh, with base, in this process; the modules in use are put back afterwards)."""
    for name in [n for n in os.environ if n.startswith("DJANGO_") or n == "VOLSPIKE_PROCESS_ROLE"]:
        monkeypatch.delenv(name)
    for name, value in {**PRODUCTION_ENV, **env}.items():
        monkeypatch.setenv(name, value)
    for module in ("volspike.settings.base", "volspike.settings.production"):
        monkeypatch.delitem(sys.modules, module, raising=False)
    return importlib.import_module("volspike.settings.production")


def test_the_web_process_closes_db_connections_and_celery_processes_keep_them(monkeypatch):
    # the systemd units set VOLSPIKE_PROCESS_ROLE; without it (manage.py) connections close
    for role, conn_max_age in [
        ("web", 0),
        ("", 0),
        ("worker", 600),
        ("poller", 600),
        ("beat", 600),
    ]:
        production = production_settings(monkeypatch, VOLSPIKE_PROCESS_ROLE=role)
        assert production.DATABASES["default"]["CONN_MAX_AGE"] == conn_max_age, role


def test_production_starts_with_short_hsts_behind_the_proxy_and_leaves_static_files_to_nginx(
    monkeypatch,
):
    production = production_settings(monkeypatch)
    assert production.SECURE_HSTS_SECONDS == 3600 and production.SECURE_HSTS_PRELOAD is False
    assert production.SECURE_PROXY_SSL_HEADER == ("HTTP_X_FORWARDED_PROTO", "https")
    assert production.CSRF_TRUSTED_ORIGINS == ["https://oi.example.com"]
    assert "whitenoise.middleware.WhiteNoiseMiddleware" not in production.MIDDLEWARE
    assert production.SECURE_REDIRECT_EXEMPT == [r"^health$", r"^health/ready$"]
    raised = production_settings(monkeypatch, DJANGO_SECURE_HSTS_SECONDS="31536000")
    assert raised.SECURE_HSTS_SECONDS == 31536000
