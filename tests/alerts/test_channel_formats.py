"""The pure parts of delivery channels: Discord embeds and Slack blocks within the platforms'
limits (cut safely, links kept), what each platform's answer means, and the channel filters."""

from decimal import Decimal

import pytest

from alerts.channels import discord, slack
from alerts.channels.answers import (
    Outcome,
    discord_answer,
    slack_answer,
    telegram_answer,
    webhook_answer,
)
from alerts.channels.routing import ChannelFilter
from alerts.models import OpenInterestAlert
from tests.fixtures.telegram import alert_fields


def alert(i: int, **changes) -> OpenInterestAlert:
    return OpenInterestAlert(id=1000 + i, **{**alert_fields(i), **changes})


def test_a_discord_move_is_one_coloured_embed_linked_to_the_symbol():
    up, down = discord.move_message([alert(2)]), discord.move_message([alert(3)])
    (embed,) = up["embeds"]
    assert embed["title"] == "📈 T002USDT open interest spike +12.00%"
    assert embed["url"] == "https://www.binance.com/en/futures/T002USDT"
    assert (
        "[TradingView](https://www.tradingview.com/chart/?symbol=BINANCE:T002USDT.P)"
        in (embed["description"])
    )
    assert (embed["color"], down["embeds"][0]["color"]) == (discord.COLOUR_UP, discord.COLOUR_DOWN)
    assert up["allowed_mentions"] == {"parse": []}  # a name can never ping @everyone
    assert discord.embeds_problem(up) is None


def test_several_rules_on_one_move_are_one_embed_listing_them():
    move = [alert(2, rule_name=f"rule-{w}", window_sec=w, pct_change=Decimal(p))
            for w, p in [(300, "0.11"), (900, "0.125")]]  # fmt: skip
    (embed,) = discord.move_message(move)["embeds"]
    assert embed["title"].endswith("+12.50%")
    assert "2 rules: rule-300 (5 min) +11.00%, rule-900 (15 min) +12.50%" in embed["description"]


def test_a_huge_discord_digest_stays_within_every_embed_limit_and_says_what_is_left():
    alerts = [alert(i, rule_name="r" * 60) for i in range(60)]
    message, carried = discord.digest_message(alerts, waiting=500)
    assert discord.embeds_problem(message) is None
    (embed,) = message["embeds"]
    assert carried == alerts[: len(carried)] and 0 < len(carried) < 60
    assert embed["title"] == f"⚡ {len(carried)} open interest alerts (digest, rate limit)"
    assert embed["footer"]["text"] == f"… {500 - len(carried)} more queued, next message"
    assert embed["description"].count("\n") + 1 == len(carried)
    assert "[chart](https://www.binance.com/en/futures/T000USDT)" in embed["description"]


def test_long_texts_are_cut_to_discords_limits_with_a_mark():
    message = discord.ops_message("t" * 400, "x" * 10_000, recovered=False)
    (embed,) = message["embeds"]
    assert len(embed["title"]) == 256 and embed["title"].endswith("…")
    assert len(embed["description"]) == 4096 and discord.embeds_problem(message) is None
    too_big = {"embeds": [{"title": "a", "description": "d" * 4000}] * 2}
    assert "6000" in discord.embeds_problem(too_big)


def test_a_slack_move_has_escaped_mrkdwn_links_and_a_fallback_text():
    message = slack.move_message([alert(2, rule_name="<@channel> & co")])
    assert message["text"] == "📈 T002USDT open interest spike +12.00%"
    (section,) = message["blocks"]
    text = section["text"]["text"]
    assert text.startswith("*📈 T002USDT open interest spike +12.00%*")
    assert "&lt;@channel&gt; &amp; co" in text and "<@channel>" not in text
    assert "<https://www.binance.com/en/futures/T002USDT|Binance>" in text
    assert slack.blocks_problem(message) is None


def test_a_huge_slack_digest_stays_within_the_block_limits():
    alerts = [alert(i, rule_name="r" * 80) for i in range(600)]
    message, carried = slack.digest_message(alerts, waiting=600)
    assert slack.blocks_problem(message) is None
    assert carried == alerts[: len(carried)] and 100 < len(carried) < 600
    assert all(len(b["text"]["text"]) <= 3000 for b in message["blocks"] if "text" in b)
    assert len(message["blocks"]) <= 50
    assert message["text"] == f"⚡ {len(carried)} open interest alerts (digest, rate limit)"
    assert message["blocks"][-1]["elements"][0]["text"].startswith(f"… {600 - len(carried)} more")


@pytest.mark.parametrize(
    ("answer", "outcome", "retry_after", "whole_platform"),
    [
        (discord_answer(204, {}, ""), Outcome.ACCEPTED, None, False),
        (discord_answer(429, {}, '{"message": "You are being rate limited.", "retry_after": 0.5,'
                                 ' "global": false}'), Outcome.RATE_LIMITED, 0.5, False),
        (discord_answer(429, {}, '{"retry_after": 1.25, "global": true}'),
         Outcome.RATE_LIMITED, 1.25, True),
        (discord_answer(404, {}, '{"message": "Unknown Webhook", "code": 10015}'),
         Outcome.PERMANENT, None, False),
        (discord_answer(400, {}, '{"code": 10015}'), Outcome.PERMANENT, None, False),
        (discord_answer(400, {}, '{"code": 50035, "message": "Invalid Form Body"}'),
         Outcome.REFUSED, None, False),
        (discord_answer(502, {}, "Bad Gateway"), Outcome.FAILED, None, False),
        (slack_answer(200, {}, "ok"), Outcome.ACCEPTED, None, False),
        (slack_answer(429, {"retry-after": "3"}, "too_many_requests"),
         Outcome.RATE_LIMITED, 3.0, False),
        (slack_answer(404, {}, "no_service"), Outcome.PERMANENT, None, False),
        (slack_answer(403, {}, "invalid_token"), Outcome.PERMANENT, None, False),
        (slack_answer(404, {}, "channel_not_found"), Outcome.PERMANENT, None, False),
        (slack_answer(410, {}, "channel_is_archived"), Outcome.PERMANENT, None, False),
        (slack_answer(400, {}, "invalid_blocks"), Outcome.REFUSED, None, False),
        (slack_answer(400, {}, "invalid_something_new"), Outcome.FAILED, None, False),
        (slack_answer(500, {}, "rollup_error"), Outcome.FAILED, None, False),
        (telegram_answer(429, {}, '{"ok": false, "parameters": {"retry_after": 7}}'),
         Outcome.RATE_LIMITED, 7.0, False),
        (telegram_answer(403, {}, '{"ok": false, "description": "Forbidden: bot was blocked"}'),
         Outcome.PERMANENT, None, False),
        (telegram_answer(400, {}, '{"ok": false, "description": "Bad Request: chat not found"}'),
         Outcome.PERMANENT, None, False),
        (telegram_answer(400, {}, '{"ok": false, "description": "Bad Request: message is too '
                                  'long"}'), Outcome.FAILED, None, False),
        (webhook_answer(503, {}, ""), Outcome.FAILED, None, False),
        (webhook_answer(429, {"retry-after": "12"}, ""), Outcome.RATE_LIMITED, 12.0, False),
        (webhook_answer(401, {}, "bad signature"), Outcome.PERMANENT, None, False),
    ],
)  # fmt: skip
def test_what_each_platforms_answer_means(answer, outcome, retry_after, whole_platform):
    assert (answer.outcome, answer.retry_after, answer.whole_platform) == (
        outcome, retry_after, whole_platform,
    )  # fmt: skip


def test_discords_bucket_headers_on_an_accepted_message():
    empty = discord_answer(
        204, {"x-ratelimit-remaining": "0", "x-ratelimit-reset-after": "1.2"}, ""
    )
    room = discord_answer(204, {"x-ratelimit-remaining": "3", "x-ratelimit-reset-after": "1.2"}, "")
    assert (empty.ok, empty.bucket_empty_for, room.bucket_empty_for) == (True, 1.2, None)


def test_the_filters_each_narrow_and_empty_ones_let_all_through():
    up, down = alert(2), alert(3)  # +12% and -12%
    assert ChannelFilter().accepts(up, rule_id=None)
    assert not ChannelFilter(rule_ids={5}).accepts(up, rule_id=None)
    assert ChannelFilter(rule_ids={5}).accepts(up, rule_id=5)
    assert not ChannelFilter(symbols={"BTCUSDT"}).accepts(up, rule_id=None)
    assert ChannelFilter(directions={"DOWN"}).accepts(down, rule_id=None)
    assert not ChannelFilter(directions={"DOWN"}).accepts(up, rule_id=None)
    assert ChannelFilter(min_move_pct=Decimal("0.12")).accepts(down, rule_id=None)
    assert not ChannelFilter(min_move_pct=Decimal("0.13")).accepts(down, rule_id=None)
    assert ChannelFilter(regimes={"long_build"}).accepts(up, rule_id=None)  # price +1.25%
    assert not ChannelFilter(regimes={"short_build"}).accepts(up, rule_id=None)
