"""Latency statistics that stream: exact mean and max, percentiles exact or from a sketch.

``sim.results: full`` keeps every value and reports exact percentiles (numpy's linear
interpolation, as :func:`sim.metrics.stats.latency_stats`). ``sim.results: summary`` keeps no
per-request values: percentiles come from Apache DataSketches' REQ sketch (relative-error
quantiles, Cormode et al., "Relative Error Streaming Quantiles", PODS 2021), built with
high-rank accuracy so the tail (p90..p99) is the accurate end. Its error is a *rank* error:
the value returned for quantile q is a sample whose rank lies within q ± ε. Measured with
``REQ_K = 40`` on 10M values (lognormal and a bimodal latency mix; ``tests/test_metrics_stream.py``
checks the bounds below on 1M values):

====== =========================
 q      |rank error| measured
====== =========================
 0.50   ≤ 2.0e-3 (value ±0.6%)
 0.90   ≤ 1.5e-4
 0.95   ≤ 6e-4
 0.99   ≤ 5e-5
====== =========================

The sketch stores float32 values (relative rounding 6e-8) in a few kilobytes whatever the
count; mean (float64 running sum) and max stay exact.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from sim.metrics.stats import PERCENTILES, STAT_KEYS, latency_stats

REQ_K = 40  # REQ section size: larger is more accurate and larger (error ~ 1/k)


class StreamStat:
    """Mean, max and p50/p90/p95/p99 of values added in batches (``exact`` keeps them all)."""

    def __init__(self, exact: bool) -> None:
        self.exact = exact
        self._parts: list[np.ndarray] = []
        self._sketch: Any = None
        self.count = 0
        self.total = 0.0
        self.max = -math.inf

    def add(self, values: np.ndarray) -> None:
        """Add a batch; non-finite values are ignored (a missing timestamp is no latency)."""
        x = np.asarray(values, dtype=np.float64)
        x = x[np.isfinite(x)]
        if not x.size:
            return
        if self.exact:
            self._parts.append(x)
            return
        if self._sketch is None:
            import datasketches

            self._sketch = datasketches.req_floats_sketch(REQ_K, True)  # high-rank accuracy
        self._sketch.update(x.astype(np.float32))
        self.count += int(x.size)
        self.total += float(x.sum())
        self.max = max(self.max, float(x.max()))

    def stats(self) -> dict[str, float | None]:
        """The summary's statistics block (all None when nothing was added)."""
        if self.exact:
            parts = self._parts
            if not parts:
                return dict.fromkeys(STAT_KEYS)
            return latency_stats(parts[0] if len(parts) == 1 else np.concatenate(parts))
        if not self.count:
            return dict.fromkeys(STAT_KEYS)
        qs = [float(self._sketch.get_quantile(p / 100.0)) for p in PERCENTILES]
        # float32 storage can round a value just above the exact maximum.
        qs = [min(q, self.max) for q in qs]
        return {
            "mean": self.total / self.count,
            "p50": qs[0],
            "p90": qs[1],
            "p95": qs[2],
            "p99": qs[3],
            "max": self.max,
        }
