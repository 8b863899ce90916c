"""Test settings: real Postgres and real Redis. scripts/test.sh gives each run a Redis server and a
test database of its own (TEST_REDIS_URL, TEST_DATABASE_NAME)."""

import os
from urllib.parse import urlsplit, urlunsplit

from volspike.env import channel_layer_prefix, redis_url_db

from .base import *  # noqa: F403
from .base import DATABASES, env

SECRET_KEY = env(
    "DJANGO_SECRET_KEY", default="test-insecure-key-0123456789-abcdefghijklmnopqrstuvwxyz"
)
DEBUG = False
REDIS_URL = env("TEST_REDIS_URL", default="redis://127.0.0.1:6379/15")
# Under pytest-xdist each worker (gw0, gw1, ...) takes the Redis database of its number on the run's
# own server, and its own channel-layer prefix (pub/sub ignores the database number); its test
# database gets the worker's suffix from pytest-django. Processes a test starts inherit the
# worker's TEST_REDIS_URL, so they stay on its database.
XDIST_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
if XDIST_WORKER and "TEST_REDIS_URL_PINNED" not in os.environ:
    REDIS_URL = urlunsplit(urlsplit(REDIS_URL)._replace(path=f"/{int(XDIST_WORKER[2:])}"))
CELERY_BROKER_URL = REDIS_URL
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
DATABASES["default"]["TEST"] = {
    "NAME": env("TEST_DATABASE_NAME", default=f"test_{DATABASES['default']['NAME']}")
}
# The test database's name, which every process of a run (pytest and the servers it starts) shares.
DEPLOYMENT_NAME = env(
    "DEPLOYMENT_NAME",
    default=f"{DATABASES['default']['TEST']['NAME']}-r{redis_url_db(REDIS_URL)}",
)
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        "CONFIG": {"hosts": [REDIS_URL], "prefix": channel_layer_prefix(DEPLOYMENT_NAME)},
    },
}
