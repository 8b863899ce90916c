"""The liquidation-burst rules (alerts.liquidation_rules), pure: one alert per burst, not one per
liquidation or per wobble around the threshold; re-arm, cooldown, sides, windows, thresholds in
USD and as a share of the symbol's 24 h volume."""

from decimal import Decimal

import pytest

from alerts.liquidation_rules import (
    ALL_SIDES,
    BurstRule,
    BurstTracker,
    LiquidatedSide,
    LiquidationEvent,
    burst_rule_from_fields,
)

LONG, SHORT = LiquidatedSide.LONG, LiquidatedSide.SHORT
SEC = 1000


def rule(**fields) -> BurstRule:
    values = {"rule_id": 1, "name": "liq-1m", "window_sec": 60, "threshold_usd": Decimal(10_000)}
    return BurstRule(**{**values, **fields})


def feed(tracker: BurstTracker, rules, events, volume=None):
    """(t_s, side, usd) events -> the verdicts, each as (t_s, side, usd)."""
    fired = []
    for t_s, side, usd in events:
        for verdict in tracker.observe(
            LiquidationEvent(int(t_s * SEC), side, Decimal(usd)), rules, volume
        ):
            fired.append((verdict.t_ms / SEC, verdict.side, verdict.usd))
    return fired


def test_a_burst_fires_once_when_its_sum_reaches_the_threshold_not_on_every_liquidation():
    tracker = BurstTracker("BTCUSDT")
    fired = feed(tracker, [rule()], [(t, LONG, 3_000) for t in range(10)])
    assert fired == [(3, LONG, Decimal(12_000))]  # 4 × 3,000 reaches 10,000; then quiet


def test_a_sum_wobbling_around_the_threshold_alerts_once_until_it_falls_to_half():
    tracker = BurstTracker("BTCUSDT")
    r = rule(window_sec=10, cooldown_sec=0)
    # one 3,000 liquidation a second: the 10 s sum climbs to 33,000 and holds around it
    steady = [(t, LONG, 3_000) for t in range(40)]
    assert feed(tracker, [r], steady) == [(3, LONG, Decimal(12_000))]
    # quiet for 20 s: the sum falls to 0 (<= half the threshold), so the rule re-arms
    assert feed(tracker, [r], [(60, LONG, 11_000)]) == [(60, LONG, Decimal(11_000))]


def test_the_cooldown_holds_a_rearmed_rule_and_it_fires_on_a_later_liquidation_after_it():
    tracker = BurstTracker("BTCUSDT")
    r = rule(window_sec=10, cooldown_sec=120)
    assert feed(tracker, [r], [(0, LONG, 12_000)]) == [(0, LONG, Decimal(12_000))]
    # re-armed (the window emptied), a new burst within the cooldown: held
    assert feed(tracker, [r], [(30, LONG, 12_000)]) == []
    # still armed and above the threshold after the cooldown: fires on the next liquidation
    assert feed(tracker, [r], [(39, LONG, 1), (125, LONG, 12_000)]) == [
        (125, LONG, Decimal(12_000))
    ]


def test_each_side_is_summed_and_gated_on_its_own_and_a_one_sided_rule_ignores_the_other():
    both, longs = rule(rule_id=1), rule(rule_id=2, sides=frozenset({LONG}))
    tracker = BurstTracker("ETHUSDT")
    events = [(0, LONG, 6_000), (1, SHORT, 6_000), (2, SHORT, 6_000), (3, LONG, 6_000)]
    fired = []
    for t_s, side, usd in events:
        event = LiquidationEvent(t_s * SEC, side, Decimal(usd))
        for verdict in tracker.observe(event, [both, longs], None):
            fired.append((verdict.rule.rule_id, t_s, verdict.side, verdict.other_side_usd))
    assert fired == [
        (1, 2, SHORT, Decimal(6_000)),  # shorts 12,000 (longs 6,000 beside)
        (1, 3, LONG, Decimal(12_000)),
        (2, 3, LONG, Decimal(12_000)),
    ]


def test_a_liquidation_exactly_one_window_old_counts_and_one_a_millisecond_older_does_not():
    r = rule(window_sec=60)
    tracker = BurstTracker("BTCUSDT")
    tracker.observe(LiquidationEvent(0, LONG, Decimal(5_000)), [r], None)
    [verdict] = tracker.observe(LiquidationEvent(60 * SEC, LONG, Decimal(5_000)), [r], None)
    assert (verdict.usd, verdict.count) == (Decimal(10_000), 2)
    tracker = BurstTracker("BTCUSDT")
    tracker.observe(LiquidationEvent(0, LONG, Decimal(5_000)), [r], None)
    assert tracker.observe(LiquidationEvent(60 * SEC + 1, LONG, Decimal(5_000)), [r], None) == []


def test_a_volume_share_threshold_scales_with_the_symbol_and_the_usd_one_is_a_floor():
    share = rule(threshold_usd=None, threshold_volume_share=Decimal("0.001"))
    assert share.threshold(Decimal(50_000_000)) == Decimal(50_000)
    assert share.threshold(None) is None  # volume unknown: no verdict
    both = rule(threshold_usd=Decimal(100_000), threshold_volume_share=Decimal("0.001"))
    assert both.threshold(Decimal(50_000_000)) == Decimal(100_000)
    assert both.threshold(Decimal(500_000_000)) == Decimal(500_000)
    tracker = BurstTracker("SMALLUSDT")
    assert feed(tracker, [share], [(0, LONG, 40_000)], volume=None) == []
    assert feed(tracker, [share], [(1, LONG, 20_000)], volume=Decimal(50_000_000)) == [
        (1, LONG, Decimal(60_000))
    ]


def test_a_rebuilt_tracker_fed_the_same_liquidations_gives_the_same_verdicts():
    r = rule(window_sec=20, cooldown_sec=30)
    # bursts of 40 liquidations, 60 s of quiet between them
    events = [
        (t * 0.7 + (t // 40) * 60, LONG if t % 3 else SHORT, 900 + (t * 37) % 2_500)
        for t in range(400)
    ]
    live = BurstTracker("BTCUSDT")
    fired = feed(live, [r], events)
    assert len(fired) >= 10
    rebuilt = BurstTracker("BTCUSDT")
    assert feed(rebuilt, [r], events[:150]) + feed(rebuilt, [r], events[150:]) == fired


def test_a_rule_from_stored_fields_and_its_refusals():
    built = burst_rule_from_fields(
        7,
        {
            "name": "liq", "window_sec": 300, "liquidated_side": "both",
            "threshold_usd": Decimal("250000"), "threshold_volume_share": None,
            "cooldown_sec": 600, "rearm_ratio": Decimal("0.4"), "scope": "only",
            "symbols": ["BTCUSDT"],
        },
    )  # fmt: skip
    assert built.sides == ALL_SIDES and built.threshold_usd == Decimal(250_000)
    assert built.applies_to("BTCUSDT") and not built.applies_to("ETHUSDT")
    assert burst_rule_from_fields(1, {"name": "s", "window_sec": 60, "threshold_usd": 1,
                                      "liquidated_side": "short"}).sides == {SHORT}  # fmt: skip
    with pytest.raises(ValueError, match="threshold_usd or threshold_volume_share"):
        rule(threshold_usd=None)
    with pytest.raises(ValueError, match="rearm_ratio"):
        rule(rearm_ratio=Decimal(1))
