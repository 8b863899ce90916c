"""ASGI entry point: HTTP through Django, WebSockets through Channels."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "volspike.settings.local")
django_asgi_app = get_asgi_application()  # before importing anything that touches models

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402

from common.http_limits import BodySizeLimitMiddleware  # noqa: E402
from feed.routing import websocket_urlpatterns  # noqa: E402
from feed.websocket import AllowedHostValidator, FeedOriginValidator  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": BodySizeLimitMiddleware(
            django_asgi_app, max_body_bytes=settings.HTTP_MAX_BODY_BYTES
        ),
        # Host in ALLOWED_HOSTS (as Django checks for HTTP), then a browser's Origin.
        "websocket": AllowedHostValidator(FeedOriginValidator(URLRouter(websocket_urlpatterns))),
    }
)
