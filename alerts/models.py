"""The alert models. ``AlertRule.clean`` and ``AlertThresholdOverride.clean`` are the one
validation of a rule and of an override: the admin's forms, and the services the API and any
command write through (``alerts.services``), all run ``full_clean``."""

import re
from decimal import InvalidOperation
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q

from alerts.liquidation_rules import (
    BOTH_SIDES,
    BURST_RULE_KIND,
    LIQUIDATION_WINDOW_MAX_SEC,
    LIQUIDATION_WINDOW_MIN_SEC,
    LiquidatedSide,
    burst_rule_from_fields,
)
from alerts.outcome_measures import Horizon, OutcomeStatus
from alerts.rules import rule_from_fields
from common.numbers import DECIMAL_DIGITS, DECIMAL_PLACES
from common.symbols import SYMBOL_MAX_LENGTH, symbol_problem
from oi.coarse import LONG_WINDOW_ABOVE_SEC, LONG_WINDOW_MAX_SEC, is_long_window
from oi.regimes import REGIME_MEANINGS, Regime


class AlertDirection(models.TextChoices):
    UP = "UP", "Spike (open interest up)"
    DOWN = "DOWN", "Dump (open interest down)"


class AlertSource(models.TextChoices):
    POLLER = "oi_realtime_poller", "Realtime poller"
    INGEST = "ingest", "Ingest API"


RULE_NAME_MAX_LENGTH = 64
REGIME_CHOICES = [(regime.value, REGIME_MEANINGS[regime]) for regime in Regime]


class RuleKind(models.TextChoices):
    WINDOW_CHANGE = "window_change", "Change within the window, against its extreme"
    MEDIAN_BASELINE = "median_baseline", "Change against the median of an older window (design)"
    RELATIVE = "relative", "Change over the window as a robust z against the symbol's own history"
    LIQUIDATION_BURST = BURST_RULE_KIND, "Liquidation USD of one side over the window"


class LiquidatedSideChoice(models.TextChoices):
    """Whose liquidations a liquidation-burst rule sums (alerts.liquidation_rules)."""

    LONG = LiquidatedSide.LONG.value, "Longs liquidated (SELL orders)"
    SHORT = LiquidatedSide.SHORT.value, "Shorts liquidated (BUY orders)"
    BOTH = BOTH_SIDES, "Either side (each side summed on its own)"


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
    aged ``baseline_from_sec`` to ``window_sec`` (the design's rule). ``relative``: the change
    over the window against the symbol's own distribution of it (alerts.relative); its
    thresholds are robust z values. Windows over 3 h (up to 24 h) read the coarse ring.
    ``liquidation_burst``: one side's liquidation USD over the window at or above
    ``threshold_usd`` and/or ``threshold_volume_share`` of the symbol's 24 h quote volume
    (alerts.liquidation_rules); evaluated by the streams process as liquidations arrive.
    """

    name = models.CharField(max_length=RULE_NAME_MAX_LENGTH, unique=True)
    enabled = models.BooleanField(default=True)
    kind = models.CharField(max_length=24, choices=RuleKind.choices, default=RuleKind.WINDOW_CHANGE)
    window_sec = models.PositiveIntegerField(help_text="W in seconds, e.g. 300 for 5 m")
    baseline_from_sec = models.PositiveIntegerField(
        null=True, blank=True,
        help_text="median_baseline only: the youngest age in the baseline window (W_low), seconds",
    )  # fmt: skip
    direction = models.CharField(
        max_length=4, choices=RuleDirection.choices, default=RuleDirection.BOTH
    )
    threshold_pct = models.DecimalField(
        max_digits=8, decimal_places=6, null=True, blank=True,
        help_text="0.03 = 3%; a dump can be at most 100%. Relative rules: a robust z (e.g. 6). "
        "Required, except for liquidation_burst rules (which have none)",
    )  # fmt: skip
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
    regimes = ArrayField(
        models.CharField(max_length=24, choices=REGIME_CHOICES), blank=True, default=list,
        help_text="Fire only on moves of these OI/price regimes (e.g. short_build: OI up, price "
        "down); empty: any",
    )  # fmt: skip
    threshold_usd = models.DecimalField(
        max_digits=DECIMAL_DIGITS, decimal_places=DECIMAL_PLACES, null=True, blank=True,
        help_text="liquidation_burst only: the liquidation USD of one side over the window that "
        "fires the rule",
    )  # fmt: skip
    threshold_volume_share = models.DecimalField(
        max_digits=8, decimal_places=6, null=True, blank=True,
        help_text="liquidation_burst only: the liquidation USD as a share of the symbol's 24 h "
        "quote volume (0.001 = 0.1%); with threshold_usd too, the larger of the two",
    )  # fmt: skip
    liquidated_side = models.CharField(
        max_length=5, choices=LiquidatedSideChoice.choices, default=LiquidatedSideChoice.BOTH,
        help_text="liquidation_burst only: whose liquidations are summed",
    )  # fmt: skip
    liquidity_tiers = models.BooleanField(
        default=False,
        help_text="Multiply the thresholds by the symbol's liquidity tier (OI_LIQUIDITY_TIERS, by "
        "24 h quote volume); a symbol's override threshold wins. Not for relative rules",
    )
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
                condition=Q(direction=RuleDirection.UP)
                | Q(dump_threshold_pct__isnull=False)
                | Q(threshold_pct__lte=1)
                | Q(kind=RuleKind.RELATIVE),
                name="alert_rule_dump_at_most_all",
            ),
            models.CheckConstraint(
                condition=Q(dump_threshold_pct__isnull=True)
                | (Q(dump_threshold_pct__gt=0) & Q(dump_threshold_pct__lte=1))
                | Q(kind=RuleKind.RELATIVE, dump_threshold_pct__gt=0),
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
                condition=Q(kind=RuleKind.LIQUIDATION_BURST, threshold_pct__isnull=True)
                & (Q(threshold_usd__gt=0) | Q(threshold_volume_share__gt=0))
                | (
                    ~Q(kind=RuleKind.LIQUIDATION_BURST)
                    & Q(threshold_pct__isnull=False)
                    & Q(threshold_usd__isnull=True)
                    & Q(threshold_volume_share__isnull=True)
                ),
                name="alert_rule_thresholds_of_kind",
            ),
            models.CheckConstraint(
                condition=Q(
                    kind__in=(
                        RuleKind.WINDOW_CHANGE,
                        RuleKind.RELATIVE,
                        RuleKind.LIQUIDATION_BURST,
                    ),
                    baseline_from_sec__isnull=True,
                )
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

    def clean(self) -> None:
        """The one validation of a rule: the first problem, as {field: reason}. A value that
        failed its field's own check (type, required) is left to ``clean_fields`` to report."""
        self.symbols = sorted(set(self.symbols or ()))
        self.regimes = sorted(set(self.regimes or ()))
        try:
            problem = self._problem() or self._cap_problem()
        except (TypeError, InvalidOperation):
            return
        if problem:
            raise ValidationError({problem[0]: problem[1]})

    def _problem(self) -> tuple[str, str] | None:
        for symbol in self.symbols:
            problem = symbol_problem(symbol)
            if problem:
                return "symbols", f"{symbol!r} {problem}"
        if self.kind == RuleKind.LIQUIDATION_BURST:
            return self._burst_problem()
        for name in ("threshold_usd", "threshold_volume_share"):
            if getattr(self, name) is not None:
                return name, "only liquidation_burst rules have one"
        if self.liquidated_side != LiquidatedSideChoice.BOTH:
            return "liquidated_side", "only liquidation_burst rules have one"
        window_sec, threshold = self.window_sec, self.threshold_pct
        if window_sec is None:
            return None
        if threshold is None:
            return "threshold_pct", "this field is required (except for liquidation_burst rules)"
        if window_sec <= 0:
            return "window_sec", "must be above 0"
        if window_sec > longest_rule_window_sec() and not is_long_window(window_sec):
            return "window_sec", (
                f"must be at most {longest_rule_window_sec()} s: the ring buffers keep "
                f"OI_RING_WINDOW_SEC={settings.OI_RING_WINDOW_SEC} s of samples (or a long "
                f"window over {LONG_WINDOW_ABOVE_SEC} s, read from the coarse ring)"
            )
        if window_sec > LONG_WINDOW_MAX_SEC:
            return "window_sec", (
                f"must be at most {LONG_WINDOW_MAX_SEC} s (24 h: the coarse ring keeps 25 h)"
            )
        relative = self.kind == RuleKind.RELATIVE
        if relative and window_sec < 300:
            return "window_sec", "a relative rule's window must be at least 300 s"
        if relative and self.liquidity_tiers:
            return "liquidity_tiers", "a relative rule is already relative to each symbol"
        baseline_from_sec = self.baseline_from_sec
        if self.kind == RuleKind.MEDIAN_BASELINE:
            if baseline_from_sec is None or not 0 < baseline_from_sec < window_sec:
                return (
                    "baseline_from_sec",
                    "a median_baseline rule needs 0 < baseline_from_sec < window_sec",
                )
        elif baseline_from_sec is not None:
            return "baseline_from_sec", "only median_baseline rules have one"
        if threshold <= 0:
            return "threshold_pct", "must be above 0"
        dump_threshold = self.dump_threshold_pct
        if relative:
            if dump_threshold is not None and dump_threshold <= 0:
                return "dump_threshold_pct", "must be above 0 (a robust z)"
        elif dump_threshold is not None and not 0 < dump_threshold <= 1:
            return "dump_threshold_pct", "must be above 0 and at most 1 (a dump is at most 100%)"
        elif self.direction != RuleDirection.UP and dump_threshold is None and threshold > 1:
            return "threshold_pct", "must be at most 1 for dumps (set dump_threshold_pct otherwise)"
        for name in ("min_delta_contracts", "min_delta_usd"):
            if getattr(self, name) is not None and getattr(self, name) < 0:
                return name, "must be 0 or more"
        if self.rearm_ratio is not None and not 0 <= self.rearm_ratio < 1:
            return "rearm_ratio", "must be at least 0 and below 1"
        if self.step_pct is not None and self.step_pct <= 0:
            return "step_pct", "must be above 0 (or empty)"
        if self.min_samples is not None and self.min_samples < 1:
            return "min_samples", "must be at least 1"
        return self._scope_and_engine_problem(rule_from_fields)  # ``alerts.rules.Rule``

    def _scope_and_engine_problem(self, engine_from_fields) -> tuple[str, str] | None:
        """What every kind checks last: its scope's symbols, then what its engine itself accepts
        (``engine_from_fields``: the pure module's constructor from the model's fields)."""
        if self.scope != RuleScope.ALL and not self.symbols:
            return "symbols", f"scope {self.scope!r} needs at least one symbol"
        try:
            engine_from_fields(
                self.pk or 0, {f.name: getattr(self, f.name) for f in self._meta.concrete_fields}
            )
        except (KeyError, ValueError) as exc:
            return "__all__", str(exc)
        return None

    def _burst_problem(self) -> tuple[str, str] | None:
        window_sec = self.window_sec
        if window_sec is None:
            return None
        if not LIQUIDATION_WINDOW_MIN_SEC <= window_sec <= LIQUIDATION_WINDOW_MAX_SEC:
            return "window_sec", (
                f"a liquidation_burst rule's window must be {LIQUIDATION_WINDOW_MIN_SEC} to "
                f"{LIQUIDATION_WINDOW_MAX_SEC} s"
            )
        for name in ("threshold_pct", "dump_threshold_pct", "baseline_from_sec",
                     "min_delta_contracts", "min_delta_usd", "step_pct"):  # fmt: skip
            if getattr(self, name) is not None:
                return name, (
                    "a liquidation_burst rule has none (its thresholds are threshold_usd and "
                    "threshold_volume_share)"
                )
        if self.regimes:
            return "regimes", "a liquidation_burst rule has none (regimes are OI moves')"
        if self.liquidity_tiers:
            return "liquidity_tiers", (
                "a liquidation_burst rule has none (use threshold_volume_share to scale it by "
                "the symbol's volume)"
            )
        if self.direction != RuleDirection.BOTH:
            return "direction", (
                "a liquidation_burst rule has no open-interest direction; liquidated_side "
                "chooses whose liquidations count"
            )
        usd, share = self.threshold_usd, self.threshold_volume_share
        if usd is None and share is None:
            return "threshold_usd", (
                "a liquidation_burst rule needs threshold_usd, threshold_volume_share or both"
            )
        if usd is not None and usd <= 0:
            return "threshold_usd", "must be above 0"
        if share is not None and not 0 < share <= 1:
            return "threshold_volume_share", "must be above 0 and at most 1"
        if self.rearm_ratio is not None and not 0 <= self.rearm_ratio < 1:
            return "rearm_ratio", "must be at least 0 and below 1"
        # ``alerts.liquidation_rules.BurstRule``
        return self._scope_and_engine_problem(burst_rule_from_fields)

    def _cap_problem(self) -> tuple[str, str] | None:
        """Enabling this rule must not pass the caps on enabled rules or on their distinct
        windows: every poller process keeps one window tracker per symbol and distinct window,
        and runs every enabled rule on every sample."""
        if not self.enabled:
            return None
        others = AlertRule.objects.filter(enabled=True)
        if self.pk is not None:
            others = others.exclude(pk=self.pk)
        max_rules = settings.OI_ALERT_RULES_MAX_ENABLED
        if others.count() + 1 > max_rules:
            return "enabled", (
                f"at most {max_rules} rules may be enabled (OI_ALERT_RULES_MAX_ENABLED); "
                "disable or delete one first"
            )
        if self.kind == RuleKind.LIQUIDATION_BURST:
            return None  # its windows are the streams process's, not ring trackers
        windows = set(
            others.exclude(kind=RuleKind.LIQUIDATION_BURST)
            .values_list("kind", "window_sec", "baseline_from_sec")
            .distinct()
            .order_by()
        )
        max_windows = settings.OI_ALERT_MAX_DISTINCT_WINDOWS
        key = (self.kind, self.window_sec, self.baseline_from_sec)
        if key not in windows and len(windows) + 1 > max_windows:
            return "window_sec", (
                f"the enabled rules may use at most {max_windows} distinct windows "
                "(OI_ALERT_MAX_DISTINCT_WINDOWS); reuse the window of an enabled rule"
            )
        return None


def longest_rule_window_sec() -> int:
    """A window must fit in the ring buffers, with a minute to spare for the newest samples."""
    return settings.OI_RING_WINDOW_SEC - 60


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
        help_text="What the change is measured against: window_low, window_high, median or "
        "window_start (relative rules; their threshold_pct is a robust z)",
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
    regime = models.CharField(
        max_length=24, choices=REGIME_CHOICES, blank=True, default="", db_default="",
        help_text="What kind of move: OI and price over the window (oi.regimes); empty for "
        "alerts stored before regimes existed",
    )  # fmt: skip
    # Liquidations over the alert's window from the market stream (issue 18): lower bounds, as
    # Binance sends at most one liquidation per symbol per second. Null where not known (the
    # ingest API's alerts, or alerts stored before the streams existed).
    liquidations_long_usd = models.DecimalField(
        max_digits=DECIMAL_DIGITS, decimal_places=DECIMAL_PLACES, null=True, blank=True,
        help_text="Long liquidations (SELL orders) over the window, USD: a lower bound",
    )  # fmt: skip
    liquidations_short_usd = models.DecimalField(
        max_digits=DECIMAL_DIGITS, decimal_places=DECIMAL_PLACES, null=True, blank=True,
        help_text="Short liquidations (BUY orders) over the window, USD: a lower bound",
    )  # fmt: skip

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


class LiquidationAlert(models.Model):
    """A liquidation burst: one side's liquidation USD over a liquidation_burst rule's window
    reached its threshold (alerts.liquidation_rules). Its own table: the open-interest alerts'
    rows and feed events keep the shape their clients read."""

    rule = models.ForeignKey(
        "AlertRule", null=True, blank=True, on_delete=models.SET_NULL,
        related_name="liquidation_alerts",
    )  # fmt: skip
    rule_name = models.CharField(
        max_length=RULE_NAME_MAX_LENGTH,
        help_text="The rule's name when it fired (kept if the rule is renamed or deleted)",
    )
    symbol = models.CharField(max_length=SYMBOL_MAX_LENGTH)
    side = models.CharField(
        max_length=5,
        choices=[(LiquidatedSide.LONG.value, "Longs liquidated"),
                 (LiquidatedSide.SHORT.value, "Shorts liquidated")],
    )  # fmt: skip
    window_sec = models.PositiveIntegerField()
    usd = models.DecimalField(
        max_digits=DECIMAL_DIGITS, decimal_places=DECIMAL_PLACES,
        help_text="The side's liquidation USD over the window: a lower bound (Binance sends at "
        "most one liquidation per symbol per second)",
    )  # fmt: skip
    count = models.PositiveIntegerField(help_text="The side's liquidations in the window")
    other_side_usd = models.DecimalField(
        max_digits=DECIMAL_DIGITS, decimal_places=DECIMAL_PLACES,
        help_text="The other side's liquidation USD over the same window",
    )  # fmt: skip
    threshold_usd = models.DecimalField(
        max_digits=DECIMAL_DIGITS, decimal_places=DECIMAL_PLACES,
        help_text="The threshold in USD at the time (a volume share turned into USD)",
    )  # fmt: skip
    quote_volume_24h = models.DecimalField(
        max_digits=DECIMAL_DIGITS, decimal_places=DECIMAL_PLACES, null=True, blank=True
    )
    mark_price = models.DecimalField(
        max_digits=DECIMAL_DIGITS, decimal_places=DECIMAL_PLACES, null=True, blank=True
    )
    ts = models.DateTimeField(help_text="The trade time of the liquidation that fired it")
    created_at = models.DateTimeField(auto_now_add=True, db_default=models.functions.Now())

    class Meta:
        db_table = "liquidation_burst_alerts"
        constraints = [
            # a rebuilt tracker (restart, rule change) that finds the same burst stores nothing
            models.UniqueConstraint(
                fields=["rule_name", "symbol", "side", "ts"], name="liquidation_alert_uniq"
            ),
            models.CheckConstraint(
                condition=Q(side__in=LiquidatedSide), name="liquidation_alert_side_known"
            ),
        ]
        indexes = [
            models.Index(fields=["ts"], name="liq_alert_ts_idx"),
            models.Index(fields=["symbol", "ts"], name="liq_alert_symbol_ts_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.symbol} {self.side} liquidations {self.usd:.0f} USD @ {self.ts:%Y-%m-%d %H:%M:%S}"


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

    def clean(self) -> None:
        """The one validation of an override: the first problem, as {field: reason}."""
        try:
            problem = self._problem()
        except (TypeError, InvalidOperation):
            return  # a value that failed its field's own check; clean_fields reports it
        if problem:
            raise ValidationError({problem[0]: problem[1]})

    def _problem(self) -> tuple[str, str] | None:
        if not self.symbol:
            return None
        problem = symbol_problem(self.symbol)
        if problem:
            return "symbol", problem
        clash = AlertThresholdOverride.objects.filter(symbol=self.symbol, rule_id=self.rule_id)
        if self.pk is not None:
            clash = clash.exclude(pk=self.pk)
        if clash.exists():
            return (
                "symbol",
                f"{self.symbol} already has an override for {self.rule or 'every rule'}",
            )
        spike, dump = self.spike_threshold_pct, self.dump_threshold_pct
        if spike is not None and spike <= 0:
            return "spike_threshold_pct", "must be above 0"
        if dump is not None and not 0 < dump <= 1:
            return "dump_threshold_pct", "must be above 0, at most 1"
        for name in ("min_delta_contracts", "min_delta_usd"):
            if getattr(self, name) is not None and getattr(self, name) < 0:
                return name, "must be 0 or more"
        return None


class ChannelKind(models.TextChoices):
    """Where a delivery channel sends (each kind has its own target, format and rate limit)."""

    TELEGRAM = "telegram", "Telegram chat"
    DISCORD = "discord", "Discord webhook"
    SLACK = "slack", "Slack incoming webhook"
    WEBHOOK = "webhook", "Webhook (signed JSON, one POST per alert)"


CHANNEL_NAME_MAX_LENGTH = 64
# Write-only fields: never shown back by the API or the admin, redacted from logs and errors.
CHANNEL_SECRET_FIELDS = ("bot_token", "url", "signing_secret")
_TARGET_FIELDS = {
    ChannelKind.TELEGRAM: ("bot_token", "telegram_chat_id"),
    ChannelKind.DISCORD: ("url",),
    ChannelKind.SLACK: ("url",),
    ChannelKind.WEBHOOK: ("url",),
}
_OPTIONAL_TARGET_FIELDS = {ChannelKind.WEBHOOK: ("signing_secret",)}
_ALL_TARGET_FIELDS = ("bot_token", "telegram_chat_id", "url", "signing_secret")


def channel_target_fields(kind: str) -> tuple[str, ...]:
    """The target fields a channel of `kind` has (required and optional)."""
    if kind not in ChannelKind.values:
        return ()
    kind = ChannelKind(kind)
    return _TARGET_FIELDS[kind] + _OPTIONAL_TARGET_FIELDS.get(kind, ())


class AlertChannel(models.Model):
    """One place alerts (and, if chosen, system messages) go: a Telegram chat, a Discord or Slack
    webhook, or a signed generic webhook. Any number of each kind; each has its own outbox and
    rate limit (``alerts.channels``). ``clean`` is the one validation (admin, API, settings)."""

    name = models.CharField(max_length=CHANNEL_NAME_MAX_LENGTH, unique=True)
    kind = models.CharField(max_length=16, choices=ChannelKind.choices)
    enabled = models.BooleanField(default=True)
    telegram_chat_id = models.CharField(
        max_length=64, blank=True, default="", help_text="Telegram only: the chat's id, e.g. -1001"
    )
    bot_token = models.CharField(
        max_length=256, blank=True, default="", help_text="Telegram only (secret, write-only)"
    )
    url = models.CharField(
        max_length=2000, blank=True, default="",
        help_text="Discord/Slack/webhook: the URL to POST to (secret, write-only)",
    )  # fmt: skip
    signing_secret = models.CharField(
        max_length=256, blank=True, default="",
        help_text="Webhook only: HMAC-SHA256 signing secret (write-only); empty: unsigned",
    )  # fmt: skip
    receives_alerts = models.BooleanField(default=True)
    receives_ops = models.BooleanField(
        default=False, help_text="System messages (ops): trouble in the system, and recoveries"
    )
    rules = models.ManyToManyField(
        AlertRule, blank=True, related_name="channels", help_text="Empty: every rule"
    )
    symbols = ArrayField(
        models.CharField(max_length=SYMBOL_MAX_LENGTH), blank=True, default=list,
        help_text="Empty: every symbol",
    )  # fmt: skip
    directions = ArrayField(
        models.CharField(max_length=4, choices=AlertDirection.choices), blank=True, default=list,
        help_text="UP, DOWN; empty: both",
    )  # fmt: skip
    regimes = ArrayField(
        models.CharField(max_length=24, choices=REGIME_CHOICES), blank=True, default=list,
        help_text="Only alerts of these OI/price regimes (e.g. short_build); empty: every regime",
    )  # fmt: skip
    min_move_pct = models.DecimalField(
        max_digits=8, decimal_places=6, null=True, blank=True,
        help_text="Only alerts whose |change| is at least this (0.10 = 10%); empty: every alert",
    )  # fmt: skip
    from_settings = models.BooleanField(
        default=False, editable=False,
        help_text="Kept in step with TELEGRAM_* / ALERT_WEBHOOK_* at worker start and migrate",
    )  # fmt: skip
    disabled_reason = models.TextField(blank=True, default="")
    disabled_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "open_interest_alert_channels"
        ordering = ("name",)
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=ChannelKind.values), name="alert_channel_kind_known"
            ),
            models.CheckConstraint(
                condition=Q(min_move_pct__isnull=True) | Q(min_move_pct__gte=0),
                name="alert_channel_min_move_nonneg",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"

    def clean(self) -> None:
        """The one validation of a channel: the first problem, as {field: reason}."""
        self.symbols = sorted(set(self.symbols or ()))
        self.directions = sorted(set(self.directions or ()))
        self.regimes = sorted(set(self.regimes or ()))
        problem = self._problem()
        if problem:
            raise ValidationError({problem[0]: problem[1]})

    def _problem(self) -> tuple[str, str] | None:
        if self.kind not in ChannelKind.values:
            return None  # clean_fields reports it
        kind = ChannelKind(self.kind)
        allowed = channel_target_fields(kind)
        for name in _TARGET_FIELDS[kind]:
            if not getattr(self, name):
                return name, f"a {kind.value} channel needs one"
        for name in _ALL_TARGET_FIELDS:
            if name not in allowed and getattr(self, name):
                return name, f"a {kind.value} channel has none"
        if self.url:
            problem = channel_url_problem(kind, self.url)
            if problem:
                return "url", problem
        if self.telegram_chat_id and not _TELEGRAM_CHAT.fullmatch(self.telegram_chat_id):
            return "telegram_chat_id", "must be a chat id (digits, may start with -) or @channel"
        if self.bot_token and not _TELEGRAM_TOKEN.fullmatch(self.bot_token):
            return "bot_token", "must look like <digits>:<secret> (from @BotFather)"
        for symbol in self.symbols:
            problem = symbol_problem(symbol)
            if problem:
                return "symbols", f"{symbol!r} {problem}"
        for direction in self.directions:
            if direction not in AlertDirection.values:
                return "directions", f"{direction!r} is not one of {', '.join(AlertDirection)}"
        if self.min_move_pct is not None and self.min_move_pct < 0:
            return "min_move_pct", "must be 0 or more"
        return None

    def secret_values(self) -> list[str]:
        return [v for v in (getattr(self, name) for name in CHANNEL_SECRET_FIELDS) if v]


_TELEGRAM_CHAT = re.compile(r"-?\d{1,20}|@[A-Za-z0-9_]{5,32}")
_TELEGRAM_TOKEN = re.compile(r"\d{1,20}:[A-Za-z0-9_-]{1,200}")
_URL_PATHS = {
    ChannelKind.DISCORD: (
        re.compile(r"/api(/v\d+)?/webhooks/\d+/[A-Za-z0-9_-]+"),
        "a Discord webhook URL: https://discord.com/api/webhooks/<id>/<token>",
    ),
    ChannelKind.SLACK: (
        re.compile(r"/services/[A-Z0-9]+/[A-Z0-9]+/[A-Za-z0-9]+"),
        "a Slack incoming-webhook URL: https://hooks.slack.com/services/T…/B…/…",
    ),
}
_LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


def channel_url_problem(kind: str, url: str) -> str | None:
    """Why `url` cannot be this kind's target (https, or http to this machine), or None."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return "must be a URL"
    if parts.scheme not in ("http", "https") or not host:
        return "must be an http(s) URL"
    if parts.scheme == "http" and host not in _LOCAL_HOSTS and kind != ChannelKind.WEBHOOK:
        return "must be https"
    pattern = _URL_PATHS.get(kind)
    if pattern and not pattern[0].fullmatch(parts.path):
        return f"must be {pattern[1]}"
    return None


class OpsMessage(models.Model):
    """A system message (trouble in the system, or its recovery) queued on the channels that
    receive ops messages; stored so nothing is lost while a channel waits."""

    dedup_key = models.CharField(max_length=200)
    title = models.CharField(max_length=200)
    text = models.TextField()
    recovered = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "open_interest_ops_messages"
        indexes = [models.Index(fields=["dedup_key", "-id"], name="ops_message_key_idx")]

    def __str__(self) -> str:
        return f"{'✅' if self.recovered else '⚠'} {self.title}"


class AlertDelivery(models.Model):
    """An alert's delivery on one channel; failures stay visible here and in the logs."""

    alert = models.ForeignKey(
        OpenInterestAlert, on_delete=models.CASCADE, related_name="deliveries"
    )
    channel = models.ForeignKey(AlertChannel, on_delete=models.CASCADE, related_name="deliveries")
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


class AlertForwardOutcome(models.Model):
    """What followed an alert at one horizon (alerts.outcome_measures): the stored sample nearest
    to alert time + horizon, and the signed changes of OI and mark price from the alert's own.
    One row per (alert, horizon), written once by the outcomes job; no row: not yet due.

    A row per horizon keeps the statistics one GROUP BY horizon, with one percentile sort per
    measure, over rows reached through the alert's primary key."""

    alert = models.ForeignKey(
        OpenInterestAlert, on_delete=models.CASCADE, related_name="forward_outcomes",
        db_index=False,  # the (alert, horizon) unique index serves lookups by alert
    )  # fmt: skip
    horizon_sec = models.PositiveIntegerField(choices=[(h.value, h.label) for h in Horizon])
    status = models.CharField(max_length=8, choices=[(s.value, s.value) for s in OutcomeStatus])
    sample_ts = models.DateTimeField(
        null=True, blank=True, help_text="The stored sample used; empty: none within the tolerance"
    )
    open_interest = models.DecimalField(
        max_digits=DECIMAL_DIGITS, decimal_places=DECIMAL_PLACES, null=True, blank=True
    )
    mark_price = models.DecimalField(
        max_digits=DECIMAL_DIGITS, decimal_places=DECIMAL_PLACES, null=True, blank=True
    )
    oi_change = models.FloatField(
        null=True, blank=True, help_text="OI then against the alert's, signed; 0.01 = +1%"
    )
    price_change = models.FloatField(
        null=True, blank=True, help_text="Mark price then against the alert's, signed; 0.01 = +1%"
    )
    measured_at = models.DateTimeField(auto_now_add=True, db_default=models.functions.Now())

    class Meta:
        db_table = "open_interest_alert_outcomes"
        ordering = ("alert_id", "horizon_sec")
        constraints = [
            models.UniqueConstraint(
                fields=["alert", "horizon_sec"], name="alert_outcome_alert_horizon_uniq"
            ),
            models.CheckConstraint(
                condition=Q(horizon_sec__in=[h.value for h in Horizon]),
                name="alert_outcome_horizon_known",
            ),
            models.CheckConstraint(
                condition=Q(status__in=[s.value for s in OutcomeStatus]),
                name="alert_outcome_status_known",
            ),
        ]

    def __str__(self) -> str:
        return f"alert {self.alert_id} +{Horizon(self.horizon_sec).label}: {self.status}"


class ChangeStatsSource(models.TextChoices):
    SNAPSHOTS = "snapshots", "Stored snapshots"
    OPEN_INTEREST_HIST = "open_interest_hist", "Bootstrapped from openInterestHist (5m)"


class OpenInterestChangeStats(models.Model):
    """One symbol's distribution of one window's OI change over the last N days, for relative
    rules (alerts.relative): its median and robust scale (1.4826 × MAD). Refreshed by a beat job
    (alerts.relative_services); a symbol with too little history has no row."""

    symbol = models.CharField(max_length=SYMBOL_MAX_LENGTH)
    window_sec = models.PositiveIntegerField()
    median = models.FloatField(help_text="Median change over the window (0.01 = +1%)")
    scale = models.FloatField(help_text="1.4826 × the median absolute deviation, floored")
    count = models.PositiveIntegerField(help_text="Changes (5-minute samples) it is made of")
    first_ts = models.DateTimeField(help_text="The oldest sample used")
    last_ts = models.DateTimeField(help_text="The newest sample used")
    source = models.CharField(max_length=24, choices=ChangeStatsSource.choices)
    computed_at = models.DateTimeField()

    class Meta:
        db_table = "open_interest_change_stats"
        constraints = [
            models.UniqueConstraint(fields=("symbol", "window_sec"), name="change_stats_uniq"),
            models.CheckConstraint(condition=Q(scale__gt=0), name="change_stats_scale_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.symbol} {self.window_sec}s"
