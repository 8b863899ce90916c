from django.db import models
from django.db.models import Q

from common.symbols import SYMBOL_MAX_LENGTH


class VolumeAlertType(models.TextChoices):
    SPIKE = "SPIKE", "Spike (first alert of the hour)"
    HALF_UPDATE = "HALF_UPDATE", "Half-hour update"
    FULL_UPDATE = "FULL_UPDATE", "Update after the hour closed"


class CandleDirection(models.TextChoices):
    BULLISH = "bullish", "Bullish"
    BEARISH = "bearish", "Bearish"


class VolumeAlert(models.Model):
    """An hourly volume spike of one symbol, sent by the VolSpike hourly script (upstream's
    `VolumeAlert`). Numbers are the script's JSON floats, stored as doubles like upstream.

    Identity: one alert per (symbol, hour, alert type). The script itself sends at most one
    SPIKE per symbol and hour, one HALF_UPDATE at :30 and one FULL_UPDATE after the hour closed;
    a retry or the same alert sent to a second environment is the same alert and stores nothing.
    """

    symbol = models.CharField(max_length=SYMBOL_MAX_LENGTH)
    asset = models.CharField(max_length=SYMBOL_MAX_LENGTH)
    current_volume = models.FloatField(help_text="Quote volume of the hour (USDT)")
    previous_volume = models.FloatField(help_text="Quote volume of the hour before")
    volume_ratio = models.FloatField(help_text="current / previous (0 when previous is 0)")
    price = models.FloatField(null=True, blank=True, help_text="Close of the hour's candle")
    funding_rate = models.FloatField(null=True, blank=True)
    price_change = models.FloatField(
        null=True, blank=True, help_text="(close − open) / open of the hour's candle; 0.05 = +5%"
    )
    oi_change = models.FloatField(
        null=True, blank=True, help_text="Open interest change since the hour's start; 0.05 = +5%"
    )
    candle_direction = models.CharField(
        max_length=8, choices=CandleDirection.choices, blank=True, default=""
    )
    alert_type = models.CharField(
        max_length=16, choices=VolumeAlertType.choices, default=VolumeAlertType.SPIKE
    )
    is_update = models.BooleanField(default=False)
    message = models.TextField()
    ts = models.DateTimeField(help_text="The script's scan time (upstream `timestamp`)")
    detection_time = models.DateTimeField(help_text="Scan time floored to 5 min; else ts")
    hour_timestamp = models.DateTimeField(help_text="Open time of the hour's candle")
    created_at = models.DateTimeField(auto_now_add=True, db_default=models.functions.Now())

    class Meta:
        db_table = "volume_alerts"
        constraints = [
            # Retries and dual-environment sends collide here: ingest is idempotent.
            models.UniqueConstraint(
                fields=["symbol", "hour_timestamp", "alert_type"], name="volume_alert_identity_uniq"
            ),
            models.CheckConstraint(
                condition=Q(alert_type__in=VolumeAlertType.values),
                name="volume_alert_type_known",
            ),
            models.CheckConstraint(
                condition=Q(candle_direction__in=["", *CandleDirection.values]),
                name="volume_alert_candle_direction_known",
            ),
            models.CheckConstraint(
                condition=Q(current_volume__gte=0)
                & Q(previous_volume__gte=0)
                & Q(volume_ratio__gte=0),
                name="volume_alert_volumes_nonneg",
            ),
        ]
        indexes = [
            # Newest first (the list and upstream's ?tier= and /recent forms) and "since T".
            models.Index(fields=["ts", "id"], name="volume_alert_ts_idx"),
            # One symbol's alerts, newest first.
            models.Index(fields=["symbol", "ts"], name="volume_alert_symbol_ts_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.symbol} {self.alert_type} ×{self.volume_ratio:.2f} @ {self.hour_timestamp:%Y-%m-%d %H:%M}"
