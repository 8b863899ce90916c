from django.apps import AppConfig


class VolumeAlertsConfig(AppConfig):
    name = "volume_alerts"
    verbose_name = "Volume alerts"
