"""The stream watchdog: is a stream fresh? Pure: no Django, Redis or network.

A stream is stale when its latest frame is older than its expected cadence × a factor
(STREAMS_STALE_FACTOR). `!forceOrder@arr` can be quiet for minutes on a healthy connection
(shared/binance/WS_FACTS.md §4.5), so it has no cadence of its own: it is judged by the
connection it shares with the mark-price stream, which sends every second.
"""

from dataclasses import dataclass
from enum import StrEnum

from exchange.streams import MarketStream


class StreamState(StrEnum):
    FRESH = "fresh"
    STALE = "stale"
    NEVER = "never"
    """No frame was ever received (a wrong path looks like this)."""
    DISABLED = "disabled"


EXPECTED_CADENCE_SEC: dict[MarketStream, float | None] = {
    MarketStream.MARK_PRICE: 1.0,
    MarketStream.MINI_TICKER: 1.0,
    MarketStream.LIQUIDATIONS: None,
}
HEARTBEAT_STREAM = MarketStream.MARK_PRICE
"""The steady stream on the shared connection that tells whether quiet streams are alive."""


@dataclass(frozen=True)
class StreamHealth:
    stream: MarketStream
    state: StreamState
    last_frame_age_sec: float | None
    stale_after_sec: float

    @property
    def fresh(self) -> bool:
        return self.state is StreamState.FRESH


def stream_health(
    last_frame_ms: dict[str, int], *, now_ms: int, stale_factor: float, enabled: bool = True
) -> dict[MarketStream, StreamHealth]:
    """Each stream's state from its latest frame time (ms), or its connection's when it has no
    cadence of its own."""
    heartbeat_cadence = EXPECTED_CADENCE_SEC[HEARTBEAT_STREAM] or 1.0
    health: dict[MarketStream, StreamHealth] = {}
    for stream, cadence in EXPECTED_CADENCE_SEC.items():
        judged_by = stream if cadence is not None else HEARTBEAT_STREAM
        stale_after = (cadence or heartbeat_cadence) * stale_factor
        last = last_frame_ms.get(judged_by)
        age = None if last is None else max(0, now_ms - last) / 1000
        if not enabled:
            state = StreamState.DISABLED
        elif age is None:
            state = StreamState.NEVER
        else:
            state = StreamState.FRESH if age <= stale_after else StreamState.STALE
        own_last = last_frame_ms.get(stream)
        own_age = None if own_last is None else max(0, now_ms - own_last) / 1000
        health[stream] = StreamHealth(stream, state, own_age, stale_after)
    return health
