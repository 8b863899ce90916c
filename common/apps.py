from django.apps import AppConfig


class CommonConfig(AppConfig):
    name = "common"
    verbose_name = "API access"

    def ready(self) -> None:
        from common import schema  # noqa: F401 - registers the OpenAPI auth extension
