"""The liquidity classifier (pure) on the real exchangeInfo captures and on hand-made edges."""

import json
import random
from decimal import Decimal
from pathlib import Path

import pytest

from liquidity.classifier import (
    MISSING_ONCE_REASON,
    Contract,
    Member,
    Thresholds,
    classify_universe,
)

SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
REAL_EXCHANGE_INFO = [
    "exchangeInfo_fapi_2025-11-26_AlphaDogsResearch.json",
    "exchangeInfo_fapi_2025-12-24_AlphaDogsResearch.json",
]
THRESHOLDS = Thresholds(enter=Decimal(4_000_000), exit=Decimal(2_000_000))


def contract(symbol: str, *, contract_type="PERPETUAL", quote="USDT", status="TRADING") -> Contract:
    return Contract(symbol=symbol, contract_type=contract_type, quote_asset=quote, status=status)


def classify(contracts, volumes, members=()):
    return classify_universe(
        contracts=contracts,
        quote_volumes={symbol: Decimal(v) for symbol, v in volumes.items()},
        current=[m if isinstance(m, Member) else Member(m) for m in members],
        thresholds=THRESHOLDS,
    )


@pytest.mark.parametrize("filename", REAL_EXCHANGE_INFO)
def test_only_trading_usdt_perpetuals_of_a_real_exchange_info_enter(filename):
    # given a real exchangeInfo and a 24h ticker that gives every symbol 10M USDT
    exchange_info = json.loads((SHARED_DATA / filename).read_text())
    contracts = [Contract.from_exchange_info(entry) for entry in exchange_info["symbols"]]
    volumes = {c.symbol: 10_000_000 for c in contracts}

    # when classified from an empty universe
    result = classify(contracts, volumes)

    # then exactly the TRADING USDT perpetuals enter, each with a reason
    expected = {
        e["symbol"]
        for e in exchange_info["symbols"]
        if e["contractType"] == "PERPETUAL"
        and e["quoteAsset"] == "USDT"
        and e["status"] == "TRADING"
    }
    assert set(result.members) == expected
    assert len(expected) > 400
    assert {c.symbol for c in result.entered} == expected
    assert not result.exited
    excluded = {c.symbol for c in contracts} - expected
    assert any(c.quote_asset == "USDC" for c in contracts if c.symbol in excluded)
    assert any(c.contract_type != "PERPETUAL" for c in contracts if c.symbol in excluded)


@pytest.mark.parametrize("filename", REAL_EXCHANGE_INFO)
def test_a_real_exchange_info_with_heavy_tailed_volumes_respects_the_band(filename):
    exchange_info = json.loads((SHARED_DATA / filename).read_text())
    contracts = [Contract.from_exchange_info(entry) for entry in exchange_info["symbols"]]
    rng = random.Random(7)
    volumes = {c.symbol: Decimal(int(10 ** rng.uniform(5, 9.5))) for c in contracts}
    first = classify(contracts, volumes)
    assert all(volumes[s] >= THRESHOLDS.enter for s in first.members)

    # volumes move; members in the band stay, non-members in the band stay out
    moved = {
        s: v * Decimal(rng.choice(["0.3", "0.6", "1", "1.5", "3"])) for s, v in volumes.items()
    }
    second = classify(contracts, moved, members=first.members)
    for symbol in second.members:
        assert moved[symbol] >= THRESHOLDS.exit
        assert symbol in first.members or moved[symbol] >= THRESHOLDS.enter
    for change in second.exited:
        assert moved[change.symbol] < THRESHOLDS.exit


@pytest.mark.parametrize(
    ("volume", "is_member", "stays_or_enters"),
    [
        ("4000000", False, True),  # ENTER is inclusive
        ("3999999.99", False, False),
        ("3000000", False, False),  # in the band, not a member: stays out
        ("3000000", True, True),  # in the band, a member: stays in
        ("2000000", True, True),  # EXIT is exclusive: exactly EXIT stays
        ("1999999.99", True, False),
    ],
)
def test_each_side_of_the_hysteresis_band(volume, is_member, stays_or_enters):
    result = classify([contract("XUSDT")], {"XUSDT": volume}, ["XUSDT"] if is_member else [])
    assert ("XUSDT" in result.members) is stays_or_enters


def test_reasons_say_which_threshold_was_crossed():
    result = classify(
        [contract("UPUSDT"), contract("DOWNUSDT")],
        {"UPUSDT": 5_000_000, "DOWNUSDT": 1_500_000},
        ["DOWNUSDT"],
    )
    assert [(c.symbol, c.change, c.reason) for c in result.changes] == [
        ("DOWNUSDT", "exited", "24h quote volume 1,500,000 USDT < EXIT 2,000,000 USDT"),
        ("UPUSDT", "entered", "24h quote volume 5,000,000 USDT >= ENTER 4,000,000 USDT"),
    ]


@pytest.mark.parametrize("status", ["SETTLING", "PENDING_TRADING", "CLOSE", "DELIVERING"])
def test_a_member_that_stops_trading_exits_at_once_whatever_its_volume(status):
    result = classify([contract("XUSDT", status=status)], {"XUSDT": 900_000_000}, ["XUSDT"])
    assert result.members == {}
    assert result.exited[0].reason == f"status is {status}, not TRADING"


def test_a_delisted_member_exits_at_once():
    result = classify([], {"XUSDT": 900_000_000}, ["XUSDT"])
    assert result.exited[0].reason == "delisted: no longer in exchangeInfo"


@pytest.mark.parametrize(
    "excluded",
    [
        contract("XUSDC", quote="USDC"),
        contract("XBTC", quote="BTC"),
        contract("XUSDT_261225", contract_type="CURRENT_QUARTER"),
        contract("XUSDT", status="PENDING_TRADING"),
        contract("XUSDT", status="SETTLING"),
    ],
)
def test_ineligible_contracts_never_enter(excluded):
    assert classify([excluded], {excluded.symbol: 900_000_000}).members == {}


def test_a_member_missing_from_the_ticker_is_kept_once_then_removed():
    # first miss: kept, with the reason said
    first = classify([contract("XUSDT")], {}, ["XUSDT"])
    assert first.members == {"XUSDT": None}
    assert first.missing_from_ticker == {"XUSDT"}
    assert first.held == {"XUSDT": MISSING_ONCE_REASON}
    assert not first.changes

    # second miss in a row: removed
    second = classify([contract("XUSDT")], {}, [Member("XUSDT", missing_from_ticker=True)])
    assert second.members == {}
    assert second.exited[0].reason == "missing from the 24h ticker on two runs in a row"

    # seen again after one miss: kept and no longer missing
    back = classify(
        [contract("XUSDT")], {"XUSDT": 3_000_000}, [Member("XUSDT", missing_from_ticker=True)]
    )
    assert back.members == {"XUSDT": Decimal(3_000_000)}
    assert back.missing_from_ticker == frozenset()


def test_a_symbol_absent_from_the_ticker_never_enters():
    assert classify([contract("XUSDT")], {}).members == {}


def test_enter_below_exit_is_refused():
    with pytest.raises(ValueError, match=r"ENTER threshold \(1000\) must not be below EXIT"):
        Thresholds(enter=Decimal(1000), exit=Decimal(2000))
