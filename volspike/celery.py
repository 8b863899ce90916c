"""Celery app, following Celery's Django recipe."""

import logging
import os

from celery import Celery
from celery.signals import before_task_publish, setup_logging

from common.timeutil import now_ms

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


POLL_DISPATCH_TASK = "oi.poll_dispatch"


@before_task_publish.connect
def _record_poll_dispatch_sent(sender: str | None = None, **kwargs: object) -> None:
    """Beat's heartbeat for /health/ready: the time a poll dispatch left the publishing process."""
    if sender != POLL_DISPATCH_TASK:
        return
    from redis import RedisError

    from oi.services import poll_dispatch_sent_record

    try:
        poll_dispatch_sent_record(at_ms=now_ms())
    except RedisError as exc:  # the broker is this Redis: the publish itself will say why
        logging.getLogger(__name__).warning("poll dispatch heartbeat not recorded: %s", exc)
