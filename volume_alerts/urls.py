from django.urls import path

from volume_alerts.apis import VolumeAlertIngestApi, VolumeAlertListApi, VolumeAlertRecentApi

urlpatterns = [
    path("volume-alerts", VolumeAlertListApi.as_view(), name="volume-alert-list"),
    path("volume-alerts/ingest", VolumeAlertIngestApi.as_view(), name="volume-alert-ingest"),
    path("volume-alerts/recent", VolumeAlertRecentApi.as_view(), name="volume-alert-recent"),
]
