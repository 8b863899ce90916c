from django.contrib.postgres.indexes import BrinIndex
from django.db import models
from django.db.models import Q

from common.numbers import DECIMAL_DIGITS, DECIMAL_PLACES
from common.symbols import SYMBOL_MAX_LENGTH


class SnapshotSource(models.TextChoices):
    SNAPSHOT = "snapshot", "Full-universe snapshot (hourly script)"
    REALTIME = "realtime", "Realtime poller"


class OpenInterestSnapshot(models.Model):
    """One open-interest observation of one symbol at the exchange's sample time `ts`."""

    symbol = models.CharField(max_length=SYMBOL_MAX_LENGTH)
    ts = models.DateTimeField()
    open_interest = models.DecimalField(max_digits=DECIMAL_DIGITS, decimal_places=DECIMAL_PLACES)
    open_interest_usd = models.DecimalField(
        max_digits=DECIMAL_DIGITS, decimal_places=DECIMAL_PLACES, null=True, blank=True
    )
    mark_price = models.DecimalField(
        max_digits=DECIMAL_DIGITS, decimal_places=DECIMAL_PLACES, null=True, blank=True
    )
    source = models.CharField(
        max_length=16, choices=SnapshotSource.choices, default=SnapshotSource.SNAPSHOT
    )
    created_at = models.DateTimeField(auto_now_add=True, db_default=models.functions.Now())

    class Meta:
        db_table = "open_interest_snapshots"
        constraints = [
            # Re-sent rows collide here and are skipped: ingest is idempotent. The index behind it
            # also serves "latest N samples of a symbol" (backward scan on symbol, ts).
            models.UniqueConstraint(
                fields=["symbol", "ts", "source"], name="oi_snapshot_symbol_ts_source_uniq"
            ),
            models.CheckConstraint(condition=Q(open_interest__gte=0), name="oi_snapshot_oi_nonneg"),
            models.CheckConstraint(
                condition=Q(open_interest_usd__isnull=True) | Q(open_interest_usd__gte=0),
                name="oi_snapshot_oi_usd_nonneg",
            ),
            models.CheckConstraint(
                condition=Q(mark_price__isnull=True) | Q(mark_price__gte=0),
                name="oi_snapshot_mark_price_nonneg",
            ),
            models.CheckConstraint(
                condition=Q(source__in=SnapshotSource.values), name="oi_snapshot_source_known"
            ),
        ]
        # Time-range scans across symbols (retention, "since T"): BRIN is tiny on append-only ts.
        indexes = [BrinIndex(fields=["ts"], name="oi_snapshot_ts_brin")]

    def __str__(self) -> str:
        return f"{self.symbol} {self.open_interest} @ {self.ts:%Y-%m-%d %H:%M:%S} ({self.source})"


class SnapshotDeadLetter(models.Model):
    """A snapshot batch that its store refused for good (a value Postgres cannot hold, a remote
    ingest answering 400): kept here, with why, instead of blocking every parked batch behind it.
    Visible in the admin (which can retry one after a fix) and in /metrics."""

    failed_at = models.DateTimeField(auto_now_add=True, db_default=models.functions.Now())
    rows = models.PositiveIntegerField()
    symbols = models.TextField(help_text="The batch's symbols (the first 20)")
    cause = models.TextField()
    payload = models.JSONField(help_text="The batch as the ingest API takes it (design §4.4)")

    class Meta:
        db_table = "open_interest_snapshot_dead_letters"
        ordering = ("-failed_at",)

    def __str__(self) -> str:
        return f"{self.rows} rows refused at {self.failed_at:%Y-%m-%d %H:%M:%S}: {self.cause[:80]}"
