"""The VolSpike clients' writes end to end, side by side with the same rows written by raw COPY.

Two writes, as the production scripts make them (issue 13), timed from the client:
- the hourly script's 650-row OI snapshot: one POST /api/market/open-interest/ingest with
  `X-API-Key`, floats, no source, a timestamp off the 5-minute grid, some prices 0;
- the hourly script's volume alert: one POST /api/volume-alerts/ingest.
Each POST goes through the real ASGI server (uvicorn, as in the Procfile): HTTP, JSON parsing,
the token check, validation, the idempotent INSERT, the after-commit hand-off (Celery task for
the snapshot, live-feed publish for the volume alert) and the answer. In the same run, the same
rows (another timestamp or hour, so they are new rows too) are written by a raw psycopg `COPY`
on a warm connection and committed: the floor of what Postgres itself needs. Printed: median and
p90 of each, rows per second, and the ratio POST / COPY.

Rerun (uses Postgres database volspike_bench_ingest and Redis database 10 unless told otherwise):

    python bench/volspike_ingest.py
    python bench/volspike_ingest.py --repeats 50 --database-name volspike_bench_x \
        --redis-url redis://127.0.0.1:6379/9

The web process's log goes to test-artifacts/volspike-ingest-web.log.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import _system
from bench._system import PROJECT_ROOT

DATABASE_NAME = "volspike_bench_ingest"
REDIS_URL = "redis://127.0.0.1:6379/10"
SNAPSHOT_ROWS = 650
WARMUP = 3
LOG_DIR = PROJECT_ROOT / "test-artifacts"
RERUN = "python bench/volspike_ingest.py"
SNAPSHOT_PATH = "/api/market/open-interest/ingest"
VOLUME_PATH = "/api/volume-alerts/ingest"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=20, help="timed rounds (default 20)")
    _system.isolation_args_add(parser, database_name=DATABASE_NAME, redis_url=REDIS_URL)
    return parser.parse_args()


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def snapshot_body(at: datetime) -> dict:
    """The hourly script's body (Verify copy lines 185-189 and 262-267)."""
    data = []
    for index in range(SNAPSHOT_ROWS):
        open_interest = float(1000 + index * 37.5)
        mark = 0.0 if index % 50 == 7 else round(0.5 + index * 0.25, 4)
        data.append(
            {
                "symbol": f"B{index:03d}USDT",
                "openInterest": open_interest,
                "openInterestUsd": open_interest * mark,
                "markPrice": mark,
            }
        )
    return {"data": data, "timestamp": iso(at), "totalSymbols": SNAPSHOT_ROWS}


def volume_body(symbol: str, hour: datetime) -> dict:
    """The newer script's body (lines 177-208)."""
    return {
        "symbol": symbol, "asset": symbol.removesuffix("USDT"), "currentVolume": 12345678.9,
        "previousVolume": 3456789.1, "volumeRatio": 3.571429596326834, "price": 187.42,
        "fundingRate": 0.0001, "candleDirection": "bullish",
        "message": f"{symbol} hourly volume 12.35M (3.57\u00d7 prev) \u2014 VOLUME SPIKE!",
        "timestamp": iso(hour + timedelta(minutes=10, seconds=2)),
        "detectionTime": iso(hour + timedelta(minutes=10)), "hourTimestamp": iso(hour),
        "isUpdate": False, "alertType": "SPIKE", "priceChange": 0.012260329462597796,
        "oiChange": -0.004,
    }  # fmt: skip


def copy_snapshot(connection: psycopg.Connection, body: dict, at: datetime) -> None:
    """The same rows as stored by the API (0 prices as NULL, USD from the body), by COPY."""
    with (
        connection.cursor() as cursor,
        cursor.copy(
            "COPY open_interest_snapshots (symbol, ts, open_interest, open_interest_usd, "
            "mark_price, source) FROM STDIN"
        ) as copy,
    ):
        for row in body["data"]:
            copy.write_row(
                (row["symbol"], at, row["openInterest"], row["openInterestUsd"] or None,
                 row["markPrice"] or None, "snapshot")
            )  # fmt: skip
    connection.commit()


def copy_volume_alert(connection: psycopg.Connection, body: dict, hour: datetime) -> None:
    columns = (
        "symbol, asset, current_volume, previous_volume, volume_ratio, price, funding_rate, "
        "price_change, oi_change, candle_direction, alert_type, is_update, message, ts, "
        "detection_time, hour_timestamp"
    )
    with (
        connection.cursor() as cursor,
        cursor.copy(f"COPY volume_alerts ({columns}) FROM STDIN") as copy,
    ):
        copy.write_row(
            (body["symbol"], body["asset"], body["currentVolume"], body["previousVolume"],
             body["volumeRatio"], body["price"], body["fundingRate"], body["priceChange"],
             body["oiChange"], body["candleDirection"], body["alertType"], body["isUpdate"],
             body["message"], hour + timedelta(minutes=10, seconds=2),
             hour + timedelta(minutes=10), hour)
        )  # fmt: skip
    connection.commit()


def post(session: requests.Session, base_url: str, path: str, body: dict, headers: dict) -> None:
    answer = session.post(base_url + path, json=body, headers=headers, timeout=30)
    if answer.status_code != 200:
        raise RuntimeError(f"{path}: HTTP {answer.status_code} {answer.text[:300]}")


def timed(action, *args) -> float:
    start = time.perf_counter()
    action(*args)
    return (time.perf_counter() - start) * 1000


def figures(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]


def run(args: argparse.Namespace, stack: ExitStack) -> bool:
    database_url, env = _system.web_only_env(args.database_name, args.redis_url)
    _system.django_setup(env, flush=True)
    from common.services import api_token_create

    _, key = api_token_create(name="bench-volspike-ingest")
    web, base_url = _system.start_web("volspike-ingest-web", env, LOG_DIR)
    stack.callback(web.stop)
    session = requests.Session()
    headers = {"X-API-Key": key, "Content-Type": "application/json"}
    connection = stack.enter_context(psycopg.connect(database_url))

    start = datetime(2025, 12, 3, 0, 2, 43, tzinfo=UTC)
    timings: dict[str, list[float]] = {"snapshot_post": [], "snapshot_copy": [],
                                       "volume_post": [], "volume_copy": []}  # fmt: skip
    for round_index in range(WARMUP + args.repeats):
        at = start + timedelta(minutes=5 * round_index)
        hour = start.replace(minute=0, second=0) + timedelta(hours=round_index)
        snapshot = snapshot_body(at)
        volume = volume_body("SOLUSDT", hour)

        copy_alert = volume | {"symbol": "SOLCOPYUSDT"}  # the same alert, another identity
        measured = {
            "snapshot_post": timed(post, session, base_url, SNAPSHOT_PATH, snapshot, headers),
            # the same rows, one second later (a new key on the same table)
            "snapshot_copy": timed(copy_snapshot, connection, snapshot, at + timedelta(seconds=1)),
            "volume_post": timed(post, session, base_url, VOLUME_PATH, volume, headers),
            "volume_copy": timed(copy_volume_alert, connection, copy_alert, hour),
        }
        if round_index >= WARMUP:
            for name, value in measured.items():
                timings[name].append(value)

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM open_interest_snapshots")
        stored_snapshots = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM volume_alerts")
        stored_alerts = cursor.fetchone()[0]
    rounds = WARMUP + args.repeats
    print()
    print(f"=== VolSpike clients' writes, end to end vs raw COPY ({args.repeats} rounds after "
          f"{WARMUP} warm-up) ===")  # fmt: skip
    for label, post_key, copy_key, rows in (
        (f"{SNAPSHOT_ROWS}-row OI snapshot", "snapshot_post", "snapshot_copy", SNAPSHOT_ROWS),
        ("volume alert", "volume_post", "volume_copy", 1),
    ):
        post_median, post_p90 = figures(timings[post_key])
        copy_median, copy_p90 = figures(timings[copy_key])
        print(
            f"{label:>22}: POST median {post_median:7.2f} ms (p90 {post_p90:7.2f}) = "
            f"{rows / post_median * 1000:9.0f} rows/s | COPY median {copy_median:6.2f} ms "
            f"(p90 {copy_p90:6.2f}) = {rows / copy_median * 1000:9.0f} rows/s | "
            f"POST/COPY {post_median / copy_median:5.1f}x"
        )
    print(f"stored: {stored_snapshots} snapshot rows (expected {2 * SNAPSHOT_ROWS * rounds}), "
          f"{stored_alerts} volume alerts (expected {2 * rounds})")  # fmt: skip
    print(f"rerun: {RERUN} --repeats {args.repeats}")
    return stored_snapshots == 2 * SNAPSHOT_ROWS * rounds and stored_alerts == 2 * rounds


if __name__ == "__main__":
    sys.exit(_system.run_main(run, parse_args()))
