"""Validation of snapshot batches (pure; no database)."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from common.errors import InvalidInput
from oi.batches import parse_snapshot_batch

NOW = datetime(2025, 12, 1, 13, 0, tzinfo=UTC)


def batch(*rows: dict, **fields) -> dict:
    return {"timestamp": "2025-12-01T12:34:56Z", "data": list(rows), **fields}


def parse(payload: object, max_rows: int = 20_000):
    return parse_snapshot_batch(payload, now=NOW, max_rows=max_rows)


def refusal(payload: object, max_rows: int = 20_000) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        parse(payload, max_rows)
    return caught.value


def test_numbers_as_json_numbers_or_decimal_strings_parse_exactly():
    parsed = parse(
        batch(
            {"symbol": "BTCUSDT", "openInterest": "85374.562", "markPrice": "64000.10"},
            {"symbol": "ETHUSDT", "openInterest": 12, "markPrice": 0.1, "openInterestUsd": 1.5},
        )
    )
    btc, eth = parsed.rows
    assert btc.open_interest == Decimal("85374.562")
    assert btc.open_interest_usd == Decimal("85374.562") * Decimal("64000.10")
    assert eth.open_interest == Decimal(12)
    assert eth.mark_price == Decimal("0.1")
    assert eth.open_interest_usd == Decimal("1.5")
    assert btc.ts == datetime(2025, 12, 1, 12, 34, 56, tzinfo=UTC)
    assert btc.source == "snapshot"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("-1", "must not be negative"),
        (-0.5, "must not be negative"),
        ("NaN", "must be finite"),
        ("Infinity", "must be finite"),
        (float("inf"), "must be finite"),
        ("12,5", "'12,5' is not a decimal number"),
        (True, "must be a number or a decimal string, got a boolean"),
        ([1], "must be a number or a decimal string, got a list"),
        ("1e18", "is too large (at most 18 integer digits)"),
    ],
)
def test_bad_numbers_name_the_row_field_and_reason(value, reason):
    error = refusal(
        batch(
            {"symbol": "BTCUSDT", "openInterest": "1"}, {"symbol": "ETHUSDT", "openInterest": value}
        )
    )
    assert (error.row, error.field, error.reason) == (1, "openInterest", reason)


@pytest.mark.parametrize(
    ("symbol", "accepted"),
    [
        ("BTCUSDT", True),
        ("1000PEPEUSDT", True),
        ("BTCUSDT_250328", True),
        ("币安人生USDT", True),  # listed on USDⓈ-M in 2025
        ("btcusdt", False),
        ("BTC USDT", False),
        ("", False),
        ("A" * 21, False),
        (42, False),
    ],
)
def test_symbols_follow_binance_names(symbol, accepted):
    payload = batch({"symbol": symbol, "openInterest": "1"})
    if accepted:
        assert parse(payload).rows[0].symbol == symbol
    else:
        assert refusal(payload).field == "symbol"


@pytest.mark.parametrize(
    ("timestamp", "reason_start"),
    [
        ("2025-12-01T12:34:56", "'2025-12-01T12:34:56' has no time zone"),
        ("yesterday", "'yesterday' is not an ISO-8601 timestamp"),
        (1733056496000, "must be an ISO-8601 string, got an integer"),
        ("2030-01-01T00:00:00Z", "'2030-01-01T00:00:00Z' is more than a day ahead"),
    ],
)
def test_timestamps_need_iso_8601_with_a_zone(timestamp, reason_start):
    error = refusal(batch({"symbol": "BTCUSDT", "openInterest": "1", "timestamp": timestamp}))
    assert (error.row, error.field) == (0, "timestamp")
    assert error.reason.startswith(reason_start)


def test_row_timestamp_and_source_override_the_batch_defaults():
    parsed = parse(
        batch(
            {"symbol": "BTCUSDT", "openInterest": "1", "timestamp": "2025-12-01T14:00:00+02:00"},
            {"symbol": "ETHUSDT", "openInterest": "1", "source": "snapshot"},
            source="realtime",
        )
    )
    assert parsed.rows[0].ts == datetime(2025, 12, 1, 12, 0, tzinfo=UTC)
    assert [row.source for row in parsed.rows] == ["realtime", "snapshot"]


def test_a_row_without_any_timestamp_is_refused():
    error = refusal({"data": [{"symbol": "BTCUSDT", "openInterest": "1"}]})
    assert (error.row, error.field) == (0, "timestamp")


def test_the_same_sample_twice_in_one_batch_is_refused_naming_both_rows():
    error = refusal(
        batch(
            {"symbol": "BTCUSDT", "openInterest": "1"},
            {"symbol": "ETHUSDT", "openInterest": "1"},
            {"symbol": "BTCUSDT", "openInterest": "2"},
        )
    )
    assert (error.row, error.field) == (2, "symbol")
    assert error.reason == "repeats row 0 (same symbol, timestamp and source)"


def test_unknown_fields_are_accepted_but_named_so_a_typo_is_visible():
    # given a batch with an unknown batch key and a typo in one row's key (upstream drops both)
    parsed = parse(
        batch(
            {"symbol": "BTCUSDT", "openInterest": "1", "openInterestUSD": "5"},
            {"symbol": "ETHUSDT", "openInterest": "2"},
            chunk=3,
        )
    )
    # then every row is kept, the typo's value is not stored, and both keys are named
    assert [row.symbol for row in parsed.rows] == ["BTCUSDT", "ETHUSDT"]
    assert parsed.rows[0].open_interest_usd is None
    assert parsed.ignored_fields == ("chunk", "data[].openInterestUSD")


def test_a_body_as_the_hourly_script_sends_it_is_taken_as_a_snapshot():
    # given the script's body: no source, JSON floats, a totalSymbols that is not the row count,
    # a timestamp off the 5-minute grid, and 0 for the prices it could not get
    parsed = parse(
        {
            "data": [
                {"symbol": "BTCUSDT", "openInterest": 85374.562, "openInterestUsd": 8.28e9,
                 "markPrice": 97000.5},
                {"symbol": "NEWUSDT", "openInterest": 0.0, "openInterestUsd": 0.0,
                 "markPrice": 0},
                {"symbol": "ETHUSDT", "openInterest": 1500000.0, "openInterestUsd": 0.0,
                 "markPrice": 3600.0},
            ],
            "timestamp": "2025-12-01T12:07:43Z",
            "totalSymbols": 650,
        }
    )  # fmt: skip
    btc, new, eth = parsed.rows
    assert {row.source for row in parsed.rows} == {"snapshot"}
    assert btc.ts == datetime(2025, 12, 1, 12, 7, 43, tzinfo=UTC)
    assert btc.open_interest == Decimal("85374.562")
    # a price of 0 is "unknown", never a price
    assert (new.open_interest, new.mark_price, new.open_interest_usd) == (0, None, None)
    # an openInterestUsd of 0 next to a real price is recomputed from it
    assert eth.open_interest_usd == Decimal("1500000.0") * Decimal("3600.0")
    assert parsed.ignored_fields == ()


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ([], "body"),
        ({"timestamp": "2025-12-01T12:34:56Z"}, "data"),
        (batch(), "data"),
        (batch({"symbol": "BTCUSDT", "openInterest": "1"}, totalSymbols=-1), "totalSymbols"),
        (batch({"symbol": "BTCUSDT", "openInterest": "1"}, source="hourly"), "source"),
    ],
)
def test_bad_batch_envelopes_are_refused(payload, field):
    error = refusal(payload)
    assert error.field == field
    assert error.row is None


def test_batches_over_the_row_limit_are_refused():
    rows = [{"symbol": f"S{i}USDT", "openInterest": "1"} for i in range(11)]
    assert refusal(batch(*rows), max_rows=10).reason == "has 11 rows; at most 10"
    assert len(parse(batch(*rows[:10]), max_rows=10).rows) == 10


def test_a_batch_with_fewer_symbols_than_total_symbols_is_marked_partial():
    rows = [{"symbol": "BTCUSDT", "openInterest": "1"}, {"symbol": "ETHUSDT", "openInterest": "1"}]
    assert parse(batch(*rows, totalSymbols=3)).is_partial
    assert not parse(batch(*rows, totalSymbols=2)).is_partial
    assert not parse(batch(*rows)).is_partial


def test_values_come_out_as_postgres_stores_them_so_the_ring_and_postgres_agree():
    row = parse(
        batch(
            {"symbol": "BTCUSDT", "openInterest": "-0", "markPrice": "0.00000000000049"},
            {"symbol": "ETHUSDT", "openInterest": "1.2345678901235", "markPrice": "1E+3"},
            {"symbol": "XRPUSDT", "openInterest": "1e-20"},
        )
    ).rows
    assert [str(r.open_interest) for r in row] == ["0", "1.234567890124", "0"]
    assert row[0].mark_price == 0 and str(row[1].mark_price) == "1000"
    assert row[1].as_json()["openInterestUsd"] == "1234.5678901235"


def test_a_sample_dated_ahead_of_the_clock_is_refused_naming_the_timestamp():
    ahead = refusal(
        batch({"symbol": "BTCUSDT", "openInterest": "1"}, timestamp="2025-12-01T13:00:11Z")
    )
    assert (ahead.field, ahead.row) == ("timestamp", 0)
    assert "11s ahead of the server clock (at most 10s)" in ahead.reason
    assert parse(
        batch({"symbol": "BTCUSDT", "openInterest": "1"}, timestamp="2025-12-01T13:00:10Z")
    )
