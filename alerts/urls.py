from django.urls import path

from alerts.apis import AlertIngestApi, AlertListApi

urlpatterns = [
    path("open-interest-alerts", AlertListApi.as_view(), name="oi-alert-list"),
    path("open-interest-alerts/ingest", AlertIngestApi.as_view(), name="oi-alert-ingest"),
]
