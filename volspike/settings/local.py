"""Local development and the offline demo: the simulator is the exchange."""

from .base import *  # noqa: F403
from .base import env

DEBUG = env.bool("DJANGO_DEBUG", default=True)
SECRET_KEY = env(
    "DJANGO_SECRET_KEY", default="local-insecure-key-change-me-in-production-0123456789"
)
# Serve static files from the apps' folders without collectstatic.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
