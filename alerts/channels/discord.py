"""Discord webhook messages: embeds within Discord's limits (title 256, description 4096, 25
fields, 6000 characters in all, 10 embeds), coloured by direction, linked to the symbol. Pure:
the texts come from ``alerts.telegram.text`` (one move, digest lines, system messages)."""

from collections.abc import Sequence
from typing import TypeVar

from alerts.formatting import AlertLike, symbol_links
from alerts.liquidation_rules import LiquidatedSide
from alerts.liquidation_texts import (
    LiquidationAlertLike,
    liquidation_details,
    liquidation_headline,
)
from alerts.rules import Direction
from alerts.telegram.text import (
    digest_footer,
    digest_header,
    digest_line,
    fit_lines,
    move_parts,
    ops_headline,
)
from common.formatting import iso_z

TITLE_MAX = 256
DESCRIPTION_MAX = 4096
FIELDS_MAX = 25
FIELD_NAME_MAX = 256
FIELD_VALUE_MAX = 1024
FOOTER_MAX = 2048
EMBEDS_MAX = 10
EMBED_TOTAL_MAX = 6000  # title, description, field names and values, footer, author of all embeds
USERNAME = "VolSpike OI"

COLOUR_UP = 0x16A34A
COLOUR_DOWN = 0xDC2626
COLOUR_DIGEST = 0x2563EB
COLOUR_PROBLEM = 0xF59E0B
COLOUR_TEST = 0x6B7280

A = TypeVar("A", bound=AlertLike)


def clip(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, the cut marked with an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _message(embed: dict) -> dict:
    # no pings: a symbol or rule name must never mention @everyone
    return {"username": USERNAME, "embeds": [embed], "allowed_mentions": {"parse": []}}


def move_message(alerts: Sequence[AlertLike], *, test: bool = False) -> dict:
    """One move (one or several rules on one symbol and direction) as one embed."""
    lead, headline, details = move_parts(alerts)
    links = symbol_links(lead.symbol)
    description = "\n".join(
        [*details, f"[Binance]({links['binance']}) · [TradingView]({links['tradingview']})"]
    )
    colour = COLOUR_UP if lead.direction == Direction.UP else COLOUR_DOWN
    embed = {
        "title": clip(("🧪 TEST (not a signal) · " if test else "") + headline, TITLE_MAX),
        "url": links["binance"],
        "description": clip(description, DESCRIPTION_MAX),
        "color": COLOUR_TEST if test else colour,
        "timestamp": iso_z(lead.ts),
    }
    return _message(embed)


def digest_message(alerts: Sequence[A], *, waiting: int) -> tuple[dict, list[A]]:
    """The oldest of `waiting` alerts as one embed, one line each with its Binance link; the
    message and the alerts it carries (a prefix of `alerts`, at least one)."""
    footer = digest_footer(waiting)  # room for the longest footer; the real one follows
    room = min(DESCRIPTION_MAX, EMBED_TOTAL_MAX - TITLE_MAX - len(footer))
    lines, carried = fit_lines(alerts, _digest_line, room=room)
    embed = {
        "title": digest_header(len(carried)),
        "description": "\n".join(lines),
        "color": COLOUR_DIGEST,
    }
    rest = digest_footer(waiting - len(carried))
    if rest:
        embed["footer"] = {"text": rest}
    return _message(embed), carried


def _digest_line(alert: AlertLike) -> str:
    return f"{digest_line(alert)} · [chart]({symbol_links(alert.symbol)['binance']})"


CONTENT_MAX = 2000


def text_message(text: str) -> dict:
    """The plain-text form (no embed), for a message Discord refused to render."""
    return {"username": USERNAME, "content": clip(text, CONTENT_MAX),
            "allowed_mentions": {"parse": []}}  # fmt: skip


def ops_message(title: str, text: str, *, recovered: bool) -> dict:
    embed = {
        "title": clip(ops_headline(title, recovered=recovered), TITLE_MAX),
        "description": clip(text, DESCRIPTION_MAX),
        "color": COLOUR_UP if recovered else COLOUR_PROBLEM,
    }
    return _message(embed)


def liquidation_message(alert: LiquidationAlertLike) -> dict:
    """A liquidation burst as one embed: red for longs liquidated, green for shorts."""
    links = symbol_links(alert.symbol)
    description = "\n".join(
        [
            *liquidation_details(alert),
            f"[Binance]({links['binance']}) · [TradingView]({links['tradingview']})",
        ]
    )
    embed = {
        "title": clip(liquidation_headline(alert), TITLE_MAX),
        "url": links["binance"],
        "description": clip(description, DESCRIPTION_MAX),
        "color": COLOUR_DOWN if alert.side == LiquidatedSide.LONG else COLOUR_UP,
        "timestamp": iso_z(alert.ts),
    }
    return _message(embed)


def embeds_problem(message: dict) -> str | None:
    """Why Discord would refuse the message's embeds (400), or None: the limits of
    discord.com/developers/docs/resources/message#embed-object-embed-limits."""
    embeds = message.get("embeds", [])
    if len(embeds) > EMBEDS_MAX:
        return f"more than {EMBEDS_MAX} embeds"
    total = 0
    for embed in embeds:
        title, description = embed.get("title", ""), embed.get("description", "")
        fields = embed.get("fields", [])
        footer = embed.get("footer", {}).get("text", "")
        if len(title) > TITLE_MAX:
            return "embeds.title: must be 256 or fewer in length"
        if len(description) > DESCRIPTION_MAX:
            return "embeds.description: must be 4096 or fewer in length"
        if len(fields) > FIELDS_MAX:
            return "embeds.fields: must be 25 or fewer in length"
        if len(footer) > FOOTER_MAX:
            return "embeds.footer.text: must be 2048 or fewer in length"
        for field in fields:
            if len(field.get("name", "")) > FIELD_NAME_MAX:
                return "embeds.fields.name: must be 256 or fewer in length"
            if len(field.get("value", "")) > FIELD_VALUE_MAX:
                return "embeds.fields.value: must be 1024 or fewer in length"
            total += len(field.get("name", "")) + len(field.get("value", ""))
        total += len(title) + len(description) + len(footer)
    if total > EMBED_TOTAL_MAX:
        return f"embeds: {total} characters in all, more than {EMBED_TOTAL_MAX}"
    return None
