"""Which USDT perpetuals are liquid: ENTER/EXIT hysteresis on 24h quote volume. Pure: no I/O.

Rules (design §3.1, issue 4):
- Only USDT-quoted PERPETUAL contracts with status TRADING are eligible. A member that stops
  trading or leaves exchangeInfo exits at once, whatever its volume.
- A non-member enters when its 24h quote volume >= ENTER; a member exits when it is < EXIT;
  between the two, nothing changes.
- A member missing from the 24h ticker is kept for one run and exits if still missing on the
  next; a symbol missing from the ticker never enters.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

ELIGIBLE_CONTRACT_TYPE = "PERPETUAL"
ELIGIBLE_QUOTE_ASSET = "USDT"
ELIGIBLE_STATUS = "TRADING"
MISSING_ONCE_REASON = (
    "missing from the 24h ticker; kept for one run, removed if still missing on the next"
)


@dataclass(frozen=True)
class Thresholds:
    enter: Decimal
    exit: Decimal

    def __post_init__(self) -> None:
        if self.exit < 0:
            raise ValueError(f"EXIT threshold must not be negative, got {self.exit}")
        if self.enter < self.exit:
            raise ValueError(
                f"ENTER threshold ({self.enter}) must not be below EXIT threshold ({self.exit}): "
                "a symbol could enter and exit on the same volume"
            )


@dataclass(frozen=True)
class Contract:
    """The fields of an exchangeInfo symbol that decide eligibility."""

    symbol: str
    contract_type: str
    quote_asset: str
    status: str

    @classmethod
    def from_exchange_info(cls, entry: Mapping) -> "Contract":
        return cls(
            symbol=str(entry.get("symbol", "")),
            contract_type=str(entry.get("contractType", "")),
            quote_asset=str(entry.get("quoteAsset", "")),
            status=str(entry.get("status", "")),
        )

    @property
    def is_eligible(self) -> bool:
        return (
            self.contract_type == ELIGIBLE_CONTRACT_TYPE
            and self.quote_asset == ELIGIBLE_QUOTE_ASSET
            and self.status == ELIGIBLE_STATUS
        )


@dataclass(frozen=True)
class Member:
    """A current member of the universe, as the classifier needs to know it."""

    symbol: str
    missing_from_ticker: bool = False


@dataclass(frozen=True)
class Change:
    symbol: str
    change: Literal["entered", "exited"]
    quote_volume: Decimal | None
    reason: str


@dataclass(frozen=True)
class Classification:
    """The new universe: members with their volume (None while missing from the ticker)."""

    members: dict[str, Decimal | None]
    missing_from_ticker: frozenset[str]
    changes: list[Change] = field(default_factory=list)
    # Members kept although something is off, with why (e.g. missing from the ticker once).
    held: dict[str, str] = field(default_factory=dict)

    @property
    def entered(self) -> list[Change]:
        return [c for c in self.changes if c.change == "entered"]

    @property
    def exited(self) -> list[Change]:
        return [c for c in self.changes if c.change == "exited"]


def classify_universe(
    *,
    contracts: Iterable[Contract],
    quote_volumes: Mapping[str, Decimal],
    current: Iterable[Member],
    thresholds: Thresholds,
) -> Classification:
    contracts_by_symbol = {contract.symbol: contract for contract in contracts}
    current_by_symbol = {member.symbol: member for member in current}
    members: dict[str, Decimal | None] = {}
    missing: set[str] = set()
    changes: list[Change] = []
    held: dict[str, str] = {}

    for symbol in sorted(current_by_symbol):
        member = current_by_symbol[symbol]
        contract = contracts_by_symbol.get(symbol)
        volume = quote_volumes.get(symbol)
        exit_reason = _exit_reason(contract, member, volume, thresholds)
        if exit_reason:
            changes.append(Change(symbol, "exited", volume, exit_reason))
            continue
        members[symbol] = volume
        if volume is None:
            missing.add(symbol)
            held[symbol] = MISSING_ONCE_REASON

    for symbol in sorted(contracts_by_symbol):
        if symbol in current_by_symbol or not contracts_by_symbol[symbol].is_eligible:
            continue
        volume = quote_volumes.get(symbol)
        if volume is not None and volume >= thresholds.enter:
            members[symbol] = volume
            changes.append(
                Change(
                    symbol,
                    "entered",
                    volume,
                    f"24h quote volume {_usdt(volume)} >= ENTER {_usdt(thresholds.enter)}",
                )
            )

    return Classification(
        members=members, missing_from_ticker=frozenset(missing), changes=changes, held=held
    )


def _exit_reason(
    contract: Contract | None, member: Member, volume: Decimal | None, thresholds: Thresholds
) -> str | None:
    if contract is None:
        return "delisted: no longer in exchangeInfo"
    if contract.status != ELIGIBLE_STATUS:
        return f"status is {contract.status}, not TRADING"
    if not contract.is_eligible:
        return (
            f"no longer a USDT perpetual ({contract.contract_type}, quote {contract.quote_asset})"
        )
    if volume is None:
        if member.missing_from_ticker:
            return "missing from the 24h ticker on two runs in a row"
        return None
    if volume < thresholds.exit:
        return f"24h quote volume {_usdt(volume)} < EXIT {_usdt(thresholds.exit)}"
    return None


def _usdt(amount: Decimal) -> str:
    return f"{amount:,.0f} USDT"
