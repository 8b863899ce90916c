"""Processes killed as a crash would (SIGKILL, no chance to clean up) under a running system.

1. The oi_poll worker (the Procfile's `poller`: one process, its pool is threads; the whole
   tree under respawn.sh is killed, whatever it holds) is killed while it is polling shards, right when one symbol's poll carries an OI jump that must raise an alert;
   scripts/respawn.sh starts it again, as in the Procfile. Measured: from the kill, and from the
   restarted worker's "ready.", until every liquid symbol has a new sample in Postgres (its
   snapshot with an exchange time after the kill, taken at the row's created_at, the database's
   clock at insert). Checked: the first poll after the kill comes within two windows of ready or
   right after the windows planned before the kill (lost with the worker's reserved shards),
   and from that poll every symbol has a new sample within one interval; the ring
   buffers hold every sample they held at the kill and every member decodes; every realtime
   sample in a ring at the kill, and every row in Postgres at the kill, is in Postgres after;
   the jump raises its alert exactly once per rule, and no (symbol, direction, rule) alerts
   twice within the rule's cooldown.
2. Beat is killed and respawned: measured from the new beat's "beat: Starting" until every
   symbol has a sample polled after it; at most one beat process at any time, no symbol
   polled twice in one interval (no window dispatched twice), and none missing a poll (the
   new beat's first dispatch plans the window it lands in).

Each is a test of its own on a system of its own. The figures are printed and saved in
test-artifacts/process-kills-poller.txt and process-kills-beat.txt.
"""

import contextlib
import itertools
import math
import os
import signal
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.conf import settings
from django.db.models import Min

from alerts.fire_once import CLAIM_STALE_MS
from alerts.models import AlertRule, OpenInterestAlert
from oi.keys import BACKFILL_DONE_KEY, COUNTERS_KEY, WINDOW_CLAIM_KEY
from oi.models import OpenInterestSnapshot
from oi.ring import decode_member, ring_key
from tests.fixtures.processes import (
    ARTIFACTS,
    process_tree_pids,
    wait_until,
    whole_universe_dispatched,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.reliability,
    pytest.mark.django_db(transaction=True),
]

SPIKE_PCT = 20
OI_SAMPLE_MS = 1000  # the simulator's OI sampling grid: a sample's time is its request's second


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def _utc(ms: float) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


# --- processes, from /proc -----------------------------------------------------------------------


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def celery_tree_under(supervisor_pid: int) -> list[int]:
    """The Celery process respawn.sh runs, and its pool children if it has any (a prefork pool;
    a thread pool has none) - not respawn.sh itself."""
    descendants = process_tree_pids(supervisor_pid)[1:]
    return [pid for pid in descendants if "celery" in cmdline(pid)]


def sigkill_all(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def log_count(process, text: str) -> int:
    return process.log_path.read_text(errors="replace").count(text)


# --- what is stored ------------------------------------------------------------------------------


def rings(redis_client, symbols: list[str]) -> dict[str, set[str]]:
    with redis_client.pipeline(transaction=False) as pipe:
        for symbol in symbols:
            pipe.zrange(ring_key(symbol), 0, -1)
        return {s: set(m) for s, m in zip(symbols, pipe.execute(), strict=True)}


def realtime_rows(symbols: list[str]) -> set[tuple[str, int]]:
    return {
        (symbol, int(ts.timestamp() * 1000))
        for symbol, ts in OpenInterestSnapshot.objects.filter(
            symbol__in=symbols, source="realtime"
        ).values_list("symbol", "ts")
    }


def first_stored_after(symbols: list[str], sample_from_ms: int) -> dict[str, int]:
    """Per symbol, when (created_at, ms) its first realtime sample of time >= sample_from_ms
    reached Postgres."""
    rows = (
        OpenInterestSnapshot.objects.filter(
            symbol__in=symbols, source="realtime", ts__gte=_utc(sample_from_ms)
        )
        .values("symbol")
        .annotate(first=Min("created_at"))
    )
    return {row["symbol"]: round(row["first"].timestamp() * 1000) for row in rows}


def wait_all_stored_after(symbols: list[str], sample_from_ms: int, timeout: float) -> int:
    """Wait until every symbol has a sample of time >= sample_from_ms in Postgres; returns
    when the last of them got its first (created_at, ms)."""
    deadline = time.monotonic() + timeout
    while len(firsts := first_stored_after(symbols, sample_from_ms)) < len(symbols):
        if time.monotonic() > deadline:
            missing = sorted(set(symbols) - set(firsts))
            raise TimeoutError(f"no new sample within {timeout} s for {len(missing)}: {missing}")
        time.sleep(0.2)
    return max(firsts.values())


def polling_gaps_ms(times: dict[str, list[int]], symbols: list[str], since_ms: int) -> list[int]:
    """Gaps between consecutive openInterest requests of each symbol after since_ms."""
    gaps = []
    for symbol in symbols:
        polled = sorted(t for t in times.get(symbol, []) if t >= since_ms)
        gaps.extend(b - a for a, b in itertools.pairwise(polled))
    return gaps


def next_sample_second(ms: int) -> int:
    """The first sample time the exchange can report for a request sent at or after `ms`."""
    return math.ceil(ms / OI_SAMPLE_MS) * OI_SAMPLE_MS


def alerts_twice_in_cooldown(since_ms: int) -> list[tuple[str, str, str]]:
    """(symbol, direction, rule) that alerted twice within the rule's cooldown."""
    cooldown_ms = {
        name: cooldown * 1000
        for name, cooldown in AlertRule.objects.values_list("name", "cooldown_sec")
    }
    seen: dict[tuple[str, str, str], list[int]] = {}
    for symbol, direction, rule, ts in OpenInterestAlert.objects.filter(
        created_at__gte=_utc(since_ms)
    ).values_list("symbol", "direction", "rule_name", "ts"):
        seen.setdefault((symbol, direction, rule), []).append(round(ts.timestamp() * 1000))
    doubled = []
    for key, times in seen.items():
        times.sort()
        if any(b - a < cooldown_ms.get(key[2], 0) for a, b in itertools.pairwise(times)):
            doubled.append(key)
    return doubled


# --- the system, as in the Procfile ---------------------------------------------------------------


@dataclass(frozen=True)
class RunningSystem:
    poller: object
    beat: object
    members: list[str]
    interval_ms: int
    window_ms: int
    started_ms: int

    @property
    def summary(self) -> str:
        return (
            f"{len(self.members)} symbols, interval {self.interval_ms / 1000:g} s, "
            f"window {self.window_ms} ms"
        )


def system_running(sim, celery_processes, api_client) -> RunningSystem:
    """Worker, poller and beat as in the Procfile (the poller and beat supervised by
    respawn.sh), the default alert rules with no contracts minimum (any symbol's jump can
    alert), every liquid symbol dispatched and polled once."""
    started_ms = now_ms()
    AlertRule.objects.update(min_delta_contracts=None)
    env = {"BINANCE_BASE_URL": sim.base_url}
    celery_processes.start_procfile_worker("worker", **env)
    poller = celery_processes.start_procfile_worker("poller", supervised=True, **env)
    beat = celery_processes.start_beat(supervised=True, **env)
    members, status = whole_universe_dispatched(api_client)
    interval_ms = round(status["intervalSec"] * 1000)
    wait_until(
        lambda: len(first_stored_after(members, started_ms)) == len(members),
        interval_ms / 1000 + 10,
        "not every symbol was polled before the kill",
    )
    window_ms = settings.OI_WINDOW_SEC * 1000
    return RunningSystem(poller, beat, members, interval_ms, window_ms, started_ms)


def report_write(name: str, report: list[str]) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / f"process-kills-{name}.txt").write_text("\n".join(report) + "\n")
    print("\n".join(report))


# --- the scenarios -------------------------------------------------------------------------------


def test_a_sigkilled_poller_worker_resumes_within_an_interval_and_loses_no_sample_nor_alert(
    sim, celery_processes, redis_client, api_client
):
    system = system_running(sim, celery_processes, api_client)
    poller, members = system.poller, system.members
    interval_ms, window_ms, test_start_ms = system.interval_ms, system.window_ms, system.started_ms
    # a symbol with its baseline backfilled and no UP alert yet: the jump will alert
    target = wait_until(
        lambda: next(
            (
                s
                for s in members
                if redis_client.exists(BACKFILL_DONE_KEY.format(s))
                and not OpenInterestAlert.objects.filter(symbol=s, direction="UP").exists()
                and redis_client.zcard(ring_key(s)) > 30
            ),
            None,
        ),
        30,
        "no symbol was backfilled",
    )
    alerts_before = set(
        OpenInterestAlert.objects.filter(symbol=target, direction="UP").values_list("id", flat=True)
    )
    report = [system.summary]

    # 1. when the oi_poll worker is SIGKILLed (its process: the pool is threads, so the shards,
    # their poll threads and the reserved ETA shards all live in it) right as the poll that
    # carries an OI jump of one symbol comes back, i.e. while its shard is storing
    at_ms = next_sample_second(now_ms() + 500)
    sim.inject_event(target, "spike", SPIKE_PCT, at=at_ms)
    wait_until(
        lambda: any(t >= at_ms for t in sim.oi_request_times(target)),
        interval_ms / 1000 + 5,
        "the jump was never polled",
    )
    tree = celery_tree_under(poller.process.pid)
    assert len(tree) == 1, f"expected one worker process (a thread pool), found {tree}"
    readies = log_count(poller, "ready.")
    sigkill_all(tree)
    kill_ms = now_ms()
    rings_at_kill = rings(redis_client, members)
    # windows planned (claimed) before the kill that start after it: their shards were reserved
    # (ETA) by the killed worker, so they are lost with it (and planned again once it restarts)
    lost_windows = sum(
        1
        for window in range(kill_ms // window_ms + 1, kill_ms // window_ms + 8)
        if redis_client.exists(WINDOW_CLAIM_KEY.format(window))
    )
    rows_at_kill = realtime_rows(members)

    # then respawn.sh starts it again, and every symbol has a new sample within about an interval
    wait_until(lambda: log_count(poller, "ready.") > readies, 30, "the worker was not respawned")
    ready_ms = now_ms()
    resumed_ms = wait_all_stored_after(members, next_sample_second(kill_ms), 30)
    from_kill, from_ready = resumed_ms - kill_ms, resumed_ms - ready_ms
    times = sim.stats(symbols=members)["open_interest_times"]
    first_poll_ms = min(t for s in members for t in times.get(s, []) if t > kill_ms)
    report.append(
        f"poller worker SIGKILLed (tree of {len(tree)}): respawned and ready "
        f"{(ready_ms - kill_ms) / 1000:.1f} s after the kill; every symbol had a new sample in "
        f"Postgres {from_kill / 1000:.1f} s after the kill = {from_ready / 1000:.1f} s after "
        f"ready ({from_ready / interval_ms:.2f} intervals); the first poll after the kill "
        f"{(first_poll_ms - ready_ms) / 1000:.1f} s after ready, all symbols "
        f"{(resumed_ms - first_poll_ms) / 1000:.1f} s after that; {lost_windows} windows planned "
        f"before the kill and starting after it lost with the worker's reserved shards; "
        f"replans {redis_client.hget(COUNTERS_KEY, 'replans') or 0}"
    )

    # the jump alerts exactly once per rule, across the kill and the restart
    def target_alerts() -> list[tuple[str, datetime]]:
        return list(
            OpenInterestAlert.objects.filter(symbol=target, direction="UP")
            .exclude(id__in=alerts_before)
            .values_list("rule_name", "created_at")
        )

    # A kill between a rule's fire claim and its alert row holds that rule back until the claim
    # is stale (CLAIM_STALE_MS), then the next sample raises it: late, never lost nor doubled.
    raised = wait_until(
        target_alerts, (CLAIM_STALE_MS + interval_ms) / 1000 + 10, "the jump never alerted"
    )
    time.sleep(interval_ms / 1000 + 1)  # a further poll still carries the jump
    raised = target_alerts()
    first_ms = min(created.timestamp() * 1000 for _, created in raised)
    when = "before the kill" if first_ms < kill_ms else "after the restart"
    report.append(
        f"alerts of the jump on {target}: {len(raised)} stored, rules "
        f"{sorted(rule for rule, _ in raised)} (first {when})"
    )

    # rings intact: every member held at the kill is still there, and every member decodes
    rings_after = rings(redis_client, members)
    # (members older than the ring's window are trimmed by design)
    trim_before_ms = now_ms() - settings.OI_RING_WINDOW_SEC * 1000 + 60_000
    lost_from_rings = {
        s: {
            m
            for m in rings_at_kill[s] - rings_after[s]
            if decode_member(m).time_ms > trim_before_ms
        }
        for s in members
    }
    undecodable = []
    for members_of_symbol in rings_after.values():
        for member in members_of_symbol:
            try:
                decode_member(member)
            except (ValueError, ArithmeticError):
                undecodable.append(member)
    # acknowledged samples: in a ring at the kill (realtime), or in Postgres at the kill
    acknowledged = rows_at_kill | {
        (s, sample.time_ms)
        for s in members
        for sample in map(decode_member, rings_at_kill[s])
        if not sample.backfilled
    }

    def lost_samples() -> set[tuple[str, int]]:
        return acknowledged - realtime_rows(members)

    # (they are all written at once: no database fault here, so nothing was parked for later)
    deadline = time.monotonic() + 5
    while (lost := lost_samples()) and time.monotonic() < deadline:
        time.sleep(0.5)
    doubled = alerts_twice_in_cooldown(test_start_ms)
    report.append(
        f"rings: {sum(len(m) for m in rings_at_kill.values())} members at the kill, "
        f"{sum(len(m) for m in lost_from_rings.values())} gone after, {len(undecodable)} "
        f"undecodable; acknowledged samples {len(acknowledged)}, lost {len(lost)}; "
        f"(symbol, direction, rule) alerting twice within the cooldown: {len(doubled)}"
    )

    report_write("poller", report)

    # Polling resumes with the next window after ready: the windows planned before the kill (up
    # to DISPATCH_LOOKAHEAD_WINDOWS ahead) were lost with the killed worker's reserved shards,
    # but the new worker's start makes the first dispatch after it (beat sends one every window)
    # plan again every window not started. From that first poll, every symbol comes round
    # within an interval.
    assert first_poll_ms <= ready_ms + 2 * window_ms + 1000, (first_poll_ms, ready_ms, kill_ms)
    assert resumed_ms - first_poll_ms <= interval_ms + 1000, "not every symbol came round"
    fired_rules = [rule for rule, _ in raised]
    assert len(fired_rules) == len(set(fired_rules)), f"a rule alerted twice: {fired_rules}"
    assert not any(lost_from_rings.values()), {s: m for s, m in lost_from_rings.items() if m}
    assert not undecodable, undecodable[:5]
    assert not lost, sorted(lost)[:10]
    assert not doubled, doubled


def test_a_sigkilled_beat_is_respawned_alone_and_no_symbol_misses_or_doubles_a_poll(
    sim, celery_processes, redis_client, api_client
):
    system = system_running(sim, celery_processes, api_client)
    beat, members, interval_ms = system.beat, system.members, system.interval_ms
    report = [system.summary]

    # when beat is SIGKILLed, respawn.sh starts one again, and polling goes on
    beat_tree = celery_tree_under(beat.process.pid)
    assert beat_tree, "no beat process under respawn.sh"
    starts = log_count(beat, "beat: Starting")
    sigkill_all(beat_tree)
    beat_kill_ms = now_ms()
    most_beats = 0
    while log_count(beat, "beat: Starting") == starts:
        most_beats = max(most_beats, len(celery_tree_under(beat.process.pid)))
        assert now_ms() - beat_kill_ms < 30_000, "beat was not respawned"
        time.sleep(0.05)
    beat_start_ms = now_ms()
    beat_resumed_ms = wait_all_stored_after(members, next_sample_second(beat_start_ms), 30)
    for _ in range(10):
        most_beats = max(most_beats, len(celery_tree_under(beat.process.pid)))
        time.sleep(0.1)
    gaps = polling_gaps_ms(
        sim.stats(symbols=members)["open_interest_times"], members, beat_kill_ms - interval_ms
    )
    counters = redis_client.hgetall(COUNTERS_KEY)
    report.append(
        f"beat SIGKILLed: respawned and started {(beat_start_ms - beat_kill_ms) / 1000:.1f} s "
        f"after the kill; every symbol had a sample polled after the new beat's start in Postgres "
        f"{(beat_resumed_ms - beat_start_ms) / 1000:.1f} s after it "
        f"({(beat_resumed_ms - beat_start_ms) / interval_ms:.2f} intervals); at most "
        f"{most_beats} beat process at a time; per-symbol polling gaps around it "
        f"{min(gaps, default=0) / 1000:.1f}..{max(gaps, default=0) / 1000:.1f} s; "
        f"windows missed {counters.get('windows_missed', 0)}, "
        f"polls dropped late {counters.get('polls_dropped_late', 0)}"
    )

    report_write("beat", report)

    # the first dispatch of the new beat plans the window it lands in (its overdue polls at
    # once), so a symbol waits at most a window longer than its interval
    assert beat_resumed_ms - beat_start_ms <= interval_ms + 2 * system.window_ms + 1000
    assert most_beats == 1
    assert min(gaps) >= interval_ms / 2, "a symbol was polled twice in one interval"
    assert max(gaps) < 2 * interval_ms, "a symbol missed a poll while beat was away"
