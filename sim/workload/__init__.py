"""Workloads: what arrives — trace loaders, synthetic generators and transforms → :class:`Workload`."""

from sim.workload.build import apply_transform, build_workload
from sim.workload.generators import GENERATORS
from sim.workload.spec import (
    ColumnMap,
    ConstantTokens,
    DiurnalWorkload,
    LognormalTokens,
    PoissonWorkload,
    TokenDist,
    TraceTokens,
    TraceWorkload,
    WorkloadSpec,
    parse_workload_spec,
)
from sim.workload.traces import TRACE_FORMATS, TraceFormat, detect_format, load_trace
from sim.workload.workload import Workload

__all__ = [
    "GENERATORS",
    "TRACE_FORMATS",
    "ColumnMap",
    "ConstantTokens",
    "DiurnalWorkload",
    "LognormalTokens",
    "PoissonWorkload",
    "TokenDist",
    "TraceFormat",
    "TraceTokens",
    "TraceWorkload",
    "Workload",
    "WorkloadSpec",
    "apply_transform",
    "build_workload",
    "detect_format",
    "load_trace",
    "parse_workload_spec",
]
