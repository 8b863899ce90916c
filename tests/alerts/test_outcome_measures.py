"""The pure rules of an alert's outcome: what counts as measured, no price, no data, up/down/flat."""

from decimal import Decimal

import pytest

from alerts.outcome_measures import (
    Horizon,
    MoveSide,
    OutcomeStatus,
    due_after_sec,
    flat_bands,
    measure,
    move_side,
    sample_tolerance_sec,
)


def test_a_sample_with_a_price_gives_both_signed_changes():
    result = measure(
        oi_at_alert=Decimal(1000), price_at_alert=Decimal(100),
        sample_oi=Decimal(950), sample_price=Decimal("101.5"), sample_found=True,
    )  # fmt: skip
    assert result.status is OutcomeStatus.MEASURED
    assert result.oi_change == pytest.approx(-0.05)
    assert result.price_change == pytest.approx(0.015)


def test_no_sample_is_no_data_and_nothing_is_guessed():
    result = measure(
        oi_at_alert=Decimal(1000), price_at_alert=Decimal(100),
        sample_oi=None, sample_price=None, sample_found=False,
    )  # fmt: skip
    assert (result.status, result.oi_change, result.price_change) == (
        OutcomeStatus.NO_DATA, None, None,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("price_at_alert", "sample_price"), [(None, Decimal(1)), (Decimal(1), None)]
)
def test_a_missing_price_keeps_the_oi_change_only(price_at_alert, sample_price):
    result = measure(
        oi_at_alert=Decimal(200), price_at_alert=price_at_alert,
        sample_oi=Decimal(210), sample_price=sample_price, sample_found=True,
    )  # fmt: skip
    assert result.status is OutcomeStatus.NO_PRICE
    assert result.oi_change == pytest.approx(0.05) and result.price_change is None


def test_flat_is_strictly_inside_the_regimes_band_of_the_horizon():
    price_5m, oi_5m = flat_bands(Horizon.MIN_5)
    assert (price_5m, oi_5m) == pytest.approx((0.001, 0.002))
    assert flat_bands(Horizon.HOUR_1)[0] == pytest.approx(0.001 * 12**0.5)  # ~0.35%
    assert move_side(0.0009, price_5m) is MoveSide.FLAT
    assert move_side(0.001, price_5m) is MoveSide.UP
    assert move_side(-0.001, price_5m) is MoveSide.DOWN


def test_the_tolerance_is_one_poll_interval_but_at_least_30_s_and_due_waits_for_it():
    assert sample_tolerance_sec(20) == 30
    assert sample_tolerance_sec(45) == 45
    assert due_after_sec(Horizon.MIN_15, 30) == 900 + 30 + 60
