"""Coarse samples for long windows (4 h, 24 h): one sample per symbol per COARSE_BUCKET_MS.
Pure: no Django, Redis or numpy.

A full-resolution ring of 24 h would hold 8,640 members per symbol (a sample every 10 s). Long
windows read a second ring instead, holding the *first* sample of every 5-minute bucket (the
bucket of a time is ``t - t % COARSE_BUCKET_MS``, UTC-aligned like openInterestHist's 5m
periods). The same function picks the same samples everywhere:

* the ring sink keeps, per bucket, the earliest sample it was given (oi.ring, a Lua script, so a
  sample written late still lands where it belongs);
* a SymbolTracker (alerts.rules) feeds its long windows the first sample of each bucket of the
  full-resolution stream it is given;
* the backtest and the change statistics downsample stored Postgres rows with ``first_per_bucket``.

5 minutes, not 1: openInterestHist's finest period is 5m, so backfilled history and live history
have the same resolution (a window is covered the same way on a fresh install as after a day of
polling), and the ring costs 300 members per symbol for 25 h (figures: bench/coarse_ring_memory.py).
"""

from collections.abc import Sequence

COARSE_BUCKET_MS = 300_000
LONG_WINDOW_ABOVE_SEC = 3 * 3600
"""Rule windows longer than this are long windows: evaluated against coarse samples."""
LONG_WINDOW_MAX_SEC = 24 * 3600


def bucket_of(t_ms: int) -> int:
    return t_ms - t_ms % COARSE_BUCKET_MS


def is_long_window(window_sec: int) -> bool:
    return window_sec > LONG_WINDOW_ABOVE_SEC


def first_per_bucket(times_ms: Sequence[int]) -> list[int]:
    """Indices of the first sample of each bucket, for times in increasing order."""
    indices = []
    last_bucket = None
    for index, t_ms in enumerate(times_ms):
        bucket = t_ms - t_ms % COARSE_BUCKET_MS
        if bucket != last_bucket:
            indices.append(index)
            last_bucket = bucket
    return indices


def merged_history(coarse: Sequence, fine: Sequence, time_of=lambda sample: sample.time_ms) -> list:
    """One stream for a tracker rebuilt from both rings: the coarse samples older than the
    oldest full-resolution one, then the full-resolution ones. Downsampling the result gives the
    coarse ring back (the coarse ring holds the first sample of each bucket of the same stream)."""
    if not fine:
        return list(coarse)
    first_fine = time_of(fine[0])
    return [sample for sample in coarse if time_of(sample) < first_fine] + list(fine)
