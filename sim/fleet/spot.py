"""Spot capacity traces and the per-zone spot market that drives trace-based preemption.

Loading is the only IO here (:func:`load_capacity_trace`, :func:`load_capacity_traces`); the
model objects (:class:`CapacityTrace`, :class:`SpotMarket`, :class:`HazardPreemption`) are pure
and event-oriented: the engine asks for the next capacity change, schedules one event for it,
and at that event asks how many spot workers of the zone must go. Choosing the victims, notice
periods and on-demand fallback stay with the engine. See ``docs/spot.md``.

Trace files (both the "Can't Be Late" NSDI'24 traces and the SpotHedge EuroSys'25 GCP A100
traces) are ``{"metadata": {"gap_seconds": G}, "data": [v0, v1, ...]}``, one value per tick,
optionally with a per-tick ``"prices"`` array (ignored). Two contents share that schema:
``binary`` (every value 0 or 1, a single probed instance) and ``count`` (instances up).
"""

from __future__ import annotations

import heapq
import json
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from sim.errors import ConfigError, TraceError

__all__ = [
    "UNLIMITED",
    "CapacityChange",
    "CapacityTrace",
    "HazardPreemption",
    "Polarity",
    "SpotMarket",
    "TraceContent",
    "load_capacity_trace",
    "load_capacity_traces",
    "trace_summary",
    "zone_from_filename",
]

Polarity = Literal["available", "preempted"]
TraceContent = Literal["binary", "count"]

# Capacity of a zone that has no trace (hazard model or no preemption): never binding.
UNLIMITED: int = 2**62

_DAY_S = 86400.0
# Relative tolerance when folding a time into the trace period: k·P + offset computed in
# floating point may land a hair below the change point it was generated from, and the engine
# must see the new capacity at the very time of a change event.
_FOLD_REL_EPS = 1e-12


class CapacityChange(NamedTuple):
    """One capacity change of one zone: from ``time_s`` on, ``capacity`` instances can run."""

    time_s: float
    zone: str
    capacity: int


def _readonly(a: NDArray[Any]) -> NDArray[Any]:
    a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False)
class CapacityTrace:
    """A per-zone step series of spot instances available, right-continuous in time.

    ``capacity[i]`` holds on ``[times_s[i], times_s[i+1])`` and the last value up to
    ``duration_s``. Only change points are stored (``times_s[0] == 0``). Beyond ``duration_s``
    the trace is tiled (``repeat=True``: time is taken modulo ``duration_s``) or its last value
    is held (``repeat=False``). ``time_scale`` is the factor already applied to all times
    (0.5 plays the trace twice as fast); ``gap_seconds`` stays the file's unscaled tick.
    """

    zone: str
    times_s: NDArray[np.float64]
    capacity: NDArray[np.int64]
    duration_s: float
    gap_seconds: float
    repeat: bool = True
    time_scale: float = 1.0
    content: TraceContent = "count"
    n_ticks: int = 0
    source: str | None = None
    # One period's change points as offsets in (0, duration_s], including the wrap-around
    # change at duration_s when tiling and the last value differs from the first.
    _cyc_t: NDArray[np.float64] = field(init=False, repr=False)
    _cyc_c: NDArray[np.int64] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        t = np.ascontiguousarray(self.times_s, dtype=np.float64)
        c = np.ascontiguousarray(self.capacity, dtype=np.int64)
        if t.ndim != 1 or c.ndim != 1 or t.size == 0 or t.size != c.size:
            raise ValueError("times_s and capacity must be non-empty 1-D arrays of equal length")
        if t[0] != 0.0:
            raise ValueError(f"times_s must start at 0, got {t[0]}")
        if t.size > 1 and not np.all(np.diff(t) > 0):
            raise ValueError("times_s must be strictly increasing")
        if np.any(c < 0):
            raise ValueError("capacity must be >= 0")
        if not (math.isfinite(self.duration_s) and self.duration_s > t[-1]):
            raise ValueError(f"duration_s must be finite and > the last change ({t[-1]})")
        if not (self.time_scale > 0 and math.isfinite(self.time_scale)):
            raise ValueError(f"time_scale must be a positive finite number, got {self.time_scale}")
        object.__setattr__(self, "times_s", _readonly(t.copy()))
        object.__setattr__(self, "capacity", _readonly(c.copy()))
        cyc_t, cyc_c = t[1:], c[1:]
        if self.repeat and c[-1] != c[0]:
            cyc_t = np.append(cyc_t, self.duration_s)
            cyc_c = np.append(cyc_c, c[0])
        object.__setattr__(self, "_cyc_t", _readonly(np.array(cyc_t, dtype=np.float64)))
        object.__setattr__(self, "_cyc_c", _readonly(np.array(cyc_c, dtype=np.int64)))

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_ticks(
        cls,
        values: ArrayLike,
        gap_seconds: float,
        *,
        zone: str = "",
        repeat: bool = True,
        time_scale: float = 1.0,
        content: TraceContent | None = None,
        source: str | None = None,
    ) -> CapacityTrace:
        """A trace from one capacity value per tick of ``gap_seconds`` (no IO, for tests too)."""
        v = np.asarray(values, dtype=np.int64)
        if v.ndim != 1 or v.size == 0:
            raise ValueError("values must be a non-empty 1-D sequence")
        if not (gap_seconds > 0 and math.isfinite(gap_seconds)):
            raise ValueError(f"gap_seconds must be a positive finite number, got {gap_seconds}")
        # Keep only the ticks where the value changes: the engine needs one event per change,
        # not one per tick.
        starts = np.concatenate(([0], np.flatnonzero(np.diff(v)) + 1))
        tick = float(gap_seconds) * float(time_scale)
        if content is None:
            content = "binary" if int(v.max()) <= 1 else "count"
        return cls(
            zone=zone,
            times_s=starts.astype(np.float64) * tick,
            capacity=v[starts],
            duration_s=v.size * tick,
            gap_seconds=float(gap_seconds),
            repeat=repeat,
            time_scale=float(time_scale),
            content=content,
            n_ticks=int(v.size),
            source=source,
        )

    def scaled(self, factor: float) -> CapacityTrace:
        """This trace with every time multiplied by ``factor`` (time_scale accumulates)."""
        if not (factor > 0 and math.isfinite(factor)):
            raise ValueError(f"factor must be a positive finite number, got {factor}")
        return CapacityTrace(
            zone=self.zone, times_s=self.times_s * factor, capacity=self.capacity,
            duration_s=self.duration_s * factor, gap_seconds=self.gap_seconds,
            repeat=self.repeat, time_scale=self.time_scale * factor, content=self.content,
            n_ticks=self.n_ticks, source=self.source,
        )

    def with_repeat(self, repeat: bool) -> CapacityTrace:
        """This trace with tiling switched on (``True``) or last-value hold (``False``)."""
        return CapacityTrace(
            zone=self.zone, times_s=self.times_s, capacity=self.capacity,
            duration_s=self.duration_s, gap_seconds=self.gap_seconds, repeat=repeat,
            time_scale=self.time_scale, content=self.content, n_ticks=self.n_ticks,
            source=self.source,
        )

    # -- lookups ------------------------------------------------------------------------------
    def _fold(self, t: NDArray[np.float64]) -> NDArray[np.float64]:
        if np.any(~(t >= 0)):  # also catches NaN
            raise ValueError("times must be >= 0 (and not NaN)")
        if not self.repeat:
            return t  # searchsorted past the end holds the last value
        p = self.duration_s
        k = np.floor(t / p)
        r = t - k * p
        eps = _FOLD_REL_EPS * np.maximum(t, p)
        # A time a rounding error below the next period start belongs to that period.
        return np.where(r + eps >= p, 0.0, np.maximum(r, 0.0))

    def capacity_at_many(self, t: ArrayLike) -> NDArray[np.int64]:
        """Capacity at each time of ``t`` (vectorised :meth:`capacity_at`)."""
        tt = np.asarray(t, dtype=np.float64)
        r = self._fold(np.atleast_1d(tt))
        eps = _FOLD_REL_EPS * np.maximum(r, self.duration_s) if self.repeat else 0.0
        idx = np.searchsorted(self.times_s, r + eps, side="right") - 1
        out = self.capacity[idx]
        return out.reshape(tt.shape) if tt.ndim else out

    def capacity_at(self, t: float) -> int:
        """Instances available at time ``t`` (a change at ``t`` already applies)."""
        return int(self.capacity_at_many(np.array([t], dtype=np.float64))[0])

    def drops(self) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
        """Times within one pass of the trace where capacity decreases, and the new capacity."""
        down = np.flatnonzero(np.diff(self.capacity) < 0) + 1
        return self.times_s[down], self.capacity[down]

    def changes(
        self, start_s: float = 0.0, until_s: float = math.inf
    ) -> Iterator[tuple[float, int]]:
        """(time, new capacity) of every change in ``(start_s, until_s]``, in time order.

        With ``repeat`` this is infinite unless ``until_s`` is finite; the wrap-around at each
        multiple of ``duration_s`` is a change only when the last value differs from the first.
        """
        if start_s < 0 or math.isnan(start_s):
            raise ValueError(f"start_s must be >= 0, got {start_s}")
        if not self.repeat:
            lo = int(np.searchsorted(self.times_s, start_s, side="right"))
            hi = int(np.searchsorted(self.times_s, until_s, side="right"))
            for i in range(max(lo, 1), hi):
                yield float(self.times_s[i]), int(self.capacity[i])
            return
        if self._cyc_t.size == 0:
            return
        p = self.duration_s
        k = math.floor(start_s / p)
        offs, caps = self._cyc_t.tolist(), self._cyc_c.tolist()
        # Skip the part of the first period before start_s without a linear scan (the engine
        # asks for the next change at every event); one step back absorbs rounding.
        i = max(int(np.searchsorted(self._cyc_t, start_s - k * p, side="right")) - 1, 0)
        while True:
            base = k * p
            if base + offs[0] > until_s:
                return
            for off, cap in zip(offs[i:], caps[i:], strict=True):
                ts = base + off
                if ts > until_s:
                    return
                if ts > start_s:
                    yield ts, cap
            k += 1
            i = 0

    def next_change_after(self, t: float) -> float:
        """Time of the first change strictly after ``t`` (inf if the trace never changes again)."""
        for ts, _ in self.changes(t):
            return ts
        return math.inf

    def next_time_above(self, t: float, level: int = 0) -> float:
        """Earliest time ``>= t`` at which capacity exceeds ``level`` (inf if never)."""
        if self.capacity_at(t) > level:
            return float(t)
        if not self.repeat:
            hit = np.flatnonzero((self.times_s > t) & (self.capacity > level))
            return float(self.times_s[hit[0]]) if hit.size else math.inf
        p = self.duration_s
        k = math.floor(t / p)
        r = t - k * p
        here = np.flatnonzero((self._cyc_t > r) & (self._cyc_c > level))
        if here.size:
            return k * p + float(self._cyc_t[here[0]])
        # Not in the rest of this period: the first such change of the next period, if any.
        later = np.flatnonzero(self._cyc_c > level)
        return (k + 1) * p + float(self._cyc_t[later[0]]) if later.size else math.inf


# -- loading (the only IO) --------------------------------------------------------------------
def zone_from_filename(path: str | Path) -> str:
    """The zone a trace file is named after: ``us-central1-a_a100_40gb_8.json`` → ``us-central1-a``."""
    return Path(path).stem.split("_", 1)[0]


def _tick_values(data: list[Any], path: str) -> NDArray[np.int64]:
    # One pass in Python: a few 10^4 values, and the first bad one is reported by index.
    out = np.empty(len(data), dtype=np.int64)
    for i, x in enumerate(data):
        if isinstance(x, bool) or not isinstance(x, (int, float)):
            raise TraceError(f"data[{i}] = {x!r}: expected a non-negative integer", path=path)
        if isinstance(x, float) and not (math.isfinite(x) and x.is_integer()):
            raise TraceError(f"data[{i}] = {x!r}: expected a non-negative integer", path=path)
        if x < 0:
            raise TraceError(f"data[{i}] = {x!r}: capacity cannot be negative", path=path)
        out[i] = int(x)
    return out


def load_capacity_trace(
    path: str | Path,
    *,
    polarity: Polarity = "available",
    zone: str | None = None,
    repeat: bool = True,
    time_scale: float = 1.0,
    binary_capacity: int = 1,
    content: Literal["auto", "binary", "count"] = "auto",
) -> CapacityTrace:
    """Read one spot trace file into a :class:`CapacityTrace` (TraceError names the bad file).

    ``content="auto"`` detects ``binary`` when every value is 0 or 1, else ``count``; a count
    file that happens to hold only 0/1 (a sparse zone) can be forced with ``content="count"``.
    ``polarity="preempted"`` inverts a binary trace (1 = preempted, as the Can't-Be-Late
    simulator reads its 1-node files); it is an error on a count trace. In a binary trace an
    available tick stands for ``binary_capacity`` instances (1; SpotHedge reads it as
    unlimited: pass :data:`UNLIMITED`). ``zone`` defaults to the file name's first field.
    """
    p = Path(path)
    where = str(p)
    if polarity not in ("available", "preempted"):
        raise ConfigError(f"polarity must be 'available' or 'preempted', got {polarity!r}")
    if binary_capacity < 1:
        raise ConfigError(f"binary_capacity must be >= 1, got {binary_capacity}")
    if content not in ("auto", "binary", "count"):
        raise ConfigError(f"content must be 'auto', 'binary' or 'count', got {content!r}")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TraceError(f"cannot read spot trace: {exc}", path=where) from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TraceError(f"not valid JSON: {exc.msg} (char {exc.pos})", path=where,
                         line=exc.lineno) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), list):
        raise TraceError('expected {"metadata": {"gap_seconds": G}, "data": [...]}', path=where)
    meta = doc.get("metadata")
    gap = meta.get("gap_seconds") if isinstance(meta, dict) else None
    if (isinstance(gap, bool) or not isinstance(gap, (int, float))
            or not (math.isfinite(gap) and gap > 0)):
        raise TraceError(f"metadata.gap_seconds must be a positive number, got {gap!r}",
                         path=where)
    data: list[Any] = doc["data"]
    if not data:
        raise TraceError("data is empty: a spot trace needs at least one tick", path=where)
    v = _tick_values(data, where)
    is_binary = int(v.max()) <= 1
    if content == "binary" and not is_binary:
        raise TraceError(
            f"content 'binary' but data has values up to {int(v.max())}", path=where
        )
    kind: TraceContent = (
        content if content != "auto" else ("binary" if is_binary else "count")
    )
    if polarity == "preempted":
        if kind != "binary":
            raise TraceError(
                f"polarity 'preempted' applies to 0/1 traces only; this one is a count trace "
                f"(values up to {int(v.max())} instances up)", path=where,
            )
        v = 1 - v
    if kind == "binary" and binary_capacity != 1:
        v = v * binary_capacity
    return CapacityTrace.from_ticks(
        v, float(gap), zone=zone if zone is not None else zone_from_filename(p),
        repeat=repeat, time_scale=time_scale, content=kind, source=where,
    )


def load_capacity_traces(
    paths: str | Path | Iterable[str | Path],
    *,
    polarity: Polarity = "available",
    repeat: bool = True,
    time_scale: float = 1.0,
    binary_capacity: int = 1,
    content: Literal["auto", "binary", "count"] = "auto",
) -> list[CapacityTrace]:
    """Load a trace file, every ``*.json`` of a directory (not recursive), or a list of either."""
    items: list[Path] = [Path(paths)] if isinstance(paths, (str, Path)) else [
        Path(x) for x in paths
    ]
    files: list[Path] = []
    for item in items:
        if item.is_dir():
            found = sorted(item.glob("*.json"))
            if not found:
                raise TraceError("no *.json spot traces in this directory", path=str(item))
            files.extend(found)
        else:
            files.append(item)
    return [
        load_capacity_trace(f, polarity=polarity, repeat=repeat, time_scale=time_scale,
                            binary_capacity=binary_capacity, content=content)
        for f in files
    ]


# -- the market -------------------------------------------------------------------------------
class HazardPreemption:
    """Exponential time to preemption per spot worker (memoryless, ``kind: hazard``)."""

    def __init__(self, mean_time_to_preemption_s: float, rng: np.random.Generator) -> None:
        if math.isnan(mean_time_to_preemption_s) or mean_time_to_preemption_s <= 0:
            raise ValueError(
                f"mean_time_to_preemption_s must be > 0, got {mean_time_to_preemption_s}"
            )
        self.mean_time_to_preemption_s = float(mean_time_to_preemption_s)
        self.rng = rng

    @property
    def rate_per_s(self) -> float:
        """Preemptions per second of one running spot worker."""
        return 1.0 / self.mean_time_to_preemption_s

    def sample(self) -> float:
        """Seconds from a worker's VM start to its preemption notice (inf if the mean is inf)."""
        if math.isinf(self.mean_time_to_preemption_s):
            return math.inf
        return float(self.rng.exponential(self.mean_time_to_preemption_s))


class SpotMarket:
    """Per-zone spot capacity for one run: who must go at a drop, who may start, and when.

    Built from one :class:`CapacityTrace` per zone (``kind == "trace"``). Without traces every
    zone has :data:`UNLIMITED` capacity and preemption comes from the per-worker ``hazard``
    model, if any (``kind == "hazard"``, else ``"none"``). Spot worker counts are passed in by
    the engine, which owns the workers; the market keeps no per-run mutable state.
    """

    def __init__(
        self,
        traces: Sequence[CapacityTrace] = (),
        *,
        hazard: HazardPreemption | None = None,
    ) -> None:
        by_zone: dict[str, CapacityTrace] = {}
        for tr in traces:
            if tr.zone in by_zone:
                raise ConfigError(
                    f"two spot traces for zone {tr.zone!r}: {by_zone[tr.zone].source} and "
                    f"{tr.source}", field="fleet.spot.preemption.trace_path",
                )
            by_zone[tr.zone] = tr
        self._traces = by_zone
        self.hazard = hazard

    @property
    def kind(self) -> Literal["trace", "hazard", "none"]:
        """Which model drives preemption: capacity traces, a per-worker hazard, or none."""
        if self._traces:
            return "trace"
        return "hazard" if self.hazard is not None else "none"

    @property
    def zones(self) -> tuple[str, ...]:
        """Zones that have a capacity trace, in the order given."""
        return tuple(self._traces)

    def trace(self, zone: str) -> CapacityTrace:
        """The capacity trace of ``zone`` (ConfigError if the market has none for it)."""
        try:
            return self._traces[zone]
        except KeyError:
            raise ConfigError(
                f"no spot capacity trace for zone {zone!r}; traces cover {list(self._traces)}",
                field="fleet.spot.preemption.trace_path",
            ) from None

    def capacity(self, zone: str, t: float) -> int:
        """Spot instances available in ``zone`` at ``t`` (UNLIMITED without traces)."""
        if not self._traces:
            return UNLIMITED
        return self.trace(zone).capacity_at(t)

    def excess(self, zone: str, t: float, spot_workers: int) -> int:
        """How many of the zone's ``spot_workers`` exceed its capacity at ``t`` (to preempt)."""
        return max(0, int(spot_workers) - self.capacity(zone, t))

    def preemptions_at(self, t: float, spot_workers: Mapping[str, int]) -> dict[str, int]:
        """Zones whose spot workers exceed capacity at ``t`` → how many must be preempted."""
        out: dict[str, int] = {}
        for zone, n in spot_workers.items():
            k = self.excess(zone, t, n)
            if k > 0:
                out[zone] = k
        return out

    def can_acquire(self, zone: str, t: float, spot_workers: int) -> bool:
        """Whether one more spot worker fits in ``zone`` now (capacity > current spot workers)."""
        return self.capacity(zone, t) > int(spot_workers)

    def acquirable_zones(self, t: float, spot_workers: Mapping[str, int]) -> list[str]:
        """Traced zones with room for one more spot worker at ``t``, most free room first."""
        room = {z: self.capacity(z, t) - int(spot_workers.get(z, 0)) for z in self._traces}
        return sorted((z for z, r in room.items() if r > 0), key=lambda z: (-room[z], z))

    def next_available(self, zone: str, t: float, spot_workers: int = 0) -> float:
        """Earliest time ``>= t`` when ``zone`` has room beyond ``spot_workers`` (inf if never).

        With the default 0 this is when capacity next becomes positive: the time to retry a
        refused acquisition, or to see that it comes after ``spot_acquire_timeout_s``.
        """
        if not self._traces:
            return float(t)
        return self.trace(zone).next_time_above(t, int(spot_workers))

    def next_change_after(self, t: float, zone: str | None = None) -> float:
        """Time of the first capacity change strictly after ``t`` in ``zone`` or any zone."""
        if zone is not None:
            return self.trace(zone).next_change_after(t) if self._traces else math.inf
        return min((tr.next_change_after(t) for tr in self._traces.values()), default=math.inf)

    def changes(
        self, start_s: float = 0.0, until_s: float = math.inf
    ) -> Iterator[CapacityChange]:
        """Every capacity change in ``(start_s, until_s]`` of every zone, by (time, zone)."""
        streams = [
            _tagged(zone, tr.changes(start_s, until_s)) for zone, tr in self._traces.items()
        ]
        return heapq.merge(*streams)


def _tagged(zone: str, changes: Iterator[tuple[float, int]]) -> Iterator[CapacityChange]:
    # A function, not a generator expression in a loop, so each stream keeps its own zone.
    for ts, cap in changes:
        yield CapacityChange(ts, zone, cap)


# -- figures ----------------------------------------------------------------------------------
def trace_summary(trace: CapacityTrace) -> dict[str, Any]:
    """Headline figures of one pass of ``trace`` (times as scaled; rates per 86 400 s).

    ``mean_time_between_drops_s`` is duration / drops. The ``one_instance`` figures follow the
    simulator's rule for a single spot worker that is re-acquired whenever capacity is positive:
    it is preempted each time capacity falls to 0, so its rate is falls-to-zero per day of time
    with capacity > 0. ``per_instance_preemptions_per_day`` is instances lost (sum of all drop
    sizes) per instance-day of capacity, the rate of a random instance of a full zone.
    """
    t, c = trace.times_s, trace.capacity
    seg = np.diff(np.append(t, trace.duration_s))
    dur = trace.duration_s
    step = np.diff(c)
    drops = int(np.count_nonzero(step < 0))
    lost = int(-step[step < 0].sum())
    falls_to_zero = int(np.count_nonzero((c[:-1] > 0) & (c[1:] == 0)))
    up_s = float(seg[c > 0].sum())
    instance_s = float((seg * c).sum())
    return {
        "zone": trace.zone,
        "source": trace.source,
        "content": trace.content,
        "gap_seconds": trace.gap_seconds,
        "ticks": trace.n_ticks,
        "duration_h": dur / 3600.0,
        "max_capacity": int(c.max()),
        "mean_capacity": instance_s / dur,
        "frac_time_zero": float(seg[c == 0].sum()) / dur,
        "drops": drops,
        "instances_lost": lost,
        "mean_time_between_drops_s": dur / drops if drops else math.inf,
        "one_instance_preemptions": falls_to_zero,
        "one_instance_preemptions_per_day": (
            falls_to_zero / up_s * _DAY_S if up_s > 0 else math.nan
        ),
        "one_instance_mean_time_to_preemption_s": (
            up_s / falls_to_zero if falls_to_zero else math.inf
        ),
        "per_instance_preemptions_per_day": (
            lost / instance_s * _DAY_S if instance_s > 0 else math.nan
        ),
    }
