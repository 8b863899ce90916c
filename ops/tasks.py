"""Ops tasks: thin; the logic is in ops.services (and the watchdog in ops.watchdog)."""

from celery import shared_task
from celery.signals import worker_ready
from django.conf import settings

from ops.services import ops_check_run
from ops.watchdog import watchdog_start


@shared_task(name="ops.check", ignore_result=True, soft_time_limit=20, time_limit=30)
def ops_check_task() -> None:
    """Every OPS_CHECK_EVERY_SEC (beat): run the ops checks (one process at a time)."""
    ops_check_run(source="beat")


@worker_ready.connect
def _watchdog_in_default_workers(sender=None, **kwargs: object) -> None:
    """Each worker consuming the queue ops.check goes to also runs the watchdog."""
    queue = settings.CELERY_TASK_ROUTES["ops.*"]["queue"]
    consumed = getattr(getattr(sender, "app", None), "amqp", None)
    if consumed is not None and queue in consumed.queues.consume_from:
        watchdog_start()
