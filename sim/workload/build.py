"""Turn a validated ``workload:`` spec into a :class:`Workload` (the one entry point for the engine)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sim.errors import ConfigError
from sim.workload import transforms as tf
from sim.workload.generators import GENERATORS, StreamSource, SubStreams
from sim.workload.spec import (
    CompositeWorkload,
    MaxRequestsOp,
    RateScaleOp,
    RepeatOp,
    ShiftOp,
    SliceOp,
    TimeScaleOp,
    TraceWorkload,
    Transform,
)
from sim.workload.tokens import resolve_path
from sim.workload.traces import load_trace
from sim.workload.workload import Workload

__all__ = ["apply_transform", "build_workload", "load_trace"]


def build_workload(spec: object, streams: StreamSource, base_dir: Path | str = ".") -> Workload:
    """Load or generate the workload ``spec`` describes; relative paths resolve against ``base_dir``.

    Randomness comes only from ``streams`` ("arrivals", "prompt_tokens", "output_tokens",
    "transforms"), so the same seed gives identical arrays. The result is checked.
    """
    base = Path(base_dir)
    if isinstance(spec, TraceWorkload):
        wl = _trace(spec, base)
    else:
        kind = getattr(spec, "kind", None)
        if not isinstance(kind, str):
            raise ConfigError(f"not a workload spec: {type(spec).__name__}", field="workload")
        try:
            generator = GENERATORS.get(kind)
        except KeyError as exc:
            raise ConfigError(str(exc.args[0]), field="workload.kind") from None
        wl = generator(spec, streams, base)
    for op in getattr(spec, "transforms", ()):
        wl = apply_transform(wl, op, streams)
    return wl.check()


def apply_transform(wl: Workload, op: Transform, streams: StreamSource) -> Workload:
    """Apply one transform spec to ``wl``."""
    if isinstance(op, TimeScaleOp):
        return tf.time_scale(wl, op.factor)
    if isinstance(op, RateScaleOp):
        return tf.rate_scale(wl, op.factor, streams.get("transforms"), op.shift_s)
    if isinstance(op, SliceOp):
        return tf.slice_time(wl, op.start_s, op.end_s)
    if isinstance(op, RepeatOp):
        try:
            return tf.repeat(wl, op.times, op.until_s, op.period_s)
        except ValueError as exc:
            raise ConfigError(str(exc), field="workload.transforms.repeat") from None
    if isinstance(op, ShiftOp):
        return tf.shift(wl, op.offset_s)
    if isinstance(op, MaxRequestsOp):
        return tf.max_requests(wl, op.n)
    raise ConfigError(f"unknown transform {op!r}", field="workload.transforms")


def _trace(spec: TraceWorkload, base: Path) -> Workload:
    columns = spec.columns.model_dump() if spec.columns is not None else None
    wl = load_trace(
        resolve_path(spec.path, base),
        spec.format,
        columns,
        spec.time_unit,
        filters=spec.filters,
        zero_output=spec.zero_output,
        prompt_only=spec.prompt_only,
    )
    if spec.start_s is not None or spec.end_s is not None:
        wl = tf.slice_time(wl, spec.start_s, spec.end_s)
    if spec.time_scale != 1.0:
        wl = tf.time_scale(wl, spec.time_scale)
    if spec.max_requests is not None:
        wl = tf.max_requests(wl, spec.max_requests)
    return wl


@GENERATORS.register("composite")
def composite(spec: CompositeWorkload, streams: StreamSource, base_dir: Path) -> Workload:
    """The superposition of the parts, merged by arrival time; part i draws from streams "part{i}/..."."""
    parts = [
        build_workload(part, SubStreams(streams, f"part{i}"), base_dir)
        for i, part in enumerate(spec.parts)
    ]
    t = np.concatenate([p.arrival_s for p in parts])
    # Stable order keeps simultaneous arrivals in part order, so results are reproducible.
    order = np.argsort(t, kind="stable")
    warnings = tuple(w for p in parts for w in p.warnings)
    return Workload(
        arrival_s=t[order],
        prompt_tokens=np.concatenate([p.prompt_tokens for p in parts])[order],
        output_tokens=np.concatenate([p.output_tokens for p in parts])[order],
        source="composite(" + " + ".join(p.source for p in parts) + ")",
        warnings=warnings,
    )
