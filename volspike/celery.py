"""Celery app, following Celery's Django recipe."""

import logging
import os

from celery import Celery
from celery.beat import PersistentScheduler
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


class BeatScheduler(PersistentScheduler):
    """Celery's persistent scheduler without its 10 ms early wake-up (``adjust``'s drift).

    Celery heaps each entry 10 ms before it is due; woken then, the entry is not due yet, so it
    is heaped again at once and beat spins until it is: 10 ms of a busy loop before every run.
    With two entries every 2 s (the poll dispatch, the channel sender) that was beat's whole
    CPU, 0.6 CPU-s a minute, a quarter of the system's at 400 symbols (bench/poller_budget.py).
    Woken on time instead, an entry is due when beat looks (a sleep never ends early)."""

    def adjust(self, n: float, drift: float = 0.0) -> float:
        return super().adjust(n, drift=drift)
