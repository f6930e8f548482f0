"""How far a run's ready fleet fell short of the hindsight MILP's SLO-feasible need.

A policy can cost less than the hindsight replay only by holding fewer workers than the MILP's
feasibility requires in some buckets (the MILP's optimum is the cheapest schedule that meets
``need_b`` in every bucket it can reach). ``deficit`` measures that exactly on the run's own
timeline: with ``r_b`` the time-averaged ready workers in bucket b (a step function averaged
over [b·Δ, (b+1)·Δ)),

    deficit = sum_b max(0, need_b - r_b) / sum_b need_b

the share of the SLO-feasible worker-time the run did not provide. Worker counts are in the
MILP's reference kind (the scale-up shape), so the figure is exact for runs on one shape and
approximate where a run mixes shapes of different throughput.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike


def bucket_means(t: ArrayLike, v: ArrayLike, horizon_s: float,
                 bucket_s: float) -> np.ndarray:
    """Time averages of the step function ``v`` (value ``v[i]`` from ``t[i]`` until
    ``t[i+1]``; 0 before ``t[0]``) over consecutive buckets of ``bucket_s`` up to
    ``horizon_s``; shape (ceil(horizon_s / bucket_s),)."""
    nb = max(math.ceil(horizon_s / bucket_s - 1e-9), 1)
    edges = np.arange(nb + 1) * bucket_s
    tt = np.asarray(t, dtype=np.float64)
    vv = np.asarray(v, dtype=np.float64)
    if not len(tt):
        return np.zeros(nb)
    # integral of the step function from 0 to x, at each bucket edge
    starts = np.append(tt, max(horizon_s, float(tt[-1])))
    seg = np.diff(starts) * vv
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    i = np.clip(np.searchsorted(tt, edges, side="right") - 1, -1, len(tt) - 1)
    at = np.where(i >= 0, cum[np.maximum(i, 0)] + (edges - tt[np.maximum(i, 0)]) * vv[np.maximum(i, 0)], 0.0)
    return np.diff(at) / bucket_s


def deficit(need: ArrayLike, ready: ArrayLike) -> float:
    """Share of the need the ready fleet did not cover (0 = every bucket's need met)."""
    n = np.asarray(need, dtype=np.float64)
    r = np.asarray(ready, dtype=np.float64)[: len(n)]
    if len(r) < len(n):
        r = np.concatenate([r, np.zeros(len(n) - len(r))])
    total = float(n.sum())
    return float(np.maximum(n - r, 0.0).sum() / total) if total > 0 else 0.0
