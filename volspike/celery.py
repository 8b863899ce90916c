"""Celery app, following Celery's Django recipe."""

import os

from celery import Celery
from celery.signals import setup_logging

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "volspike.settings.local")

app = Celery("volspike")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@setup_logging.connect
def _use_django_logging(**kwargs: object) -> None:
    """Let Django's LOGGING configure the worker and beat instead of Celery's defaults."""
    from logging.config import dictConfig

    from django.conf import settings

    dictConfig(settings.LOGGING)
