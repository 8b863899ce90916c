"""The rules engine on real Redis and Postgres: rules edited over the API take effect without a
restart, alerts carry their rule and market context, and restarts or a lost Redis state never
repeat an alert."""

import time
from decimal import Decimal

import pytest

from alerts import evaluation
from alerts.evaluation import RULE_STATE_KEY, alerts_evaluate
from alerts.liquidation_selectors import liquidation_rules_enabled
from alerts.models import AlertRule, AlertThresholdOverride, OpenInterestAlert
from alerts.rules import FireState
from alerts.selectors import alert_rules_enabled
from liquidity.services import REDIS_META_KEY_PREFIX
from oi.keys import FUNDING_RATE_KEY
from oi.ring import RingSample, ring_append

pytestmark = pytest.mark.django_db

SYMBOL = "SOLUSDT"
RULES_URL = "/api/alert-rules"
OVERRIDES_URL = "/api/alert-overrides"
SEC = 1000
MIN = 60 * SEC


class Market:
    """Writes a symbol's samples into its ring buffer as the poller does, then evaluates.
    Sample times start ``start_minutes_ago`` and move 30 s a tick: keep them behind the clock."""

    def __init__(self, redis_client, symbol: str = SYMBOL, start_minutes_ago: int = 70):
        self.redis = redis_client
        self.symbol = symbol
        self.t_ms = time.time_ns() // 1_000_000 - start_minutes_ago * MIN
        redis_client.hset(FUNDING_RATE_KEY, symbol, "0.00012")
        redis_client.hset(f"{REDIS_META_KEY_PREFIX}{symbol}", "quote_volume_24h", "812345678.5")

    def tick(self, oi: float, price: float = 150.0, seconds: int = 30) -> list:
        self.t_ms += seconds * SEC
        ring_append(
            self.redis,
            {
                self.symbol: [
                    RingSample(self.t_ms, Decimal(str(oi)), mark_price=Decimal(str(price)))
                ]
            },
            window_ms=3 * 3600 * SEC,
            now_ms=self.t_ms,
        )
        return alerts_evaluate([self.symbol], mark_prices={self.symbol: Decimal(str(price))})

    def flat(self, oi: float, minutes: int, price: float = 150.0) -> None:
        for _ in range(minutes * 2):
            assert self.tick(oi, price) == []


def created(raised) -> list[OpenInterestAlert]:
    return [r.alert for r in raised if r.outcome == "created"]


def test_a_jump_alerts_once_per_rule_with_its_window_and_market_context(redis_client):
    AlertRule.objects.update(min_delta_contracts=None)
    market = Market(redis_client)
    market.flat(100_000, 65, price=150.0)

    alerts = created(market.tick(125_000, price=153.0))

    assert sorted(a.rule_name for a in alerts) == sorted(
        AlertRule.objects.filter(enabled=True).values_list("name", flat=True)
    )
    five = next(a for a in alerts if a.rule_name == "oi-5m-3pct")
    assert (five.window_sec, five.reference, five.direction) == (300, "window_low", "UP")
    assert five.pct_change == Decimal("0.25")
    assert five.threshold_pct == Decimal("0.03")
    assert five.price_change_pct == pytest.approx(Decimal("0.02"), abs=Decimal("1e-9"))
    assert five.mark_price == 153
    assert five.oi_usd_before == 100_000 * 150
    assert five.oi_usd_after == 125_000 * 153
    assert five.funding_rate == Decimal("0.00012")
    assert five.quote_volume_24h == Decimal("812345678.5")
    assert sorted(a.alerts_24h for a in alerts) == [1, 2, 3, 4]
    # OI up with the price up: new longs
    assert {a.regime for a in alerts} == {"long_build"}
    design = next(a for a in alerts if a.rule.kind == "median_baseline")
    assert design.reference == "median"
    # the same move seen again (another poll) does not alert again
    assert created(market.tick(125_500, price=153.0)) == []


def test_a_rule_that_asks_for_short_builds_fires_only_when_the_price_falls(
    redis_client, api_client, writer_client, django_capture_on_commit_callbacks
):
    # the shipped preset (disabled): OI up 3% in 5 min while the price falls; switched on over
    # the API, the others off
    preset = AlertRule.objects.get(name="oi-5m-3pct-short-build")
    assert preset.regimes == ["short_build"] and preset.direction == "UP"
    assert not preset.enabled
    AlertRule.objects.exclude(pk=preset.pk).update(enabled=False)
    with django_capture_on_commit_callbacks(execute=True):  # the API's commit
        response = writer_client.patch(f"{RULES_URL}/{preset.pk}", {"enabled": True}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["regimes"] == ["short_build"]
    market = Market(redis_client, start_minutes_ago=12)
    market.flat(100_000, 10, price=150.0)

    # OI +5% with the price +2%: a long build, held back (and not remembered as fired)
    assert created(market.tick(105_000, price=153.0)) == []
    # OI a little higher with the price now 2% below where the window began: a short build
    (alert,) = created(market.tick(105_500, price=147.0))

    assert alert.rule_name == "oi-5m-3pct-short-build"
    assert alert.regime == "short_build"
    assert alert.price_change_pct < 0
    (listed,) = api_client.get("/api/open-interest-alerts").json()["results"]
    assert listed["regime"] == "short_build"


def test_a_restarted_process_and_a_lost_redis_state_do_not_repeat_an_alert(redis_client):
    market = Market(redis_client)
    market.flat(100_000, 10)
    assert len(created(market.tick(104_000))) == 1  # the 5 m rule only

    # when the process restarts (its trackers are gone) the move is seen again: no alert
    evaluation.engine_reset()
    assert created(market.tick(104_100)) == []

    # when Redis loses the rule states, they are seeded from the stored alerts: still none
    redis_client.delete(RULE_STATE_KEY)
    evaluation.engine_reset()
    assert created(market.tick(104_200)) == []
    assert redis_client.hexists(RULE_STATE_KEY, evaluation.RULE_STATE_SEEDED_FIELD)
    assert OpenInterestAlert.objects.count() == 1


def test_a_rule_created_over_the_api_applies_at_once_and_disabling_it_stops_it(
    redis_client, writer_client, django_capture_on_commit_callbacks
):
    AlertRule.objects.update(enabled=False)
    market = Market(redis_client, start_minutes_ago=10)
    market.flat(100_000, 3)

    with django_capture_on_commit_callbacks(execute=True):  # the API's commit
        response = writer_client.post(
            RULES_URL,
            {
                "name": "oi-2m-1pct-up",
                "window_sec": 120,
                "threshold_pct": "0.01",
                "direction": "UP",
            },
            format="json",
        )
    assert response.status_code == 201, response.content
    rule = response.json()
    assert rule["kind"] == "window_change" and rule["rearm_ratio"] == "0.500"

    (alert,) = created(market.tick(101_500))
    assert alert.rule_name == "oi-2m-1pct-up"
    assert created(market.tick(99_000)) == []  # a dump: this rule watches spikes only

    # when the rule is switched off over the API, a new move no longer alerts
    with django_capture_on_commit_callbacks(execute=True):
        patch = writer_client.patch(f"{RULES_URL}/{rule['id']}", {"enabled": False}, format="json")
    assert patch.status_code == 200
    market.flat(99_000, 3)
    assert created(market.tick(103_000)) == []


def test_a_symbol_override_raises_a_rules_threshold_for_that_symbol_only(
    redis_client, writer_client, django_capture_on_commit_callbacks
):
    AlertRule.objects.exclude(name="oi-5m-3pct").update(enabled=False)
    rule_id = AlertRule.objects.get(name="oi-5m-3pct").id
    solana = Market(redis_client, start_minutes_ago=10)
    ether = Market(redis_client, "ETHUSDT", start_minutes_ago=10)
    solana.flat(100_000, 6)
    ether.flat(100_000, 6)
    with django_capture_on_commit_callbacks(execute=True):
        response = writer_client.post(
            OVERRIDES_URL,
            {"symbol": SYMBOL, "rule": rule_id, "spike_threshold_pct": "0.10"},
            format="json",
        )
    assert response.status_code == 201, response.content

    assert created(solana.tick(105_000)) == []
    assert len(created(ether.tick(105_000))) == 1
    assert len(created(solana.tick(111_000))) == 1

    duplicate = writer_client.post(
        OVERRIDES_URL, {"symbol": SYMBOL, "rule": rule_id, "cooldown_sec": 5}, format="json"
    )
    assert duplicate.status_code == 400
    assert duplicate.json()["error"]["field"] == "symbol"
    assert AlertThresholdOverride.objects.count() == 1


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        ({"window_sec": 9_000_000}, "window_sec", "coarse ring keeps 25 h"),
        ({"window_sec": 10_790}, "window_sec", "ring buffers keep"),
        ({"kind": "median_baseline"}, "baseline_from_sec", "needs 0 < baseline_from_sec"),
        ({"baseline_from_sec": 60}, "baseline_from_sec", "only median_baseline"),
        ({"threshold_pct": "0"}, "threshold_pct", "above 0"),
        ({"threshold_pct": "1.5"}, "threshold_pct", "at most 1 for dumps"),
        ({"rearm_ratio": "1"}, "rearm_ratio", "below 1"),
        ({"scope": "only"}, "symbols", "needs at least one symbol"),
        ({"scope": "only", "symbols": ["btc usdt"]}, "symbols", "btc usdt"),
        ({"direction": "SIDEWAYS"}, "direction", "not a valid choice"),
        ({"name": "oi-5m-3pct"}, "name", "already exists"),
        ({"threshold_pct": None}, "threshold_pct", "required"),
        ({"threshold_usd": "1000"}, "threshold_usd", "only liquidation_burst rules"),
        ({"liquidated_side": "long"}, "liquidated_side", "only liquidation_burst rules"),
    ],
)
def test_a_bad_rule_is_refused_with_the_field_and_reason(writer_client, body, field, reason):
    before = AlertRule.objects.count()
    response = writer_client.post(
        RULES_URL,
        {"name": "new-rule", "window_sec": 600, "threshold_pct": "0.05", **body},
        format="json",
    )
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["field"] == field
    assert reason in error["reason"]
    assert AlertRule.objects.count() == before


BURST_RULE = {"name": "liq-1m", "kind": "liquidation_burst", "window_sec": 60,
              "threshold_usd": "250000"}  # fmt: skip


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        ({"threshold_usd": None}, "threshold_usd", "needs threshold_usd, threshold_volume_share"),
        ({"threshold_usd": "0"}, "threshold_usd", "above 0"),
        ({"threshold_volume_share": "1.5"}, "threshold_volume_share", "at most 1"),
        ({"threshold_pct": "0.05"}, "threshold_pct", "has none"),
        ({"window_sec": 7200}, "window_sec", "10 to 3600 s"),
        ({"direction": "UP"}, "direction", "no open-interest direction"),
        ({"regimes": ["short_build"]}, "regimes", "has none"),
        ({"liquidity_tiers": True}, "liquidity_tiers", "threshold_volume_share"),
        ({"liquidated_side": "middle"}, "liquidated_side", "not a valid choice"),
    ],
)
def test_a_bad_liquidation_burst_rule_is_refused_with_the_field_and_reason(
    writer_client, body, field, reason
):
    response = writer_client.post(RULES_URL, {**BURST_RULE, **body}, format="json")
    assert response.status_code == 400, response.content
    assert (response.json()["error"]["field"], reason in response.json()["error"]["reason"]) == (
        field,
        True,
    )
    assert not AlertRule.objects.filter(kind="liquidation_burst").exists()


def test_a_liquidation_burst_rule_is_made_over_the_api_and_cannot_be_backtested(writer_client):
    made = writer_client.post(
        RULES_URL,
        {**BURST_RULE, "liquidated_side": "short", "threshold_volume_share": "0.001"},
        format="json",
    )
    assert made.status_code == 201, made.content
    rule = made.json()
    assert (rule["kind"], rule["liquidated_side"], rule["threshold_pct"]) == (
        "liquidation_burst", "short", None,
    )  # fmt: skip
    assert (rule["threshold_usd"], rule["threshold_volume_share"]) == (
        "250000.000000000000",
        "0.001000",
    )
    # the open-interest engine does not load it; the streams process does
    assert rule["name"] not in {r.name for r in alert_rules_enabled()}
    assert [r.name for r in liquidation_rules_enabled()] == ["liq-1m"]
    for body in ({"rule_id": rule["id"]}, {"rule": BURST_RULE}):
        refused = writer_client.post(RULES_URL + "/backtest", {**body, "days": 1}, format="json")
        assert refused.status_code == 400, refused.content
        assert "cannot be backtested" in refused.json()["error"]["reason"]


def test_rules_are_listed_for_anyone_and_changed_only_with_a_token(api_client):
    listed = api_client.get(RULES_URL)
    assert listed.status_code == 200
    assert {rule["name"] for rule in listed.json()} == set(
        AlertRule.objects.values_list("name", flat=True)
    )
    rule_id = listed.json()[0]["id"]
    assert api_client.post(RULES_URL, {"name": "x"}, format="json").status_code == 401
    assert api_client.patch(f"{RULES_URL}/{rule_id}", {}, format="json").status_code == 401
    assert api_client.delete(f"{RULES_URL}/{rule_id}").status_code == 401
    assert AlertRule.objects.filter(pk=rule_id).exists()


def test_a_claim_left_by_a_process_killed_before_storing_does_not_lose_the_alert(redis_client):
    # given a process that claimed the 5 m rule's fire for a move and died before storing it
    AlertRule.objects.exclude(name="oi-5m-3pct").update(enabled=False)
    rule = AlertRule.objects.get(name="oi-5m-3pct")
    market = Market(redis_client, start_minutes_ago=10)
    market.flat(100_000, 6)
    now = time.time_ns() // 1_000_000
    field = f"{rule.id}:{SYMBOL}:UP"
    redis_client.hset(
        RULE_STATE_KEY, field, FireState(now - 40_000, 0.05, claimed_ms=now - 40_000).encode()
    )
    redis_client.hset(RULE_STATE_KEY, evaluation.RULE_STATE_SEEDED_FIELD, "1")

    # when the move is seen again over 30 s later, the claim without an alert row is dropped
    (alert,) = created(market.tick(105_000))
    assert alert.rule_name == "oi-5m-3pct"
    # and the new claim is settled once its row is stored: the next poll is held as usual
    assert FireState.decode(redis_client.hget(RULE_STATE_KEY, field)).claimed_ms == 0
    assert created(market.tick(105_100)) == []


def test_a_fresh_claim_of_another_process_is_respected(redis_client):
    AlertRule.objects.exclude(name="oi-5m-3pct").update(enabled=False)
    rule = AlertRule.objects.get(name="oi-5m-3pct")
    market = Market(redis_client, start_minutes_ago=10)
    market.flat(100_000, 6)
    now = time.time_ns() // 1_000_000
    claim = FireState(now - 1_000, 0.05, claimed_ms=now - 1_000).encode()
    redis_client.hset(RULE_STATE_KEY, f"{rule.id}:{SYMBOL}:UP", claim)
    redis_client.hset(RULE_STATE_KEY, evaluation.RULE_STATE_SEEDED_FIELD, "1")

    assert created(market.tick(105_000)) == []
