"""Statistics over RL seeds: mean with a t interval, paired differences, an exact sign-flip test and
the minimum detectable paired difference (``experiments/tgrpo_power.py`` uses them).

Pure functions on lists of floats (one value per seed). Student-t quantiles come from a table
(``T_975``, ``T_80``: df 1-30, from standard tables), so nothing beyond the standard library is
needed; df above 30 uses the normal quantile, which is within 4% of t there.
"""

from __future__ import annotations

import itertools
import math
from statistics import NormalDist

T_975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip
"""Two-sided 95% Student-t critical values t_{0.975, df} for df = 1 .. 30."""
T_80 = (
    1.376, 1.061, 0.978, 0.941, 0.920, 0.906, 0.896, 0.889, 0.883, 0.879,
    0.876, 0.873, 0.870, 0.868, 0.866, 0.865, 0.863, 0.862, 0.861, 0.860,
    0.859, 0.858, 0.858, 0.857, 0.856, 0.856, 0.855, 0.855, 0.854, 0.854,
)  # fmt: skip
"""One-sided Student-t quantiles t_{0.80, df} for df = 1 .. 30 (80% power)."""


def t_quantile(table: tuple[float, ...], p: float, df: int) -> float:
    """``table[df - 1]`` for df <= 30, else the normal quantile at ``p``."""
    if df < 1:
        raise ValueError(f"df must be >= 1, got {df}")
    return table[df - 1] if df <= len(table) else NormalDist().inv_cdf(p)


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (n - 1; 0 for a single value).

    >>> mean_std([1.0, 2.0, 3.0])
    (2.0, 1.0)
    """
    if not values:
        raise ValueError("mean_std needs at least one value")
    n = len(values)
    mean = sum(values) / n
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0


def mean_ci(values: list[float]) -> tuple[float, float, float]:
    """Mean and its 95% Student-t interval ``(mean, low, high)``; a single value has a zero-width one.

    >>> [round(x, 3) for x in mean_ci([1.0, 2.0, 3.0])]  # 2 -+ 4.303 * 1 / sqrt(3)
    [2.0, -0.484, 4.484]
    """
    mean, std = mean_std(values)
    if len(values) == 1:
        return mean, mean, mean
    half = t_quantile(T_975, 0.975, len(values) - 1) * std / math.sqrt(len(values))
    return mean, mean - half, mean + half


def paired_differences(a: list[float], b: list[float]) -> list[float]:
    """``a[i] - b[i]`` per seed; the lists must be paired (same length, same seed order)."""
    if len(a) != len(b):
        raise ValueError(f"paired lists differ in length: {len(a)} vs {len(b)}")
    return [x - y for x, y in zip(a, b)]


def sign_flip_p(differences: list[float]) -> float:
    """Exact two-sided paired permutation p-value: the share of the 2^n sign assignments whose
    |mean| is at least the observed |mean| (the observed one included, so p >= 2 / 2^n when
    no difference is zero). Under H0 (no effect) each seed's difference is as likely negated.
    """
    n = len(differences)
    if not n:
        raise ValueError("sign_flip_p needs at least one difference")
    if n > 20:
        raise ValueError(f"exact enumeration over 2^{n} sign assignments is too large")
    observed = abs(sum(differences))
    tolerance = 1e-9 * max(1.0, sum(abs(d) for d in differences))
    hits = sum(
        abs(sum(s * d for s, d in zip(signs, differences))) >= observed - tolerance
        for signs in itertools.product((1, -1), repeat=n)
    )
    return hits / 2**n


def min_sign_flip_p(n: int) -> float:
    """Smallest two-sided p the exact sign-flip test can give with ``n`` seeds (all same sign).

    >>> min_sign_flip_p(5), min_sign_flip_p(6)
    (0.0625, 0.03125)
    """
    return 2 / 2**n


def min_detectable_difference(std: float, n: int) -> float:
    """Smallest true mean paired difference a two-sided 5% paired t-test detects with 80% power,
    given the per-seed standard deviation ``std`` of the differences and ``n`` seeds:
    ``(t_{0.975, n-1} + t_{0.80, n-1}) * std / sqrt(n)`` (the usual approximation, noncentral t
    replaced by a shifted central one)."""
    if n < 2:
        raise ValueError(f"need at least 2 seeds, got {n}")
    df = n - 1
    return (t_quantile(T_975, 0.975, df) + t_quantile(T_80, 0.80, df)) * std / math.sqrt(n)
