"""What a run will cost before it allocates anything: requests, control ticks, workers, memory.

:func:`estimate_spec` reads the workload spec (rate × duration, counts, transforms) before
the workload is built; :func:`estimate_built` counts the built workload exactly. Both go
through :func:`check_limits`, which refuses a run beyond the user's limits with the
estimate in the message (``sim run --max-requests N --max-memory SIZE`` raise them).

Memory per request and per tick are measured peak-RSS growths (``benchmarks/
bench_memory.py``: a 1M-request run of the engine plus its result tables), rounded up.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from typing import Any

from sim.errors import LimitError

#: Peak resident bytes per simulated request: engine state, record columns and the result
#: DataFrames (measured 576 B at 100k and 470 B at 1M requests; rounded up).
BYTES_PER_REQUEST = 700
#: The same with ``sim.results: summary`` (no per-request table: the workload's columns and
#: the engine's slots for requests in the system; measured 62 B at 1M requests).
BYTES_PER_REQUEST_SUMMARY = 80
#: Bytes per control-loop tick that keeps a row in the queue samples: engine lists and the
#: result table (measured 196 B at 1M and 187 B at 2M ticks with ``benchmarks/
#: bench_memory.py --ticks``; rounded up). Timeline and decision rows come with actions.
BYTES_PER_TICK = 200
#: Bytes per worker (its record, process and timeline rows).
BYTES_PER_WORKER = 4096
#: Fixed overhead of a run (interpreter, numpy, pandas, SimPy already loaded: not counted).
BASE_BYTES = 50 * 2**20

DEFAULT_MAX_REQUESTS = 50_000_000


def _physical_memory() -> int:
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 8 * 2**30


def default_max_memory() -> int:
    """Three quarters of the machine's physical memory."""
    return _physical_memory() * 3 // 4


_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*", re.IGNORECASE)


def parse_size(text: str) -> int:
    """Bytes of ``"512M"``, ``"8G"``, ``"1.5GiB"`` or ``"1000000"``; ValueError otherwise."""
    m = _SIZE.fullmatch(str(text))
    if not m:
        raise ValueError(f"expected a size like 512M, 8G or 1.5GB, got {text!r}")
    scale = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}[m.group(2).lower()]
    return int(float(m.group(1)) * scale)


def human_bytes(n: float) -> str:
    """``1.2 GB`` style (binary units)."""
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if abs(n) < 1024 or unit == "PB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PB"


@dataclass(frozen=True)
class Limits:
    """What a run may use; ``None`` memory = :func:`default_max_memory`."""

    max_requests: int = DEFAULT_MAX_REQUESTS
    max_memory_bytes: int | None = None


@dataclass(frozen=True)
class Estimate:
    """A run's size: requests, control ticks, peak workers and resident bytes."""

    requests: float
    ticks: float
    workers: int
    bytes: float

    def describe(self) -> str:
        return (f"~{self.requests:,.0f} requests, ~{self.ticks:,.0f} control ticks, "
                f"up to {self.workers:,} workers, ~{human_bytes(self.bytes)} of memory")


def _memory(scenario: Any, requests: float, rows: float, workers: int) -> float:
    summary = getattr(getattr(scenario, "sim", None), "results", "full") == "summary"
    per_request = BYTES_PER_REQUEST_SUMMARY if summary else BYTES_PER_REQUEST
    return BASE_BYTES + requests * per_request + rows * BYTES_PER_TICK + workers * BYTES_PER_WORKER


def tick_rows(scenario: Any, ticks: float, requests: float) -> float:
    """Queue-sample rows a run keeps: one per tick while the run spans at most
    ``DENSE_TICK_ROWS`` ticks (:mod:`sim.engine.control`); beyond that only ticks that are
    not quiet keep one, about (window + longest scaling timeout) / interval + 3 per request
    (each request keeps the loop awake while it is in the window and the policy's timers
    run; an estimate, not a bound: a long backlog keeps it awake longer).
    """
    from sim.engine.control import DENSE_TICK_ROWS

    if ticks <= DENSE_TICK_ROWS:
        return ticks
    ac = scenario.deployment.autoscaling_config
    timers = max(float(ac.scaling_up_timeout_sec), float(ac.scaling_down_timeout_sec),
                 float(ac.scale_to_zero_timeout_sec))
    awake = (float(ac.time_window_sec) + timers) / float(scenario.autoscaler.decision_interval_s) + 3
    return min(ticks, requests * awake)


def _rate(spec: Any) -> float | None:
    kind = getattr(spec, "kind", None)
    if kind in ("poisson", "gamma"):
        return float(spec.rate_per_s)
    if kind in ("diurnal", "servegen"):
        return float(spec.mean_rate_per_s)
    if kind == "mmpp":
        return float(max(spec.rates_per_s))
    if kind == "step":
        return float(max((s.rate_per_s for s in spec.steps), default=0.0))
    if kind == "spike":
        return float(spec.base_rate_per_s) + sum(float(s.rate_per_s) for s in spec.spikes)
    return None


def spec_requests(spec: Any) -> float | None:
    """Expected requests of a workload spec before it is built (None: unknown, e.g. a trace
    file, whose size already bounds it)."""
    kind = getattr(spec, "kind", None)
    if kind == "composite":
        parts = [spec_requests(p) for p in spec.parts]
        n: float | None = None if any(p is None for p in parts) else sum(p or 0.0 for p in parts)
    elif kind == "trace":
        n = None
    elif getattr(spec, "requests", None) is not None:
        n = float(spec.requests)
    else:
        rate, duration = _rate(spec), getattr(spec, "duration_s", None)
        n = rate * float(duration) if rate is not None and duration is not None else None
    for op in getattr(spec, "transforms", ()) or ():
        if n is None:
            break
        name = getattr(op, "op", "")
        if name == "rate_scale":
            n *= float(op.factor)
        elif name == "repeat":
            if op.times is not None:
                n *= float(op.times)
            elif op.until_s is not None:
                span = getattr(spec, "duration_s", None)
                if span:
                    n *= max(1.0, float(op.until_s) / float(span))
        elif name == "max_requests":
            n = min(n, float(op.n))
    return n


def _peak_workers(scenario: Any) -> int:
    iwc = scenario.deployment.initial_worker_config
    return max(int(iwc.min_workers), int(scenario.autoscaler.max_workers))


def _span(scenario: Any, arrival_span_s: float | None) -> float | None:
    horizon = scenario.sim.horizon_s
    if horizon is not None:
        return float(horizon)
    if arrival_span_s is None:
        return None
    return float(arrival_span_s) + float(scenario.sim.max_drain_s)


def estimate_spec(scenario: Any) -> Estimate | None:
    """The run's size from the scenario alone (before the workload is built), or None when
    the workload's size is only known once it is read (a trace)."""
    n = spec_requests(scenario.workload)
    if n is None:
        return None
    duration = getattr(scenario.workload, "duration_s", None)
    span = _span(scenario, float(duration) if duration is not None else None)
    ticks = span / float(scenario.autoscaler.decision_interval_s) if span is not None else 0.0
    workers = _peak_workers(scenario)
    return Estimate(n, ticks, workers, _memory(scenario, n, tick_rows(scenario, ticks, n), workers))


def estimate_built(scenario: Any, n_requests: int, arrival_span_s: float) -> Estimate:
    """The run's size with the workload built: its exact request count and arrival span."""
    span = _span(scenario, arrival_span_s) or 0.0
    ticks = span / float(scenario.autoscaler.decision_interval_s)
    workers = _peak_workers(scenario)
    rows = tick_rows(scenario, ticks, float(n_requests))
    return Estimate(float(n_requests), ticks, workers, _memory(scenario, n_requests, rows, workers))


def check_limits(est: Estimate | None, limits: Limits | None = None) -> None:
    """Raise :class:`~sim.errors.LimitError` naming the estimate when it exceeds ``limits``."""
    if est is None:
        return
    limits = limits or Limits()
    cap = limits.max_memory_bytes or default_max_memory()
    if not math.isfinite(est.requests) or est.requests > limits.max_requests:
        raise LimitError(
            f"this run would simulate {est.describe()}: more than --max-requests "
            f"{limits.max_requests:,}; shorten the workload or raise the limit"
        )
    if not math.isfinite(est.bytes) or est.bytes > cap:
        raise LimitError(
            f"this run would need {est.describe()}: more than --max-memory {human_bytes(cap)}; "
            "shorten the horizon, lengthen autoscaler.decision_interval_s or raise the limit"
        )
