"""Redis keys of the realtime poller (the ring buffers' own are in oi.ring). The mark-price store
belongs to the streams app (streams.keys); its keys are re-exported here for oi's readers."""

from streams.keys import FUNDING_RATE_KEY as FUNDING_RATE_KEY
from streams.keys import MARK_PRICE_KEY as MARK_PRICE_KEY
from streams.keys import MARK_PRICE_TIME_KEY as MARK_PRICE_TIME_KEY

MARK_SOURCE_LAST_KEY = "oi:poller:mark_source"
"""The mark-price source the last dispatch planned for ("stream" or "rest")."""

WINDOW_CLAIM_KEY = "oi:poller:window:{}"
"""The epoch of the plan that holds a window (oi.poller.poller_dispatch)."""
SHARD_STARTED_KEY = "oi:poller:started:{window}:{group}"
"""Set when a group's shard of a window starts: a group gone before its shard of a window already
under way (a stopped or dead worker) has that window's polls taken over by the others."""
EPOCH_KEY = "oi:poller:epoch"
PLAN_SIGNATURE_KEY = "oi:poller:plan_signature"
"""The egress groups and usable budgets the last dispatch planned for (JSON)."""
SEGMENTS_KEY = "oi:poller:segments"
"""The schedule's segments (start, anchor, interval in ms), see oi.schedule.ScheduleSegment."""
LAST_WINDOW_KEY = "oi:poller:last_window"
STATUS_KEY = "oi:poller:status"
COUNTERS_KEY = "oi:poller:counters"
CONSECUTIVE_FAILURES_KEY = "oi:poller:consecutive_failures"
LAST_FAILURE_KEY = "oi:poller:last_failure"
WEIGHT_BUCKET_KEY = "oi:poller:weight:{}:{}"
"""Weight the poller of one egress group sent in one second (egress id, epoch second)."""
BACKFILL_DONE_KEY = "oi:backfill:done:{}"
BACKFILL_QUEUED_KEY = "oi:backfill:queued:{}"
UNIVERSE_REQUESTED_KEY = "oi:poller:universe_requested"
SNAPSHOTS_STORED_TOTAL_KEY = "oi:snapshots:stored_total"
DISPATCH_SENT_KEY = "oi:poller:dispatch_sent_ms"
