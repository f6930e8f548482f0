"""Small numeric helpers for the metrics layer: tallies, time-weighted monitors, billing, t quantiles.

Everything here is pure numpy on plain arrays and returns JSON-native Python values
(``float``/``int``/``None``), so the summary never carries numpy scalars or NaN.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

PERCENTILES = (50.0, 90.0, 95.0, 99.0)
STAT_KEYS = ("mean", "p50", "p90", "p95", "p99", "max")

# Two-sided 95% Student-t quantiles t_{0.975, df} for df = 1..30 (computed once, 6 decimals).
_T975 = (
    12.706205, 4.302653, 3.182446, 2.776445, 2.570582, 2.446912, 2.364624, 2.306004,
    2.262157, 2.228139, 2.200985, 2.178813, 2.160369, 2.144787, 2.131450, 2.119905,
    2.109816, 2.100922, 2.093024, 2.085963, 2.079614, 2.073873, 2.068658, 2.063899,
    2.059539, 2.055529, 2.051831, 2.048407, 2.045230, 2.042272,
)  # fmt: skip
_Z975 = 1.959963984540054


def json_float(x: float | np.floating | None) -> float | None:
    """The value as a Python float, or None when it is missing, NaN or infinite."""
    if x is None:
        return None
    v = float(x)
    return v if math.isfinite(v) else None


def latency_stats(values: np.ndarray) -> dict[str, float | None]:
    """Mean, p50/p90/p95/p99 (linear interpolation) and max of the finite values; all None if none."""
    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return dict.fromkeys(STAT_KEYS)
    p50, p90, p95, p99 = np.percentile(x, PERCENTILES)
    return {
        "mean": float(x.mean()),
        "p50": float(p50),
        "p90": float(p90),
        "p95": float(p95),
        "p99": float(p99),
        "max": float(x.max()),
    }


def step_segments(
    times: Sequence[float] | np.ndarray,
    values: Sequence[float] | np.ndarray,
    horizon_s: float,
    initial: float = 0.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split a held-value step series into (start, duration, value) segments covering [0, horizon].

    Each sample holds its value until the next sample; ``initial`` holds before the first
    sample. Samples outside [0, horizon] are clipped, so they get zero duration or cut the
    segment at the horizon.
    """
    t = np.asarray(times, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    if t.shape != v.shape:
        raise ValueError(f"step series has {t.size} times but {v.size} values")
    order = np.argsort(t, kind="stable")  # the engine appends in time order; this is a guard
    t = np.clip(t[order], 0.0, horizon_s)
    v = v[order]
    starts = np.concatenate(([0.0], t))
    vals = np.concatenate(([float(initial)], v))
    ends = np.concatenate((t, [horizon_s]))
    return starts, ends - starts, vals


def time_weighted(
    times: Sequence[float] | np.ndarray,
    values: Sequence[float] | np.ndarray,
    horizon_s: float,
    initial: float = 0.0,
) -> tuple[float | None, float | None, float]:
    """Time-weighted mean, max over segments of positive length, and integral on [0, horizon].

    Mean and max are None when the horizon is not positive.
    """
    if not horizon_s > 0:
        return None, None, 0.0
    _, dur, vals = step_segments(times, values, horizon_s, initial)
    integral = float(np.dot(dur, vals))
    held = vals[dur > 0]
    return integral / horizon_s, float(held.max()) if held.size else None, integral


def billed_seconds(start_s: np.ndarray, end_s: np.ndarray, granularity_s: float) -> np.ndarray:
    """Billed seconds per interval: the length of [start, end] rounded up to whole granules.

    NaN starts bill nothing. A granularity of 0 bills the exact length.
    """
    if granularity_s < 0:
        raise ValueError(f"billing granularity must be >= 0 s, got {granularity_s}")
    start = np.asarray(start_s, dtype=np.float64)
    end = np.asarray(end_s, dtype=np.float64)
    dur = np.where(np.isfinite(start) & np.isfinite(end), np.maximum(end - start, 0.0), 0.0)
    if granularity_s == 0:
        return dur
    # Round before the ceiling so float noise (120.0000000001 s) does not bill an extra granule.
    granules = np.ceil(np.round(dur / granularity_s, 9))
    return granules * granularity_s


def t_quantile_975(df: int) -> float:
    """Student-t quantile t_{0.975, df}: the multiplier of a two-sided 95% confidence interval."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df}")
    if df <= len(_T975):
        return _T975[df - 1]
    # Cornish-Fisher expansion of the t quantile around the normal one; error < 1e-6 for df > 30.
    z = _Z975
    n = float(df)
    return (
        z
        + (z**3 + z) / (4 * n)
        + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * n**2)
        + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * n**3)
        + (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / (92160 * n**4)
    )


def mean_ci95(values: Sequence[float]) -> dict[str, float | int | None]:
    """Mean, sample standard deviation and 95% t-interval of the values (None where undefined)."""
    x = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=np.float64)
    n = int(x.size)
    if n == 0:
        return {
            "mean": None,
            "std": None,
            "ci95_low": None,
            "ci95_high": None,
            "half_width": None,
            "n": 0,
        }
    mean = float(x.mean())
    if n == 1:
        return {
            "mean": mean,
            "std": None,
            "ci95_low": None,
            "ci95_high": None,
            "half_width": None,
            "n": 1,
        }
    std = float(x.std(ddof=1))
    half = t_quantile_975(n - 1) * std / math.sqrt(n)
    return {
        "mean": mean,
        "std": std,
        "ci95_low": mean - half,
        "ci95_high": mean + half,
        "half_width": half,
        "n": n,
    }
