"""The VolSpike clients already running in production, against this backend unchanged (issue 13).

Every body is built field by field as ../shared/notes/volspike-upstream-contracts.md says the
hourly script (both copies) and the old realtime poller build it, and sent as they send it: over
real HTTP to the running ASGI server, with `X-API-Key` and a requests session with urllib3's
Retry. Checked: the answers, the rows in Postgres, and the frames on the live WebSocket feed.
One server for the whole module.
"""

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import requests
from django.utils import timezone
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry
from websockets.sync.client import connect

from alerts.models import OpenInterestAlert
from common.services import api_token_create
from liquidity.models import LiquidSymbol
from oi.models import OpenInterestSnapshot
from tests.fixtures import processes
from tests.fixtures.feed import frames_until
from tests.fixtures.processes import ManagedProcess, free_port
from tests.fixtures.processes import test_process_env as process_env
from volume_alerts.models import VolumeAlert

pytestmark = pytest.mark.integration

VOLUME_INGEST = "/api/volume-alerts/ingest"
SNAPSHOT_INGEST = "/api/market/open-interest/ingest"
OI_ALERT_INGEST = "/api/open-interest-alerts/ingest"


@pytest.fixture(scope="module")
def server(django_db_setup) -> Iterator[ManagedProcess]:
    """The real ASGI server (uvicorn, as in the Procfile), once for the module."""
    port = free_port()
    process = ManagedProcess(
        "asgi-server-volspike-clients",
        processes.asgi_server_args(port),
        process_env(),
    )  # fmt: skip
    process.base_url = f"http://127.0.0.1:{port}"
    try:
        process.wait_http(f"{process.base_url}/health")
        yield process
    finally:
        process.stop()


@pytest.fixture
def base_url(server, transactional_db) -> str:
    return server.base_url


@pytest.fixture
def ingest_key(transactional_db) -> str:
    """The key the scripts hold as VOLSPIKE_API_KEY: an ordinary API token of this project."""
    _, raw_key = api_token_create(name="volspike-hourly-script")
    return raw_key


def script_session() -> requests.Session:
    """The session the hourly script builds: Retry(total=3, backoff_factor=1, status_forcelist
    =[429, 500, 502, 503, 504])."""
    session = requests.Session()
    retry = Retry(total=3, backoff_factor=1, status_forcelist=[429, 500, 502, 503, 504])
    session.mount("http://", HTTPAdapter(max_retries=retry))
    return session


def post(base_url: str, path: str, body: object, key: str | None, timeout: float = 5):
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["X-API-Key"] = key
    return script_session().post(base_url + path, json=body, headers=headers, timeout=timeout)


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


# --- bodies, field by field, in the scripts' key order ------------------------------------------


def newer_script_alert(
    symbol: str,
    alert_type: str,
    *,
    scan_at: datetime,
    hour: datetime,
    curr: float,
    prev: float,
    open_price: float,
    close: float,
    oi_change: float | None,
) -> dict:
    """DO/hourly_volume_alert_dual_env.py (newer copy), lines 177-208."""
    asset = symbol.replace("USDT", "")
    ratio = curr / prev if prev > 0 else 0
    prefix = {"SPIKE": "", "HALF_UPDATE": "HALF-UPDATE: ", "FULL_UPDATE": "UPDATE: "}[alert_type]
    body = {
        "symbol": symbol,
        "asset": asset,
        "currentVolume": curr,
        "previousVolume": prev,
        "volumeRatio": ratio,
        "price": close,
        "fundingRate": 0.0001,
        "candleDirection": "bearish" if close <= open_price else "bullish",
        "message": f"{prefix}{asset} hourly volume {curr / 1e6:.2f}M ({ratio:.2f}\u00d7 prev) "
        "\u2014 VOLUME SPIKE!",
        "timestamp": iso(scan_at),
        "detectionTime": iso(scan_at.replace(minute=scan_at.minute - scan_at.minute % 5, second=0)),
        "hourTimestamp": iso(hour),
        "isUpdate": alert_type != "SPIKE",
        "alertType": alert_type,
    }
    body["priceChange"] = (close - open_price) / open_price
    if oi_change is not None:
        body["oiChange"] = oi_change
    return body


def older_script_alert(symbol: str, *, scan_at: datetime, hour: datetime, funding) -> dict:
    """DO/Verify/hourly_volume_alert_dual_env.py (older copy), lines 91-105: no detectionTime,
    priceChange or oiChange; fundingRate is premiumIndex's lastFundingRate, None when that failed."""
    asset = symbol.replace("USDT", "")
    return {
        "symbol": symbol,
        "asset": asset,
        "currentVolume": 48211934.25,
        "previousVolume": 9120441.0,
        "volumeRatio": 48211934.25 / 9120441.0,
        "price": 3.4521,
        "fundingRate": funding,
        "candleDirection": "bullish",
        "message": f"{asset} hourly volume 48.21M (5.29\u00d7 prev) \u2014 VOLUME SPIKE!",
        "timestamp": iso(scan_at),
        "hourTimestamp": iso(hour),
        "isUpdate": False,
        "alertType": "SPIKE",
    }


def script_snapshot(symbols: list[str], *, at: datetime, total_symbols: int) -> dict:
    """The hourly script's OI snapshot (Verify copy lines 185-189, 262-267): floats, no source,
    one POST; markPrice and openInterestUsd 0 when the mark price was unavailable."""
    data = []
    for index, symbol in enumerate(symbols):
        open_interest = float(1000 + index * 37.5)
        mark = 0.0 if index % 50 == 7 else round(0.5 + index * 0.25, 4)
        data.append(
            {
                "symbol": symbol,
                "openInterest": open_interest,
                "openInterestUsd": open_interest * mark,
                "markPrice": mark,
            }
        )
    return {"data": data, "timestamp": iso(at), "totalSymbols": total_symbols}


def poller_chunks(symbols: list[str], *, at: datetime) -> list[dict]:
    """DO/oi_realtime_poller.py:553-605: the same body plus source realtime, in chunks of 100,
    totalSymbols = the chunk's size; 0.0 for a missing mark price (lines 710-721)."""
    chunks = []
    for start in range(0, len(symbols), 100):
        chunk = symbols[start : start + 100]
        data = []
        for index, symbol in enumerate(chunk, start):
            mark = 0.0 if index % 40 == 3 else 1.25 + index
            data.append(
                {
                    "symbol": symbol,
                    "openInterest": 5000.0 + index,
                    "openInterestUsd": (5000.0 + index) * mark,
                    "markPrice": mark,
                }
            )
        chunks.append(
            {"data": data, "timestamp": iso(at), "totalSymbols": len(chunk), "source": "realtime"}
        )
    return chunks


def universe(n: int) -> list[str]:
    return [f"C{index:03d}USDT" for index in range(n)]


# --- the live feed ---------------------------------------------------------------------------------


def feed_url(base_url: str, query: str = "") -> str:
    return base_url.replace("http://", "ws://") + "/ws/open-interest/" + query


def of_type(frames: list[dict], kind: str) -> list[dict]:
    return [frame["data"] for frame in frames if frame["type"] == kind]


def make_liquid(*symbols: str) -> None:
    now = timezone.now()
    for symbol in symbols:
        LiquidSymbol.objects.create(
            symbol=symbol, quote_volume_24h=10**8, entered_at=now, last_seen_at=now
        )


# --- volume alerts ---------------------------------------------------------------------------------


def test_the_newer_scripts_spike_and_updates_are_stored_once_pushed_live_and_caught_up(
    base_url, ingest_key
):
    # given a client on the live feed subscribed to SOLUSDT
    make_liquid("SOLUSDT", "ETHUSDT")
    hour = datetime(2025, 12, 3, 14, tzinfo=UTC)
    common = {"curr": 12345678.9, "prev": 3456789.1, "open_price": 185.14, "close": 187.42}
    bodies = [
        newer_script_alert("SOLUSDT", "SPIKE", scan_at=hour.replace(minute=10, second=2),
                           hour=hour, oi_change=-0.004, **common),
        newer_script_alert("SOLUSDT", "HALF_UPDATE", scan_at=hour.replace(minute=30, second=1),
                           hour=hour, oi_change=0.012, **common | {"curr": 20111222.5}),
        # at :00 the update is for the hour that just closed
        newer_script_alert("SOLUSDT", "FULL_UPDATE", scan_at=hour + timedelta(hours=1, seconds=3),
                           hour=hour, oi_change=None, **common | {"curr": 30500000.0}),
    ]  # fmt: skip
    other_symbol = newer_script_alert(
        "ETHUSDT", "SPIKE", scan_at=hour.replace(minute=10, second=2), hour=hour,
        oi_change=0.02, **common,
    )  # fmt: skip
    with connect(feed_url(base_url, "?symbols=SOLUSDT")) as ws:
        assert frames_until(ws, lambda f: f, 5)[0] == {"type": "subscribed", "symbols": ["SOLUSDT"]}

        # when the script posts its SPIKE, another symbol's alert, then the two updates
        answers = [post(base_url, VOLUME_INGEST, bodies[0], ingest_key)]
        assert post(base_url, VOLUME_INGEST, other_symbol, ingest_key).status_code == 200
        answers += [post(base_url, VOLUME_INGEST, body, ingest_key) for body in bodies[1:]]

        # then each is answered as the script expects (HTTP 200, success, alertId) ...
        for answer in answers:
            assert answer.status_code == 200, answer.text
            body = answer.json()
            assert body["success"] is True and isinstance(body["alertId"], int)
            assert (body["duplicate"], body["ignoredFields"]) == (False, [])
        ids = [answer.json()["alertId"] for answer in answers]

        # ... and reaches the subscriber live, in order, as the stored row (not the ETH one)
        live = of_type(frames_until(ws, lambda f: len(of_type(f, "volume_alert")) >= 3, 10),
                       "volume_alert")  # fmt: skip
        assert [frame["id"] for frame in live] == ids
        assert live == [answer.json()["alert"] for answer in answers]

        # when every POST is retried (urllib3 after a timeout, or the PROD and DEV sends)
        retries = [post(base_url, VOLUME_INGEST, body, ingest_key) for body in bodies * 2]

        # then each retry answers 200 as a duplicate of the stored alert, and nothing is pushed
        assert [(r.status_code, r.json()["duplicate"], r.json()["alertId"]) for r in retries] == [
            (200, True, alert_id) for alert_id in ids * 2
        ]
        assert of_type(frames_until(ws, lambda f: f, 1.0), "volume_alert") == []

    # the rows: one per (symbol, hour, alert type), each field as sent
    assert VolumeAlert.objects.count() == 4
    spike, half, full = (VolumeAlert.objects.get(pk=alert_id) for alert_id in ids)
    assert (spike.alert_type, half.alert_type, full.alert_type) == (
        "SPIKE", "HALF_UPDATE", "FULL_UPDATE",
    )  # fmt: skip
    assert spike.hour_timestamp == half.hour_timestamp == full.hour_timestamp == hour
    assert spike.current_volume == 12345678.9 and spike.volume_ratio == bodies[0]["volumeRatio"]
    assert spike.price_change == bodies[0]["priceChange"] and spike.oi_change == -0.004
    assert spike.detection_time == hour.replace(minute=10)
    assert spike.ts == hour.replace(minute=10, second=2)
    assert spike.message == "SOL hourly volume 12.35M (3.57\u00d7 prev) \u2014 VOLUME SPIKE!"
    assert (spike.is_update, half.is_update, full.is_update) == (False, True, True)
    assert full.oi_change is None and full.ts == hour + timedelta(hours=1, seconds=3)
    assert spike.candle_direction == "bullish" and spike.funding_rate == 0.0001

    # a client that reconnects after the spike gets what it missed, oldest first
    with connect(feed_url(base_url, f"?symbols=SOLUSDT&volume_after_id={ids[0]}")) as ws:
        caught_up = of_type(frames_until(ws, lambda f: len(of_type(f, "volume_alert")) >= 2, 5),
                            "volume_alert")  # fmt: skip
        assert [frame["id"] for frame in caught_up] == ids[1:]
        ws.send(json.dumps({"action": "catch_up", "volume_after_id": ids[1]}))
        again = of_type(frames_until(ws, lambda f: f, 5), "volume_alert")
        assert [frame["id"] for frame in again] == ids[2:]

    # upstream's reads answer in their shape: ?tier=, /recent
    elite = requests.get(f"{base_url}/api/volume-alerts", {"tier": "elite"}, timeout=5).json()
    assert set(elite) == {"alerts", "tier", "limit", "lastBroadcastTime"}
    assert (elite["tier"], elite["limit"], len(elite["alerts"])) == ("elite", 100, 4)
    assert elite["alerts"][0]["id"] == ids[2]  # newest timestamp first
    recent = requests.get(
        f"{base_url}/api/volume-alerts/recent", {"hours": 24 * 365 * 5, "limit": 2}, timeout=5
    )
    assert recent.status_code == 400 and recent.json()["error"]["field"] == "hours"
    listed = requests.get(
        f"{base_url}/api/volume-alerts", {"symbol": "SOLUSDT", "alertType": "SPIKE"}, timeout=5
    ).json()
    assert [alert["id"] for alert in listed["alerts"]] == [ids[0]]


def test_the_older_scripts_body_with_a_null_funding_rate_is_stored(base_url, ingest_key):
    # given the older copy's body, whose premiumIndex call failed (fundingRate null)
    now = timezone.now().replace(microsecond=0)
    hour = now.replace(minute=0, second=0)
    body = older_script_alert("ARBUSDT", scan_at=now, hour=hour, funding=None)

    answer = post(base_url, VOLUME_INGEST, body, ingest_key)

    # then it is stored, with no funding rate, and detectionTime defaulting to the timestamp
    assert answer.status_code == 200, answer.text
    stored = VolumeAlert.objects.get(pk=answer.json()["alertId"])
    assert stored.funding_rate is None and answer.json()["alert"]["fundingRate"] is None
    assert stored.detection_time == stored.ts == now
    assert (stored.price_change, stored.oi_change) == (None, None)
    # and it is in /recent, and hidden from the free tier until its 15-minute boundary passes
    recent = requests.get(f"{base_url}/api/volume-alerts/recent", {"hours": 2}, timeout=5).json()
    assert (recent["count"], recent["hours"]) == (1, 2)
    assert recent["alerts"][0]["id"] == stored.id
    body_late = body | {
        "symbol": "OPUSDT",
        "asset": "OP",
        "timestamp": iso(now + timedelta(seconds=1)),
    }
    post(base_url, VOLUME_INGEST, body_late, ingest_key)
    free = requests.get(f"{base_url}/api/volume-alerts", {"tier": "free"}, timeout=5).json()
    assert (free["tier"], free["limit"]) == ("free", 10)
    assert "OPUSDT" not in [alert["symbol"] for alert in free["alerts"]]

    # an unknown field (here a typo) is accepted, not stored, and named in the answer
    typo = older_script_alert("LINKUSDT", scan_at=now, hour=hour, funding=0.0002)
    typo["fundingrate"] = typo.pop("fundingRate")
    answer = post(base_url, VOLUME_INGEST, typo, ingest_key)
    assert answer.status_code == 200
    assert answer.json()["ignoredFields"] == ["fundingrate"]
    assert VolumeAlert.objects.get(symbol="LINKUSDT").funding_rate is None


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        ({"alertType": "HOURLY"}, "alertType", "must be one of SPIKE, HALF_UPDATE, FULL_UPDATE"),
        ({"currentVolume": -1.0}, "currentVolume", "must not be negative"),
        ({"hourTimestamp": "2025-12-03T14:05:00Z"}, "hourTimestamp", None),
        ({"candleDirection": "sideways"}, "candleDirection", "must be bullish or bearish"),
        ({"message": None}, "message", "is required"),
        ({"isUpdate": "yes"}, "isUpdate", "must be a boolean, got a string"),
    ],
)
def test_a_bad_volume_alert_is_refused_naming_the_field(
    base_url, ingest_key, change, field, reason
):
    hour = datetime(2025, 12, 3, 14, tzinfo=UTC)
    body = older_script_alert("SOLUSDT", scan_at=hour.replace(minute=7), hour=hour, funding=0.0)
    answer = post(base_url, VOLUME_INGEST, body | change, ingest_key)
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["field"] == field
    if reason:
        assert error["reason"] == reason
    assert VolumeAlert.objects.count() == 0


# --- OI snapshots and the reads the newer script and the frontend make --------------------------


def test_a_650_row_snapshot_as_the_hourly_script_sends_it(base_url, ingest_key):
    # given the full universe at a time off the 5-minute grid, 5 symbols having failed
    symbols = universe(650)
    at = (timezone.now() - timedelta(minutes=1)).replace(second=43, microsecond=0)
    body = script_snapshot(symbols, at=at, total_symbols=655)
    assert "source" not in body

    # when it is posted in one request (10 s timeout)
    answer = post(base_url, SNAPSHOT_INGEST, body, ingest_key, timeout=10)

    # then the answer keeps this project's fields and has upstream's success and inserted
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "success": True, "received": 650, "inserted": 650, "duplicates": 0, "partial": True,
        "ignoredFields": [],
    }  # fmt: skip
    stored = OpenInterestSnapshot.objects.filter(source="snapshot", ts=at)
    assert stored.count() == 650
    no_price = stored.get(symbol="C007USDT")  # markPrice and openInterestUsd were 0
    assert (no_price.mark_price, no_price.open_interest_usd) == (None, None)
    priced = stored.get(symbol="C010USDT")
    assert float(priced.open_interest) == 1375.0 and float(priced.mark_price) == 3.0
    assert float(priced.open_interest_usd) == 1375.0 * 3.0

    # and a retry stores nothing more
    again = post(base_url, SNAPSHOT_INGEST, body, ingest_key, timeout=10).json()
    assert (again["success"], again["inserted"], again["duplicates"]) == (True, 0, 650)
    assert OpenInterestSnapshot.objects.count() == 650

    # the frontend's map: the symbols with a USD value, fresh
    latest = requests.get(f"{base_url}/api/market/open-interest", timeout=5).json()
    assert len(latest["data"]) == 650 - 13  # 13 of the rows had no price
    assert latest["data"]["C010USDT"] == 1375.0 * 3.0
    assert latest["asOf"] == int(at.timestamp() * 1000)
    assert (latest["stale"], latest["dangerouslyStale"]) == (False, False)

    # the newer script's oiChange reference: nearest at or before ts, else found: false
    found = requests.get(
        f"{base_url}/api/market/open-interest/snapshot",
        {"symbol": "C010USDT", "ts": iso(at + timedelta(minutes=30))},
        headers={"X-API-Key": ingest_key},
        timeout=5,
    ).json()
    assert found == {
        "found": True, "symbol": "C010USDT", "openInterest": 1375.0, "openInterestUsd": 4125.0,
        "markPrice": 3.0, "ts": iso(at), "source": "snapshot",
    }  # fmt: skip
    before = iso(at - timedelta(seconds=1))
    missing = requests.get(
        f"{base_url}/api/market/open-interest/snapshot",
        {"symbol": "C010USDT", "ts": before},
        timeout=5,
    ).json()
    assert missing == {"found": False, "symbol": "C010USDT", "requestedTs": before}


def test_the_old_pollers_realtime_chunks_of_100(base_url, ingest_key):
    # given 650 symbols sent as the old poller sends them: 7 chunks, source realtime
    symbols = universe(650)
    at = datetime(2025, 12, 3, 14, 21, 17, tzinfo=UTC)
    chunks = poller_chunks(symbols, at=at)
    assert [len(chunk["data"]) for chunk in chunks] == [100] * 6 + [50]

    answers = [post(base_url, SNAPSHOT_INGEST, chunk, ingest_key, timeout=60) for chunk in chunks]
    retried = [post(base_url, SNAPSHOT_INGEST, chunk, ingest_key, timeout=60) for chunk in chunks]

    assert [(a.status_code, a.json()["success"], a.json()["inserted"]) for a in answers] == [
        (200, True, len(chunk["data"])) for chunk in chunks
    ]
    assert {a.json()["partial"] for a in answers} == {False}
    assert [(a.json()["inserted"], a.json()["duplicates"]) for a in retried] == [
        (0, len(chunk["data"])) for chunk in chunks
    ]
    stored = OpenInterestSnapshot.objects.filter(source="realtime", ts=at)
    assert stored.count() == 650
    assert stored.filter(mark_price__isnull=True, open_interest_usd__isnull=True).count() == 17


# --- OI alerts from the old poller -----------------------------------------------------------------


def test_an_oi_alert_with_a_timeframe_from_the_old_poller(base_url, ingest_key, redis_client):
    # given a client on the feed, and the poller's alert (oi_realtime_poller.py:372-438)
    make_liquid("WIFUSDT")
    body = {
        "symbol": "WIFUSDT",
        "direction": "UP",
        "baseline": 180000000.0,
        "current": 186300000.0,
        "pctChange": 0.035,
        "absChange": 6300000.0,
        "timestamp": "2025-12-03T14:21:17Z",
        "source": "oi_realtime_poller",
        "timeframe": "15 min",
        "priceChange": 0.0123,
        "fundingRate": 0.0001,
    }
    with connect(feed_url(base_url, "?symbols=WIFUSDT")) as ws:
        frames_until(ws, lambda f: f, 5)

        answer = post(base_url, OI_ALERT_INGEST, body, ingest_key, timeout=10)

        # then it is stored with its window and context, answered with success and id (the poller
        # counts any 2xx), and pushed live
        assert answer.status_code == 200, answer.text
        assert (answer.json()["success"], answer.json()["outcome"]) == (True, "created")
        alert_id = answer.json()["id"]
        stored = OpenInterestAlert.objects.get(pk=alert_id)
        assert stored.window_sec == 900
        assert float(stored.price_change_pct) == 0.0123 and float(stored.funding_rate) == 0.0001
        live = of_type(frames_until(ws, lambda f: of_type(f, "open_interest_alert"), 10),
                       "open_interest_alert")  # fmt: skip
        assert [(a["id"], a["windowSec"], a["priceChangePct"]) for a in live] == [
            (alert_id, 900, 0.0123)
        ]

    # every retry answers as a duplicate with the same id, and stores nothing
    for _ in range(2):
        retry = post(base_url, OI_ALERT_INGEST, body, ingest_key, timeout=10)
        assert retry.status_code == 200
        assert (retry.json()["success"], retry.json()["outcome"], retry.json()["id"]) == (
            True, "duplicate", alert_id,
        )  # fmt: skip
    # a direction the design does not know is a 400 naming the field, never a 500
    bad = post(base_url, OI_ALERT_INGEST, body | {"direction": "LONG_SPIKE"}, ingest_key)
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "direction"
    assert OpenInterestAlert.objects.count() == 1


# --- auth and refusals ----------------------------------------------------------------------------


def test_without_the_right_key_nothing_is_written_and_the_key_is_never_logged(
    server, base_url, ingest_key
):
    hour = datetime(2025, 12, 3, 14, tzinfo=UTC)
    volume = older_script_alert("SOLUSDT", scan_at=hour.replace(minute=7), hour=hour, funding=0.0)
    snapshot = script_snapshot(universe(3), at=hour, total_symbols=3)
    for path, body in ((VOLUME_INGEST, volume), (SNAPSHOT_INGEST, snapshot)):
        for key in (None, "", "wrong-" + ingest_key, ingest_key + "x", ingest_key.upper()):
            answer = post(base_url, path, body, key)
            assert answer.status_code == 401, (path, key, answer.text)
            assert answer.json()["error"]["code"] in {"not_authenticated", "authentication_failed"}
    assert (VolumeAlert.objects.count(), OpenInterestSnapshot.objects.count()) == (0, 0)

    # the same key works as `Authorization: Token`, and a body that is not JSON is a 400
    token = requests.post(
        base_url + VOLUME_INGEST, json=volume, headers={"Authorization": f"Token {ingest_key}"},
        timeout=5,
    )  # fmt: skip
    assert token.status_code == 200
    not_json = requests.post(
        base_url + VOLUME_INGEST, data="{symbol: SOLUSDT", timeout=5,
        headers={"X-API-Key": ingest_key, "Content-Type": "application/json"},
    )  # fmt: skip
    assert not_json.status_code == 400 and not_json.json()["error"]["code"] == "parse_error"
    assert ingest_key not in server.log_path.read_text(errors="replace")


# --- the page ------------------------------------------------------------------------------------


def test_the_page_shows_volume_alerts_live_and_catches_up_after_a_drop(base_url, ingest_key):
    from tests.dashboard.test_debug_page import chromium_page

    hour = datetime(2025, 12, 3, 14, tzinfo=UTC)
    common = {"curr": 12345678.9, "prev": 3456789.1, "open_price": 185.14, "close": 187.42}

    def send(alert_type: str, minute: int, hours: int = 0) -> int:
        scan_at = hour + timedelta(hours=hours, minutes=minute, seconds=2)
        body = newer_script_alert(
            "SOLUSDT", alert_type, scan_at=scan_at, hour=hour, oi_change=0.031, **common
        )
        answer = post(base_url, VOLUME_INGEST, body, ingest_key)
        assert answer.status_code == 200, answer.text
        return answer.json()["alertId"]

    # given a spike stored before the page opens
    spike = send("SPIKE", 10)
    with chromium_page() as (page, errors):
        page.goto(f"{base_url}/debug/open-interest")
        page.wait_for_selector(f"#volume-alerts li[data-alert-id='{spike}']", timeout=15_000)
        item = page.inner_text(f"#volume-alerts li[data-alert-id='{spike}']")
        assert "SOLUSDT" in item and "VOLUME SPIKE" in item and "×3.57" in item
        assert "OI +3.10%" in item and "price +1.23%" in item

        # when the script posts the half-hour update, then it appears live, on top
        half = send("HALF_UPDATE", 30)
        page.wait_for_selector(f"#volume-alerts li[data-alert-id='{half}']", timeout=10_000)
        assert "HALF-UPDATE" in page.inner_text(f"#volume-alerts li[data-alert-id='{half}']")

        # when the feed drops and the full update comes meanwhile, then the page catches up
        page.evaluate("window.oiDebug.dropFeed()")
        full = send("FULL_UPDATE", 0, hours=1)
        page.wait_for_selector(f"#volume-alerts li[data-alert-id='{full}']", timeout=20_000)
        feed_urls = page.evaluate("window.oiDebug.feed.urls")
        assert feed_urls[-1].endswith(f"volume_after_id={half}")
        shown = page.eval_on_selector_all(
            "#volume-alerts li", "items => items.map(i => Number(i.dataset.alertId))"
        )
        assert shown == [full, half, spike]  # newest first, each once
        assert errors == []
