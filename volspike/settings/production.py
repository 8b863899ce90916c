"""Production: secrets only from the environment, the real exchange, behind nginx with TLS.

Everything comes from the environment file the systemd units read (deploy/production.env.example);
the README's "Deploy" section describes the whole deployment.
"""

from .base import *  # noqa: F403
from .base import DATABASES, MIDDLEWARE, env

SECRET_KEY = env("DJANGO_SECRET_KEY")
DEBUG = False
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS")
BINANCE_BASE_URL = env("BINANCE_BASE_URL", default="https://fapi.binance.com")

# --- Behind nginx: it terminates TLS and says so in X-Forwarded-Proto (deploy/nginx) ----------
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
# Probes may ask over plain HTTP (nginx passes these two through on port 80 as well).
SECURE_REDIRECT_EXEMPT = [r"^health$", r"^health/ready$"]
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
# HSTS starts short, so that a test domain or a broken certificate does not lock browsers out for
# months: raise DJANGO_SECURE_HSTS_SECONDS step by step (1 day, 1 week, then 31536000) once HTTPS
# has worked for that long. Preload is a one-way door (the browsers' built-in list): off, and its
# deploy warning silenced, until you decide to submit the domain.
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=3600)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=False)
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]
SECURE_CONTENT_TYPE_NOSNIFF = True
# Forms (the admin) posted from these origins pass the CSRF check; by default https:// and each
# allowed host, e.g. "https://oi.example.com".
CSRF_TRUSTED_ORIGINS = env.list(
    "DJANGO_CSRF_TRUSTED_ORIGINS",
    default=[f"https://{host.lstrip('.')}" for host in ALLOWED_HOSTS if "*" not in host],
)

# --- Static files: collected into STATIC_ROOT by the install, served by nginx at /static/ ------
# WhiteNoise would serve them from the ASGI process (with Django's warning about synchronous
# iterators under ASGI); nginx does it without the application.
STATIC_ROOT = env.path("DJANGO_STATIC_ROOT", default=str(STATIC_ROOT))  # noqa: F405
MIDDLEWARE = [m for m in MIDDLEWARE if m != "whitenoise.middleware.WhiteNoiseMiddleware"]

# --- Database connections per process (the systemd units set VOLSPIKE_PROCESS_ROLE) -----------
# Django: persistent connections are not reused by async (ASGI) request handling, each request
# may run in a new thread, so the web process closes its connection after every request. The
# Celery processes (worker, poller, beat) keep theirs, checked before reuse.
VOLSPIKE_PROCESS_ROLE = env("VOLSPIKE_PROCESS_ROLE", default="")
CELERY_PROCESS_ROLES = {"worker", "poller", "beat"}
DATABASES["default"]["CONN_MAX_AGE"] = (
    env.int("DJANGO_CONN_MAX_AGE", default=600)
    if VOLSPIKE_PROCESS_ROLE in CELERY_PROCESS_ROLES
    and not DATABASES["default"].get("OPTIONS", {}).get("pool")  # a pool needs 0
    else 0
)
