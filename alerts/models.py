from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import F, Q

from common.numbers import DECIMAL_DIGITS, DECIMAL_PLACES
from common.symbols import SYMBOL_MAX_LENGTH


class AlertDirection(models.TextChoices):
    UP = "UP", "Spike (open interest up)"
    DOWN = "DOWN", "Dump (open interest down)"


class AlertSource(models.TextChoices):
    POLLER = "oi_realtime_poller", "Realtime poller"
    INGEST = "ingest", "Ingest API"


RULE_NAME_MAX_LENGTH = 64


class RuleKind(models.TextChoices):
    WINDOW_CHANGE = "window_change", "Change within the window, against its extreme"
    MEDIAN_BASELINE = "median_baseline", "Change against the median of an older window (design)"


class RuleDirection(models.TextChoices):
    UP = "UP", "Spikes only"
    DOWN = "DOWN", "Dumps only"
    BOTH = "BOTH", "Spikes and dumps"


class RuleScope(models.TextChoices):
    ALL = "all", "Every liquid symbol"
    ONLY = "only", "Only the listed symbols"
    EXCEPT = "except", "Every liquid symbol but the listed ones"


class AlertRule(models.Model):
    """One alert rule; several run at once. Edits take effect within seconds, without a restart.

    ``window_change``: the latest sample against the lowest (for spikes) or highest (for dumps)
    sample of the last ``window_sec``. ``median_baseline``: against the median of the samples
    aged ``baseline_from_sec`` to ``window_sec`` (the design's rule).
    """

    name = models.CharField(max_length=RULE_NAME_MAX_LENGTH, unique=True)
    enabled = models.BooleanField(default=True)
    kind = models.CharField(max_length=16, choices=RuleKind.choices, default=RuleKind.WINDOW_CHANGE)
    window_sec = models.PositiveIntegerField(help_text="W in seconds, e.g. 300 for 5 m")
    baseline_from_sec = models.PositiveIntegerField(
        null=True, blank=True,
        help_text="median_baseline only: the youngest age in the baseline window (W_low), seconds",
    )  # fmt: skip
    direction = models.CharField(
        max_length=4, choices=RuleDirection.choices, default=RuleDirection.BOTH
    )
    threshold_pct = models.DecimalField(
        max_digits=8, decimal_places=6, help_text="0.03 = 3%; a dump can be at most 100%"
    )
    dump_threshold_pct = models.DecimalField(
        max_digits=8, decimal_places=6, null=True, blank=True,
        help_text="A different threshold for dumps; empty: the same as threshold_pct",
    )  # fmt: skip
    min_delta_contracts = models.DecimalField(
        max_digits=DECIMAL_DIGITS, decimal_places=DECIMAL_PLACES, null=True, blank=True,
        help_text="The change must also be at least this many contracts",
    )  # fmt: skip
    min_delta_usd = models.DecimalField(
        max_digits=DECIMAL_DIGITS, decimal_places=DECIMAL_PLACES, null=True, blank=True,
        help_text="The change × mark price must also be at least this many USD",
    )  # fmt: skip
    cooldown_sec = models.PositiveIntegerField(default=900)
    rearm_ratio = models.DecimalField(
        max_digits=4, decimal_places=3, default=0.5,
        help_text=(
            "After firing, the rule re-arms for the symbol and direction once the change falls "
            "back to this fraction of the threshold (0.5: half of it)"
        ),
    )  # fmt: skip
    step_pct = models.DecimalField(
        max_digits=8, decimal_places=6, null=True, blank=True,
        help_text=(
            "Fire again without re-arming once the change has grown this much beyond the last "
            "alert's (0.03 = 3 more points); empty: only after re-arming"
        ),
    )  # fmt: skip
    min_samples = models.PositiveIntegerField(
        default=3, help_text="median_baseline: samples the baseline window needs for a verdict"
    )
    scope = models.CharField(max_length=8, choices=RuleScope.choices, default=RuleScope.ALL)
    symbols = ArrayField(
        models.CharField(max_length=SYMBOL_MAX_LENGTH), blank=True, default=list,
        help_text="The list for scope 'only' or 'except'",
    )  # fmt: skip
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "open_interest_alert_rules"
        ordering = ("window_sec", "name")
        constraints = [
            models.CheckConstraint(condition=Q(window_sec__gt=0), name="alert_rule_window_pos"),
            models.CheckConstraint(
                condition=Q(threshold_pct__gt=0), name="alert_rule_threshold_positive"
            ),
            models.CheckConstraint(
                condition=Q(direction="UP")
                | Q(dump_threshold_pct__isnull=False)
                | Q(threshold_pct__lte=1),
                name="alert_rule_dump_at_most_all",
            ),
            models.CheckConstraint(
                condition=Q(dump_threshold_pct__isnull=True)
                | (Q(dump_threshold_pct__gt=0) & Q(dump_threshold_pct__lte=1)),
                name="alert_rule_dump_threshold_range",
            ),
            models.CheckConstraint(
                condition=Q(rearm_ratio__gte=0) & Q(rearm_ratio__lt=1),
                name="alert_rule_rearm_ratio_range",
            ),
            models.CheckConstraint(
                condition=Q(step_pct__isnull=True) | Q(step_pct__gt=0),
                name="alert_rule_step_positive",
            ),
            models.CheckConstraint(
                condition=Q(kind=RuleKind.WINDOW_CHANGE, baseline_from_sec__isnull=True)
                | Q(
                    kind=RuleKind.MEDIAN_BASELINE,
                    baseline_from_sec__gt=0,
                    baseline_from_sec__lt=F("window_sec"),
                ),
                name="alert_rule_baseline_window",
            ),
            models.CheckConstraint(
                condition=Q(kind__in=RuleKind.values), name="alert_rule_kind_known"
            ),
            models.CheckConstraint(
                condition=Q(direction__in=RuleDirection.values), name="alert_rule_direction_known"
            ),
            models.CheckConstraint(
                condition=Q(scope__in=RuleScope.values), name="alert_rule_scope_known"
            ),
        ]

    def __str__(self) -> str:
        return self.name


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

    # Which rule fired, and the market around it (issue 9). Empty for alerts from older producers.
    rule = models.ForeignKey(
        "AlertRule", null=True, blank=True, on_delete=models.SET_NULL, related_name="alerts"
    )
    rule_name = models.CharField(
        max_length=RULE_NAME_MAX_LENGTH, blank=True, default="", db_default="",
        help_text="The rule's name when it fired (kept if the rule is renamed or deleted)",
    )  # fmt: skip
    window_sec = models.PositiveIntegerField(null=True, blank=True)
    reference = models.CharField(
        max_length=16, blank=True, default="", db_default="",
        help_text="What the change is measured against: window_low, window_high or median",
    )  # fmt: skip
    threshold_pct = models.DecimalField(max_digits=8, decimal_places=6, null=True, blank=True)
    price_change_pct = models.DecimalField(
        max_digits=DECIMAL_DIGITS, decimal_places=DECIMAL_PLACES, null=True, blank=True,
        help_text="Mark price change over the same window",
    )  # fmt: skip
    mark_price = models.DecimalField(
        max_digits=DECIMAL_DIGITS, decimal_places=DECIMAL_PLACES, null=True, blank=True
    )
    funding_rate = models.DecimalField(
        max_digits=DECIMAL_DIGITS, decimal_places=DECIMAL_PLACES, null=True, blank=True
    )
    oi_usd_before = models.DecimalField(
        max_digits=DECIMAL_DIGITS, decimal_places=DECIMAL_PLACES, null=True, blank=True
    )
    oi_usd_after = models.DecimalField(
        max_digits=DECIMAL_DIGITS, decimal_places=DECIMAL_PLACES, null=True, blank=True
    )
    quote_volume_24h = models.DecimalField(
        max_digits=DECIMAL_DIGITS, decimal_places=DECIMAL_PLACES, null=True, blank=True
    )
    alerts_24h = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="The symbol's alerts in the 24 h up to this one, itself included",
    )

    class Meta:
        db_table = "open_interest_alerts"
        constraints = [
            # window_sec: another producer (the VolSpike poller) may alert its 5 min and 15 min
            # windows on the same sample; each is its own alert. NULLs (no window) collide.
            models.UniqueConstraint(
                fields=["symbol", "direction", "ts", "source", "rule_name", "window_sec"],
                name="oi_alert_uniq",
                nulls_distinct=False,
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
    """Per-symbol settings over the rules; an empty field keeps the rule's own (field by field).

    Without a rule it applies to every rule; a rule's own override wins over it field by field.
    """

    symbol = models.CharField(max_length=SYMBOL_MAX_LENGTH)
    rule = models.ForeignKey(
        AlertRule, null=True, blank=True, on_delete=models.CASCADE, related_name="overrides",
        help_text="Empty: every rule",
    )  # fmt: skip
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
            models.UniqueConstraint(
                fields=["symbol", "rule"],
                name="alert_override_symbol_rule_uniq",
                nulls_distinct=False,
            ),
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
        return f"{self.symbol} on {self.rule or 'every rule'}"


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
