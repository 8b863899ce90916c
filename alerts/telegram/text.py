"""The Telegram messages: one alert, or a digest of several. Pure: no Django, Redis or HTTP; the
numbers are written by ``alerts.formatting``, as on the page."""

from collections.abc import Callable, Sequence
from typing import TypeVar

from alerts.formatting import (
    AlertLike,
    duration,
    liquidations_line,
    price,
    regime_text,
    signed_pct,
    symbol_links,
    usd,
)
from alerts.rules import Direction
from oi.regimes import Regime

MESSAGE_MAX_CHARS = 4096
DIGEST_ROOM = 200  # kept free in a digest for its header and last line
TEST_TITLE = "🧪 TEST ALERT (not a signal)\n"

A = TypeVar("A", bound=AlertLike)

# Alerts of one symbol and direction this close in time are one move: several rules firing on the
# same jump (5 m, 15 m, 1 h, the median rule) go out as one message that lists the rules.
MOVE_WITHIN_SEC = 10


def same_move(alerts: Sequence[A]) -> list[A]:
    """The first of `alerts` (the oldest waiting) and those of its symbol and direction within
    MOVE_WITHIN_SEC of it: the alerts one message carries."""
    first = alerts[0]
    return [
        alert
        for alert in alerts
        if alert.symbol == first.symbol
        and alert.direction == first.direction
        and abs((alert.ts - first.ts).total_seconds()) <= MOVE_WITHIN_SEC
    ]


def move_text(alerts: Sequence[AlertLike], *, title: str = "") -> str:
    """One message for one move: a single alert's text, or, when several rules fired on it, the
    text of the largest of them with one line naming every rule, its window and its change."""
    lead, headline, details = move_parts(alerts, title=title)
    links = symbol_links(lead.symbol)
    return "\n".join(
        [headline, *details, f"Binance: {links['binance']}", f"TradingView: {links['tradingview']}"]
    )


def alert_text(alert: AlertLike, *, title: str = "", rules: Sequence[AlertLike] = ()) -> str:
    """One alert as a plain-text message; context that is not known is left out. With `rules`
    (the alerts of several rules on the same move), one line lists them instead of the rule."""
    return move_text(rules if len(rules) > 1 else [alert], title=title)


def move_parts(alerts: Sequence[A], *, title: str = "") -> tuple[A, str, list[str]]:
    """A move's lead alert (the largest change), its headline and its detail lines (no links):
    what every platform's message of one move is made of."""
    lead = max(alerts, key=lambda alert: abs(alert.pct_change)) if len(alerts) > 1 else alerts[0]
    kind = "spike" if lead.direction == Direction.UP else "dump"
    headline = (
        f"{title}{_arrow(lead)} {lead.symbol} open interest {kind} {signed_pct(lead.pct_change)}"
    )
    return lead, headline, _detail_lines(lead, rules=alerts)


def _detail_lines(alert: AlertLike, *, rules: Sequence[AlertLike]) -> list[str]:
    lines = []
    if len(rules) > 1:
        lines.append(f"{len(rules)} rules: " + ", ".join(_rule_change(r) for r in rules))
    elif alert.rule_name:
        window = f", {duration(alert.window_sec)} window" if alert.window_sec else ""
        lines.append(f"Rule {alert.rule_name}{window}")
    elif alert.window_sec:
        lines.append(f"{duration(alert.window_sec)} window")
    lines.append(
        f"OI {alert.baseline:,.0f} → {alert.current:,.0f} contracts ({alert.abs_change:+,.0f})"
    )
    if alert.oi_usd_before is not None and alert.oi_usd_after is not None:
        lines.append(f"OI {usd(alert.oi_usd_before)} → {usd(alert.oi_usd_after)}")
    if alert.price_change_pct is not None:
        over = " over the window" if alert.window_sec else ""
        mark = f" (mark {price(alert.mark_price)})" if alert.mark_price is not None else ""
        lines.append(f"Price {signed_pct(alert.price_change_pct)}{over}{mark}")
    elif alert.mark_price is not None:
        lines.append(f"Mark price {price(alert.mark_price)}")
    if regime := regime_text(alert.regime):
        lines.append(f"Regime: {regime}")
    if alert.funding_rate is not None:
        lines.append(f"Funding {signed_pct(alert.funding_rate, 4)}")
    if alert.quote_volume_24h is not None:
        lines.append(f"24h volume {usd(alert.quote_volume_24h)}")
    if liquidations := liquidations_line(alert):
        lines.append(liquidations)
    if alert.alerts_24h is not None:
        lines.append(f"{alert.alerts_24h} alert{'s' if alert.alerts_24h != 1 else ''} in 24 h")
    lines.append(f"{alert.ts:%Y-%m-%d %H:%M:%S} UTC")
    return lines


def digest_text(alerts: Sequence[AlertLike]) -> str:
    """Several alerts in one message, one line each; lines beyond Telegram's 4096 characters
    are left out (and counted in the last line)."""
    return digest(alerts, waiting=len(alerts))[0]


def digest(alerts: Sequence[A], *, waiting: int) -> tuple[str, list[A]]:
    """The digest of the oldest of `waiting` alerts, and the alerts it carries (a prefix of
    `alerts` that fits one message; at least one)."""
    lines, carried = fit_lines(alerts, digest_line, room=MESSAGE_MAX_CHARS - DIGEST_ROOM)
    text = "\n".join([digest_header(len(carried)), *lines, digest_footer(waiting - len(carried))])
    return text.rstrip("\n")[:MESSAGE_MAX_CHARS], carried


def digest_header(count: int) -> str:
    return f"⚡ {count} open interest alerts (digest, rate limit)"


def digest_footer(rest: int) -> str:
    return f"… {rest} more queued, next message" if rest > 0 else ""


def fit_lines(
    alerts: Sequence[A], line_of: Callable[[A], str], *, room: int
) -> tuple[list[str], list[A]]:
    """One line per alert while the lines (joined by newlines) fit in `room` characters; the
    lines and the alerts they carry (at least the first, its line cut to fit)."""
    carried: list[A] = []
    lines: list[str] = []
    size = 0
    for alert in alerts:
        line = line_of(alert)
        if carried and size + len(line) + 1 > room:
            break
        carried.append(alert)
        lines.append(line[:room])
        size += len(line) + 1
    return lines, carried


def digest_line(alert: AlertLike) -> str:
    parts = [f"{_arrow(alert)} {alert.symbol}"]
    if alert.rule_name or alert.window_sec:
        rule = alert.rule_name or "window"
        parts.append(f"{rule}/{duration(alert.window_sec)}" if alert.window_sec else rule)
    parts.append(f"OI {signed_pct(alert.pct_change)}")
    if alert.price_change_pct is not None:
        parts.append(f"price {signed_pct(alert.price_change_pct)}")
    if alert.regime and alert.regime != Regime.UNKNOWN:
        parts.append(Regime(alert.regime).label)
    parts.append(f"{alert.ts:%H:%M:%S}")
    return " · ".join(parts)


def _rule_change(alert: AlertLike) -> str:
    window = f" ({duration(alert.window_sec)})" if alert.window_sec else ""
    return f"{alert.rule_name or 'window'}{window} {signed_pct(alert.pct_change)}"


def _arrow(alert: AlertLike) -> str:
    return "📈" if alert.direction == Direction.UP else "📉"


OPS_PROBLEM_MARK = "⚠️"
OPS_RECOVERED_MARK = "✅"


def ops_headline(title: str, *, recovered: bool) -> str:
    """A system message's first line: what happened, marked as trouble or recovery."""
    mark = OPS_RECOVERED_MARK if recovered else OPS_PROBLEM_MARK
    return f"{mark} {'Recovered: ' if recovered else ''}{title}"


def ops_text(title: str, text: str, *, recovered: bool) -> str:
    """A system message (not an alert) as plain text, within Telegram's limit."""
    return f"{ops_headline(title, recovered=recovered)}\n{text}"[:MESSAGE_MAX_CHARS]
