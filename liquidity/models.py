from django.db import models
from django.db.models import Q

from common.numbers import DECIMAL_DIGITS, DECIMAL_PLACES
from common.symbols import SYMBOL_MAX_LENGTH


class LiquidSymbol(models.Model):
    """A member of the liquid universe right now."""

    symbol = models.CharField(max_length=SYMBOL_MAX_LENGTH, primary_key=True)
    quote_volume_24h = models.DecimalField(max_digits=DECIMAL_DIGITS, decimal_places=DECIMAL_PLACES)
    entered_at = models.DateTimeField()
    last_seen_at = models.DateTimeField(help_text="Last run that saw it in the 24h ticker")
    missing_from_ticker_since = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Set while the 24h ticker leaves it out; it exits on the next miss",
    )

    class Meta:
        db_table = "open_interest_liquid_symbols"
        ordering = ["-quote_volume_24h"]
        constraints = [
            models.CheckConstraint(
                condition=Q(quote_volume_24h__gte=0), name="liquid_symbol_volume_nonneg"
            ),
        ]

    def __str__(self) -> str:
        return self.symbol


class MembershipChange(models.TextChoices):
    ENTERED = "entered", "Entered"
    EXITED = "exited", "Exited"


class LiquidityMembershipEvent(models.Model):
    """When and why a symbol joined or left the liquid universe."""

    symbol = models.CharField(max_length=SYMBOL_MAX_LENGTH)
    change = models.CharField(max_length=8, choices=MembershipChange.choices)
    quote_volume_24h = models.DecimalField(
        max_digits=DECIMAL_DIGITS,
        decimal_places=DECIMAL_PLACES,
        null=True,
        blank=True,
        help_text="Empty when the symbol was missing from the 24h ticker",
    )
    reason = models.TextField()
    at = models.DateTimeField()

    class Meta:
        db_table = "open_interest_liquid_membership_events"
        ordering = ["-at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(change__in=MembershipChange.values), name="liquid_event_change_known"
            ),
        ]
        indexes = [
            models.Index(fields=["symbol", "at"], name="liquid_event_symbol_at_idx"),
            models.Index(fields=["at"], name="liquid_event_at_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.symbol} {self.change} @ {self.at:%Y-%m-%d %H:%M}"


class UniverseRefresh(models.Model):
    """One run of the liquidity job: what it found, or why it failed."""

    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()
    ok = models.BooleanField()
    error = models.TextField(blank=True, default="")
    members = models.PositiveIntegerField(default=0)
    entered = models.PositiveIntegerField(default=0)
    exited = models.PositiveIntegerField(default=0)
    eligible = models.PositiveIntegerField(default=0, help_text="TRADING USDT perpetuals seen")

    class Meta:
        db_table = "open_interest_liquid_refreshes"
        ordering = ["-finished_at"]
        indexes = [models.Index(fields=["ok", "finished_at"], name="liquid_refresh_ok_at_idx")]

    def __str__(self) -> str:
        outcome = "ok" if self.ok else f"failed: {self.error[:60]}"
        return f"{self.finished_at:%Y-%m-%d %H:%M:%S} {outcome}"
