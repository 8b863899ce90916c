"""A broken or hostile exchange (and careless ingest clients) against the running system.

The simulator's /sim/tampers endpoint makes the answers: an open interest that is negative or
overflows numeric, an answer for another symbol than the one asked for, a sample time ahead, a
mark price of 1e40, a 429 with Retry-After 999999999, a ban "until" the year 318,857, an
exchangeInfo REQUEST_WEIGHT of 1 or 10^12, and an exchangeInfo that never answers. Everything runs
as in production: the simulator over HTTP, real Postgres and Redis, real Celery workers and beat
where the poller is involved, a real uvicorn where the web API is. Figures go to test-artifacts/.
"""

import json
import time
from datetime import UTC, datetime, timedelta

import pytest
import requests

from alerts.models import AlertRule, OpenInterestAlert
from exchange.errors import ExchangeError, IpBanned, RateLimited
from exchange.factory import build_client
from liquidity.models import LiquidSymbol
from oi.keys import CONSECUTIVE_FAILURES_KEY
from oi.models import OpenInterestSnapshot
from oi.ring import ring_read
from oi.snapshot_sink import PENDING_KEY, snapshot_pending_flush
from tests.fixtures import processes
from tests.fixtures.processes import (
    ARTIFACTS,
    ManagedProcess,
    free_port,
    process_tree_pids,
    wait_until,
    whole_universe_dispatched,
)
from tests.fixtures.processes import (
    test_process_env as process_env,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.reliability,
    pytest.mark.django_db(transaction=True),
]

OI_PATH = "/fapi/v1/openInterest"
DAY_MS = 86_400_000
THREE_DAYS = timedelta(days=3)


def report(name: str, lines: list[str]) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    text = "\n".join(lines)
    (ARTIFACTS / f"hostile_exchange_{name}.txt").write_text(text + "\n")
    print(text)


def start_web(**env: str) -> tuple[ManagedProcess, str]:
    """uvicorn as in the Procfile, with extra settings; (process, base URL)."""
    port = free_port()
    server = ManagedProcess(
        f"hostile-web-{port}",
        processes.asgi_server_args(port),
        process_env(**env),
    )  # fmt: skip
    base_url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        try:  # the first request may take over a second on a busy machine
            return requests.get(f"{base_url}/health", timeout=10).status_code < 500
        except requests.ConnectionError:
            return False

    try:
        wait_until(answers, 60, f"uvicorn did not answer; see {server.log_path}")
    except BaseException:
        server.stop()
        raise
    return server, base_url


def rss_mib(pid: int) -> float:
    """RSS of a process tree (a Celery worker and its pool children), MiB."""
    total = 0
    for member in process_tree_pids(pid):
        try:
            with open(f"/proc/{member}/statm") as statm:
                total += int(statm.read().split()[1])
        except OSError:
            continue
    return total * 4096 / 2**20


@pytest.fixture
def polling_system(sim, celery_processes, api_client, settings):
    """The whole poller on the simulator: worker, poll worker (4 processes) and beat."""
    settings.BINANCE_BASE_URL = sim.base_url
    env = {"BINANCE_BASE_URL": sim.base_url}
    worker = celery_processes.start_worker(queues="default,oi_backfill", **env)
    poller = celery_processes.start_worker(queues="oi_poll", concurrency=4, **env)
    celery_processes.start_beat(**env)
    members, status = whole_universe_dispatched(api_client)
    return members, status["intervalSec"], worker, poller


# --- hardening #3 ----------------------------------------------------------------------------------


def test_impossible_exchange_answers_are_dropped_and_logged_and_never_block_parked_batches(
    sim, polling_system, redis_client, api_client, admin_client
):
    members, interval_s, _worker, poller = polling_system
    negative, huge, asked, answered_as, priced = members[:5]
    honest = [s for s in members if s not in (negative, huge, asked, priced)]

    # when the exchange answers with values no sample can have
    sim.add_tamper(OI_PATH, symbol=negative, fields={"openInterest": "-5.5"})
    sim.add_tamper(OI_PATH, symbol=huge, fields={"openInterest": "1e400"})
    sim.add_tamper(OI_PATH, symbol=asked, fields={"symbol": answered_as})
    sim.add_tamper("/fapi/v1/premiumIndex", symbol=priced, fields={"markPrice": "1e40"})
    start = datetime.now(tz=UTC)
    time.sleep(2.5 * interval_s)
    end = datetime.now(tz=UTC)

    # then nothing was parked: every batch reached Postgres, each honest symbol sampled
    parked = redis_client.llen(PENDING_KEY)
    stored = set(
        OpenInterestSnapshot.objects.filter(created_at__gte=start, created_at__lt=end)
        .values_list("symbol", flat=True)
        .distinct()
    )
    report("impossible_answers", [
        f"{len(members)} symbols, interval {interval_s} s, {2.5 * interval_s:.1f} s of tampered "
        f"answers: {parked} batches parked; {len(set(honest) & stored)} of {len(honest)} honest "
        f"symbols stored",
    ])  # fmt: skip
    assert parked == 0
    assert set(honest) <= stored
    # the impossible samples were dropped, the answer for another symbol too
    # (a sample's time is its request's second: one polled before the tampering began is older)
    assert not OpenInterestSnapshot.objects.filter(
        symbol__in=[negative, huge, asked], ts__gt=start
    ).exists()
    assert not OpenInterestSnapshot.objects.filter(open_interest__lt=0).exists()
    # an impossible mark price loses the price, not the sample
    priced_rows = OpenInterestSnapshot.objects.filter(symbol=priced, created_at__gte=start)
    assert priced_rows.exists()
    assert not priced_rows.exclude(mark_price__isnull=True).filter(mark_price__gt=1e17).exists()
    # and each drop is logged with its symbol and cause, and reported as a failing symbol
    log = poller.log_path.read_text(errors="replace")
    assert f"symbol={negative}" in log and "must not be negative" in log
    assert f"symbol={huge}" in log and "too large" in log
    assert f"symbol={asked}" in log and f"the answer is for '{answered_as}'" in log
    for symbol in (negative, huge, asked):
        assert int(redis_client.hget(CONSECUTIVE_FAILURES_KEY, symbol) or 0) >= 1

    # when a batch Postgres refuses for good heads the parked list, honest ones behind it
    sim.clear_tampers()
    when = datetime.now(tz=UTC).replace(microsecond=0) - timedelta(minutes=5)
    poisoned = {"timestamp": when.isoformat(), "data": [
        {"symbol": "BTCUSDT", "openInterest": "-1", "source": "realtime"},
    ]}  # fmt: skip
    honest_parked = [
        {
            "timestamp": (when + timedelta(seconds=i)).isoformat(),
            "data": [
                {"symbol": "PARKEDUSDT", "openInterest": str(100 + i), "source": "realtime"},
            ],
        }
        for i in range(3)
    ]
    redis_client.rpush(PENDING_KEY, *(json.dumps(p) for p in [poisoned, *honest_parked]))
    delivered = snapshot_pending_flush()

    # then the flush keeps going: the poisoned batch is a dead letter, the others are stored
    from oi.models import SnapshotDeadLetter

    assert delivered == 3
    assert redis_client.llen(PENDING_KEY) == 0
    assert OpenInterestSnapshot.objects.filter(symbol="PARKEDUSDT").count() == 3
    (letter,) = SnapshotDeadLetter.objects.all()
    assert letter.rows == 1 and letter.symbols == "BTCUSDT"
    assert "openInterest" in letter.cause and "negative" in letter.cause
    # visible in /metrics and in the admin
    metrics = api_client.get("/metrics").content.decode()
    assert "volspike_snapshot_batches_dead_lettered 1.0" in metrics
    page = admin_client.get("/admin/oi/snapshotdeadletter/")
    assert page.status_code == 200 and "BTCUSDT" in page.content.decode()


def test_a_hostile_history_never_reaches_the_ring(sim, redis_client, settings):
    from common.redis import get_redis
    from oi import poller

    settings.BINANCE_BASE_URL = sim.base_url
    get_redis.cache_clear()
    poller._thread_clients.__dict__.clear()
    symbol = "BTCUSDT"
    sim.add_tamper(
        "/futures/data/openInterestHist", symbol=symbol, fields={"sumOpenInterest": "-5"}
    )
    try:
        filled = poller.ring_backfill([symbol])
    finally:
        poller._thread_clients.__dict__.clear()
        get_redis.cache_clear()
    assert filled == {symbol: 0}
    assert ring_read(redis_client, symbol) == []


# --- hardening #4 ----------------------------------------------------------------------------------


def test_a_sample_dated_ahead_is_refused_and_never_silences_its_symbol(
    sim, polling_system, redis_client, api_key
):
    members, interval_s, _worker, poller = polling_system
    AlertRule.objects.update(min_delta_contracts=None)
    symbol = members[0]
    wait_until(lambda: len(ring_read(redis_client, symbol)) > 36, 60, "no backfilled baseline")

    # when the exchange dates the symbol's samples an hour ahead (within the old one-day limit)
    sim.add_tamper(OI_PATH, symbol=symbol, fields={"time": {"now_plus_ms": 3_600_000}})
    time.sleep(2 * interval_s)
    sim.clear_tampers()

    # then neither Postgres nor the ring holds the future
    horizon = datetime.now(tz=UTC) + timedelta(seconds=60)
    assert not OpenInterestSnapshot.objects.filter(symbol=symbol, ts__gt=horizon).exists()
    newest = ring_read(redis_client, symbol, newest_first=True, limit=1)
    assert newest and newest[0].time_ms <= horizon.timestamp() * 1000
    assert "ahead of the exchange's clock" in poller.log_path.read_text(errors="replace")

    # and when its open interest then jumps 20%, the symbol still alerts
    sim.inject_event(symbol, "spike", 20)
    wait_until(
        lambda: OpenInterestAlert.objects.filter(symbol=symbol, direction="UP").exists(),
        30 + 2 * interval_s,
        f"{symbol} never alerted after a sample dated ahead",
    )

    # and the ingest API refuses a batch dated an hour ahead, naming the field
    web, base_url = start_web()
    try:
        ahead = (datetime.now(tz=UTC) + timedelta(hours=1)).isoformat()
        answer = requests.post(
            f"{base_url}/api/market/open-interest/ingest",
            json={"timestamp": ahead, "data": [{"symbol": symbol, "openInterest": "1"}]},
            headers={"Authorization": f"Token {api_key}"},
            timeout=10,
        )
    finally:
        web.stop()
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["field"] == "timestamp" and "ahead of the server clock" in error["message"]


# --- hardening #5 ----------------------------------------------------------------------------------


def test_invented_symbols_never_reach_rings_or_trackers_and_rules_are_capped(
    sim, celery_processes, redis_client, api_key, settings
):
    settings.BINANCE_BASE_URL = sim.base_url
    env = {"BINANCE_BASE_URL": sim.base_url}
    worker = celery_processes.start_worker(queues="default,oi_backfill", **env)
    web, base_url = start_web(**env)
    headers = {"Authorization": f"Token {api_key}"}
    try:
        # given a published universe (the liquidity job, run once on the simulator)
        from liquidity.jobs import universe_refresh

        universe_refresh()
        members = sorted(LiquidSymbol.objects.values_list("symbol", flat=True))
        assert members
        time.sleep(2)
        before_mib = rss_mib(worker.process.pid)

        # when a token holder sends 3 batches of 20,000 invented symbols (and one real member)
        now = datetime.now(tz=UTC).replace(microsecond=0)
        for batch in range(3):
            rows = [
                {"symbol": f"FAKE{batch}X{i:05d}USDT", "openInterest": str(1000 + i)}
                for i in range(19_999)
            ] + [{"symbol": members[0], "openInterest": str(5000 + batch)}]
            ts = (now - timedelta(seconds=30 - batch)).isoformat()
            answer = requests.post(
                f"{base_url}/api/market/open-interest/ingest",
                json={"timestamp": ts, "source": "snapshot", "data": rows},
                headers=headers,
                timeout=120,
            )
            assert answer.status_code == 200, answer.text
            assert answer.json()["inserted"] == 20_000
        # the member's samples went through the worker (ring and alert path)
        # (generous: before the fix the worker took minutes over the 60,000 invented symbols)
        wait_until(lambda: len(ring_read(redis_client, members[0])) >= 3, 600, "member not rung")
        time.sleep(3)
        after_mib = rss_mib(worker.process.pid)
        ring_keys = sum(1 for _ in redis_client.scan_iter("oi:ring:FAKE*", count=10_000))
        report("invented_symbols", [
            "3 ingest batches of 20,000 rows (19,999 invented symbols + 1 member each): worker "
            f"tree RSS {before_mib:.0f} -> {after_mib:.0f} MiB (+{after_mib - before_mib:.0f} "
            f"MiB); ring buffers of invented symbols: {ring_keys}",
            "rerun: bash scripts/test.sh tests/reliability/test_hostile_exchange.py -k invented",
        ])  # fmt: skip

        # then they are all stored in Postgres, but none has a ring (or a tracker)
        assert OpenInterestSnapshot.objects.filter(symbol__startswith="FAKE").count() == 59_997
        assert ring_keys == 0
        assert after_mib - before_mib < 150

        # and the rules API caps enabled rules, naming the cap
        existing = AlertRule.objects.filter(enabled=True).count()
        rule = {"name": "", "kind": "window_change", "window_sec": 900, "direction": "UP",
                "threshold_pct": 0.05, "cooldown_sec": 60}  # fmt: skip
        codes = []
        for i in range(settings.OI_ALERT_RULES_MAX_ENABLED - existing + 1):
            rule["name"] = f"capped {i}"
            codes.append(
                requests.post(f"{base_url}/api/alert-rules", json=rule, headers=headers, timeout=10)
            )
        assert [c.status_code for c in codes[:-1]] == [201] * (len(codes) - 1)
        refused = codes[-1]
        assert refused.status_code == 400
        assert "OI_ALERT_RULES_MAX_ENABLED" in refused.text and "enabled" in refused.text
        # and distinct windows too
        AlertRule.objects.filter(name__startswith="capped").delete()
        answers = []
        for i in range(settings.OI_ALERT_MAX_DISTINCT_WINDOWS + 1):
            rule.update(name=f"window {i}", window_sec=600 + 60 * i)
            answers.append(
                requests.post(f"{base_url}/api/alert-rules", json=rule, headers=headers, timeout=10)
            )
        assert answers[-1].status_code == 400
        assert "OI_ALERT_MAX_DISTINCT_WINDOWS" in answers[-1].text
        assert "window_sec" in answers[-1].text
    finally:
        web.stop()


def test_idle_alert_trackers_are_evicted(redis_client, db):
    from alerts import evaluation
    from oi.ring import RingSample, ring_append

    now_ms = time.time_ns() // 1_000_000
    ring_append(
        redis_client,
        {f"IDLE{i}USDT": [RingSample(now_ms - 1000, 10 + i)] for i in range(50)},
        window_ms=3_600_000,
        now_ms=now_ms,
    )
    evaluation.alerts_evaluate([f"IDLE{i}USDT" for i in range(50)], mark_prices={})
    assert evaluation.tracker_count() == 50
    later = time.monotonic() + evaluation.TRACKER_IDLE_SEC + 1
    assert evaluation.trackers_evict_idle(now=later) == 50
    assert evaluation.tracker_count() == 0


# --- hardening #6 ----------------------------------------------------------------------------------


def test_hostile_back_offs_are_clamped_and_the_ip_limit_stays_in_its_band(
    sim, redis_client, settings
):
    settings.BINANCE_BASE_URL = sim.base_url
    settings.BINANCE_EGRESS_ID = "hostile"
    client = build_client("liquidity", max_retries=0, max_wait=0)
    budget = client.budget
    figures = []

    # a 429 asking us to wait 31 years
    sim.add_tamper(
        "/fapi/v1/ping", status=429, headers={"Retry-After": "999999999"}, remaining=1,
        body='{"code":-1003,"msg":"Too many requests"}',
    )  # fmt: skip
    with pytest.raises(RateLimited):
        client.ping()
    until, _ = budget.backoff_until()
    figures.append(f"Retry-After 999999999 -> back-off until {until.isoformat()}")
    assert until <= datetime.now(tz=UTC) + THREE_DAYS + timedelta(seconds=5)
    budget.clear_backoff()

    # a ban "until" the year 318,857 (and one a century ahead)
    for banned_until_ms in (9_999_999_999_999_999, int(time.time() * 1000) + 100 * 365 * DAY_MS):
        sim.add_tamper(
            "/fapi/v1/ping", status=418, remaining=1,
            body=json.dumps({"code": -1003, "msg": f"Way too many requests; IP banned until "
                             f"{banned_until_ms}. Please use the websocket."}),
        )  # fmt: skip
        with pytest.raises(ExchangeError) as raised:
            client.ping()
        assert isinstance(raised.value, IpBanned)
        until, _ = budget.backoff_until()
        figures.append(f"banned until {banned_until_ms} -> back-off until {until.isoformat()}")
        assert until <= datetime.now(tz=UTC) + THREE_DAYS + timedelta(seconds=5)
        budget.clear_backoff()

    # exchangeInfo reporting a REQUEST_WEIGHT of 1, then 10^12, then a plausible 1800
    configured = settings.BINANCE_IP_WEIGHT_LIMIT
    for reported, expected in ((1, configured), (10**12, configured), (1800, 1800)):
        sim.clear_tampers()
        sim.add_tamper("/fapi/v1/exchangeInfo", fields={"rateLimits": [
            {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
             "limit": reported},
        ]})  # fmt: skip
        client.exchange_info()
        fresh = build_client("liquidity", max_retries=0, max_wait=0)
        fresh.ping()  # reads the shared limit
        figures.append(f"REQUEST_WEIGHT {reported} -> IP limit {fresh.budget.ip_limit}")
        assert fresh.budget.ip_limit == expected
    report("backoff_clamps", figures)


# --- hardening #11 ---------------------------------------------------------------------------------


def test_the_exchange_info_proxy_does_not_amplify_an_outage_or_leak_upstream_errors(sim):
    web, base_url = start_web(
        BINANCE_BASE_URL=sim.base_url, BINANCE_READ_TIMEOUT="0.5", EXCHANGE_INFO_CACHE_TTL_SEC="1"
    )
    try:
        # while the exchange never answers exchangeInfo (and no copy was ever cached)
        sim.set_faults(timeout_rate=1.0, paths=["/fapi/v1/exchangeInfo"])
        started = time.monotonic()
        answers = [requests.get(f"{base_url}/api/binance/futures/info", timeout=30)]
        first_s = time.monotonic() - started
        for _ in range(15):  # anonymous clients keep asking
            answers.append(requests.get(f"{base_url}/api/binance/futures/info", timeout=30))
            time.sleep(0.1)
        upstream = sum(
            ip["endpoints"].get("/fapi/v1/exchangeInfo", 0) for ip in sim.stats()["ips"].values()
        )
    finally:
        web.stop()
    report("exchange_info_outage", [
        f"exchangeInfo never answering: 16 GETs over ~{time.monotonic() - started:.1f} s cost "
        f"{upstream} upstream requests (first answer in {first_s:.1f} s)",
    ])  # fmt: skip
    # then one refresh with at most one retry, and none during the back-off
    assert upstream <= 2
    assert {a.status_code for a in answers} == {503}
    for answer in answers:
        message = answer.json()["error"]["message"]
        assert "127.0.0.1" not in message and str(sim.port) not in message
        assert "HTTPConnectionPool" not in answer.text
        assert "X-Upstream-Error" not in answer.headers
