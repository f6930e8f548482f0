"""Trace statistics: request count, span, rates, burstiness and token quantiles of a workload."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from sim.workload.workload import Workload

QUANTILES = (0.5, 0.9, 0.95, 0.99)


def rate_series(wl: Workload, bin_s: float = 60.0) -> pd.DataFrame:
    """Arrivals per ``bin_s`` window from t = 0: columns ``start_s``, ``requests``, ``rate_per_s``."""
    if bin_s <= 0:
        raise ValueError(f"bin_s must be > 0, got {bin_s}")
    n_bins = max(1, int(np.floor(wl.duration_s / bin_s)) + 1)
    counts = np.bincount((wl.arrival_s // bin_s).astype(np.int64), minlength=n_bins)[:n_bins]
    return pd.DataFrame(
        {
            "start_s": np.arange(n_bins, dtype=np.float64) * bin_s,
            "requests": counts,
            "rate_per_s": counts / bin_s,
        }
    )


def _summary(values: np.ndarray) -> dict[str, float]:
    if values.shape[0] == 0:
        return {"mean": float("nan"), "min": float("nan"), "max": float("nan")} | {
            f"p{round(q * 100)}": float("nan") for q in QUANTILES
        }
    qs = np.quantile(values, QUANTILES)
    out = {"mean": float(values.mean()), "min": float(values.min()), "max": float(values.max())}
    out.update({f"p{round(q * 100)}": float(v) for q, v in zip(QUANTILES, qs, strict=True)})
    return out


def trace_stats(wl: Workload, bin_s: float = 60.0) -> dict[str, Any]:
    """A JSON-ready summary of ``wl``: counts, span, per-minute rates, inter-arrival CV, token quantiles.

    ``rate_per_min`` counts requests per ``bin_s`` window (60 s by default) over [0, last arrival].
    The inter-arrival CV is 1 for Poisson traffic and above 1 for bursty traffic.
    """
    n = len(wl)
    gaps = np.diff(wl.arrival_s)
    series = rate_series(wl, bin_s) if n else pd.DataFrame({"requests": [0], "start_s": [0.0]})
    per_bin = series["requests"].to_numpy()
    peak = int(np.argmax(per_bin))
    gap_mean = float(gaps.mean()) if gaps.size else float("nan")
    gap_cv = float(gaps.std() / gap_mean) if gaps.size and gap_mean > 0 else float("nan")
    span = wl.duration_s - (float(wl.arrival_s[0]) if n else 0.0)
    return {
        "source": wl.source,
        "requests": n,
        "span_s": span,
        "duration_s": wl.duration_s,
        "mean_rate_per_s": n / span if span > 0 else float("nan"),
        "bin_s": bin_s,
        "rate_per_min": {
            # From the count over the span: the last bin is usually partial.
            "mean": n / span * 60.0 if span > 0 else float("nan"),
            "p50": float(np.median(per_bin)) * 60.0 / bin_s,
            "peak": float(per_bin[peak]) * 60.0 / bin_s,
            "peak_at_s": float(series["start_s"].iloc[peak]),
            "empty_bins": int(np.count_nonzero(per_bin == 0)),
        },
        "interarrival_s": {"mean": gap_mean, "cv": gap_cv},
        "duplicate_arrivals": int(np.count_nonzero(gaps == 0)),
        "prompt_tokens": _summary(wl.prompt_tokens),
        "output_tokens": _summary(wl.output_tokens),
        "zero_output_requests": int(np.count_nonzero(wl.output_tokens == 0)),
        "total_tokens": int(wl.prompt_tokens.sum() + wl.output_tokens.sum()),
        "warnings": list(wl.warnings),
    }
