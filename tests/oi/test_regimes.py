"""The OI/price regime of a window (oi.regimes): the four quadrants, the dead bands and how they
widen with the window."""

import math

import pytest

from oi.regimes import DeadBands, Regime, fractional_change, regime_of


@pytest.mark.parametrize(
    ("oi_change", "price_change", "regime"),
    [
        (0.05, 0.01, Regime.LONG_BUILD),
        (0.05, -0.01, Regime.SHORT_BUILD),
        (-0.05, 0.01, Regime.SHORT_COVER),
        (-0.05, -0.01, Regime.LONG_FLUSH),
    ],
)
def test_the_four_quadrants_over_five_minutes(oi_change, price_change, regime):
    assert regime_of(oi_change=oi_change, price_change=price_change, window_sec=300) is regime


def test_a_price_inside_its_dead_band_is_flat_not_a_coin_toss():
    # +0.05% in 5 min is noise: the same OI jump reads "OI up, price flat" on either side
    for price_change in (0.0005, -0.0005, 0.0):
        assert (
            regime_of(oi_change=0.08, price_change=price_change, window_sec=300)
            is Regime.BUILD_PRICE_FLAT
        )
        assert (
            regime_of(oi_change=-0.08, price_change=price_change, window_sec=300)
            is Regime.UNWIND_PRICE_FLAT
        )
    # just outside the band it is a direction again
    assert regime_of(oi_change=0.08, price_change=0.0011, window_sec=300) is Regime.LONG_BUILD


def test_the_bands_widen_with_the_square_root_of_the_window():
    price_band_5m, oi_band_5m = DeadBands().scaled(300)
    price_band_1h, oi_band_1h = DeadBands().scaled(3600)
    assert math.isclose(price_band_1h / price_band_5m, math.sqrt(12))
    assert math.isclose(oi_band_1h / oi_band_5m, math.sqrt(12))
    # 0.2% is a move over 5 min but flat over an hour (band 0.35%)
    assert regime_of(oi_change=0.05, price_change=0.002, window_sec=300) is Regime.LONG_BUILD
    assert regime_of(oi_change=0.05, price_change=0.002, window_sec=3600) is Regime.BUILD_PRICE_FLAT


def test_an_oi_change_inside_its_band_is_oi_flat_whatever_the_price():
    assert regime_of(oi_change=0.001, price_change=0.05, window_sec=300) is Regime.OI_FLAT
    assert regime_of(oi_change=-0.001, price_change=None, window_sec=300) is Regime.OI_FLAT


def test_no_price_or_no_oi_change_gives_no_label():
    assert regime_of(oi_change=0.05, price_change=None, window_sec=300) is Regime.UNKNOWN
    assert regime_of(oi_change=None, price_change=0.01, window_sec=300) is Regime.UNKNOWN
    assert regime_of(oi_change=math.nan, price_change=0.01, window_sec=300) is Regime.UNKNOWN
    assert regime_of(oi_change=0.05, price_change=math.inf, window_sec=300) is Regime.UNKNOWN


def test_custom_bands_are_honoured():
    wide = DeadBands(price=0.01, open_interest=0.001)
    assert (
        regime_of(oi_change=0.05, price_change=0.005, window_sec=300, bands=wide)
        is Regime.BUILD_PRICE_FLAT
    )


def test_fractional_change():
    assert fractional_change(100.0, 110.0) == pytest.approx(0.1)
    assert fractional_change(0.0, 1.0) is None
    assert fractional_change(None, 1.0) is None
    assert fractional_change(1.0, None) is None


def test_every_regime_has_a_label_and_a_meaning():
    from oi.regimes import REGIME_LABELS, REGIME_MEANINGS

    assert set(REGIME_LABELS) == set(Regime) == set(REGIME_MEANINGS)
    assert Regime.SHORT_BUILD.label == "short build"
