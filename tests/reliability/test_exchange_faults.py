"""The running system under exchange faults: 10% 5xx, 5% timeouts, 2% garbage, then a burst of
429s, then a 418 ban (two tests, each on a system of its own). It keeps polling the others,
never provokes a ban itself, and returns to full rate when the ban ends. Samples lost against
expected are printed and saved."""

import time
from datetime import datetime

import pytest

from common.timeutil import datetime_from_ms
from oi.models import OpenInterestSnapshot
from tests.fixtures.processes import ARTIFACTS, whole_universe_dispatched

pytestmark = [
    pytest.mark.integration,
    pytest.mark.reliability,
    pytest.mark.django_db(transaction=True),
]

FAULT_SECONDS = 30
BAN_DETECTION_MS = 1500
"""From the first request a 429 burst or a ban answers to the last: the first answer, handled and
written to the shared budget, stops every process (a few hundred ms on a loaded 2-core machine)."""


def ip_totals(sim) -> dict[str, int]:
    totals = {"requests": 0, "count_429": 0, "count_418": 0}
    for ip_stats in sim.stats()["ips"].values():
        for key in totals:
            totals[key] += ip_stats[key]
    return totals


def polled_between(sim, symbols: list[str], start_ms: float, end_ms: float) -> dict[str, int]:
    times = sim.stats(symbols=symbols)["open_interest_times"]
    return {s: sum(start_ms <= t < end_ms for t in times.get(s, [])) for s in symbols}


@pytest.fixture
def polling_system(sim, celery_processes, api_client) -> tuple[list[str], float]:
    """Worker, poll worker and beat on the simulator, the whole universe polled once."""
    env = {"BINANCE_BASE_URL": sim.base_url}
    celery_processes.start_worker(queues="default,oi_backfill", **env)
    celery_processes.start_worker(queues="oi_poll", concurrency=4, **env)
    celery_processes.start_beat(**env)
    members, status = whole_universe_dispatched(api_client)
    interval_s = status["intervalSec"]
    time.sleep(interval_s)
    return members, interval_s


def report_write(name: str, report: list[str]) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / f"exchange-faults-{name}.txt").write_text("\n".join(report) + "\n")
    print("\n".join(report))


def test_under_5xx_timeouts_and_garbage_every_symbol_is_still_polled_and_few_samples_lost(
    sim, polling_system
):
    members, interval_s = polling_system
    report: list[str] = [f"{len(members)} symbols, interval {interval_s} s"]

    # 1. faults on openInterest: the others keep being polled, few samples lost beyond the faults
    sim.set_faults(
        error_rate=0.10, timeout_rate=0.05, nonjson_rate=0.02, paths=["/fapi/v1/openInterest"]
    )
    start_ms = time.time() * 1000
    time.sleep(FAULT_SECONDS)
    end_ms = time.time() * 1000
    sim.clear_faults()
    time.sleep(2)  # the last batches land
    polled = polled_between(sim, members, start_ms, end_ms)
    stored = OpenInterestSnapshot.objects.filter(
        symbol__in=members, created_at__gte=_utc(start_ms), created_at__lt=_utc(end_ms + 1500)
    ).count()
    expected = len(members) * FAULT_SECONDS / interval_s
    report.append(
        f"faults {FAULT_SECONDS} s: expected ~{expected:.0f} samples, {sum(polled.values())} polls, "
        f"{stored} stored ({stored / expected:.1%}); injected fault share 17%"
    )
    report_write("5xx", report)
    assert all(count >= 1 for count in polled.values()), "a symbol stopped being polled"
    assert stored >= 0.75 * expected


def test_a_429_burst_provokes_no_ban_a_ban_is_waited_out_and_full_rate_comes_back(
    sim, polling_system
):
    members, interval_s = polling_system
    report: list[str] = [f"{len(members)} symbols, interval {interval_s} s"]

    # 2. a burst of 429s: everyone backs off at the first one (its Retry-After covers the burst),
    # so the exchange never bans us
    before = ip_totals(sim)
    burst_end_ms = sim.force_rate_limit(status=429, seconds=5)
    time.sleep(7)
    after_429 = ip_totals(sim)
    answered_429 = after_429["count_429"] - before["count_429"]
    into_burst = _oi_requests_between(sim, members, burst_end_ms - 5000, burst_end_ms)
    spread_ms = into_burst[-1] - into_burst[0] if into_burst else 0
    report.append(f"429 burst of 5 s: {answered_429} requests answered 429, within {spread_ms} ms, "
                  f"418s provoked: {after_429['count_418'] - before['count_418']}")  # fmt: skip
    assert after_429["count_418"] == before["count_418"], "our traffic got us banned"
    assert spread_ms <= BAN_DETECTION_MS, into_burst
    assert answered_429 <= 30

    # 3. a ban: once the first 418 is back, nothing more is sent until it ends
    ban_end_ms = sim.force_rate_limit(status=418, seconds=8)
    time.sleep(10)
    after_ban = ip_totals(sim)
    sent_into_ban = after_ban["count_418"] - after_429["count_418"]
    into_ban = _oi_requests_between(sim, members, ban_end_ms - 8000, ban_end_ms)
    spread_ms = into_ban[-1] - into_ban[0] if into_ban else 0
    report.append(f"418 ban of 8 s: {sent_into_ban} requests sent into it, within {spread_ms} ms")
    # What left before the first 418 came back is answered 418: a tick's polls leave together,
    # and a late tick on a loaded machine holds more of them (11 answered 418 in CI once; 4 in
    # the same ms under `yes` load here); after that answer, nothing until the ban ends
    assert spread_ms <= BAN_DETECTION_MS, into_ban
    assert sent_into_ban <= 30

    # 4. back to full rate: every symbol polled within 1.5 intervals of the ban's end
    time.sleep(2 * interval_s)
    recovered = polled_between(sim, members, ban_end_ms, ban_end_ms + 1.5 * interval_s * 1000)
    report.append(f"after the ban: {sum(1 for c in recovered.values() if c)} of {len(members)} "
                  f"symbols polled within 1.5 intervals")  # fmt: skip
    report_write("bans", report)
    assert all(recovered.values()), [s for s, c in recovered.items() if not c]


def _oi_requests_between(sim, symbols: list[str], start_ms: float, end_ms: float) -> list[int]:
    """When openInterest requests reached the exchange (answered or refused), in order."""
    times = sim.stats(symbols=symbols)["open_interest_times"]
    return sorted(t for ts in times.values() for t in ts if start_ms <= t < end_ms)


def _utc(ms: float) -> datetime:
    return datetime_from_ms(ms)
