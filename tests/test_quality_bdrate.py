"""Bjøntegaard delta bitrate: known answers, a published curve pair, and refusals."""

from __future__ import annotations

import numpy as np
import pytest

from streamlab.quality.bdrate import bd_rate, pchip_slopes

RATES = [300.0, 600.0, 1200.0, 2400.0]
PSNR = [31.0, 34.2, 37.1, 39.5]

# "Test 1" of the FAU-LMS bjontegaard package's README (libx265 presets, kbit/s and dB).
ANCHOR_RATE = [9487.76, 4593.60, 2486.44, 1358.24]
ANCHOR_PSNR = [40.037, 38.615, 36.845, 34.851]
TEST_RATE = [9787.80, 4469.00, 2451.52, 1356.24]
TEST_PSNR = [40.121, 38.651, 36.970, 34.987]
# VCEG-M33's cubic on these points, as published with an independent implementation
# (a TypeScript port's test, which checks it to 6 decimals)
PUBLISHED_CUBIC = -4.420462706090111


@pytest.mark.parametrize("method", ["pchip", "cubic"])
def test_identical_curves_give_zero(method: str) -> None:
    assert bd_rate(RATES, PSNR, RATES, PSNR, method=method) == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("method", ["pchip", "cubic"])
@pytest.mark.parametrize("factor", [0.8, 0.5, 1.25])
def test_constant_rate_factor_is_exact(method: str, factor: float) -> None:
    test = [r * factor for r in RATES]
    expected = (factor - 1) * 100  # 0.8 -> -20 %
    assert bd_rate(RATES, PSNR, test, PSNR, method=method) == pytest.approx(expected, abs=1e-9)


def test_order_of_points_does_not_matter() -> None:
    shuffled = [2, 0, 3, 1]
    rates = [RATES[i] for i in shuffled]
    psnr = [PSNR[i] for i in shuffled]
    test = [r * 0.8 for r in RATES]
    assert bd_rate(rates, psnr, test, PSNR) == pytest.approx(-20.0, abs=1e-9)


def test_published_cubic_value() -> None:
    got = bd_rate(ANCHOR_RATE, ANCHOR_PSNR, TEST_RATE, TEST_PSNR, method="cubic")
    assert got == pytest.approx(PUBLISHED_CUBIC, abs=1e-6)


def test_pchip_close_to_cubic_on_smooth_curves() -> None:
    pchip = bd_rate(ANCHOR_RATE, ANCHOR_PSNR, TEST_RATE, TEST_PSNR, method="pchip")
    assert pchip == pytest.approx(PUBLISHED_CUBIC, abs=0.1)


def test_better_quality_at_the_same_rate_is_a_saving() -> None:
    better = [p + 1.0 for p in PSNR]
    assert bd_rate(RATES, PSNR, RATES, better) < 0
    assert bd_rate(RATES, better, RATES, PSNR) > 0


def test_pchip_keeps_monotone_data_monotone() -> None:
    x = np.array([30.0, 30.5, 36.0, 40.0])
    y = np.log(np.array([100.0, 110.0, 900.0, 1000.0]))
    slopes = pchip_slopes(x, y)
    assert np.all(slopes >= 0)
    assert slopes[0] >= 0 and slopes[-1] >= 0


def test_non_overlapping_ranges_are_refused() -> None:
    with pytest.raises(ValueError, match="overlap"):
        bd_rate(RATES, PSNR, RATES, [p + 20 for p in PSNR])


def test_cubic_needs_four_points() -> None:
    with pytest.raises(ValueError, match="at least 4"):
        bd_rate(RATES[:3], PSNR[:3], RATES[:3], PSNR[:3], method="cubic")
    assert bd_rate(RATES[:2], PSNR[:2], RATES[:2], PSNR[:2]) == pytest.approx(0.0)


@pytest.mark.parametrize(
    ("rates", "psnr"),
    [
        ([300.0, 0.0, 1200.0, 2400.0], PSNR),
        (RATES, [31.0, 31.0, 37.1, 39.5]),
        (RATES, [31.0, float("nan"), 37.1, 39.5]),
    ],
)
def test_bad_points_are_refused(rates: list[float], psnr: list[float]) -> None:
    with pytest.raises(ValueError):
        bd_rate(rates, psnr, RATES, PSNR)
