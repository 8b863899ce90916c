"""The one environment reader. Settings modules import `env` from here."""

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# A local .env (copied from .env.example) is read if present; real environment variables win.
env.read_env(str(BASE_DIR / ".env"), overwrite=False)
