from celery import shared_task
from django.conf import settings

from liquidity.jobs import universe_refresh


@shared_task(
    name="liquidity.universe_refresh",
    ignore_result=True,
    soft_time_limit=max(30, settings.LIQUIDITY_REFRESH_SEC // 2),
    time_limit=max(45, settings.LIQUIDITY_REFRESH_SEC * 3 // 4),
)
def universe_refresh_task() -> None:
    """Refresh the liquid universe (Celery beat, every LIQUIDITY_REFRESH_SEC)."""
    universe_refresh()
