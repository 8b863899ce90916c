"""Celery tasks of the alerts app: thin, they call services (never the reverse; the delivery
service enqueues ``alerts.deliver`` by name)."""

import random

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from celery.utils.log import get_task_logger
from django.conf import settings

from alerts.backtest_services import BACKTEST_TASK, backtest_job_run
from alerts.delivery import DELIVER_TASK, DeliveryError, alert_deliver
from alerts.telegram.services import telegram_outbox_drain

logger = get_task_logger(__name__)

MAX_DELIVERY_RETRIES = 6


@shared_task(
    name=DELIVER_TASK,
    bind=True,
    ignore_result=True,
    max_retries=MAX_DELIVERY_RETRIES,
    soft_time_limit=30,
    time_limit=45,
)
def alert_deliver_task(self, alert_id: int, channel: str) -> None:
    """Deliver one alert on one channel, retried with capped exponential backoff and jitter."""
    try:
        alert_deliver(alert_id=alert_id, channel=channel)
    except DeliveryError as exc:
        if self.request.retries >= MAX_DELIVERY_RETRIES:
            logger.error(
                "alert delivery gave up",
                extra={"alert_id": alert_id, "channel": channel, "cause": str(exc)},
            )
            return
        base = settings.ALERT_DELIVERY_RETRY_BASE_SEC
        countdown = min(300, base * 2**self.request.retries) * random.uniform(0.8, 1.2)
        raise self.retry(exc=exc, countdown=countdown) from exc


@shared_task(name="alerts.telegram_send", ignore_result=True, soft_time_limit=30, time_limit=40)
def telegram_send_task() -> None:
    """Drain the Telegram outbox for up to ~15 s within the chat's limits (beat, every ~2 s).
    One sender at a time (a Redis lease); an interrupted send leaves its alerts queued."""
    try:
        telegram_outbox_drain()
    except SoftTimeLimitExceeded:
        logger.warning("telegram sender hit its time limit; the outbox keeps what was not sent")


@shared_task(
    name=BACKTEST_TASK,
    ignore_result=True,
    soft_time_limit=settings.BACKTEST_TIME_LIMIT_SEC + 30,
    time_limit=settings.BACKTEST_TIME_LIMIT_SEC + 60,
)
def backtest_run_task(job_id: str) -> None:
    """Run one backtest job (its own queue, so it never delays polling or deliveries). The job
    itself stops at BACKTEST_TIME_LIMIT_SEC (a thread pool enforces no time limit); a second
    delivery of the task finds the job taken and does nothing."""
    backtest_job_run(job_id)
