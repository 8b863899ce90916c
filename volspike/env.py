"""The one environment reader. Settings modules import `env` from here.

`.env` (or $VOLSPIKE_ENV_FILE) is read by volspike/dotenv.py, the same parser the shell scripts
use, and only fills variables the real environment does not set: the shell always wins.
"""

import environ

from volspike import dotenv

BASE_DIR = dotenv.ROOT

dotenv.load()
env = environ.Env()
