from channels.security.websocket import OriginValidator
from django.conf import settings


class FeedOriginValidator(OriginValidator):
    """Browsers must come from an allowed host; clients that send no Origin (servers, scripts)
    are let through, as the feed carries the same data as the open read API."""

    def __init__(self, application) -> None:
        allowed = [*settings.ALLOWED_HOSTS, *settings.WS_ALLOWED_ORIGINS]
        super().__init__(application, allowed)

    def valid_origin(self, parsed_origin) -> bool:
        if parsed_origin is None:
            return True
        return self.validate_origin(parsed_origin)
