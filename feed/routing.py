"""The WebSocket routes, for volspike/asgi.py."""

from django.urls import path

from feed.consumers import OpenInterestFeedConsumer

websocket_urlpatterns = [
    path("ws/open-interest/", OpenInterestFeedConsumer.as_asgi()),
]
