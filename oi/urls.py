from django.urls import path

from oi.apis import (
    MarketViewApi,
    OpenInterestScreenerApi,
    PollerStatusApi,
    SnapshotAtApi,
    SnapshotExportApi,
    SnapshotIngestApi,
    SnapshotSampleListApi,
)

urlpatterns = [
    path("ingest", SnapshotIngestApi.as_view(), name="oi-snapshot-ingest"),
    path("snapshot", SnapshotAtApi.as_view(), name="oi-snapshot-at"),
    path("samples", SnapshotSampleListApi.as_view(), name="oi-snapshot-samples"),
    path("export", SnapshotExportApi.as_view(), name="oi-snapshot-export"),
    path("poller", PollerStatusApi.as_view(), name="oi-poller-status"),
    path("screener", OpenInterestScreenerApi.as_view(), name="oi-screener"),
    path("market", MarketViewApi.as_view(), name="oi-market-view"),
]
