"""WebSocket soak: clients that stall, hang up, churn and flood while updates flow at the rate of
400 polled symbols; the web process's RSS over time and its growth per hour.

Runs the ASGI server as in the Procfile (uvicorn, --ws-max-size) on a database and Redis db of
its own and, with --old-ref, the code of another git ref (e.g. the commit before the WebSocket
hardening) side by side, on the same Redis db and the same load, so the two RSS columns compare.

The updates are published through the project's channel layer (`group_send` on the updates
group, the call `common.realtime.broadcast` makes) rather than by the poller: the web process
sees exactly what the poller would send it, without the poller's four processes and a simulator
competing for the machine's two cores. The rate is the poller's at 400 symbols (the 30-minute
system soak's WebSocket client got 30,042 update frames in 30 min = 16.7 frames/s, 32.5 samples/s
at a 12.3 s interval): --frames-per-sec 17 frames of 2 rows each (the row shape of
`SnapshotRow.as_json`), plus one alert a minute.

Clients on each server, all through the whole run:
- readers: --readers clients subscribed to everything, reading every frame;
- stallers: every --stall-every s a client completes the handshake, reads nothing for
  --stall-sec s (a laptop asleep with the page open), then hangs up (a reset, unread data);
- churners: a client connects, reads its first frames and closes, every second;
- flooders: a client sends 300 pings as fast as it can, reads the answers (or its close), and
  reconnects, over and over; every 30 s one sends a 2 MB subscribe of 100,000 unknown symbols.

Every --every s it prints one row: elapsed time, each server's RSS, and the consumer channels
each server holds subscribed in Redis (should follow the clients connected, not grow). At the
end: the growth per hour of each RSS (least-squares line over the second half of the run, and
over all of it).

Rerun (uses Postgres database volspike_ws_soak and Redis database 13 unless told otherwise):

    python bench/ws_soak.py --minutes 10 --old-ref 5073475

Process logs go to test-artifacts/ws-soak-*.log.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import logging
import os
import shutil
import socket
import struct
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path
from urllib.parse import urlsplit

import redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import _system

LOG_DIR = _system.PROJECT_ROOT / "test-artifacts"
MIB = 2**20
FEED_PATH = "/ws/open-interest/"
OLD_CHANNEL_PREFIX = "asgi"  # channels_redis' default, which the code before the fix used


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--every", type=float, default=20.0, help="seconds between rows")
    parser.add_argument("--old-ref", default="", help="also run this git ref's code (e.g. main)")
    parser.add_argument("--frames-per-sec", type=float, default=17.0)
    parser.add_argument("--readers", type=int, default=4)
    parser.add_argument("--stall-every", type=float, default=10.0)
    parser.add_argument("--stall-sec", type=float, default=40.0)
    parser.add_argument(
        "--probe", action=argparse.BooleanOptionalAction, default=True,
        help="first send one 15 MB message to each server (--minutes 0: only that)",
    )  # fmt: skip
    _system.isolation_args_add(
        parser, database_name="volspike_ws_soak", redis_url="redis://127.0.0.1:6379/13"
    )
    return parser.parse_args()


# --- clients -------------------------------------------------------------------------------------


def raw_handshake(base_url: str, rcvbuf: int = 4096) -> socket.socket:
    """A WebSocket connection on a raw socket with a small receive buffer, handshake done."""
    parts = urlsplit(base_url)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(10)
    sock.connect((parts.hostname, parts.port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        f"GET {FEED_PATH} HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        .encode()
    )  # fmt: skip
    response = b""
    while not response.endswith(b"\r\n\r\n"):
        chunk = sock.recv(1)
        if not chunk:
            raise ConnectionError("closed during the handshake")
        response += chunk
    return sock


def reset(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


class Load:
    """Every kind of client against one server, each in its own thread, until stop()."""

    def __init__(self, name: str, base_url: str, args: argparse.Namespace) -> None:
        self.name = name
        self.base_url = base_url
        self.ws_url = base_url.replace("http://", "ws://") + FEED_PATH
        self.args = args
        self.stopping = threading.Event()
        self.counts = {"frames read": 0, "stalled and hung up": 0, "churned": 0, "floods": 0,
                       "flood closes": 0, "huge": 0, "errors": 0}  # fmt: skip
        self.connected = 0  # clients with an open connection now
        self._lock = threading.Lock()
        self.threads = [
            *(threading.Thread(target=self._reader, daemon=True) for _ in range(args.readers)),
            threading.Thread(target=self._staller, daemon=True),
            threading.Thread(target=self._churner, daemon=True),
            threading.Thread(target=self._flooder, daemon=True),
        ]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def stop(self) -> None:
        self.stopping.set()

    def connected_clients(self) -> int:
        return self.connected

    def _connected(self, delta: int) -> None:
        with self._lock:
            self.connected += delta

    @contextmanager
    def _counted(self):
        self._connected(+1)
        try:
            yield
        finally:
            self._connected(-1)

    def _guard(self, body) -> None:
        while not self.stopping.is_set():
            try:
                body()
            except Exception:  # noqa: BLE001 - a refused or closed client starts over
                self.counts["errors"] += 1
                time.sleep(0.5)

    def _reader(self) -> None:
        from websockets.sync.client import connect

        def read() -> None:
            with connect(self.ws_url, max_size=None, open_timeout=30) as ws, self._counted():
                while not self.stopping.is_set():
                    with suppress(TimeoutError):
                        ws.recv(timeout=1)
                        self.counts["frames read"] += 1

        self._guard(read)

    def _staller(self) -> None:
        def stall_one() -> None:
            sock = raw_handshake(self.base_url)
            self._connected(+1)
            try:
                self.stopping.wait(self.args.stall_sec)
            finally:
                reset(sock)
                self._connected(-1)
                self.counts["stalled and hung up"] += 1

        def stall_forever() -> None:
            threading.Thread(target=lambda: self._once(stall_one), daemon=True).start()
            self.stopping.wait(self.args.stall_every)

        self._guard(stall_forever)

    def _once(self, body) -> None:
        try:
            body()
        except Exception:  # noqa: BLE001
            self.counts["errors"] += 1

    def _churner(self) -> None:
        from websockets.sync.client import connect

        def churn() -> None:
            with connect(self.ws_url, open_timeout=30) as ws, self._counted():
                ws.recv(timeout=10)
            self.counts["churned"] += 1
            self.stopping.wait(1.0)

        self._guard(churn)

    def _flooder(self) -> None:
        from websockets.exceptions import ConnectionClosed
        from websockets.sync.client import connect

        last_huge = [0.0]

        def flood() -> None:
            with connect(self.ws_url, max_size=None, open_timeout=30) as ws, self._counted():
                try:
                    if time.monotonic() - last_huge[0] > 30:
                        last_huge[0] = time.monotonic()
                        self.counts["huge"] += 1
                        symbols = [f"ZZ{i:07d}USDT" for i in range(100_000)]
                        ws.send(json.dumps({"action": "subscribe", "symbols": symbols}))
                    for _ in range(300):
                        ws.send('{"action":"ping"}')
                    deadline = time.monotonic() + 10
                    while time.monotonic() < deadline:
                        if json.loads(ws.recv(timeout=10)).get("type") == "pong":
                            deadline = min(deadline, time.monotonic() + 0.5)
                except ConnectionClosed:
                    self.counts["flood closes"] += 1
                except TimeoutError:
                    pass
            self.counts["floods"] += 1
            self.stopping.wait(1.0)

        self._guard(flood)


# --- a 15 MB message ------------------------------------------------------------------------------


def huge_message_probe(base_url: str) -> str:
    """Issue 19 #7: one client sends a 15 MB subscribe (400,000 well-formed unknown symbols)
    while another pings every 20 ms: the bystander's worst ping round trip, and what the
    hostile client got back."""
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    ws_url = base_url.replace("http://", "ws://") + FEED_PATH
    symbols = [f"ZZ{i:07d}USDT" for i in range(400_000)]
    huge = json.dumps({"action": "subscribe", "symbols": symbols, "pad": "x" * 9_000_000})
    worst = [0.0]
    done = threading.Event()
    with connect(ws_url, max_size=None) as bystander, connect(ws_url, max_size=None) as hostile:
        while json.loads(bystander.recv(timeout=10))["type"] != "subscribed":
            pass

        def ping_loop() -> None:
            while not done.is_set():
                sent_at = time.monotonic()
                bystander.send('{"action":"ping"}')
                while json.loads(bystander.recv(timeout=60)).get("type") != "pong":
                    pass
                worst[0] = max(worst[0], time.monotonic() - sent_at)
                time.sleep(0.02)

        pinger = threading.Thread(target=ping_loop, daemon=True)
        pinger.start()
        time.sleep(0.5)
        answer = ""
        started = time.monotonic()
        try:
            hostile.send(huge)
            while True:
                frame = hostile.recv(timeout=60)
                if '"error"' in frame[:40]:
                    answer = f"an error frame of {len(frame) / MIB:.1f} MiB"
                    break
        except ConnectionClosed as closed:
            code = closed.rcvd.code if closed.rcvd else "none (reset)"
            answer = f"closed, code {code}"
        except TimeoutError:
            answer = "no answer in 60 s"
        answered_in = time.monotonic() - started
        time.sleep(1.0)
        done.set()
        pinger.join(timeout=70)
    return (
        f"{len(huge) / 1e6:.1f} MB message: {answer} after {answered_in:.2f} s; "
        f"a bystander's worst ping round trip {worst[0] * 1000:.0f} ms"
    )


# --- updates -------------------------------------------------------------------------------------


def publisher(layers: list, frames_per_sec: float, stopping: threading.Event, sent: list[int]):
    """Publish update frames (and an alert a minute) to every layer at the poller's rate."""
    from common.realtime import OI_ALERTS_GROUP, OI_UPDATES_GROUP

    symbols = [f"S{i:03d}USDT" for i in range(400)]

    async def run() -> None:
        started = time.monotonic()
        n = 0
        while not stopping.is_set():
            rows = [
                {"symbol": symbols[(2 * n + k) % 400], "openInterest": f"{100000 + n}.123",
                 "openInterestUsd": f"{150000 + n}.5", "markPrice": "1.5", "source": "realtime",
                 "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
                for k in range(2)
            ]  # fmt: skip
            for layer in layers:
                await layer.group_send(OI_UPDATES_GROUP, {"type": "oi.update", "data": rows})
                if n % int(60 * frames_per_sec) == 0:
                    alert = {"id": n, "symbol": rows[0]["symbol"], "direction": "UP"}
                    await layer.group_send(OI_ALERTS_GROUP, {"type": "oi.alert", "alert": alert})
            n += 1
            sent[0] = n
            await asyncio.sleep(max(0.0, started + n / frames_per_sec - time.monotonic()))

    asyncio.run(run())


def subscribed_channels(client: redis.Redis, prefix: str) -> int:
    return len(client.pubsub_channels(f"{prefix}specific.*"))


# --- the run -------------------------------------------------------------------------------------


def old_tree(ref: str) -> Path:
    """The files of `ref`, extracted to a temporary directory."""
    target = Path(tempfile.mkdtemp(prefix="ws-soak-old-"))
    archive = subprocess.run(
        ["git", "-C", str(_system.PROJECT_ROOT), "archive", ref],
        check=True, capture_output=True,
    ).stdout  # fmt: skip
    with tarfile.open(fileobj=__import__("io").BytesIO(archive)) as tar:
        tar.extractall(target, filter="data")
    return target


def start_old_web(tree: Path, env: dict[str, str]) -> tuple[_system.Process, str]:
    """The old code's ASGI server, as its Procfile ran it (no --ws-max-size)."""
    port = _system.free_port()
    args = _system.uvicorn_args(port)
    flag = args.index("--ws-max-size")
    del args[flag : flag + 2]
    web = _system.Process("ws-soak-web-old", args, env, LOG_DIR, cwd=tree)
    base_url = f"http://127.0.0.1:{port}"
    web.wait_for_http(f"{base_url}/health", timeout=60)
    return web, base_url


def line_fit_per_hour(points: list[tuple[float, float]]) -> float:
    n = len(points)
    if n < 3:
        return float("nan")
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    sxx = sum((x - mean_x) ** 2 for x, _ in points)
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / sxx * 3600


def run(args: argparse.Namespace, stack: ExitStack) -> bool:
    # the clients' library logs every reset it gets from a server (the stallers' hang-ups)
    logging.getLogger("websockets").setLevel(logging.CRITICAL)
    _system.database_create_if_missing(args.database_name)
    _system.redis_flush(args.redis_url)
    env = _system.process_env(
        simulator_url="http://127.0.0.1:9",  # no exchange: nothing here calls it
        database_url=_system.database_url_for(args.database_name),
        redis_url=args.redis_url,
        DJANGO_DEBUG="false",
    )
    _system.django_setup(env, migrate=True)
    from channels.layers import get_channel_layer
    from channels_redis.pubsub import RedisPubSubChannelLayer
    from django.conf import settings

    servers: list[tuple[str, _system.Process, str, str]] = []  # name, process, url, prefix
    web, url = _system.start_web("ws-soak-web", env, LOG_DIR)
    stack.callback(web.stop)
    new_prefix = settings.CHANNEL_LAYERS["default"]["CONFIG"]["prefix"]
    servers.append(("this code", web, url, new_prefix))
    layers = [get_channel_layer()]
    if args.old_ref:
        tree = old_tree(args.old_ref)
        stack.callback(shutil.rmtree, tree, ignore_errors=True)
        old_web, old_url = start_old_web(tree, env)
        stack.callback(old_web.stop)
        servers.append((args.old_ref, old_web, old_url, OLD_CHANNEL_PREFIX))
        layers.append(RedisPubSubChannelLayer(hosts=[args.redis_url]))  # prefix "asgi"

    if args.probe:
        for name, _, server_url, _ in servers:
            print(f"{name}: {huge_message_probe(server_url)}", flush=True)
    if args.minutes <= 0:
        return True

    stopping = threading.Event()
    stack.callback(stopping.set)
    sent = [0]
    threading.Thread(
        target=publisher, args=(layers, args.frames_per_sec, stopping, sent), daemon=True
    ).start()
    loads = [Load(name, server_url, args) for name, _, server_url, _ in servers]
    for load in loads:
        load.start()
        stack.callback(load.stop)
    redis_client = redis.Redis.from_url(args.redis_url)

    header = f"{'t (s)':>6} {'frames':>7} " + " ".join(
        f"{'RSS ' + name:>22} {'channels':>8} {'clients':>7}" for name, *_ in servers
    )
    print(
        f"{len(servers)} server(s), {args.frames_per_sec:g} update frames/s of 2 rows; "
        f"{args.readers} readers, a staller every {args.stall_every:g} s for "
        f"{args.stall_sec:g} s, a churner, a flooder per server"
    )
    print(header)
    series: dict[str, list[tuple[float, float]]] = {name: [] for name, *_ in servers}
    started = time.monotonic()
    end = started + args.minutes * 60
    while True:
        elapsed = time.monotonic() - started
        cells = []
        for (name, process, _, prefix), load in zip(servers, loads, strict=True):
            process.check_alive()
            rss = _system.tree_rss_bytes(process.pid) / MIB
            series[name].append((elapsed, rss))
            cells.append(
                f"{rss:>18.1f} MiB {subscribed_channels(redis_client, prefix):>8} "
                f"{load.connected_clients():>7}"
            )
        print(f"{elapsed:>6.0f} {sent[0]:>7} " + " ".join(cells), flush=True)
        if time.monotonic() >= end:
            break
        time.sleep(min(args.every, max(0.0, end - time.monotonic())))

    stopping.set()
    for load in loads:
        load.stop()
    print()
    for (name, *_), load in zip(servers, loads, strict=True):
        points = series[name]
        half = [p for p in points if p[0] >= points[-1][0] / 2]
        print(
            f"{name}: RSS {points[0][1]:.1f} -> {points[-1][1]:.1f} MiB; growth per hour "
            f"{line_fit_per_hour(half):+.1f} MiB over the second half, "
            f"{line_fit_per_hour(points):+.1f} MiB over the whole run; clients: {load.counts}"
        )
    print(f"{sent[0]} update frames published to each server")
    print(
        "rerun: python bench/ws_soak.py --minutes "
        f"{args.minutes:g}" + (f" --old-ref {args.old_ref}" if args.old_ref else "")
    )
    return True


if __name__ == "__main__":
    sys.exit(_system.run_main(run, parse_args()))
