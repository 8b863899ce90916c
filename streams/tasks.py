from celery import shared_task

from streams.services import liquidations_prune


@shared_task(
    name="streams.liquidations_prune", ignore_result=True, soft_time_limit=180, time_limit=240
)
def liquidations_prune_task() -> None:
    """Delete liquidations past their retention (Celery beat, hourly)."""
    liquidations_prune()
