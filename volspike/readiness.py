"""Readiness: is the system doing its job, not only up? Read from the same state the poller API and
/metrics read (oi.selectors, liquidity.selectors, the shared exchange budget), so that a monitor
sees what a person on the page would see: polling stalled, beat silent, universe stale, IP banned.
"""

from datetime import UTC, datetime

from django.conf import settings

from common import timeutil
from common.health import ComponentHealth, system_health
from common.timeutil import datetime_from_ms
from exchange.factory import build_budget
from liquidity.selectors import liquid_symbol_list, universe_job_status
from oi.selectors import poll_dispatch_sent_at_ms, poller_status
from streams.selectors import streams_health
from streams.watchdog import StreamState


def system_readiness() -> list[ComponentHealth]:
    """Postgres and Redis (as /health), then beat, poller, polling, universe and exchange; each
    failing part says why. Later parts are not asked when a store does not answer."""
    stores = system_health()
    if not all(part.ok for part in stores):
        return stores
    now_ms = timeutil.now_ms()
    universe = [(m.symbol, m.entered_at) for m in liquid_symbol_list()]
    status = poller_status(universe=[symbol for symbol, _ in universe])
    return [
        *stores,
        *_dispatch_readiness(now_ms, status.dispatched_at_ms),
        _polling_readiness(now_ms, universe, status),
        _universe_readiness(),
        _exchange_readiness(),
        _streams_readiness(),
    ]


def _dispatch_readiness(now_ms: float, ran_at_ms: int | None) -> list[ComponentHealth]:
    """Beat sends oi.poll_dispatch every window; an oi_poll worker runs it. Which one went quiet?"""
    limit = settings.READY_DISPATCH_MAX_SILENCE_SEC
    sent_at_ms = poll_dispatch_sent_at_ms()
    sent_age = _age_sec(now_ms, sent_at_ms)
    if sent_age is None or sent_age > limit:
        beat = ComponentHealth(
            "beat", False,
            "no poll dispatch ever sent" if sent_age is None
            else f"no poll dispatch sent for {sent_age:.0f} s (limit {limit:.0f} s): is beat running?",
        )  # fmt: skip
    else:
        beat = ComponentHealth("beat", True, f"poll dispatch sent {sent_age:.1f} s ago")
    ran_age = _age_sec(now_ms, ran_at_ms)
    if beat.ok and (ran_age is None or ran_age > limit):
        since = "never" if ran_age is None else f"not for {ran_age:.0f} s (limit {limit:.0f} s)"
        poller = ComponentHealth(
            "poller", False,
            f"poll dispatches are sent but run {since}: is the oi_poll worker running?",
        )  # fmt: skip
    elif ran_age is None:
        poller = ComponentHealth("poller", False, "no poll dispatch ever run")
    else:
        poller = ComponentHealth("poller", True, f"poll dispatch run {ran_age:.1f} s ago")
    return [beat, poller]


def _polling_readiness(
    now_ms: float, universe: list[tuple[str, datetime]], status
) -> ComponentHealth:
    """The stalest liquid symbol's sample against a few intervals. A symbol that entered the
    universe less than that long ago is not counted until it had its chance to be polled."""
    if not universe:
        return ComponentHealth("polling", False, "no liquid symbol to poll")
    interval = status.interval_sec or settings.OI_MAX_INTERVAL_SEC
    stale_after = settings.READY_POLL_STALE_INTERVALS * interval
    now = datetime_from_ms(now_ms)
    stale: list[tuple[float, str]] = []
    for symbol, entered_at in universe:
        age = status.last_sample_age_sec.get(symbol)
        if age is None:
            if (now - entered_at).total_seconds() > stale_after:
                stale.append((float("inf"), symbol))
        elif age > stale_after:
            stale.append((age, symbol))
    if stale:
        age, symbol = max(stale)
        age_text = "never sampled" if age == float("inf") else f"last sample {age:.0f} s ago"
        return ComponentHealth(
            "polling", False,
            f"{len(stale)} of {len(universe)} liquid symbols not sampled within {stale_after:.0f} s "
            f"({settings.READY_POLL_STALE_INTERVALS:g} intervals of {interval:g} s); stalest "
            f"{symbol}: {age_text}",
        )  # fmt: skip
    ages = [a for a in status.last_sample_age_sec.values() if a is not None]
    if status.overloaded:
        # Ready (every symbol is still polled), but said: the budgets are too small.
        return ComponentHealth(
            "polling", True,
            f"degraded: overloaded: {len(universe)} symbols need a {status.wanted_interval_sec:g} s "
            f"interval for the live budgets ({status.max_req_per_min}/min in "
            f"{sum(g.live for g in status.groups)} egress groups), over OI_MAX_INTERVAL_SEC "
            f"{settings.OI_MAX_INTERVAL_SEC:g} s: every symbol polled every "
            f"{status.interval_sec:g} s (stretched); stalest sample "
            f"{max(ages, default=0.0):.1f} s old",
        )  # fmt: skip
    return ComponentHealth(
        "polling", True,
        f"{len(universe)} symbols, stalest sample {max(ages, default=0.0):.1f} s old",
    )  # fmt: skip


def _universe_readiness() -> ComponentHealth:
    job = universe_job_status()
    limit = settings.READY_UNIVERSE_MAX_AGE_SEC
    if job.last_success is None:
        cause = f"; last failure: {job.last_failure.error}" if job.last_failure else ""
        return ComponentHealth("universe", False, f"never refreshed successfully{cause}")
    age = (datetime.now(tz=UTC) - job.last_success.finished_at).total_seconds()
    if age > limit:
        cause = f"; last failure: {job.last_failure.error}" if job.stale_since else ""
        return ComponentHealth(
            "universe", False,
            f"last refreshed {age:.0f} s ago (limit {limit} s){cause}",
        )  # fmt: skip
    return ComponentHealth("universe", True, f"refreshed {age:.0f} s ago")


def _exchange_readiness() -> ComponentHealth:
    backoff = build_budget().backoff_until()
    if backoff is None:
        return ComponentHealth("exchange", True, "no back-off")
    until, reason = backoff
    left = (until - datetime.now(tz=UTC)).total_seconds()
    detail = f"every request backs off until {until.isoformat()} ({left:.0f} s): {reason}"
    if reason.startswith("418"):
        return ComponentHealth("exchange", False, f"the exchange banned this IP; {detail}")
    if left > settings.READY_MAX_BACKOFF_SEC:
        return ComponentHealth("exchange", False, detail)
    return ComponentHealth("exchange", True, f"short back-off; {detail}")


def _streams_readiness() -> ComponentHealth:
    """The market streams are reported, never a 503: while one is stale the poller takes mark
    prices from REST premiumIndex and the liquidity job 24 h volumes from REST ticker/24hr, so
    the system still does its job (degraded: more request weight, liquidations not recorded),
    and taking web processes out of a load balancer would not bring a stream back. Monitors
    alert on /metrics (volspike_stream_fresh) instead."""
    health = streams_health()
    if all(part.state is StreamState.DISABLED for part in health.values()):
        return ComponentHealth("streams", True, "disabled (STREAMS_ENABLED=false): REST only")
    stale = [part for part in health.values() if not part.fresh]
    if not stale:
        return ComponentHealth("streams", True, "every market stream fresh")
    described = "; ".join(
        f"{part.stream} {part.state}"
        + ("" if part.last_frame_age_sec is None else f" ({part.last_frame_age_sec:.0f} s)")
        for part in stale
    )
    return ComponentHealth(
        "streams", True,
        f"degraded: {described} (limit {stale[0].stale_after_sec:g} s); REST fallback in use",
    )  # fmt: skip


def _age_sec(now_ms: float, at_ms: int | None) -> float | None:
    return None if at_ms is None else max(now_ms - at_ms, 0.0) / 1000
