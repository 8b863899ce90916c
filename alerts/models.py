from django.db import models
from django.db.models import Q

from common.symbols import SYMBOL_MAX_LENGTH
from oi.models import DECIMAL_DIGITS, DECIMAL_PLACES


class AlertDirection(models.TextChoices):
    UP = "UP", "Spike (open interest up)"
    DOWN = "DOWN", "Dump (open interest down)"


class AlertSource(models.TextChoices):
    POLLER = "oi_realtime_poller", "Realtime poller"
    INGEST = "ingest", "Ingest API"


class OpenInterestAlert(models.Model):
    """An open-interest spike or dump of one symbol against its baseline."""

    symbol = models.CharField(max_length=SYMBOL_MAX_LENGTH)
    direction = models.CharField(max_length=4, choices=AlertDirection.choices)
    baseline = models.DecimalField(max_digits=DECIMAL_DIGITS, decimal_places=DECIMAL_PLACES)
    current = models.DecimalField(max_digits=DECIMAL_DIGITS, decimal_places=DECIMAL_PLACES)
    pct_change = models.DecimalField(max_digits=DECIMAL_DIGITS, decimal_places=DECIMAL_PLACES)
    abs_change = models.DecimalField(max_digits=DECIMAL_DIGITS, decimal_places=DECIMAL_PLACES)
    source = models.CharField(max_length=32, choices=AlertSource.choices)
    ts = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True, db_default=models.functions.Now())

    class Meta:
        db_table = "open_interest_alerts"
        constraints = [
            models.UniqueConstraint(
                fields=["symbol", "direction", "ts", "source"], name="oi_alert_uniq"
            ),
            models.CheckConstraint(
                condition=Q(direction__in=AlertDirection.values), name="oi_alert_direction_known"
            ),
            models.CheckConstraint(
                condition=Q(source__in=AlertSource.values), name="oi_alert_source_known"
            ),
            models.CheckConstraint(
                condition=Q(baseline__gte=0) & Q(current__gte=0), name="oi_alert_oi_nonneg"
            ),
        ]
        indexes = [
            models.Index(fields=["ts"], name="oi_alert_ts_idx"),
            models.Index(fields=["symbol", "ts"], name="oi_alert_symbol_ts_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.symbol} {self.direction} {self.pct_change:+.2%} @ {self.ts:%Y-%m-%d %H:%M}"


class AlertThresholdOverride(models.Model):
    """Per-symbol thresholds; an empty field keeps the global setting (field by field)."""

    symbol = models.CharField(max_length=SYMBOL_MAX_LENGTH, unique=True)
    spike_threshold_pct = models.DecimalField(
        max_digits=8, decimal_places=6, null=True, blank=True, help_text="e.g. 0.08 for 8%"
    )
    dump_threshold_pct = models.DecimalField(max_digits=8, decimal_places=6, null=True, blank=True)
    min_delta_contracts = models.DecimalField(
        max_digits=DECIMAL_DIGITS, decimal_places=DECIMAL_PLACES, null=True, blank=True
    )
    min_delta_usd = models.DecimalField(
        max_digits=DECIMAL_DIGITS,
        decimal_places=DECIMAL_PLACES,
        null=True,
        blank=True,
        help_text="Minimum |change| × mark price in USD; 0 switches a global USD minimum off",
    )
    cooldown_sec = models.PositiveIntegerField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "open_interest_alert_overrides"
        constraints = [
            models.CheckConstraint(
                condition=Q(spike_threshold_pct__isnull=True) | Q(spike_threshold_pct__gt=0),
                name="alert_override_spike_positive",
            ),
            models.CheckConstraint(
                condition=Q(dump_threshold_pct__isnull=True)
                | (Q(dump_threshold_pct__gt=0) & Q(dump_threshold_pct__lte=1)),
                name="alert_override_dump_in_range",
            ),
        ]

    def __str__(self) -> str:
        return f"thresholds for {self.symbol}"


class DeliveryChannel(models.TextChoices):
    WEBHOOK = "webhook", "Webhook"
    TELEGRAM = "telegram", "Telegram"


class AlertDelivery(models.Model):
    """An alert's delivery beyond the page; failures stay visible here and in the logs."""

    alert = models.ForeignKey(
        OpenInterestAlert, on_delete=models.CASCADE, related_name="deliveries"
    )
    channel = models.CharField(max_length=16, choices=DeliveryChannel.choices)
    delivered = models.BooleanField(default=False)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "open_interest_alert_deliveries"
        constraints = [
            models.UniqueConstraint(fields=["alert", "channel"], name="alert_delivery_uniq"),
        ]

    def __str__(self) -> str:
        return f"{self.alert_id} → {self.channel}: {'ok' if self.delivered else 'pending/failed'}"
