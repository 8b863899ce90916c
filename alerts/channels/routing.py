"""Which alerts a channel receives: its filters. Pure: no Django, Redis or HTTP."""

from collections.abc import Collection
from dataclasses import dataclass
from decimal import Decimal

from alerts.formatting import AlertLike


@dataclass(frozen=True)
class ChannelFilter:
    """Empty collections and a missing minimum let everything through."""

    rule_ids: Collection[int] = ()
    symbols: Collection[str] = ()
    directions: Collection[str] = ()
    regimes: Collection[str] = ()
    min_move_pct: Decimal | None = None

    def accepts(self, alert: AlertLike, *, rule_id: int | None) -> bool:
        if self.rule_ids and rule_id not in self.rule_ids:
            return False
        if self.symbols and alert.symbol not in self.symbols:
            return False
        if self.directions and alert.direction not in self.directions:
            return False
        if self.regimes and alert.regime not in self.regimes:
            return False
        return self.min_move_pct is None or abs(alert.pct_change) >= self.min_move_pct

    def accepts_liquidation_burst(self, symbol: str, *, rule_id: int | None) -> bool:
        """A liquidation burst passes the rule and symbol filters; the direction, regime and
        minimum-move filters are about open-interest moves and do not apply to it."""
        if self.rule_ids and rule_id not in self.rule_ids:
            return False
        return not self.symbols or symbol in self.symbols
