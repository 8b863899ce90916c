"""The watchdog's rule, directly (pure code): stale past cadence × factor; liquidations, which
may be quiet for minutes, judged by their connection's steady mark-price stream."""

from exchange.streams import MarketStream
from streams.watchdog import StreamState, stream_health

NOW = 1_800_000_000_000


def test_a_stream_is_stale_past_its_cadence_times_the_factor():
    health = stream_health(
        {MarketStream.MARK_PRICE: NOW - 4_900, MarketStream.MINI_TICKER: NOW - 5_100},
        now_ms=NOW,
        stale_factor=5,
    )
    assert health[MarketStream.MARK_PRICE].state is StreamState.FRESH
    assert health[MarketStream.MINI_TICKER].state is StreamState.STALE
    assert health[MarketStream.MINI_TICKER].last_frame_age_sec == 5.1


def test_quiet_liquidations_follow_the_connection_and_a_never_seen_stream_says_so():
    quiet = stream_health(
        {MarketStream.MARK_PRICE: NOW - 500, MarketStream.LIQUIDATIONS: NOW - 600_000},
        now_ms=NOW,
        stale_factor=5,
    )
    assert quiet[MarketStream.LIQUIDATIONS].state is StreamState.FRESH
    assert quiet[MarketStream.LIQUIDATIONS].last_frame_age_sec == 600.0
    wrong_path = stream_health({}, now_ms=NOW, stale_factor=5)
    assert {h.state for h in wrong_path.values()} == {StreamState.NEVER}
    off = stream_health({}, now_ms=NOW, stale_factor=5, enabled=False)
    assert {h.state for h in off.values()} == {StreamState.DISABLED}
