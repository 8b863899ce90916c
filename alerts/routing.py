from django.urls import path

from alerts.consumers import OpenInterestFeedConsumer

websocket_urlpatterns = [
    path("ws/open-interest/", OpenInterestFeedConsumer.as_asgi()),
]
