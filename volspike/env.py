"""The one environment reader. Settings modules import `env` from here.

`.env` (or $VOLSPIKE_ENV_FILE) is read by volspike/dotenv.py, the same parser the shell scripts
use, and only fills variables the real environment does not set: the shell always wins.
"""

import os
import re
from collections.abc import Iterator, Mapping
from urllib.parse import urlsplit

import environ

from volspike import dotenv

BASE_DIR = dotenv.ROOT


class _Literal(Mapping):
    """os.environ as django-environ must see it for values to mean what the shell sees.

    django-environ reads a value starting with `$` as the name of another variable, and turns
    `\\$` into `$` (escape_proxy). Each `$` is escaped here, so both leave the value as it is.
    """

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def __getitem__(self, key: str) -> str:
        return self._environ[key].replace("$", "\\$")

    def __iter__(self) -> Iterator[str]:
        return iter(self._environ)

    def __len__(self) -> int:
        return len(self._environ)


dotenv.load()
env = environ.Env()
env.ENVIRON = _Literal(os.environ)
env.escape_proxy = True


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
