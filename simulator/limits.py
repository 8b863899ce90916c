"""Per-IP request-weight limits, the /futures/data/* request limit, and escalating 418 bans."""

from __future__ import annotations

from collections import defaultdict, deque
from dataclasses import dataclass, field

MINUTE_MS = 60_000
WEIGHT_LOG_MS = 5 * MINUTE_MS
"""How long each IP's weighted requests are kept for the sliding-minute figures of /sim/stats."""


@dataclass
class IpState:
    minute: int = -1
    weight_used: int = 0
    data_window: int = -1
    data_used: int = 0
    rejections_in_window: int = 0
    offences: int = 0
    banned_until: int = 0
    forced_429_until: int = 0
    requests: int = 0
    count_429: int = 0
    count_418: int = 0
    endpoints: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    weight_log: deque[tuple[int, int]] = field(default_factory=deque)
    """(time ms, weight) of this IP's requests over the last WEIGHT_LOG_MS, as Binance counts
    them: per source address, whatever client or API key sent them."""

    def log_weight(self, now_ms: int, weight: int) -> None:
        if weight:
            self.weight_log.append((now_ms, weight))
        while self.weight_log and self.weight_log[0][0] <= now_ms - WEIGHT_LOG_MS:
            self.weight_log.popleft()

    def weight_in_last(self, now_ms: int, span_ms: int = MINUTE_MS) -> int:
        return sum(w for t, w in self.weight_log if t > now_ms - span_ms)

    def weight_max_sliding(self, span_ms: int = MINUTE_MS) -> int:
        """The most weight this IP sent in any `span_ms` over the log (sliding, not calendar)."""
        best = total = 0
        start = 0
        log = list(self.weight_log)
        for t, w in log:
            total += w
            while log[start][0] <= t - span_ms:
                total -= log[start][1]
                start += 1
            best = max(best, total)
        return best


@dataclass
class Verdict:
    status: int
    weight_used: int
    retry_after_sec: int = 0
    banned_until: int = 0
    reason: str = ""


class RateLimiter:
    """Fixed calendar-minute windows for weight, fixed windows for /futures/data/*.

    A request over the limit is answered 429 and its weight still counts (the header shows the
    overshoot). Once an IP collects `ban_after_429s` rejections inside one window it is banned
    (418) for ban_base_sec * 2**(offences-1), capped at ban_max_sec; the offence count survives
    window resets so repeat offenders get longer bans.
    """

    def __init__(
        self,
        weight_limit: int,
        data_limit: int,
        data_window_sec: int,
        ban_after_429s: int,
        ban_base_sec: float,
        ban_max_sec: float,
    ) -> None:
        self.weight_limit = weight_limit
        self.data_limit = data_limit
        self.data_window_ms = int(data_window_sec * 1000)
        self.ban_after_429s = ban_after_429s
        self.ban_base_sec = ban_base_sec
        self.ban_max_sec = ban_max_sec
        self.ips: dict[str, IpState] = {}
        self.forced_429_all_until = 0
        self.forced_ban_all_until = 0

    def state(self, ip: str) -> IpState:
        state = self.ips.get(ip)
        if state is None:
            state = self.ips[ip] = IpState()
        return state

    def _roll(self, state: IpState, now_ms: int) -> None:
        minute = now_ms // MINUTE_MS
        if minute != state.minute:
            state.minute = minute
            state.weight_used = 0
            state.rejections_in_window = 0
        window = now_ms // self.data_window_ms
        if window != state.data_window:
            state.data_window = window
            state.data_used = 0

    def current_weight(self, ip: str, now_ms: int) -> int:
        state = self.state(ip)
        self._roll(state, now_ms)
        return state.weight_used

    def _ban(self, state: IpState, now_ms: int) -> None:
        state.offences += 1
        seconds = min(self.ban_max_sec, self.ban_base_sec * 2 ** (state.offences - 1))
        state.banned_until = now_ms + int(seconds * 1000)
        state.rejections_in_window = 0

    def check(self, ip: str, weight: int, futures_data: bool, now_ms: int) -> Verdict:
        state = self.state(ip)
        self._roll(state, now_ms)
        banned_until = max(state.banned_until, self.forced_ban_all_until)
        if banned_until > now_ms:
            state.count_418 += 1
            return Verdict(
                418, state.weight_used, _ceil_sec(banned_until - now_ms), banned_until, "banned"
            )
        state.weight_used += weight
        state.log_weight(now_ms, weight)
        forced_until = max(state.forced_429_until, self.forced_429_all_until)
        if forced_until > now_ms:
            return self._reject(state, now_ms, forced_until, "forced")
        if weight and state.weight_used > self.weight_limit:
            next_minute = (now_ms // MINUTE_MS + 1) * MINUTE_MS
            return self._reject(state, now_ms, next_minute, "weight")
        if futures_data:
            state.data_used += 1
            if state.data_used > self.data_limit:
                window_end = (now_ms // self.data_window_ms + 1) * self.data_window_ms
                return self._reject(state, now_ms, window_end, "futures_data")
        return Verdict(200, state.weight_used)

    def _reject(self, state: IpState, now_ms: int, until_ms: int, reason: str) -> Verdict:
        state.rejections_in_window += 1
        if self.ban_after_429s > 0 and state.rejections_in_window > self.ban_after_429s:
            self._ban(state, now_ms)
            state.count_418 += 1
            return Verdict(
                418,
                state.weight_used,
                _ceil_sec(state.banned_until - now_ms),
                state.banned_until,
                "banned",
            )
        state.count_429 += 1
        return Verdict(429, state.weight_used, _ceil_sec(until_ms - now_ms), 0, reason)

    def force(self, ip: str | None, status: int, seconds: float, now_ms: int) -> int:
        until = now_ms + int(seconds * 1000)
        if ip is None:
            if status == 418:
                self.forced_ban_all_until = until
            else:
                self.forced_429_all_until = until
        else:
            state = self.state(ip)
            if status == 418:
                state.banned_until = until
            else:
                state.forced_429_until = until
        return until

    def reset(self) -> None:
        self.ips.clear()
        self.forced_429_all_until = 0
        self.forced_ban_all_until = 0


def _ceil_sec(ms: int) -> int:
    return max(1, -(-ms // 1000))
