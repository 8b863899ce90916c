from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from common.apis import HealthApi
from liquidity.apis import ExchangeInfoProxyApi
from oi.apis import OpenInterestLatestApi
from volspike.apis import ReadinessApi, metrics_view

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="debug-open-interest"), name="home"),
    path("health", HealthApi.as_view(), name="health"),
    path("health/ready", ReadinessApi.as_view(), name="health-ready"),
    path("metrics", metrics_view, name="metrics"),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/market/open-interest", OpenInterestLatestApi.as_view(), name="oi-latest-usd"),
    path(
        "api/redoc/",
        SpectacularRedocView.as_view(url_name="api-schema", template_name="common/redoc.html"),
        name="api-redoc",
    ),
    path("api/market/open-interest/", include("oi.urls")),
    path("api/market/open-interest/", include("liquidity.urls")),
    path("api/", include("alerts.urls")),
    path("api/", include("volume_alerts.urls")),
    path("api/ops/", include("ops.urls")),
    path("debug/", include("dashboard.urls")),
    path("api/binance/futures/info", ExchangeInfoProxyApi.as_view(), name="binance-futures-info"),
]

handler404 = "common.exceptions.not_found_view"
