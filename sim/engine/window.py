"""The autoscaler's signal: latency observations over a sliding time window.

A ring of (time observed, value) pairs with a running sum, so the mean over
(t - window, t] costs amortised O(1) per tick; percentiles sort only what is in the window
(DESIGN §7). Observations may be announced before their time (a continuous-batching worker
knows at the start of an iteration when its joiners' first tokens come out) or after it (a
queue timeout found at the next tick): they wait in a heap and enter the ring in time order
once the clock reaches them, so a tick never sees a latency from its future. Which latency each request contributes, and when, is the gateway's business
(``docs/metrics.md``); the window only keeps what it is given.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from heapq import heappop, heappush

import numpy as np

_QUANTILES = {"p50": 50, "p90": 90, "p95": 95, "p99": 99}


class LatencyWindow:
    """Observations ``(t, v)`` in arrival order of ``t``, summarised over a trailing window."""

    def __init__(self, statistic: str) -> None:
        self.statistic_name = statistic
        self.win_t: deque[float] = deque()
        self.win_v: deque[float] = deque()
        self.win_sum = 0.0
        self._pending: list[tuple[float, float]] = []  # (t, v) heap, not yet in the ring

    def add(self, t: float, v: float) -> None:
        """Observe value ``v`` (seconds) at time ``t`` (which may be ahead of the clock)."""
        heappush(self._pending, (t, v))

    def empty(self) -> bool:
        """Nothing in the window and nothing announced for later."""
        return not self.win_t and not self._pending

    def statistic(
        self, t: float, window: float, waiting: Sequence[float] = ()
    ) -> tuple[float, int]:
        """(S, observations in window) over (t - window, t]; S is NaN when nothing is in it.

        ``waiting`` are extra values counted with the window's (ages of waiting requests
        with ``count_waiting``); they are not kept.
        """
        wt, wv = self.win_t, self.win_v
        cutoff = t - window
        pending = self._pending
        while pending and pending[0][0] <= t:
            ti, v = heappop(pending)
            if ti > cutoff:
                wt.append(ti)
                wv.append(v)
                self.win_sum += v
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
