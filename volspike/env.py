"""The one environment reader. Settings modules import `env` from here."""

import re
from pathlib import Path
from urllib.parse import urlsplit

import environ

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# A local .env (copied from .env.example) is read if present; real environment variables win.
env.read_env(str(BASE_DIR / ".env"), overwrite=False)


def redis_url_db(url: str) -> int:
    """The database number of a redis:// URL (its path, else `?db=`, else 0)."""
    parts = urlsplit(url)
    path = parts.path.strip("/")
    if path.isdigit():
        return int(path)
    match = re.search(r"(?:^|&)db=(\d+)", parts.query)
    return int(match.group(1)) if match else 0


def channel_layer_prefix(deployment_name: str) -> str:
    """Channel-layer prefix for a deployment: channel names allow only [A-Za-z0-9_.-]."""
    return "volspike." + re.sub(r"[^A-Za-z0-9_.-]", "_", deployment_name)[:60] + "."
