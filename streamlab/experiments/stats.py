"""Small exact statistics for verdicts: Mann-Whitney U (exact, two-sided), quartiles.

scipy is not a dependency; the exact U distribution for the few repeats a benchmark has
is a short dynamic programme.
"""

from __future__ import annotations

from functools import cache
from math import comb


@cache
def _u_counts(n1: int, n2: int) -> tuple[int, ...]:
    """How many of the C(n1+n2, n1) orderings give each U = 0..n1*n2 (no ties)."""
    if n1 == 0 or n2 == 0:
        return (1,)
    # U(n1, n2) = U(n1-1, n2) shifted by n2 (largest value from sample 1) + U(n1, n2-1)
    a = _u_counts(n1 - 1, n2)
    b = _u_counts(n1, n2 - 1)
    out = [0] * (n1 * n2 + 1)
    for u, count in enumerate(a):
        out[u + n2] += count
    for u, count in enumerate(b):
        out[u] += count
    return tuple(out)


def mann_whitney_u(a: list[float], b: list[float]) -> tuple[float, float]:
    """``(U of a, two-sided p)``; ties count half (p is then approximate, conservative)."""
    n1, n2 = len(a), len(b)
    if not n1 or not n2:
        return 0.0, 1.0
    u = sum(1.0 if x > y else 0.5 if x == y else 0.0 for x in a for y in b)
    counts = _u_counts(n1, n2)
    total = comb(n1 + n2, n1)
    extreme = min(u, n1 * n2 - u)
    tail = sum(counts[: int(extreme) + 1]) / total
    return u, min(1.0, 2 * tail)


def smallest_p(n1: int, n2: int) -> float:
    """The smallest two-sided p the exact test can give for these sample sizes."""
    return min(1.0, 2 / comb(n1 + n2, n1)) if n1 and n2 else 1.0


def quartiles(values: list[float]) -> tuple[float, float, float]:
    """``(q1, median, q3)`` with linear interpolation (numpy's default)."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values")

    def at(q: float) -> float:
        position = q * (len(ordered) - 1)
        low = int(position)
        high = min(low + 1, len(ordered) - 1)
        return ordered[low] + (ordered[high] - ordered[low]) * (position - low)

    return at(0.25), at(0.5), at(0.75)


def ranges_overlap(a: list[float], b: list[float]) -> bool:
    """Whether min..max of ``a`` and of ``b`` share any value."""
    return not (max(a) < min(b) or max(b) < min(a))
