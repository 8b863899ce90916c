"""A poller worker that is stopped (SIGTERM, as systemd and honcho stop it) leaves the egress plan
at once, while its warm shutdown still finishes the shard it runs: the dispatcher then plans its
symbols to the other groups from the next window, instead of planning it windows it never runs."""

import signal
import time

import pytest

from common.redis import get_redis
from oi.egress import GROUPS_KEY, own_egress_id
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

    # the group left at once, while the warm shutdown still waited on its late polls
    assert left_after < 0.5, (left_after, exited_after)
    assert still_finishing, (left_after, exited_after)
