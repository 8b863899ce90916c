"""A poller worker that is stopped (SIGTERM, as systemd and honcho stop it) leaves the egress plan
at once, while its warm shutdown still finishes the shard it runs, and asks for a dispatch: its
symbols go to the other groups from the next window, instead of being planned windows it never
runs until beat's next dispatch."""

import signal
import time

import pytest

from common.redis import get_redis
from oi.egress import GROUPS_KEY, group_plan_read, own_egress_id
from tests.fixtures.processes import wait_until, whole_universe_dispatched

pytestmark = pytest.mark.integration

POLL_LATENCY_MS = 1500
"""Each openInterest answer this late: a shard is always running when the stop comes."""


def test_a_stopped_poller_worker_leaves_the_plan_at_sigterm_not_after_its_last_shard(
    sim, celery_processes, api_client
):
    env = {"BINANCE_BASE_URL": sim.base_url}
    celery_processes.start_procfile_worker("worker", **env)
    poller = celery_processes.start_procfile_worker("poller", **env)
    celery_processes.start_beat(**env)
    whole_universe_dispatched(api_client)
    redis = get_redis()
    group = own_egress_id()
    wait_until(lambda: redis.hexists(GROUPS_KEY, group), 20, "the poller's group never went live")
    sim.set_faults(latency_ms=POLL_LATENCY_MS, paths=["/fapi/v1/openInterest"])
    # polls under way (each answered 1.5 s late)
    time.sleep(POLL_LATENCY_MS / 1000 + 1)

    stopped_at = time.monotonic()
    poller.process.send_signal(signal.SIGTERM)
    wait_until(lambda: not redis.hexists(GROUPS_KEY, group), 10, "the group never left the plan")
    left_after = time.monotonic() - stopped_at
    still_finishing = poller.process.poll() is None
    poller.process.wait(30)
    exited_after = time.monotonic() - stopped_at

    print(f"left the plan {left_after:.2f} s after SIGTERM, exited after {exited_after:.2f} s")
    # the group left at once, while the warm shutdown still waited on its late polls
    assert left_after < 1.5, (left_after, exited_after)
    assert still_finishing, (left_after, exited_after)


def test_a_stopped_poller_workers_windows_go_to_the_other_group_at_once_not_at_beats_next_dispatch(
    sim, celery_processes, api_client
):
    env = {"BINANCE_BASE_URL": sim.base_url}
    celery_processes.start_procfile_worker("worker", **env)
    leaving = celery_processes.start_procfile_worker("poller", BINANCE_EGRESS_ID="a", **env)
    celery_processes.start_procfile_worker("poller", BINANCE_EGRESS_ID="b", **env)
    beat = celery_processes.start_beat(**env)
    members, _ = whole_universe_dispatched(api_client)
    wait_until(lambda: set(group_plan_read()) == {"a", "b"}, 30, "the plan never held both groups")
    # beat stopped: no dispatch comes on its own any more
    beat.stop()

    leaving.process.send_signal(signal.SIGTERM)
    stopped_at = time.monotonic()
    plan = wait_until(
        lambda: set(plan := group_plan_read()) == {"b"} and plan,
        10,
        "the windows of the stopped group were not planned to the other",
    )
    replanned_after = time.monotonic() - stopped_at
    print(f"its windows planned to the other group {replanned_after:.2f} s after SIGTERM")
    # the dispatch the stopping worker asked for planned every symbol to the group left
    assert sorted(plan["b"]["symbols"]) == members
    assert replanned_after < 2, replanned_after
