"""Exceptions raised by the Binance futures client and the shared request budget.

ExchangeError
├── ExchangeUnavailable      transient: 5xx, 408, timeouts, connection errors (retried);
│                            also raised, unretried, when the budget's Redis is unreachable
│   └── InvalidResponse      garbage: non-JSON, HTML, truncated or mis-shaped bodies (retried)
├── RateLimited              HTTP 429; every process backs off until ``retry_at`` (never retried)
│   └── IpBanned             HTTP 418; the IP is banned until ``retry_at`` (never retried)
├── BadRequest               other 4xx, with Binance's code and message (never retried)
│   └── InvalidSymbol        Binance code -1121
├── ImplausibleAnswer        a 200 whose data cannot be true: another symbol than asked, a time
│                            ahead of the exchange's own clock (never retried)
└── BudgetExhausted          the shared budget cannot admit the request before the caller's deadline
"""

from datetime import datetime

BINANCE_INVALID_SYMBOL = -1121
BINANCE_TOO_MANY_REQUESTS = -1003


class ExchangeError(Exception):
    """Base of every exchange-layer error; carries Binance's code and message and the HTTP status."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: int | None = None,
        path: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.path = path

    def __str__(self) -> str:
        parts = [self.message]
        if self.status is not None:
            parts.append(f"status={self.status}")
        if self.code is not None:
            parts.append(f"code={self.code}")
        if self.path:
            parts.append(f"path={self.path}")
        return " ".join(parts)


class ExchangeUnavailable(ExchangeError):
    """The exchange did not give a usable answer this time; the same request may work later."""


class InvalidResponse(ExchangeUnavailable):
    """The body was not the JSON document the endpoint returns (HTML, truncated, wrong shape)."""


class RateLimited(ExchangeError):
    """HTTP 429: the IP's request weight is over the limit. ``retry_at`` is when traffic may resume."""

    def __init__(self, message: str, *, retry_at: datetime | None = None, **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.retry_at = retry_at


class IpBanned(RateLimited):
    """HTTP 418: the IP is banned (bans grow from 2 minutes to 3 days for repeat offenders)."""


class BadRequest(ExchangeError):
    """A 4xx the exchange will answer the same way every time; retrying cannot help."""


class InvalidSymbol(BadRequest):
    """Binance code -1121: the symbol does not exist."""


class ImplausibleAnswer(ExchangeError):
    """A well-formed 200 whose content cannot be true (another symbol than the one asked for, a
    sample time ahead of the exchange's own clock). Asking again would not make it true."""


class BudgetExhausted(ExchangeError):
    """The shared budget would make this request wait longer than the caller allows.

    ``reason`` names the limit that refused ("backoff", "consumer", "ip", "futures_data") and
    ``retry_at`` is when the limiter expects to admit it.
    """

    def __init__(
        self, message: str, *, reason: str, wait_seconds: float, retry_at: datetime
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.wait_seconds = wait_seconds
        self.retry_at = retry_at
