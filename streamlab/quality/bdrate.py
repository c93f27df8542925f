"""Bjøntegaard delta bitrate: the average rate difference between two rate-quality curves
at equal quality, in percent (negative: the test codec needs less rate).

Each curve is the log of the rate as a function of the quality (PSNR in dB, or any metric
that grows with quality), interpolated through the measured points and integrated over the
quality range both curves cover; the mean difference of the logs, exponentiated, less one,
is the BD-rate (G. Bjøntegaard, VCEG-M33, 2001). Two interpolations:

- ``"pchip"`` (default): piecewise cubic Hermite, shape-preserving (Fritsch-Carlson slopes),
  as in the JCT-VC/JVET common-test-conditions spreadsheets (JCTVC-L1100, JVET-T2010). It
  cannot overshoot between points, where the single cubic can swing with noisy points.
- ``"cubic"``: one least-squares cubic polynomial per curve, VCEG-M33's original method
  (needs at least 4 points).

Both integrate exactly (no sampling). A test curve that needs ``k`` times the anchor's rate
at every quality gives ``(k - 1) * 100`` with either method.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np

Method = Literal["pchip", "cubic"]


def bd_rate(
    anchor_rate: Sequence[float],
    anchor_quality: Sequence[float],
    test_rate: Sequence[float],
    test_quality: Sequence[float],
    *,
    method: Method = "pchip",
) -> float:
    """BD-rate of the test curve against the anchor, in percent.

    Rates must be positive; qualities distinct within a curve (points are sorted by quality).
    Raises ValueError when a curve has too few points or the quality ranges do not overlap.
    """
    a_q, a_lr = _curve(anchor_rate, anchor_quality, method)
    t_q, t_lr = _curve(test_rate, test_quality, method)
    low, high = max(a_q[0], t_q[0]), min(a_q[-1], t_q[-1])
    if not high > low:
        raise ValueError(
            f"quality ranges do not overlap ({a_q[0]:.3f}-{a_q[-1]:.3f} vs "
            f"{t_q[0]:.3f}-{t_q[-1]:.3f})"
        )
    integrate = _pchip_integral if method == "pchip" else _cubic_integral
    mean_diff = (integrate(t_q, t_lr, low, high) - integrate(a_q, a_lr, low, high)) / (high - low)
    return (math.exp(mean_diff) - 1.0) * 100.0


def _curve(
    rate: Sequence[float], quality: Sequence[float], method: str
) -> tuple[np.ndarray, np.ndarray]:
    """Qualities in increasing order and the natural log of their rates."""
    if method not in ("pchip", "cubic"):
        raise ValueError(f"method must be 'pchip' or 'cubic', got {method!r}")
    r = np.asarray(rate, dtype=float)
    q = np.asarray(quality, dtype=float)
    if r.shape != q.shape or r.ndim != 1:
        raise ValueError("rate and quality must be 1-D sequences of the same length")
    needed = 4 if method == "cubic" else 2
    if len(r) < needed:
        raise ValueError(f"{method} needs at least {needed} points, got {len(r)}")
    if not (np.all(np.isfinite(r)) and np.all(np.isfinite(q)) and np.all(r > 0)):
        raise ValueError("rates must be positive and finite, qualities finite")
    order = np.argsort(q)
    q, r = q[order], r[order]
    if np.any(np.diff(q) <= 0):
        raise ValueError("qualities within a curve must be distinct")
    return q, np.log(r)


def _cubic_integral(q: np.ndarray, log_rate: np.ndarray, low: float, high: float) -> float:
    poly = np.polynomial.Polynomial.fit(q, log_rate, 3)  # least squares, scaled domain
    antiderivative = poly.integ()
    return float(antiderivative(high) - antiderivative(low))


def pchip_slopes(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Fritsch-Carlson derivatives at the knots: shape-preserving (zero at a local extremum),
    weighted harmonic means inside, the three-point formula limited at the ends."""
    h = np.diff(x)
    delta = np.diff(y) / h
    n = len(x)
    d = np.zeros(n)
    if n == 2:
        d[:] = delta[0]
        return d
    for k in range(1, n - 1):
        if delta[k - 1] * delta[k] > 0:
            w1 = 2 * h[k] + h[k - 1]
            w2 = h[k] + 2 * h[k - 1]
            d[k] = (w1 + w2) / (w1 / delta[k - 1] + w2 / delta[k])
    d[0] = _end_slope(h[0], h[1], delta[0], delta[1])
    d[-1] = _end_slope(h[-1], h[-2], delta[-1], delta[-2])
    return d


def _end_slope(h0: float, h1: float, d0: float, d1: float) -> float:
    slope = ((2 * h0 + h1) * d0 - h0 * d1) / (h0 + h1)
    if np.sign(slope) != np.sign(d0):
        return 0.0
    if np.sign(d0) != np.sign(d1) and abs(slope) > abs(3 * d0):
        return 3 * d0
    return float(slope)


def _pchip_integral(q: np.ndarray, log_rate: np.ndarray, low: float, high: float) -> float:
    d = pchip_slopes(q, log_rate)
    total = 0.0
    for k in range(len(q) - 1):
        a, b = max(low, q[k]), min(high, q[k + 1])
        if b <= a:
            continue
        h = q[k + 1] - q[k]
        delta = (log_rate[k + 1] - log_rate[k]) / h
        # the Hermite cubic in t = x - q[k]: y0 + d0 t + c2 t² + c3 t³
        c2 = (3 * delta - 2 * d[k] - d[k + 1]) / h
        c3 = (d[k] + d[k + 1] - 2 * delta) / h**2
        coeffs = (log_rate[k], d[k], c2, c3)

        def primitive(t: float, c: tuple[float, ...] = coeffs) -> float:
            return c[0] * t + c[1] * t**2 / 2 + c[2] * t**3 / 3 + c[3] * t**4 / 4

        total += primitive(b - q[k]) - primitive(a - q[k])
    return float(total)
