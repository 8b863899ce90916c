"""Redis keys of the market-stream stores. This app owns the mark-price store: the `streams`
process writes it from `!markPrice@arr@1s`, and the poller's REST fallback writes it through
streams.services.mark_prices_store. (The first three keep their historical `oi:` names.)"""

MARK_PRICE_KEY = "oi:mark_price"
FUNDING_RATE_KEY = "oi:funding_rate"
MARK_PRICE_TIME_KEY = "oi:mark_price:time_ms"
MARK_PRICE_SOURCE_KEY = "streams:mark_price:source"
"""Who wrote the mark prices last: "stream" or "rest" (set by the poller's dispatch)."""
INDEX_PRICE_KEY = "streams:index_price"
NEXT_FUNDING_TIME_KEY = "streams:next_funding_time_ms"
QUOTE_VOLUME_KEY = "streams:quote_volume_24h"
QUOTE_VOLUME_TIME_KEY = "streams:quote_volume_24h:time_ms"
LAST_FRAME_KEY = "streams:last_frame_ms"
"""Hash: stream name -> local receive time (ms) of its latest frame."""
FRAMES_KEY = "streams:frames"
"""Hash: stream name -> frames received (all time)."""
STATUS_KEY = "streams:status"
"""Hash: connects, connection_attempts, messages, bad_frames, dropped_frames (the process fell
behind: its queue was full), run_since_ms (first frame of the unbroken run), updated_ms."""
OUTAGES_KEY = "streams:outages"
"""Sorted set of outages, score = end ms, member "start_ms:end_ms:cause" (unique by time)."""
OUTAGES_KEPT = 200
