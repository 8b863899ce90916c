"""Redis with deploy/redis/volspike.conf (append-only file, fsync every second) crashes and comes
back while snapshot batches are parked and the Telegram outbox holds alerts: nothing of either is
lost, and both are delivered once their destinations answer again."""

import json
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis as redis_lib
import requests

from alerts.channels.limiter import ChannelKey, channel_key
from alerts.channels.services import SETTINGS_TELEGRAM_NAME, channel_create
from alerts.models import AlertDelivery, ChannelKind
from common.models import ApiToken
from common.services import api_token_create, api_token_revoke
from oi.batches import parse_snapshot_batch
from oi.models import OpenInterestSnapshot
from oi.snapshot_sink import PENDING_KEY
from tests.deploy.support import DEPLOY, celery_command, start_all, wait_answering
from tests.fixtures import processes
from tests.fixtures.processes import (
    RESPAWN,
    ManagedProcess,
    OwnRedis,
    free_port,
    stop_all,
    wait_until,
)
from tests.fixtures.telegram import FakeBotApi
from volspike.celery import app as celery_app

pytestmark = [
    pytest.mark.integration,
    pytest.mark.reliability,
    pytest.mark.django_db(transaction=True),
]

CHAT_ID = "4242"


def aof_redis(directory: Path) -> OwnRedis:
    """A redis-server of the test's own, configured by the file deploy/ ships (included last, as
    install.sh includes it in /etc/redis/redis.conf)."""
    return OwnRedis(
        ["--dir", str(directory), "--logfile", str(directory / "redis.log"),
         "--include", str(DEPLOY / "redis" / "volspike.conf")]
    )  # fmt: skip


def uvicorn(name: str, port: int, env: dict[str, str]) -> ManagedProcess:
    web = ManagedProcess(
        name,
        processes.asgi_server_args(port),
        processes.test_process_env(**env),
    )  # fmt: skip
    wait_answering(f"http://127.0.0.1:{port}/health", 30, web)
    return web


def post_alert(base_url: str, api_key: str, symbol: str) -> int:
    response = requests.post(
        f"{base_url}/api/open-interest-alerts/ingest",
        headers={"Authorization": f"Token {api_key}"},
        json={
            "symbol": symbol, "direction": "UP", "baseline": 1000, "current": 1100,
            "pctChange": 0.1, "absChange": 100, "source": "ingest",
            "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        },
        timeout=10,
    )  # fmt: skip
    assert response.status_code == 200, response.text
    return response.json()["alert"]["id"]


def test_a_redis_crash_loses_no_parked_batch_and_no_queued_alert(sim, api_key, tmp_path):
    redis_server = aof_redis(tmp_path)
    redis_server.start()
    telegram = FakeBotApi()
    telegram.down = True  # 502 until the Redis crash is over
    web_port = free_port()
    # The split deployment: the poller posts its batches to a backend's ingest API (this web
    # process here) with a token the backend refuses until it is restored: batches get parked.
    _, remote_key = api_token_create(name="poller-remote")
    api_token_revoke(name="poller-remote")
    env = {
        "BINANCE_BASE_URL": sim.base_url,
        "TEST_REDIS_URL": redis_server.url,
        "TELEGRAM_BOT_TOKEN": "123:test",
        "TELEGRAM_CHAT_ID": CHAT_ID,
        "TELEGRAM_API_URL": telegram.url,
        "OI_REMOTE_INGEST_URL": f"http://127.0.0.1:{web_port}/api/market/open-interest/ingest",
        "OI_REMOTE_INGEST_TOKEN": remote_key,
    }
    # the channel the worker keeps for these settings, made first: the web process queues on it
    chat = channel_create(
        name=SETTINGS_TELEGRAM_NAME, kind=ChannelKind.TELEGRAM, bot_token="123:test",
        telegram_chat_id=CHAT_ID, from_settings=True,
    )  # fmt: skip
    outbox_key = channel_key(chat.pk, ChannelKey.OUTBOX)
    started: list[ManagedProcess] = []
    client = redis_lib.Redis.from_url(redis_server.url, decode_responses=True)
    t0 = time.monotonic()

    def phase(text: str) -> None:
        print(f"  +{time.monotonic() - t0:.1f} s {text}")

    try:
        started.append(uvicorn("aof-web", web_port, env))
        # supervised as by systemd (Restart=always): kombu can kill a worker in a broker outage
        start_all(
            {
                "aof-worker": [
                    *RESPAWN,
                    *celery_command("worker", "aof-worker", "default,oi_backfill"),
                ],
                "aof-poller": [*RESPAWN, *celery_command("worker", "aof-poller", "oi_poll", 2)],
                "aof-beat": [*RESPAWN, *celery_command("beat", "aof-beat")],
            },
            processes.test_process_env(**env),
            started,
        )
        phase("processes up")

        # given alerts waiting for Telegram and poller batches parked for the remote backend
        alert_ids = {
            post_alert(f"http://127.0.0.1:{web_port}", api_key, s)
            for s in ("BTCUSDT", "ETHUSDT", "SOLUSDT")
        }
        wait_until(lambda: client.llen(PENDING_KEY) >= 2, 40, "no snapshot batch was parked")
        outbox = set(client.zrange(outbox_key, 0, -1))
        assert outbox == {f"alert:{i}" for i in alert_ids}
        parked = client.lrange(PENDING_KEY, 0, -1)
        assert client.config_get("appendonly")["appendonly"] == "yes"
        phase(f"{len(parked)} batches parked, {len(outbox)} alerts queued")

        # when Redis crashes (SIGKILL) a little over one fsync period later, and starts again
        time.sleep(1.5)
        redis_server.crash()
        redis_server.start()
        phase("redis crashed and started again")

        # then the outbox and every parked batch are back, in order
        assert set(client.zrange(outbox_key, 0, -1)) == outbox
        assert client.lrange(PENDING_KEY, 0, len(parked) - 1) == parked

        # and once the destinations answer, all of it is delivered
        telegram.down = False
        ApiToken.objects.filter(name="poller-remote").update(revoked_at=None)
        with celery_app.connection_for_write(redis_server.url) as connection:
            celery_app.send_task(
                "oi.snapshots_flush_pending", connection=connection, queue="default"
            )
        wait_until(lambda: client.llen(PENDING_KEY) == 0, 30, "parked batches not delivered")
        wait_until(lambda: client.zcard(outbox_key) == 0, 30, "outbox not delivered")
        phase("parked batches and outbox delivered")
        delivered = set(
            AlertDelivery.objects.filter(channel=chat, delivered=True).values_list(
                "alert_id", flat=True
            )
        )
        assert delivered >= alert_ids
        rows = [
            row
            for raw in parked
            for row in parse_snapshot_batch(
                json.loads(raw), now=datetime.now(UTC), max_rows=10**5
            ).rows
        ]
        stored = set(OpenInterestSnapshot.objects.values_list("symbol", "ts", "source"))
        missing = [r for r in rows if (r.symbol, r.ts, r.source) not in stored]
        assert rows and not missing, f"{len(missing)} of {len(rows)} parked rows not stored"
        print(f"{len(parked)} parked batches ({len(rows)} rows) and {len(alert_ids)} queued "
              "alerts survived a SIGKILL of Redis and were delivered")  # fmt: skip
    finally:
        stop_all(started)
        telegram.server.shutdown()
        redis_server.stop()
