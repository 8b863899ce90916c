"""The checks' fallback driver: a thread in each worker process consuming the default queue.

Beat sends ``ops.check`` through Redis, so when beat stops, or Redis does not answer, no check
would run and nobody would hear of it. Every OPS_CHECK_EVERY_SEC the watchdog asks when the last
check ran; when that is more than WATCHDOG_AFTER_PERIODS periods ago, or Redis does not answer,
it runs the checks itself (under the same lock; without one while Redis is down, when the record
in Postgres keeps two watchdogs from sending twice).
"""

import logging
import threading

from django.conf import settings
from django.db import close_old_connections
from redis import RedisError

from common.timeutil import now_ms
from ops.services import CheckOutcome, ops_check_run, ops_last_check_ms

logger = logging.getLogger(__name__)

WATCHDOG_AFTER_PERIODS = 3

_started = threading.Event()


def watchdog_tick() -> CheckOutcome | None:
    """Run the checks when they are overdue or Redis does not answer; None when not needed."""
    period_ms = settings.OPS_CHECK_EVERY_SEC * 1000
    try:
        last_ms = ops_last_check_ms()
    except RedisError:
        last_ms = None  # Redis down: the checks cannot arrive from beat
    else:
        if last_ms is not None and now_ms() - last_ms < WATCHDOG_AFTER_PERIODS * period_ms:
            return None
    return ops_check_run(source="watchdog")


def watchdog_start() -> bool:
    """Start this process's watchdog thread (once); True when this call started it."""
    if _started.is_set():
        return False
    _started.set()
    threading.Thread(target=_watchdog_loop, name="ops-watchdog", daemon=True).start()
    logger.info("ops watchdog started", extra={"every_sec": settings.OPS_CHECK_EVERY_SEC})
    return True


def _watchdog_loop() -> None:
    stop = threading.Event()
    while not stop.wait(settings.OPS_CHECK_EVERY_SEC):
        try:
            watchdog_tick()
        except Exception as exc:  # noqa: BLE001 - the watchdog must outlive any one failure
            logger.error(
                "ops watchdog check failed", extra={"cause": f"{type(exc).__name__}: {exc}"}
            )
        finally:
            close_old_connections()
