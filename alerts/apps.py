import logging

from django.apps import AppConfig
from django.db.models.signals import post_migrate

logger = logging.getLogger(__name__)


class AlertsConfig(AppConfig):
    name = "alerts"
    verbose_name = "Open interest alerts"

    def ready(self) -> None:
        post_migrate.connect(_channels_from_settings, sender=self)


def _channels_from_settings(**kwargs) -> None:
    """After migrate (``run.sh`` and deploys run it with the processes' environment), the
    TELEGRAM_* / ALERT_WEBHOOK_* settings have their channels before any process sends."""
    from alerts.channels.services import channels_sync_from_settings

    try:
        channels_sync_from_settings()
    except Exception:  # Redis down, say: the workers' start does it again; migrate goes on
        logger.exception("delivery channels from settings: sync after migrate failed")
