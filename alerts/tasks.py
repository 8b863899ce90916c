"""Celery tasks of the alerts app: thin, they call services (never the reverse)."""

import time

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from celery.signals import worker_ready
from celery.utils.log import get_task_logger
from django.conf import settings

from alerts.backtest_services import BACKTEST_TASK, backtest_job_run
from alerts.channels.services import (
    channel_queue_alerts,
    channels_drain,
    channels_sync_from_settings,
)
from alerts.models import AlertChannel
from alerts.outcome_services import alert_outcomes_fill
from alerts.relative_services import change_stats_refresh

logger = get_task_logger(__name__)


@shared_task(name="alerts.channels_send", ignore_result=True, soft_time_limit=30, time_limit=40)
def channels_send_task() -> None:
    """Drain the channels' outboxes for up to ~15 s within each one's limits (beat, every ~2 s).
    One sender per channel at a time (a Redis lease); an interrupted send leaves its alerts
    queued."""
    try:
        channels_drain()
    except SoftTimeLimitExceeded:
        logger.warning("channel sender hit its time limit; the outboxes keep what was not sent")


@shared_task(name="alerts.deliver", ignore_result=True, soft_time_limit=10, time_limit=20)
def alert_deliver_task(alert_id: int, channel: str) -> None:
    """A webhook delivery task queued before channels were data: its alert goes to the outbox
    of the channel the settings keep for that kind (the outbox retries now, not Celery)."""
    for target in AlertChannel.objects.filter(from_settings=True, kind=channel, enabled=True):
        channel_queue_alerts(target, [alert_id])


@worker_ready.connect
def channels_from_settings_at_worker_start(**kwargs) -> None:
    """A worker sends with its own environment: the channels of TELEGRAM_* / ALERT_WEBHOOK_*
    follow it (also after migrate, see ``alerts.apps``)."""
    try:
        channels_sync_from_settings()
    except Exception:
        logger.exception("delivery channels from settings: sync failed")


@shared_task(name="alerts.outcomes_fill", ignore_result=True, soft_time_limit=50, time_limit=60)
def alert_outcomes_fill_task() -> None:
    """Every minute (beat): measure the alerts' horizons that came due (bounded per run; a run
    cut short by its time limit leaves the rest for the next, nothing half-written)."""
    try:
        alert_outcomes_fill()
    except SoftTimeLimitExceeded:
        logger.warning("alert outcomes job hit its time limit; the next run goes on")


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


CHANGE_STATS_TIME_LIMIT_SEC = 240


@shared_task(
    name="alerts.change_stats_refresh", ignore_result=True,
    soft_time_limit=CHANGE_STATS_TIME_LIMIT_SEC + 30, time_limit=CHANGE_STATS_TIME_LIMIT_SEC + 60,
)  # fmt: skip
def change_stats_refresh_task() -> None:
    """Every OI_CHANGE_STATS_REFRESH_SEC (beat, queue oi_backfill): the relative rules' change
    statistics from the stored samples, then a bounded bootstrap from openInterestHist of the
    symbols still without them. Stops itself at its own deadline (a thread pool enforces no
    time limit); what is left waits for the next run."""
    try:
        change_stats_refresh(deadline=time.monotonic() + CHANGE_STATS_TIME_LIMIT_SEC)
    except SoftTimeLimitExceeded:
        logger.warning("change statistics job hit its time limit; the next run goes on")
