"""The alert rules in the admin: edits reach the running engine at once, and an operator can send
a test alert from there."""

import pytest

from alerts.channels.services import channels_sync_from_settings
from alerts.models import AlertRule, AlertThresholdOverride, OpenInterestAlert
from alerts.services import RULES_VERSION_KEY

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/alerts/alertrule/"


def changelist_form(rules: list[AlertRule], enabled: set[int]) -> dict[str, str]:
    """The rules changelist's "enabled" column as the admin posts it: on for the ids in `enabled`."""
    form = {
        "form-TOTAL_FORMS": str(len(rules)),
        "form-INITIAL_FORMS": str(len(rules)),
        "_save": "Save",
    }
    for index, rule in enumerate(rules):
        form[f"form-{index}-id"] = str(rule.id)
        if rule.id in enabled:
            form[f"form-{index}-enabled"] = "on"
    return form


def test_switching_a_rule_off_in_the_admin_tells_the_engine_at_once(
    admin_client, redis_client, django_capture_on_commit_callbacks
):
    rules = list(AlertRule.objects.order_by("window_sec", "name"))
    target = next(rule for rule in rules if rule.name == "oi-5m-3pct")
    enabled_before = {rule.id for rule in rules if rule.enabled}  # the shipped preset is off
    form = changelist_form(rules, enabled=enabled_before - {target.id})

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(CHANGELIST, form)

    assert response.status_code == 302, response.content[:2000]
    assert not AlertRule.objects.get(pk=target.pk).enabled
    assert AlertRule.objects.filter(enabled=True).count() == len(enabled_before) - 1
    assert redis_client.get(RULES_VERSION_KEY) == "1"


def test_the_send_test_alert_action_reaches_the_webhook_and_stores_nothing(
    admin_client,
    fake_http,
    settings,
    redis_client,
):
    hook = fake_http()
    settings.ALERT_WEBHOOK_URL = f"{hook.url}/hooks/oi"
    channels_sync_from_settings()  # as a worker's start does
    rule = AlertRule.objects.first()

    response = admin_client.post(
        CHANGELIST,
        {"action": "send_test_alert", "index": "0", "_selected_action": [rule.id]},
        follow=True,
    )

    assert response.status_code == 200
    assert "Test message on webhook (settings): sent (HTTP 200)" in response.content.decode()
    ((_, path, body, _),) = hook.received
    assert path == "/hooks/oi" and body["test"] is True and body["symbol"] == "BTCUSDT"
    assert OpenInterestAlert.objects.count() == 0


def test_the_action_says_when_no_channel_is_configured(admin_client, settings):
    settings.ALERT_WEBHOOK_URL = ""
    settings.TELEGRAM_BOT_TOKEN = ""
    rule = AlertRule.objects.first()
    response = admin_client.post(
        CHANGELIST,
        {"action": "send_test_alert", "index": "0", "_selected_action": [rule.id]},
        follow=True,
    )
    assert "No delivery channel is enabled" in response.content.decode()


# One validation: the admin refuses what the API refuses (the model's clean, through the services)

ADD_RULE = "/admin/alerts/alertrule/add/"
RULE_FORM = {
    "name": "new-rule", "enabled": "on", "kind": "window_change", "direction": "BOTH",
    "window_sec": "600", "baseline_from_sec": "", "threshold_pct": "0.05",
    "dump_threshold_pct": "", "min_samples": "3", "min_delta_contracts": "",
    "min_delta_usd": "", "scope": "all", "symbols": "", "cooldown_sec": "900",
    "rearm_ratio": "0.5", "step_pct": "", "liquidated_side": "both", "threshold_usd": "",
    "threshold_volume_share": "",
    "overrides-TOTAL_FORMS": "0", "overrides-INITIAL_FORMS": "0",
    "overrides-MIN_NUM_FORMS": "0", "overrides-MAX_NUM_FORMS": "1000",
    "_save": "Save",
}  # fmt: skip
API_BODY = {"name": "new-rule", "window_sec": 600, "threshold_pct": "0.05"}


def admin_refusal(admin_client, changes: dict) -> dict[str, list[str]]:
    response = admin_client.post(ADD_RULE, {**RULE_FORM, **changes})
    assert response.status_code == 200, "the admin saved it"
    return response.context["adminform"].form.errors


def api_refusal(writer_client, changes: dict) -> tuple[str, str]:
    response = writer_client.post("/api/alert-rules", {**API_BODY, **changes}, format="json")
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    return error["field"], error["reason"]


@pytest.mark.parametrize(
    ("cap", "changes", "field", "reason"),
    [
        ({}, {"window_sec": 10_790}, "window_sec", "the ring buffers keep"),
        ({"OI_ALERT_RULES_MAX_ENABLED": 4}, {}, "enabled", "OI_ALERT_RULES_MAX_ENABLED"),
        ({"OI_ALERT_MAX_DISTINCT_WINDOWS": 4}, {}, "window_sec", "OI_ALERT_MAX_DISTINCT_WINDOWS"),
        ({}, {"rearm_ratio": "1"}, "rearm_ratio", "below 1"),
        ({}, {"scope": "only"}, "symbols", "needs at least one symbol"),
        ({}, {"threshold_pct": "1.5"}, "threshold_pct", "at most 1 for dumps"),
    ],
)
def test_the_admin_refuses_a_rule_the_api_refuses_with_the_same_reason(
    admin_client, writer_client, settings, cap, changes, field, reason
):
    for name, value in cap.items():
        setattr(settings, name, value)
    before = AlertRule.objects.count()

    api_field, api_reason = api_refusal(writer_client, changes)
    admin_errors = admin_refusal(
        admin_client, {name: str(value) for name, value in changes.items()}
    )

    assert api_field == field and reason in api_reason
    assert admin_errors[field] == [api_reason]
    assert AlertRule.objects.count() == before
    # and within the cap, both take it
    for name in cap:
        setattr(settings, name, getattr(settings, name) + 1)
    if cap:
        assert writer_client.post("/api/alert-rules", API_BODY, format="json").status_code == 201
        AlertRule.objects.filter(name="new-rule").delete()
        assert admin_client.post(ADD_RULE, RULE_FORM).status_code == 302


def test_switching_a_rule_on_past_the_cap_in_the_changelist_is_refused(admin_client, settings):
    settings.OI_ALERT_RULES_MAX_ENABLED = 4
    AlertRule.objects.create(name="spare", window_sec=300, threshold_pct="0.2", enabled=False)
    rules = list(AlertRule.objects.order_by("window_sec", "name"))
    form = changelist_form(rules, enabled={rule.id for rule in rules})

    response = admin_client.post(CHANGELIST, form)

    assert response.status_code == 200
    assert "OI_ALERT_RULES_MAX_ENABLED" in response.content.decode()
    assert not AlertRule.objects.get(name="spare").enabled


def test_the_admin_refuses_an_override_the_api_refuses(admin_client, writer_client):
    api = writer_client.post("/api/alert-overrides", {"symbol": "btc usdt"}, format="json")
    assert api.status_code == 400 and api.json()["error"]["field"] == "symbol"
    response = admin_client.post(
        "/admin/alerts/alertthresholdoverride/add/",
        {"symbol": "btc usdt", "rule": "", "cooldown_sec": "", "_save": "Save"},
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert errors["symbol"] == [api.json()["error"]["reason"]]
    assert not AlertThresholdOverride.objects.exists()
