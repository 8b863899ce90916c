"""The stream client (exchange/streams.py) against the simulator's streams, over real
WebSockets: typed values, backoff under a reconnect storm, outages, the 24 h rotation."""

import asyncio
import random
import threading
import time
from decimal import Decimal

from exchange.streams import (
    Liquidation,
    LiquidationSide,
    MarketStream,
    MarketStreamClient,
    MarkPriceUpdate,
    MiniTicker,
    StreamClientSettings,
    backoff_delay,
)


def client_settings(sim, **overrides) -> StreamClientSettings:
    values = dict(
        base_url=f"ws://{sim.host}:{sim.port}",
        backoff_base_sec=0.2,
        backoff_max_sec=1.0,
        silence_reconnect_sec=5.0,
    )
    values.update(overrides)
    return StreamClientSettings(**values)


def run_client(client: MarketStreamClient, seconds: float, during=None, until=None) -> None:
    """Run the client for `seconds`; `during(elapsed)` is called from another thread at 0.1 s;
    `until()` (from another thread too), once true, ends the run sooner."""

    async def main() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(client.run(stop))
        started = time.monotonic()
        while (elapsed := time.monotonic() - started) < seconds:
            if during is not None:
                await asyncio.to_thread(during, elapsed)
            if until is not None and await asyncio.to_thread(until):
                break
            await asyncio.sleep(0.1)
        stop.set()
        await asyncio.wait_for(task, 5)

    asyncio.run(main())


def test_frames_are_parsed_to_typed_values_equal_to_the_wire(sim):
    sim.control("PATCH", "/sim/streams/faults", {"liquidation_rate": 0.3})
    received: list[tuple[str, list]] = []
    client = MarketStreamClient(
        client_settings(sim), lambda stream, values, _: received.append((stream, values))
    )
    run_client(client, 2.6)
    by_type: dict[type, list] = {}
    for _, values in received:
        for value in values:
            by_type.setdefault(type(value), []).append(value)
    assert set(by_type) == {MarkPriceUpdate, MiniTicker, Liquidation}
    assert client.counters.frames[MarketStream.MARK_PRICE] >= 4  # two partial frames a second
    assert client.counters.bad_frames == 0

    marks = by_type[MarkPriceUpdate]
    assert all(isinstance(m.mark_price, Decimal) and m.mark_price > 0 for m in marks)
    assert all(isinstance(m.next_funding_time_ms, int) for m in marks if m.symbol == "BTCUSDT")
    # the newest BTCUSDT row against REST premiumIndex of the same second
    btc = [m for m in marks if m.symbol == "BTCUSDT"][-1]
    rest = sim.get("/fapi/v1/premiumIndex", {"symbol": "BTCUSDT"}).json()
    assert btc.next_funding_time_ms == rest["nextFundingTime"]
    assert abs(btc.mark_price / Decimal(rest["markPrice"]) - 1) < Decimal("0.01")

    tickers = by_type[MiniTicker]
    assert all(isinstance(t.quote_volume, Decimal) and t.quote_volume > 0 for t in tickers)
    liquidations = by_type[Liquidation]
    assert {liq.side for liq in liquidations} <= set(LiquidationSide)
    for liq in liquidations:
        assert liq.usd == liq.quantity * liq.average_price
        assert 900 <= liq.event_time_ms - liq.trade_time_ms <= 1100


def test_a_reconnect_storm_is_bounded_by_the_backoff(sim):
    """Every handshake refused for 4 s: without a backoff the client would try hundreds of times;
    with it (0.2 s doubling to 1 s, jittered down to half) at most about 8 times."""
    sim.control("PATCH", "/sim/streams/faults", {"refuse": True})
    client = MarketStreamClient(client_settings(sim), lambda *_: None, rng=random.Random(1))
    run_client(client, 4.0)
    attempts = sim.control("GET", "/sim/streams")["connection_attempts"]
    assert attempts == client.counters.connection_attempts
    # the shortest possible waits: 0.1, 0.2, then 0.5 s each (half of each ceiling)
    assert 3 <= attempts <= 1 + 1 + 1 + (4.0 - 0.3) / 0.5
    assert client.counters.connects == 0
    delays = [backoff_delay(n, base_sec=0.2, max_sec=1.0, rng=random.Random(n)) for n in range(9)]
    assert max(delays) <= 1.0


def test_after_a_dropped_connection_the_client_reconnects_and_records_the_gap(sim):
    outages = []
    client = MarketStreamClient(client_settings(sim), lambda *_: None, outages.append)
    dropped = threading.Event()

    def drop_once(elapsed: float) -> None:
        if elapsed > 1.5 and not dropped.is_set():
            dropped.set()
            sim.control("POST", "/sim/streams/drop")

    run_client(client, 4.5, during=drop_once)
    assert client.counters.connects == 2
    (outage,) = outages
    assert outage.cause == "dropped"
    # from the last frame before the drop to the first one after the reconnect: about a second
    assert 0.5 <= outage.seconds <= 3.0


def test_the_client_rotates_its_connection_before_the_servers_24_hour_close(sim):
    """The simulator closes at 3 s (its compressed "24 h"); the client rotates at 1.2 s, so it
    never meets the server's close (no 1001 in the simulator's closes)."""
    sim.control("PATCH", "/sim/streams/faults", {"max_connection_sec": 3})
    client = MarketStreamClient(client_settings(sim, max_connection_sec=1.2), lambda *_: None)
    run_client(client, 10, until=lambda: client.counters.connects >= 3)
    assert client.counters.connects >= 3
    assert sim.control("GET", "/sim/streams")["closes"] == {}
    assert all(outage.cause == "lifetime" for outage in client.counters.outages)


def test_on_a_wrong_path_the_client_connects_and_receives_nothing(sim):
    """Binance's silent failure (WS_FACTS §1.1): the unrouted path accepts the connection and
    never sends a market frame; only the frame counters (and the watchdog) can tell."""
    received = []
    client = MarketStreamClient(
        client_settings(sim, path=""), lambda stream, values, _: received.append(stream)
    )
    run_client(client, 2.5)
    assert client.counters.connects == 1
    assert received == [] and client.last_frame_ms is None


def test_the_client_answers_the_servers_pings(sim):
    """Binance pings every 3 min and drops a connection that does not answer within 10 min; the
    simulator pings every 0.5 s here and counts the pongs it gets back. (Up to 10 s: under a
    loaded machine the connection can take a second to open; 2.6 s flaked with 2 pongs.)"""
    sim.control("PATCH", "/sim/streams/faults", {"ping_interval_sec": 0.5})
    client = MarketStreamClient(client_settings(sim), lambda *_: None)

    def pongs() -> int:
        return sim.control("GET", "/sim/streams")["pongs_received"]

    run_client(client, 10, until=lambda: pongs() >= 3)
    assert pongs() >= 3
    assert client.counters.connects == 1
