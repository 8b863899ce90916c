"""WebSocket routes of every app, gathered for asgi.py."""

from alerts.routing import websocket_urlpatterns as alerts_websocket_urlpatterns

websocket_urlpatterns = [*alerts_websocket_urlpatterns]
