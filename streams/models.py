from django.db import models

from exchange.streams import LiquidationSide


class LiquidationSideChoice(models.TextChoices):
    """The liquidation order's side: SELL closes a long position, BUY a short one."""

    BUY = LiquidationSide.BUY.value, "buy (a short liquidated)"
    SELL = LiquidationSide.SELL.value, "sell (a long liquidated)"


class Liquidation(models.Model):
    """One liquidation from `!forceOrder@arr`. Binance sends at most one (the largest) per symbol
    per second, so sums over these rows are lower bounds."""

    symbol = models.CharField(max_length=50)
    side = models.CharField(max_length=4, choices=LiquidationSideChoice.choices)
    price = models.DecimalField(max_digits=38, decimal_places=12, help_text="Average fill price")
    quantity = models.DecimalField(max_digits=38, decimal_places=12, help_text="Filled contracts")
    usd = models.DecimalField(max_digits=38, decimal_places=8)
    time = models.DateTimeField(help_text="The order's trade time (o.T)")
    received_at = models.DateTimeField()

    class Meta:
        db_table = "stream_liquidations"
        indexes = [
            models.Index(fields=["symbol", "time"], name="liquidation_symbol_time"),
            models.Index(fields=["time"], name="liquidation_time"),
        ]

    def __str__(self) -> str:
        return f"{self.symbol} {self.side} {self.usd} USD at {self.time:%Y-%m-%d %H:%M:%S}"
