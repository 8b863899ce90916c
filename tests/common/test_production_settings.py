"""Production settings: secrets only from the environment, and Django's deploy checks pass."""

import json
import os
import subprocess
import sys
from pathlib import Path

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
SETTINGS_PROBE = """
import json, django
django.setup()
from django.conf import settings as s
print(json.dumps({
    "conn_max_age": s.DATABASES["default"]["CONN_MAX_AGE"],
    "hsts": s.SECURE_HSTS_SECONDS, "preload": s.SECURE_HSTS_PRELOAD,
    "middleware": s.MIDDLEWARE, "csrf_origins": s.CSRF_TRUSTED_ORIGINS,
    "proxy_header": s.SECURE_PROXY_SSL_HEADER, "redirect_exempt": s.SECURE_REDIRECT_EXEMPT,
}))
"""


def production_settings(**env: str) -> dict:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    environment.update(
        DJANGO_SETTINGS_MODULE="volspike.settings.production", **PRODUCTION_ENV, **env
    )
    result = subprocess.run(
        [sys.executable, "-c", SETTINGS_PROBE],
        cwd=ROOT, env=environment, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_the_web_process_closes_db_connections_and_celery_processes_keep_them():
    # the systemd units set VOLSPIKE_PROCESS_ROLE; without it (manage.py) connections close
    assert production_settings(VOLSPIKE_PROCESS_ROLE="web")["conn_max_age"] == 0
    assert production_settings()["conn_max_age"] == 0
    for role in ("worker", "poller", "beat"):
        assert production_settings(VOLSPIKE_PROCESS_ROLE=role)["conn_max_age"] == 600


def test_production_starts_with_short_hsts_behind_the_proxy_and_leaves_static_files_to_nginx():
    answer = production_settings()
    assert answer["hsts"] == 3600 and answer["preload"] is False
    assert answer["proxy_header"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert answer["csrf_origins"] == ["https://oi.example.com"]
    assert "whitenoise.middleware.WhiteNoiseMiddleware" not in answer["middleware"]
    assert answer["redirect_exempt"] == [r"^health$", r"^health/ready$"]
    assert production_settings(DJANGO_SECURE_HSTS_SECONDS="31536000")["hsts"] == 31536000
