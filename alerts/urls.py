from django.urls import path

from alerts.apis import AlertExportApi, AlertIngestApi, AlertListApi
from alerts.backtest_apis import AlertRuleBacktestApi, AlertRuleBacktestJobApi
from alerts.channels.apis import AlertChannelDetailApi, AlertChannelListApi, AlertChannelTestApi
from alerts.liquidation_apis import LiquidationAlertListApi
from alerts.outcome_apis import AlertOutcomeListApi, AlertRuleOutcomeApi
from alerts.relative_apis import ChangeStatsApi
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
    path("liquidation-alerts", LiquidationAlertListApi.as_view(), name="liquidation-alert-list"),
    path("alert-rules", AlertRuleListApi.as_view(), name="alert-rule-list"),
    path("alert-rules/backtest", AlertRuleBacktestApi.as_view(), name="alert-rule-backtest"),
    path(
        "alert-rules/backtest/<str:job>",
        AlertRuleBacktestJobApi.as_view(),
        name="alert-rule-backtest-job",
    ),
    path("alert-rules/<int:pk>", AlertRuleDetailApi.as_view(), name="alert-rule-detail"),
    path("alert-channels", AlertChannelListApi.as_view(), name="alert-channel-list"),
    path("alert-channels/<int:pk>", AlertChannelDetailApi.as_view(), name="alert-channel-detail"),
    path("alert-channels/<int:pk>/test", AlertChannelTestApi.as_view(), name="alert-channel-test"),
    path(
        "alert-rules/<int:pk>/outcomes", AlertRuleOutcomeApi.as_view(), name="alert-rule-outcomes"
    ),
    path("alert-outcomes", AlertOutcomeListApi.as_view(), name="alert-outcome-list"),
    path("alert-overrides", AlertOverrideListApi.as_view(), name="alert-override-list"),
    path(
        "open-interest/<str:symbol>/change-stats",
        ChangeStatsApi.as_view(),
        name="oi-change-stats",
    ),
    path(
        "alert-overrides/<int:pk>", AlertOverrideDetailApi.as_view(), name="alert-override-detail"
    ),
]
