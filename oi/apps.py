from django.apps import AppConfig


class OiConfig(AppConfig):
    name = "oi"
    verbose_name = "Open interest"
