"""What the market stream client sees on a wrong path, and what the watchdog makes of it.

Binance (since 2026-04-23, shared/binance/WS_FACTS.md) accepts a connection on a path that does
not route the market streams (the legacy `/ws/...` or `/stream`, without `/market`), ACKs every
SUBSCRIBE and then sends nothing, with no error; the simulator does the same. This runs the
production client (exchange.streams.MarketStreamClient) for a few seconds against the simulator
on a right and on a wrong path, and feeds what it received to the production watchdog
(streams.watchdog.stream_health): no Redis, Postgres or Django needed.

Run it (a simulator first):
    .venv/bin/python -m simulator --port 18931 &
    .venv/bin/python bench/stream_wrong_path.py --base-url ws://127.0.0.1:18931 --seconds 8
"""

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from exchange.streams import MarketStreamClient, StreamClientSettings
from streams.watchdog import stream_health

STALE_FACTOR = 5.0  # STREAMS_STALE_FACTOR's default


async def listen(base_url: str, path: str, seconds: float) -> tuple[MarketStreamClient, dict]:
    last_frame_ms: dict[str, int] = {}

    def on_frame(stream: str, values: list, received_ms: int) -> None:
        last_frame_ms[stream] = received_ms

    client = MarketStreamClient(
        StreamClientSettings(base_url=base_url, path=path, silence_reconnect_sec=30.0),
        on_frame,
        lambda outage: None,
    )
    stop = asyncio.Event()
    asyncio.get_running_loop().call_later(seconds, stop.set)
    await client.run(stop)
    return client, last_frame_ms


def report(base_url: str, path: str, seconds: float) -> None:
    client, last_frame_ms = asyncio.run(listen(base_url, path, seconds))
    counters = client.counters
    print(f"path {path!r}: {client.settings.url()}")
    print(
        f"  connects={counters.connects} attempts={counters.connection_attempts} "
        f"messages={counters.messages} frames={dict(counters.frames)}"
    )
    health = stream_health(last_frame_ms, now_ms=int(time.time() * 1000), stale_factor=STALE_FACTOR)
    for stream, part in health.items():
        age = "-" if part.last_frame_age_sec is None else f"{part.last_frame_age_sec:.1f} s"
        print(f"  watchdog {stream:<18} {part.state:<6} last frame {age}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", required=True, help="e.g. ws://127.0.0.1:18931")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--wrong-path", default="/ws", help="the legacy path (default /ws)")
    args = parser.parse_args()
    report(args.base_url, "/market", args.seconds)
    report(args.base_url, args.wrong_path, args.seconds)


if __name__ == "__main__":
    main()
