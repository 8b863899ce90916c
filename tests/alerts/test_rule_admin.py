"""The alert rules in the admin: edits reach the running engine at once, and an operator can send
a test alert from there."""

import pytest

from alerts.models import AlertRule, OpenInterestAlert
from alerts.services import RULES_VERSION_KEY
from tests.alerts.test_delivery import receiver  # noqa: F401 (a fixture)

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/alerts/alertrule/"


def test_switching_a_rule_off_in_the_admin_tells_the_engine_at_once(
    admin_client, redis_client, django_capture_on_commit_callbacks
):
    rules = list(AlertRule.objects.order_by("window_sec", "name"))
    target = next(rule for rule in rules if rule.name == "oi-5m-3pct")
    form = {
        "form-TOTAL_FORMS": str(len(rules)),
        "form-INITIAL_FORMS": str(len(rules)),
        "_save": "Save",
    }
    for index, rule in enumerate(rules):
        form[f"form-{index}-id"] = str(rule.id)
        if rule != target:
            form[f"form-{index}-enabled"] = "on"

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(CHANGELIST, form)

    assert response.status_code == 302, response.content[:2000]
    assert not AlertRule.objects.get(pk=target.pk).enabled
    assert AlertRule.objects.filter(enabled=True).count() == len(rules) - 1
    assert redis_client.get(RULES_VERSION_KEY) == "1"


def test_the_send_test_alert_action_reaches_the_webhook_and_stores_nothing(
    admin_client,
    receiver,  # noqa: F811 (the fixture imported above)
    settings,
):
    hook = receiver()
    settings.ALERT_WEBHOOK_URL = f"{hook.url}/hooks/oi"
    rule = AlertRule.objects.first()

    response = admin_client.post(
        CHANGELIST,
        {"action": "send_test_alert", "index": "0", "_selected_action": [rule.id]},
        follow=True,
    )

    assert response.status_code == 200
    assert "Test alert on webhook: sent" in response.content.decode()
    ((path, body),) = hook.received
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
    assert "No delivery channel is configured" in response.content.decode()
