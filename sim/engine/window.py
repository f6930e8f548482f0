"""The autoscaler's signal: latency observations over a sliding time window.

A ring of (time observed, value) pairs with a running sum, so the mean over
(t - window, t] costs amortised O(1) per tick; percentiles sort only what is in the window
(DESIGN §7). Which latency each request contributes, and when, is the gateway's business
(``docs/metrics.md``); the window only keeps what it is given.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence

import numpy as np

_QUANTILES = {"p50": 50, "p90": 90, "p95": 95, "p99": 99}


class LatencyWindow:
    """Observations ``(t, v)`` in arrival order of ``t``, summarised over a trailing window."""

    def __init__(self, statistic: str) -> None:
        self.statistic_name = statistic
        self.win_t: deque[float] = deque()
        self.win_v: deque[float] = deque()
        self.win_sum = 0.0

    def add(self, t: float, v: float) -> None:
        """Observe value ``v`` (seconds) at time ``t``."""
        self.win_t.append(t)
        self.win_v.append(v)
        self.win_sum += v

    def statistic(
        self, t: float, window: float, waiting: Sequence[float] = ()
    ) -> tuple[float, int]:
        """(S, observations in window) over (t - window, t]; S is NaN when nothing is in it.

        ``waiting`` are extra values counted with the window's (ages of waiting requests
        with ``count_waiting``); they are not kept.
        """
        wt, wv = self.win_t, self.win_v
        cutoff = t - window
        while wt and wt[0] <= cutoff:
            wt.popleft()
            self.win_sum -= wv.popleft()
        if not wt:
            self.win_sum = 0.0  # drop float residue once the window is empty
        n = len(wt)
        if n + len(waiting) == 0:
            return math.nan, 0
        if self.statistic_name == "mean":
            return (self.win_sum + sum(waiting)) / (n + len(waiting)), n
        values = np.fromiter(wv, dtype=np.float64, count=n)
        if waiting:
            values = np.concatenate([values, np.asarray(waiting)])
        return float(np.percentile(values, _QUANTILES[self.statistic_name])), n
