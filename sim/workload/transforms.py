"""Workload transforms: pure functions Workload → Workload, composable in YAML order."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from sim.errors import TraceError
from sim.workload.workload import Workload


def _subset(w: Workload, idx: np.ndarray | slice, arrival_s: np.ndarray | None = None) -> Workload:
    t = w.arrival_s[idx] if arrival_s is None else arrival_s
    return replace(
        w, arrival_s=t, prompt_tokens=w.prompt_tokens[idx], output_tokens=w.output_tokens[idx]
    )


def time_scale(w: Workload, factor: float) -> Workload:
    """Multiply every arrival time (hence every inter-arrival gap) by ``factor`` (> 0)."""
    if not factor > 0:
        raise ValueError(f"time_scale factor must be > 0, got {factor}")
    return replace(w, arrival_s=w.arrival_s * factor)


def slice_time(w: Workload, start_s: float | None = None, end_s: float | None = None) -> Workload:
    """Keep requests with start_s <= arrival < end_s, shifted so that start_s becomes t = 0."""
    lo = 0 if start_s is None else int(np.searchsorted(w.arrival_s, start_s, side="left"))
    hi = len(w) if end_s is None else int(np.searchsorted(w.arrival_s, end_s, side="left"))
    out = _subset(w, slice(lo, max(lo, hi)))
    # The window's start (not its first arrival) becomes t = 0, so the lead-in gap is kept.
    return replace(out, arrival_s=out.arrival_s - start_s) if start_s else out


def max_requests(w: Workload, n: int) -> Workload:
    """Keep the first ``n`` requests."""
    if n < 0:
        raise ValueError(f"max_requests must be >= 0, got {n}")
    return _subset(w, slice(0, n))


def shift(w: Workload, offset_s: float) -> Workload:
    """Add ``offset_s`` to every arrival (a negative offset drops requests that would fall before 0)."""
    t = w.arrival_s + offset_s
    if offset_s >= 0:
        return replace(w, arrival_s=t)
    lo = int(np.searchsorted(t, 0.0, side="left"))
    return _subset(w, slice(lo, None), t[lo:])


def default_period(w: Workload) -> float:
    """Tile period of ``repeat`` when none is given: the span plus one mean inter-arrival gap."""
    if len(w) < 2 or w.duration_s <= 0:
        raise ValueError(
            "repeat needs period_s for a workload with fewer than two distinct arrivals"
        )
    return w.duration_s + (w.arrival_s[-1] - w.arrival_s[0]) / (len(w) - 1)


def repeat(
    w: Workload,
    times: int | None = None,
    until_s: float | None = None,
    period_s: float | None = None,
) -> Workload:
    """Tile the workload every ``period_s``: ``times`` copies, or as many as fit before ``until_s``."""
    if (times is None) == (until_s is None):
        raise ValueError("give exactly one of times and until_s")
    period = default_period(w) if period_s is None else period_s
    if not period > 0:
        raise ValueError(f"period_s must be > 0, got {period}")
    if w.arrival_s.size and w.arrival_s[-1] >= period:
        raise ValueError(f"period_s ({period}) must exceed the last arrival ({w.arrival_s[-1]})")
    copies = times if times is not None else int(np.ceil(until_s / period))  # type: ignore[operator]
    copies = max(copies, 0)
    offsets = np.repeat(np.arange(copies, dtype=np.float64) * period, len(w))
    t = np.tile(w.arrival_s, copies) + offsets
    out = replace(
        w,
        arrival_s=t,
        prompt_tokens=np.tile(w.prompt_tokens, copies),
        output_tokens=np.tile(w.output_tokens, copies),
    )
    return slice_time(out, None, until_s) if until_s is not None else out


def rate_scale(
    w: Workload, factor: float, rng: np.random.Generator, shift_s: float = 60.0
) -> Workload:
    """Scale the arrival rate by ``factor`` while keeping the traffic's shape and burstiness.

    Below 1 each request is kept with probability ``factor`` (independent thinning). Above 1
    the result superposes ``floor(factor)`` copies, plus one copy thinned to the fractional
    part; every extra copy is shifted by a uniform offset in [0, shift_s) and wrapped within the
    original span, so bursts stay bursts but requests are not exact duplicates in time.
    """
    if not factor > 0:
        raise ValueError(f"rate_scale factor must be > 0, got {factor}")
    n = len(w)
    if factor == 1 or n == 0:
        return w
    if factor < 1:
        return _subset(w, np.flatnonzero(rng.random(n) < factor))
    whole = int(np.floor(factor))
    frac = factor - whole
    keep_probs = [1.0] * (whole - 1) + ([frac] if frac > 0 else [])
    span = w.duration_s
    parts_t, parts_i = [w.arrival_s], [np.arange(n)]
    for p in keep_probs:
        idx = np.arange(n) if p == 1.0 else np.flatnonzero(rng.random(n) < p)
        t = w.arrival_s[idx] + rng.uniform(0.0, shift_s)
        # Wrapping keeps the copy inside the original span, so the horizon does not grow.
        parts_t.append(np.mod(t, span) if span > 0 else t)
        parts_i.append(idx)
    t_all = np.concatenate(parts_t)
    src = np.concatenate(parts_i)
    order = np.argsort(t_all, kind="stable")
    return replace(
        w,
        arrival_s=t_all[order],
        prompt_tokens=w.prompt_tokens[src[order]],
        output_tokens=w.output_tokens[src[order]],
    )


def check_nonempty(w: Workload) -> Workload:
    """Raise TraceError when transforms left no requests."""
    if len(w) == 0:
        raise TraceError("the workload has no requests after its transforms", path=w.source)
    return w
