"""The pure parts of Telegram delivery, called directly: the message texts, the shared number
formatters (the page writes rule thresholds and windows with the same ones), and the limiter's
single-or-digest decision and failure back-off. No Redis, Postgres or HTTP: an alert here is a
plain object with an alert's fields."""

from datetime import timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest

from alerts.channels.limiter import ChannelLimits, MessageKind, failure_backoff_sec, plan_next
from alerts.formatting import alert_payload, duration, price, signed_pct, threshold_pct, usd
from alerts.telegram.text import (
    MESSAGE_MAX_CHARS,
    TEST_TITLE,
    alert_text,
    digest,
    digest_text,
    move_text,
    same_move,
)
from tests.fixtures.telegram import alert_fields


def alert(i: int, *, context: bool = True, **changes) -> SimpleNamespace:
    empty = dict.fromkeys(
        ["rule_name", "reference", "regime"], ""
    ) | dict.fromkeys(
        ["window_sec", "threshold_pct", "price_change_pct", "mark_price", "funding_rate",
         "oi_usd_before", "oi_usd_after", "quote_volume_24h", "alerts_24h",
         "liquidations_long_usd", "liquidations_short_usd"]
    )  # fmt: skip
    return SimpleNamespace(**{"id": i, **empty, **alert_fields(i, context=context), **changes})


def test_the_alert_text_with_full_context():
    liquidated = alert(
        2, liquidations_long_usd=Decimal("1234567.8"), liquidations_short_usd=Decimal("0")
    )
    assert alert_text(liquidated).split("\n") == [
        "📈 T002USDT open interest spike +12.00%",
        "Rule oi-5m-3pct, 5 min window",
        "OI 1,000,000 → 1,120,000 contracts (+120,000)",
        "OI $12.3M → $14.0M",
        "Price +1.25% over the window (mark 12.5000)",
        "Regime: long build (OI up, price up: new longs)",
        "Funding +0.0100%",
        "24h volume $845.2M",
        "Liquidations ≥ $1.2M long, ≥ $0 short (5 min)",
        "3 alerts in 24 h",
        "2025-12-01 12:00:02 UTC",
        "Binance: https://www.binance.com/en/futures/T002USDT",
        "TradingView: https://www.tradingview.com/chart/?symbol=BINANCE:T002USDT.P",
    ]


def test_the_alert_text_without_context():
    assert alert_text(alert(3, context=False)).split("\n") == [
        "📉 T003USDT open interest dump -12.00%",
        "OI 1,000,000 → 880,000 contracts (-120,000)",
        "2025-12-01 12:00:03 UTC",
        "Binance: https://www.binance.com/en/futures/T003USDT",
        "TradingView: https://www.tradingview.com/chart/?symbol=BINANCE:T003USDT.P",
    ]


def test_partial_context_lines():
    one = alert(5, context=False, window_sec=3600, mark_price=0.001234, alerts_24h=1)
    assert alert_text(one, title=TEST_TITLE).split("\n")[:5] == [
        "🧪 TEST ALERT (not a signal)",
        "📉 T005USDT open interest dump -12.00%",
        "1 h window",
        "OI 1,000,000 → 880,000 contracts (-120,000)",
        "Mark price 0.001234",
    ]
    assert "1 alert in 24 h" in alert_text(one).split("\n")


def test_a_digest_has_one_line_per_alert_and_fits_a_message():
    lines = digest_text([alert(i, context=i % 2 == 0) for i in range(4)]).split("\n")
    assert lines == [
        "⚡ 4 open interest alerts (digest, rate limit)",
        "📈 T000USDT · oi-5m-3pct/5 min · OI +12.00% · price +1.25% · long build · 12:00:00",
        "📉 T001USDT · OI -12.00% · 12:00:01",
        "📈 T002USDT · oi-5m-3pct/5 min · OI +12.00% · price +1.25% · long build · 12:00:02",
        "📉 T003USDT · OI -12.00% · 12:00:03",
    ]
    many = [alert(i) for i in range(4, 204)]
    text, carried = digest(many, waiting=250)
    assert len(text) <= MESSAGE_MAX_CHARS
    assert carried == many[: len(carried)] and 1 < len(carried) < len(many)
    assert text.split("\n")[-1] == f"… {250 - len(carried)} more queued, next message"
    assert len(text.split("\n")) == len(carried) + 2


def test_the_numbers_are_written_once_for_telegram_and_the_page():
    assert [signed_pct(0.12), signed_pct(-0.031), signed_pct(0.0001, 4)] == [
        "+12.00%",
        "-3.10%",
        "+0.0100%",
    ]
    assert [threshold_pct(0.03), threshold_pct(0.075), threshold_pct(0.12)] == ["3%", "7.5%", "12%"]
    assert [duration(300), duration(900), duration(3600), duration(5400), duration(90)] == [
        "5 min", "15 min", "1 h", "90 min", "90 s",
    ]  # fmt: skip
    assert [usd(950), usd(12_300), usd(12_300_000), usd(7_760_000_000)] == [
        "$950", "$12.3K", "$12.3M", "$7.8B",
    ]  # fmt: skip
    assert [price(97000.5), price(12.5), price(0.001234)] == ["97,000.50", "12.5000", "0.001234"]


def test_the_payload_of_an_alert():
    payload = alert_payload(alert(2))
    assert payload["timestamp"] == "2025-12-01T12:00:02Z"
    assert (payload["windowSec"], payload["reference"], payload["priceChangePct"]) == (
        300,
        "window_low",
        0.0125,
    )
    assert payload["links"]["tradingview"] == (
        "https://www.tradingview.com/chart/?symbol=BINANCE:T002USDT.P"
    )
    bare = alert_payload(alert(3, context=False))
    assert (bare["rule"], bare["reference"], bare["markPrice"], bare["alerts24h"]) == (
        None, None, None, None,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("fetched", "waiting", "slot_left", "kind"),
    [
        (1, 40, 0, MessageKind.SINGLE),  # only one at hand: never a digest of one
        (5, 5, 19, MessageKind.SINGLE),  # the limits let all five go one by one
        (6, 6, 19, MessageKind.DIGEST),  # more than digest_after wait
        (3, 3, 1, MessageKind.DIGEST),  # the window has room for 2 more messages, 3 wait
        (3, 3, 2, MessageKind.SINGLE),
    ],
)
def test_one_alert_per_message_while_the_limits_allow_it(fetched, waiting, slot_left, kind):
    limits = ChannelLimits(digest_after=5)
    assert plan_next(fetched=fetched, waiting=waiting, slot_left=slot_left, limits=limits) is kind


def test_failures_back_off_doubling_up_to_a_minute():
    assert [failure_backoff_sec(n) for n in (1, 2, 3, 6, 7, 20)] == [1, 2, 4, 32, 60, 60]


def test_limits_must_be_positive():
    with pytest.raises(ValueError, match="positive"):
        ChannelLimits(per_sec=0)
    with pytest.raises(ValueError, match="positive"):
        ChannelLimits(per_min=0)


def test_one_move_is_the_oldest_alert_and_its_symbol_and_direction_within_ten_seconds():
    first = alert(2, ts=alert(2).ts)
    sibling = alert(2, id=10, rule_name="oi-15m-7pct", ts=first.ts + timedelta(seconds=10))
    later = alert(2, id=11, ts=first.ts + timedelta(seconds=11))  # another move
    opposite = alert(3, id=12, symbol="T002USDT", ts=first.ts)  # a dump of the same symbol
    other = alert(4, id=13, ts=first.ts)
    assert same_move([first, other, sibling, later, opposite]) == [first, sibling]
    assert same_move([other, first]) == [other]


def test_one_move_reads_as_its_largest_change_with_every_rule_listed():
    small = alert(2, pct_change=Decimal("0.05"))
    large = alert(2, id=20, rule_name="oi-1h-12pct", window_sec=3600, pct_change=Decimal("0.13"))
    lines = move_text([small, large]).split("\n")
    assert lines[0] == "📈 T002USDT open interest spike +13.00%"
    assert lines[1] == "2 rules: oi-5m-3pct (5 min) +5.00%, oi-1h-12pct (1 h) +13.00%"
    assert not any(line.startswith("Rule ") for line in lines)
    assert move_text([small]) == alert_text(small)
