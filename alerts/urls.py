from django.urls import path

from alerts.apis import AlertExportApi, AlertIngestApi, AlertListApi
from alerts.backtest_apis import AlertRuleBacktestApi, AlertRuleBacktestJobApi
from alerts.rule_apis import (
    AlertOverrideDetailApi,
    AlertOverrideListApi,
    AlertRuleDetailApi,
    AlertRuleListApi,
)

urlpatterns = [
    path("open-interest-alerts", AlertListApi.as_view(), name="oi-alert-list"),
    path("open-interest-alerts/export", AlertExportApi.as_view(), name="oi-alert-export"),
    path("open-interest-alerts/ingest", AlertIngestApi.as_view(), name="oi-alert-ingest"),
    path("alert-rules", AlertRuleListApi.as_view(), name="alert-rule-list"),
    path("alert-rules/backtest", AlertRuleBacktestApi.as_view(), name="alert-rule-backtest"),
    path(
        "alert-rules/backtest/<str:job>",
        AlertRuleBacktestJobApi.as_view(),
        name="alert-rule-backtest-job",
    ),
    path("alert-rules/<int:pk>", AlertRuleDetailApi.as_view(), name="alert-rule-detail"),
    path("alert-overrides", AlertOverrideListApi.as_view(), name="alert-override-list"),
    path(
        "alert-overrides/<int:pk>", AlertOverrideDetailApi.as_view(), name="alert-override-detail"
    ),
]
