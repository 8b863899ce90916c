"""Telegram delivery over real HTTP (a local server posing as the Bot API), real Redis and Postgres:
the outbox, the per-chat limits, digests, 429s and failures, the test alert and the texts."""

import itertools
import json
import logging
import re
import threading
import time
from datetime import UTC, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from alerts.delivery import alert_delivery_queue, alert_send_test, alert_text, digest_text
from alerts.models import AlertDelivery, OpenInterestAlert
from alerts.telegram import (
    SENDER_LEASE_KEY,
    ChatLimits,
    telegram_outbox_drain,
    telegram_outbox_push,
    telegram_outbox_size,
)
from common.locks import redis_lease
from common.redis import get_redis

SYMBOL = re.compile(r"\bT\d{3}USDT\b")


class FakeTelegram:
    """A local Bot API: records each sendMessage with its arrival time, answers as told."""

    def __init__(self, answers: list[tuple[int, dict]] | None = None) -> None:
        self.answers = list(answers or [])
        self.received: list[tuple[float, str, dict, int]] = []
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                at = time.monotonic()
                with fake.lock:
                    status, answer = fake.answers.pop(0) if fake.answers else (200, {"ok": True})
                    fake.received.append((at, self.path, body, status))
                payload = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def times(self) -> list[float]:
        return [at for at, *_ in self.received]

    def delivered_texts(self) -> list[str]:
        return [body["text"] for _, _, body, status in self.received if status < 300]

    def delivered_symbols(self) -> list[str]:
        """Each message's distinct symbols, over every message Telegram accepted."""
        return [s for text in self.delivered_texts() for s in sorted(set(SYMBOL.findall(text)))]

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def telegram(settings, redis_client):
    made: list[FakeTelegram] = []

    def make(answers: list[tuple[int, dict]] | None = None) -> FakeTelegram:
        fake = FakeTelegram(answers)
        made.append(fake)
        settings.TELEGRAM_API_URL = fake.url
        settings.TELEGRAM_BOT_TOKEN = "123:abc"
        settings.TELEGRAM_CHAT_ID = "-1001"
        settings.ALERT_WEBHOOK_URL = ""
        return fake

    yield make
    for fake in made:
        fake.close()


def make_alert(i: int, *, context: bool = True) -> OpenInterestAlert:
    sign = 1 if i % 2 == 0 else -1
    fields = dict(
        symbol=f"T{i:03d}USDT", direction="UP" if sign > 0 else "DOWN",
        baseline=Decimal("1000000"), current=Decimal(1000000 + sign * 120000),
        pct_change=Decimal("0.12") * sign, abs_change=Decimal(120000 * sign),
        source="oi_realtime_poller",
        ts=datetime(2025, 12, 1, 12, 0, i % 60, tzinfo=UTC),
    )  # fmt: skip
    if context:
        fields.update(
            rule_name="oi-5m-3pct", window_sec=300, reference="window_low",
            threshold_pct=Decimal("0.03"), price_change_pct=Decimal("0.0125"),
            mark_price=Decimal("12.5"), funding_rate=Decimal("0.0001"),
            oi_usd_before=Decimal("12300000"), oi_usd_after=Decimal("14000000"),
            quote_volume_24h=Decimal("845200000"), alerts_24h=3,
        )  # fmt: skip
    return OpenInterestAlert.objects.create(**fields)


def assert_within_limits(times: list[float], *, interval: float, per: int, window: float) -> None:
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(gap >= interval - 0.005 for gap in gaps), gaps
    assert all(times[i + per] - times[i] >= window - 0.005 for i in range(len(times) - per))


def drain_until_empty(pushing: threading.Thread | None, timeout: float, **kwargs) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        telegram_outbox_drain(run_sec=deadline - time.monotonic(), **kwargs)
        if (pushing is None or not pushing.is_alive()) and telegram_outbox_size() == 0:
            return
        time.sleep(0.05)
    raise AssertionError(f"outbox not drained in {timeout}s: {telegram_outbox_size()} left")


@pytest.mark.django_db
def test_a_burst_at_the_default_limits_arrives_once_spaced_and_digested(telegram):
    bot = telegram()
    alerts = [make_alert(i) for i in range(30)]
    ids = [a.id for a in alerts]

    def push():  # 12 at once, then one every 0.6 s (a little slower than the 1/s limit)
        telegram_outbox_push(ids[:12])
        for alert_id in ids[12:]:
            time.sleep(0.6)
            telegram_outbox_push([alert_id])

    pushing = threading.Thread(target=push)
    started = time.monotonic()
    pushing.start()
    drain_until_empty(pushing, timeout=25)
    pushing.join()

    assert sorted(bot.delivered_symbols()) == sorted(a.symbol for a in alerts)
    assert_within_limits(bot.times, interval=1.0, per=20, window=60.0)
    texts = bot.delivered_texts()
    assert any(t.startswith("⚡") for t in texts), "no digest"
    assert any(not t.startswith("⚡") for t in texts), "no single alert"
    assert all(len(t) <= 4096 for t in texts)
    assert {path for _, path, _, _ in bot.received} == {"/bot123:abc/sendMessage"}
    assert {body["chat_id"] for _, _, body, _ in bot.received} == {"-1001"}
    rows = AlertDelivery.objects.filter(channel="telegram")
    assert sorted(rows.values_list("alert_id", "delivered", "attempts")) == [
        (i, True, 1) for i in sorted(ids)
    ]
    assert time.monotonic() - started < 25


@pytest.mark.django_db
def test_the_rolling_window_limit_holds_and_the_allowance_turns_into_digests(telegram):
    bot = telegram()
    limits = ChatLimits(per_sec=20, per_min=5, window_sec=1.0, digest_after=5, digest_max=4)
    ids = [make_alert(i).id for i in range(40)]

    def push():  # ten alerts a second: twice what the window allows
        for i in ids:
            telegram_outbox_push([i])
            time.sleep(0.1)

    pushing = threading.Thread(target=push)
    pushing.start()
    drain_until_empty(pushing, timeout=20, limits=limits)
    pushing.join()

    assert sorted(bot.delivered_symbols()) == sorted(f"T{i:03d}USDT" for i in range(40))
    assert_within_limits(bot.times, interval=0.05, per=5, window=1.0)
    assert any(t.startswith("⚡") for t in bot.delivered_texts())


@pytest.mark.django_db
def test_a_429_pauses_the_chat_for_retry_after_and_loses_nothing(telegram):
    too_many = {
        "ok": False, "error_code": 429, "description": "Too Many Requests: retry after 2",
        "parameters": {"retry_after": 2},
    }  # fmt: skip
    bot = telegram([(429, too_many)])
    alerts = [make_alert(i) for i in range(3)]
    telegram_outbox_push([a.id for a in alerts])

    telegram_outbox_drain(run_sec=1.0)  # the pause outlasts this run: everything stays queued
    assert telegram_outbox_size() == 3
    first = AlertDelivery.objects.get(alert=alerts[0], channel="telegram")
    assert (first.delivered, first.attempts) == (False, 1)
    assert first.last_error.startswith("HTTP 429")

    drain_until_empty(None, timeout=15)
    assert [s for s in bot.delivered_symbols()] == [a.symbol for a in alerts]
    statuses = [status for *_, status in bot.received]
    assert statuses == [429, 200, 200, 200]
    assert bot.times[1] - bot.times[0] >= 2.0
    assert_within_limits(bot.times, interval=1.0, per=20, window=60.0)
    first.refresh_from_db()
    assert (first.delivered, first.attempts, first.last_error) == (True, 2, "")


@pytest.mark.django_db
def test_a_server_error_keeps_the_alerts_queued_and_they_go_later(telegram, caplog):
    bot = telegram([(500, {"ok": False, "description": "Internal Server Error"})])
    alerts = [make_alert(i) for i in range(2)]
    telegram_outbox_push([a.id for a in alerts])

    with caplog.at_level(logging.WARNING, logger="alerts.telegram"):
        telegram_outbox_drain(run_sec=0.5)
    assert telegram_outbox_size() == 2
    (record,) = [r for r in caplog.records if r.msg.startswith("telegram send failed")]
    assert record.alert_ids == [alerts[0].id]
    assert record.cause.startswith("HTTP 500")

    drain_until_empty(None, timeout=10)
    assert bot.delivered_symbols() == [a.symbol for a in alerts]
    assert bot.times[1] - bot.times[0] >= 1.0  # backed off
    rows = AlertDelivery.objects.filter(channel="telegram").order_by("alert_id")
    assert list(rows.values_list("delivered", "attempts", "last_error")) == [
        (True, 2, ""),
        (True, 1, ""),
    ]


@pytest.mark.django_db
def test_one_sender_at_a_time_and_delivered_alerts_are_not_sent_again(telegram):
    bot = telegram()
    alert = make_alert(1)
    telegram_outbox_push([alert.id])
    with redis_lease(get_redis(), SENDER_LEASE_KEY, ttl_sec=10) as held:
        assert held
        assert telegram_outbox_drain(run_sec=1.0) == 0
    assert telegram_outbox_size() == 1 and bot.received == []

    assert telegram_outbox_drain(run_sec=1.0) == 1
    telegram_outbox_push([alert.id])  # e.g. a crash before the removal, or a repeated push
    assert telegram_outbox_drain(run_sec=1.0) == 0
    assert telegram_outbox_size() == 0 and len(bot.received) == 1


@pytest.mark.django_db
def test_a_new_alert_goes_to_the_outbox_not_to_a_task(telegram):
    telegram()
    alert = make_alert(7)
    alert_delivery_queue(alert.id)
    alert_delivery_queue(alert.id)
    assert get_redis().zrange("volspike:telegram:{-1001}:outbox", 0, -1) == [str(alert.id)]


@pytest.mark.django_db
def test_the_test_alert_reaches_every_channel_and_is_not_stored(telegram, settings):
    bot = telegram()
    hook = FakeTelegram()  # any HTTP endpoint will do as the webhook
    settings.ALERT_WEBHOOK_URL = f"{hook.url}/hooks/oi"
    try:
        results = alert_send_test()
        assert [(channel, ok) for channel, ok, _ in results] == [
            ("webhook", True),
            ("telegram", True),
        ]
        (text,) = bot.delivered_texts()
        assert text.startswith("🧪 TEST ALERT")
        assert "https://www.tradingview.com/chart/?symbol=BINANCE:BTCUSDT.P" in text
        ((_, path, payload, _),) = hook.received
        assert (path, payload["test"], payload["symbol"]) == ("/hooks/oi", True, "BTCUSDT")
        assert alert_send_test(["telegram"])[0][:2] == ("telegram", True)  # waits for its slot
        assert bot.times[1] - bot.times[0] >= 1.0
        assert not OpenInterestAlert.objects.exists()
    finally:
        hook.close()


def test_no_channel_no_test_alert(settings):
    settings.ALERT_WEBHOOK_URL = settings.TELEGRAM_BOT_TOKEN = settings.TELEGRAM_CHAT_ID = ""
    assert alert_send_test() == []


@pytest.mark.django_db
def test_the_alert_text_with_full_context():
    text = alert_text(make_alert(2))
    assert text.split("\n") == [
        "📈 T002USDT open interest spike +12.00%",
        "Rule oi-5m-3pct, 5m window",
        "OI 1,000,000 → 1,120,000 contracts (+120,000)",
        "OI $12.3M → $14.0M",
        "Price +1.25% over the window (mark 12.5000)",
        "Funding +0.0100%",
        "24h volume $845.2M",
        "3 alerts in 24 h",
        "2025-12-01 12:00:02 UTC",
        "Binance: https://www.binance.com/en/futures/T002USDT",
        "TradingView: https://www.tradingview.com/chart/?symbol=BINANCE:T002USDT.P",
    ]


@pytest.mark.django_db
def test_the_alert_text_without_context():
    text = alert_text(make_alert(3, context=False))
    assert text.split("\n") == [
        "📉 T003USDT open interest dump -12.00%",
        "OI 1,000,000 → 880,000 contracts (-120,000)",
        "2025-12-01 12:00:03 UTC",
        "Binance: https://www.binance.com/en/futures/T003USDT",
        "TradingView: https://www.tradingview.com/chart/?symbol=BINANCE:T003USDT.P",
    ]


@pytest.mark.django_db
def test_a_digest_has_one_line_per_alert_and_fits_a_message():
    alerts = [make_alert(i, context=i % 2 == 0) for i in range(4)]
    lines = digest_text(alerts).split("\n")
    assert lines == [
        "⚡ 4 open interest alerts (digest, rate limit)",
        "📈 T000USDT · oi-5m-3pct/5m · OI +12.00% · price +1.25% · 12:00:00",
        "📉 T001USDT · OI -12.00% · 12:00:01",
        "📈 T002USDT · oi-5m-3pct/5m · OI +12.00% · price +1.25% · 12:00:02",
        "📉 T003USDT · OI -12.00% · 12:00:03",
    ]
    many = digest_text([make_alert(i) for i in range(4, 204)])
    assert len(many) <= 4096
    assert many.split("\n")[-1].endswith("more queued, next message")


@pytest.mark.integration
def test_beat_and_real_workers_deliver_new_alerts_through_the_outbox(
    telegram, settings, writer_client, celery_processes
):
    bot = telegram()
    env = {
        "TELEGRAM_API_URL": bot.url,
        "TELEGRAM_BOT_TOKEN": "123:abc",
        "TELEGRAM_CHAT_ID": "-1001",
    }
    celery_processes.start_worker(concurrency=2, **env)  # two senders race for the lease
    celery_processes.start_beat(**env)
    symbols = [f"T{i:03d}USDT" for i in range(8)]
    for symbol in symbols:
        alert = {
            "symbol": symbol, "direction": "UP", "baseline": 1000, "current": 1200,
            "pctChange": 0.2, "absChange": 200, "timestamp": "2025-12-01T12:00:00Z",
            "source": "ingest",
        }  # fmt: skip
        response = writer_client.post("/api/open-interest-alerts/ingest", alert, format="json")
        assert response.status_code == 200, response.content
    deadline = time.monotonic() + 25
    while time.monotonic() < deadline and len(bot.delivered_symbols()) < len(symbols):
        time.sleep(0.2)
    assert sorted(bot.delivered_symbols()) == symbols
    assert_within_limits(bot.times, interval=1.0, per=20, window=60.0)
    assert AlertDelivery.objects.filter(channel="telegram", delivered=True).count() == len(symbols)
