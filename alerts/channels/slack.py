"""Slack incoming-webhook messages: Block Kit sections (at most 3000 characters of text each, at
most 50 blocks) plus the fallback ``text`` notifications show. Pure: the texts come from
``alerts.telegram.text``; Slack's mrkdwn needs &, < and > escaped."""

from collections.abc import Sequence
from typing import TypeVar

from alerts.formatting import AlertLike, symbol_links
from alerts.liquidation_texts import LiquidationAlertLike, liquidation_details, liquidation_headline
from alerts.telegram.text import (
    digest_footer,
    digest_header,
    digest_line,
    fit_lines,
    move_parts,
    ops_headline,
)

SECTION_TEXT_MAX = 3000
BLOCKS_MAX = 50
FALLBACK_TEXT_MAX = 3000
DIGEST_SECTIONS_MAX = 10  # a digest's lines go in at most this many sections

A = TypeVar("A", bound=AlertLike)


def escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _section(mrkdwn: str) -> dict:
    return {"type": "section", "text": {"type": "mrkdwn", "text": clip(mrkdwn, SECTION_TEXT_MAX)}}


def _links(symbol: str) -> str:
    links = symbol_links(symbol)
    return f"<{links['binance']}|Binance> · <{links['tradingview']}|TradingView>"


def move_message(alerts: Sequence[AlertLike], *, test: bool = False) -> dict:
    """One move (one or several rules on one symbol and direction) as one section."""
    lead, headline, details = move_parts(alerts)
    headline = ("🧪 TEST (not a signal) · " if test else "") + headline
    body = "\n".join([f"*{escape(headline)}*", *map(escape, details), _links(lead.symbol)])
    return {"text": clip(headline, FALLBACK_TEXT_MAX), "blocks": [_section(body)]}


def digest_message(alerts: Sequence[A], *, waiting: int) -> tuple[dict, list[A]]:
    """The oldest of `waiting` alerts, one line each, in a few sections; the message and the
    alerts it carries (a prefix of `alerts`, at least one)."""
    carried: list[A] = []
    blocks: list[dict] = [_section("")]  # the header, written once the count is known
    rest = list(alerts)
    while rest and len(blocks) <= DIGEST_SECTIONS_MAX:
        lines, taken = fit_lines(rest, _digest_line, room=SECTION_TEXT_MAX)
        blocks.append(_section("\n".join(lines)))
        carried.extend(taken)
        rest = rest[len(taken) :]
    header = digest_header(len(carried))
    blocks[0] = _section(f"*{escape(header)}*")
    footer = digest_footer(waiting - len(carried))
    if footer:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": footer}]})
    return {"text": header, "blocks": blocks}, carried


def _digest_line(alert: AlertLike) -> str:
    return f"{escape(digest_line(alert))} · <{symbol_links(alert.symbol)['binance']}|chart>"


def text_message(text: str) -> dict:
    """The plain-text form (no blocks), for a message Slack refused to render."""
    return {"text": clip(escape(text), FALLBACK_TEXT_MAX)}


def ops_message(title: str, text: str, *, recovered: bool) -> dict:
    headline = ops_headline(title, recovered=recovered)
    return {
        "text": clip(headline, FALLBACK_TEXT_MAX),
        "blocks": [_section(f"*{escape(headline)}*\n{escape(text)}")],
    }


def liquidation_message(alert: LiquidationAlertLike) -> dict:
    headline = liquidation_headline(alert)
    body = "\n".join(
        [f"*{escape(headline)}*", *map(escape, liquidation_details(alert)), _links(alert.symbol)]
    )
    return {"text": clip(headline, FALLBACK_TEXT_MAX), "blocks": [_section(body)]}


def blocks_problem(message: dict) -> str | None:
    """Why Slack would refuse the message (``invalid_blocks``), or None."""
    blocks = message.get("blocks", [])
    if len(blocks) > BLOCKS_MAX:
        return f"more than {BLOCKS_MAX} blocks"
    for block in blocks:
        if block.get("type") == "section" and len(block["text"]["text"]) > SECTION_TEXT_MAX:
            return f"a section's text is longer than {SECTION_TEXT_MAX}"
        if block.get("type") == "section" and not block["text"]["text"]:
            return "a section's text is empty"
    return None
