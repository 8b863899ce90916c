"""What each platform's answer to a POST means: accepted, rate-limited for how long (and for
which scope), a failure worth retrying, or a permanent failure that disables the channel.
Pure: the status, the headers (names in lower case) and the body's text in, an ``Answer`` out."""

import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

DETAIL_BODY_CHARS = 200
# Slack incoming-webhook error bodies that no retry can fix (docs.slack.dev, "Handling errors").
SLACK_PERMANENT = frozenset({
    "invalid_token", "no_service", "no_service_id", "no_team", "invalid_team", "team_disabled",
    "channel_not_found", "channel_is_archived", "action_prohibited",
    "posting_to_general_channel_denied", "user_not_found", "no_active_hooks",
})  # fmt: skip
DISCORD_UNKNOWN_WEBHOOK = 10015
PERMANENT_STATUSES = frozenset({401, 403, 404, 410})
# Slack's answers to a message it cannot render (the same text without blocks goes through).
SLACK_REFUSED = frozenset({
    "invalid_blocks", "invalid_blocks_format", "invalid_payload", "invalid_attachments",
    "too_many_attachments", "no_text",
})  # fmt: skip


class Outcome(StrEnum):
    ACCEPTED = "accepted"
    RATE_LIMITED = "rate_limited"  # wait `retry_after`, then send the same again
    FAILED = "failed"  # back off, then send the same again
    REFUSED = "refused"  # the platform cannot render this message: send it as plain text
    PERMANENT = "permanent"  # the target is gone or refuses us: disable the channel


@dataclass(frozen=True)
class Answer:
    outcome: Outcome
    detail: str
    retry_after: float | None = None
    whole_platform: bool = False  # the rate limit holds for every channel of the platform
    bucket_empty_for: float | None = None  # accepted, and no more may go for this long

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.ACCEPTED


def _detail(status: int, body: str) -> str:
    text = " ".join(body.split())[:DETAIL_BODY_CHARS]
    return f"HTTP {status}: {text}" if text else f"HTTP {status}"


def _json(body: str) -> dict:
    try:
        value = json.loads(body)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _seconds(value: object) -> float | None:
    try:
        seconds = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return seconds if seconds >= 0 else None


def telegram_answer(status: int, headers: Mapping[str, str], body: str) -> Answer:
    """The Bot API: 429 with ``parameters.retry_after``; 401 (token revoked), 403 (bot blocked
    or removed), 404 (no such bot) and 400 "chat not found" are permanent."""
    if status < 300:
        return Answer(Outcome.ACCEPTED, f"HTTP {status}")
    detail = _detail(status, body)
    payload = _json(body)
    if status == 429:
        parameters = payload.get("parameters")
        retry = _seconds(parameters.get("retry_after")) if isinstance(parameters, dict) else None
        return Answer(Outcome.RATE_LIMITED, detail, retry_after=retry if retry is not None else 1.0)
    description = str(payload.get("description", "")).lower()
    if status in PERMANENT_STATUSES or (status == 400 and "chat not found" in description):
        return Answer(Outcome.PERMANENT, detail)
    return Answer(Outcome.FAILED, detail)


def discord_answer(status: int, headers: Mapping[str, str], body: str) -> Answer:
    """Discord webhooks: 204 (200 with ?wait=true) accepted, with ``X-RateLimit-Remaining`` and
    ``X-RateLimit-Reset-After`` saying when the bucket refills; a 429's JSON ``retry_after``
    (seconds, float) and ``global``; 401/403/404 and code 10015 (Unknown Webhook) permanent."""
    if status < 300:
        remaining = headers.get("x-ratelimit-remaining")
        reset_after = _seconds(headers.get("x-ratelimit-reset-after"))
        empty = reset_after if remaining == "0" and reset_after else None
        return Answer(Outcome.ACCEPTED, f"HTTP {status}", bucket_empty_for=empty)
    detail = _detail(status, body)
    payload = _json(body)
    if status == 429:
        retry = _seconds(payload.get("retry_after"))
        if retry is None:
            retry = _seconds(headers.get("retry-after"))
        return Answer(
            Outcome.RATE_LIMITED,
            detail,
            retry_after=retry if retry is not None else 1.0,
            whole_platform=bool(payload.get("global"))
            or headers.get("x-ratelimit-global") == "true",
        )
    if status in PERMANENT_STATUSES or payload.get("code") == DISCORD_UNKNOWN_WEBHOOK:
        return Answer(Outcome.PERMANENT, detail)
    if status == 400:  # e.g. 50035 Invalid Form Body: an embed Discord will not take
        return Answer(Outcome.REFUSED, detail)
    return Answer(Outcome.FAILED, detail)


def slack_answer(status: int, headers: Mapping[str, str], body: str) -> Answer:
    """Slack incoming webhooks: 200 ``ok``; 429 with ``Retry-After`` (seconds); the error bodies
    of ``SLACK_PERMANENT`` (and 401/403/404/410) permanent; otherwise as a generic receiver."""
    if status >= 300 and status != 429 and status not in PERMANENT_STATUSES:
        if body.strip() in SLACK_PERMANENT:
            return Answer(Outcome.PERMANENT, _detail(status, body))
        if body.strip() in SLACK_REFUSED:
            return Answer(Outcome.REFUSED, _detail(status, body))
    return webhook_answer(status, headers, body)


def webhook_answer(status: int, headers: Mapping[str, str], body: str) -> Answer:
    """A generic receiver: 2xx accepted; 429 with ``Retry-After`` honoured; 401/403/404/410 (a
    wrong secret, a removed endpoint) permanent; anything else retried."""
    if status < 300:
        return Answer(Outcome.ACCEPTED, f"HTTP {status}")
    detail = _detail(status, body)
    if status == 429:
        retry = _seconds(headers.get("retry-after"))
        return Answer(Outcome.RATE_LIMITED, detail, retry_after=retry if retry is not None else 1.0)
    if status in PERMANENT_STATUSES:
        return Answer(Outcome.PERMANENT, detail)
    return Answer(Outcome.FAILED, detail)
