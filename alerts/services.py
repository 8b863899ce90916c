"""Raising and storing open-interest alerts (one store for the rules engine and the ingest API),
and the alert rules' own writes."""

import logging
from dataclasses import asdict, dataclass
from enum import StrEnum

from django.conf import settings
from django.db import connection, transaction

from alerts.channels.services import alert_delivery_queue
from alerts.fire_once import ClaimStatus, claim_status, key_claim, key_release, store_claimed
from alerts.formatting import alert_payload
from alerts.models import AlertRule, AlertThresholdOverride, OpenInterestAlert
from alerts.payloads import AlertCandidate, candidate_regime
from alerts.rules import default_rule_specs
from common.realtime import OI_ALERTS_GROUP, GroupMessageType, broadcast_on_commit
from common.redis import get_redis
from common.timeutil import datetime_from_ms, ms_from_datetime

logger = logging.getLogger(__name__)

COOLDOWN_KEY = "oi:alert:cooldown:{}:{}"

_INSERT_ALERT_SQL = """
INSERT INTO open_interest_alerts
    (symbol, direction, baseline, current, pct_change, abs_change, source, ts, created_at,
     rule_id, rule_name, window_sec, reference, threshold_pct, price_change_pct, mark_price,
     funding_rate, oi_usd_before, oi_usd_after, quote_volume_24h, regime,
     liquidations_long_usd, liquidations_short_usd, alerts_24h)
VALUES (%(symbol)s, %(direction)s, %(baseline)s, %(current)s, %(pct_change)s, %(abs_change)s,
        %(source)s, %(ts)s, now(), %(rule_id)s, %(rule_name)s, %(window_sec)s, %(reference)s,
        %(threshold_pct)s, %(price_change_pct)s, %(mark_price)s, %(funding_rate)s,
        %(oi_usd_before)s, %(oi_usd_after)s, %(quote_volume_24h)s, %(regime)s,
        %(liquidations_long_usd)s, %(liquidations_short_usd)s,
        1 + (SELECT count(*) FROM open_interest_alerts
             WHERE symbol = %(symbol)s AND ts > %(ts)s - interval '24 hours' AND ts <= %(ts)s))
ON CONFLICT (symbol, direction, ts, source, rule_name, window_sec) DO NOTHING
RETURNING id
"""

RULES_VERSION_KEY = "oi:alert_rules:version"


class AlertOutcome(StrEnum):
    CREATED = "created"
    DUPLICATE = "duplicate"
    COOLDOWN = "cooldown"


@dataclass(frozen=True)
class RaisedAlert:
    outcome: AlertOutcome
    alert: OpenInterestAlert | None


def alert_raise(candidate: AlertCandidate, *, cooldown_sec: int) -> RaisedAlert:
    """Store an alert from another producer (the ingest API) unless the same alert exists
    (idempotent) or its (symbol, direction) is cooling down. The cooldown lives in Redis, so it
    holds across workers and restarts; it is claimed before storing and given back if storing
    fails (``alerts.fire_once``), so no alert is lost to it."""
    existing = OpenInterestAlert.objects.filter(
        symbol=candidate.symbol,
        direction=candidate.direction,
        ts=candidate.ts,
        source=candidate.source,
        window_sec=candidate.window_sec,
    ).first()
    if existing:
        return RaisedAlert(AlertOutcome.DUPLICATE, existing)
    redis = get_redis()
    key = _cooldown_key(candidate)
    claim = ms_from_datetime(candidate.ts)
    if cooldown_sec > 0 and not _cooldown_claim(redis, key, claim, candidate, cooldown_sec):
        logger.info(
            "alert held by cooldown",
            extra={"symbol": candidate.symbol, "direction": candidate.direction},
        )
        return RaisedAlert(AlertOutcome.COOLDOWN, None)
    alert = store_claimed(lambda: alert_store(candidate), lambda: key_release(redis, key, claim))
    if alert is None:
        return RaisedAlert(AlertOutcome.DUPLICATE, None)
    logger.info(
        "open interest alert",
        extra={
            "symbol": alert.symbol,
            "direction": alert.direction,
            "pct_change": f"{alert.pct_change:.4f}",
            "alert_id": alert.id,
        },
    )
    return RaisedAlert(AlertOutcome.CREATED, alert)


def _cooldown_key(candidate: AlertCandidate) -> str:
    """Per (symbol, direction), and per timeframe when the producer names one: the VolSpike
    poller alerts each of its 5 min, 15 min and 1 hour windows on its own."""
    key = COOLDOWN_KEY.format(candidate.symbol, candidate.direction)
    return key if candidate.window_sec is None else f"{key}:{candidate.window_sec}"


def _cooldown_claim(
    redis, key: str, claim: int, candidate: AlertCandidate, cooldown_sec: int
) -> bool:
    """Claim the (symbol, direction) cooldown; a stale claim held there (``alerts.fire_once``:
    its age shows in the key's TTL) is dropped, so that alert is not lost for the whole
    cooldown."""
    if key_claim(redis, key, claim, cooldown_sec):
        return True
    held, ttl = redis.get(key), redis.ttl(key)
    if held is None or ttl < 0:
        return False
    status = claim_status(
        (cooldown_sec - ttl) * 1000,
        lambda: OpenInterestAlert.objects.filter(
            symbol=candidate.symbol,
            direction=candidate.direction,
            ts=datetime_from_ms(int(held)),
            window_sec=candidate.window_sec,
        ).exists(),
    )
    if status is not ClaimStatus.STALE:
        return False
    logger.warning(
        "cooldown claim without a stored alert dropped",
        extra={"symbol": candidate.symbol, "direction": candidate.direction, "claimed_ms": held},
    )
    key_release(redis, key, held)
    return key_claim(redis, key, claim, cooldown_sec)


@transaction.atomic
def alert_store(candidate: AlertCandidate) -> OpenInterestAlert | None:
    """Insert the alert (None when it exists already); after commit, publish it and queue its
    delivery beyond the page."""
    with connection.cursor() as cursor:
        cursor.execute(
            _INSERT_ALERT_SQL, {**asdict(candidate), "regime": candidate_regime(candidate).value}
        )
        row = cursor.fetchone()
    if row is None:
        return None
    alert = OpenInterestAlert.objects.get(pk=row[0])
    broadcast_on_commit(
        OI_ALERTS_GROUP, {"type": GroupMessageType.OI_ALERT, "alert": alert_payload(alert)}
    )
    transaction.on_commit(lambda: alert_delivery_queue(alert.id))
    return alert


@transaction.atomic
def alert_rule_create(**fields) -> AlertRule:
    """A new rule from its field values, validated by the model's ``clean`` (``ValidationError``
    with the field and the reason otherwise); the running engines load it at once."""
    return alert_rule_save(AlertRule(**fields))


@transaction.atomic
def alert_rule_update(rule: AlertRule, **fields) -> AlertRule:
    for name, value in fields.items():
        setattr(rule, name, value)
    return alert_rule_save(rule)


@transaction.atomic
def alert_rule_save(rule: AlertRule) -> AlertRule:
    """Validate (``full_clean``: the one validation of a rule, caps included) and save."""
    rule.full_clean()
    rule.save()
    alert_rules_changed()
    return rule


@transaction.atomic
def alert_rule_delete(rule: AlertRule) -> None:
    """Delete a rule; its alerts stay (their rule becomes empty, the name is kept)."""
    rule.delete()
    alert_rules_changed()


@transaction.atomic
def alert_override_create(**fields) -> AlertThresholdOverride:
    return alert_override_save(AlertThresholdOverride(**fields))


@transaction.atomic
def alert_override_update(override: AlertThresholdOverride, **fields) -> AlertThresholdOverride:
    for name, value in fields.items():
        setattr(override, name, value)
    return alert_override_save(override)


@transaction.atomic
def alert_override_save(override: AlertThresholdOverride) -> AlertThresholdOverride:
    """Validate (``full_clean``: the one validation of an override) and save."""
    override.full_clean()
    override.save()
    alert_rules_changed()
    return override


@transaction.atomic
def alert_override_delete(override: AlertThresholdOverride) -> None:
    override.delete()
    alert_rules_changed()


def alert_rules_changed() -> None:
    """Tell every process's rules engine to reload the rules now (it also does every 10 s)."""
    transaction.on_commit(lambda: get_redis().incr(RULES_VERSION_KEY))


def alert_rules_install_defaults(*, rule_model=None) -> int:
    """Create the default rules that do not exist yet (by name); returns how many were made.

    The design rule takes its values from the OI_* settings; the others are the VolSpike
    production windows. ``rule_model`` lets a migration pass its historical model."""
    model = rule_model or AlertRule
    specs = default_rule_specs(
        design_w_low_sec=settings.OI_ALERT_W_LOW_SEC,
        design_w_high_sec=settings.OI_ALERT_W_HIGH_SEC,
        design_spike_pct=settings.OI_SPIKE_THRESHOLD_PCT,
        design_dump_pct=settings.OI_DUMP_THRESHOLD_PCT,
        design_min_samples=settings.OI_ALERT_MIN_BASELINE_SAMPLES,
        design_min_delta_contracts=settings.OI_MIN_DELTA_CONTRACTS or None,
        design_min_delta_usd=settings.OI_MIN_DELTA_USD,
        design_cooldown_sec=settings.OI_ALERT_COOLDOWN_SEC,
    )
    fields = {field.name for field in model._meta.get_fields()}
    created = 0
    for spec in specs:
        if not set(spec) <= fields:
            # a preset that needs a later migration's field (an early migration's historical
            # model): the migration that adds the field installs it
            continue
        _, made = model.objects.get_or_create(name=spec["name"], defaults=spec)
        created += made
    return created
