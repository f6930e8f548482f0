"""Workloads: what arrives — trace loaders, synthetic generators and transforms → :class:`Workload`.

The scenario's ``workload:`` section is one of these kinds (``kind:`` picks it)::

    workload: {kind: trace, path: ../shared/data/azure_llm_2023/AzureLLMInferenceTrace_conv.csv}
    workload: {kind: trace, path: BurstGPT_1.csv, filters: {Model: ChatGPT}, zero_output: drop}
    workload: {kind: trace, path: log.jsonl, format: jsonl, time_unit: ms,
               columns: {arrival: ts, prompt: n_in, output: n_out}}
    workload: {kind: poisson, rate_per_s: 5, duration_s: 3600,
               prompt_tokens: {dist: lognormal, mean: 1000, cv: 1.2}, output_tokens: 200}
    workload: {kind: diurnal, mean_rate_per_s: 2, peak_to_trough: 4, duration_s: 604800,
               weekly_peak_to_trough: 1.5, joint_tokens: {path: trace.csv}}
    workload: {kind: gamma, rate_per_s: 5, cv: 3, duration_s: 3600, prompt_tokens: 512, output_tokens: 128}
    workload: {kind: mmpp, rates_per_s: [1, 20], mean_sojourn_s: [600, 60], duration_s: 86400, ...}
    workload: {kind: step, steps: [{at_s: 0, rate_per_s: 1}, {at_s: 1800, rate_per_s: 8}], ...}
    workload: {kind: spike, base_rate_per_s: 2, spikes: [{at_s: 600, duration_s: 60, rate_per_s: 40}], ...}
    workload: {kind: servegen, path: ../shared/data/servegen/m-large, clients: all,
               mean_rate_per_s: 3, ...}
    workload: {kind: composite, parts: [{kind: diurnal, ...}, {kind: spike, ...}]}

Every kind takes ``transforms:``, applied in order: ``{op: time_scale, factor}``,
``{op: rate_scale, factor}``, ``{op: slice, start_s, end_s}``, ``{op: repeat, times | until_s}``,
``{op: shift, offset_s}``, ``{op: max_requests, n}``. Trace formats: azure, mooncake, burstgpt,
vidur, csv, jsonl, parquet (``TRACE_FORMATS``); generators are in ``GENERATORS``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# The submodules load on first use (PEP 562), so that importing a light part (the specs, for
# ``sim --help``) does not pull in pandas and pyarrow.
if TYPE_CHECKING:
    from sim.workload.build import apply_transform, build_workload
    from sim.workload.generators import GENERATORS, StreamSource, SubStreams
    from sim.workload.spec import (
        ColumnMap,
        CompositeWorkload,
        ConstantTokens,
        DiurnalWorkload,
        GammaWorkload,
        JointTokens,
        LognormalTokens,
        MMPPWorkload,
        PoissonWorkload,
        ServeGenWorkload,
        SpikeWorkload,
        StepWorkload,
        TokenDist,
        TraceTokens,
        TraceWorkload,
        Transform,
        WorkloadSpec,
        parse_workload_spec,
    )
    from sim.workload.stats import rate_series, trace_stats
    from sim.workload.traces import (
        TRACE_FORMATS,
        TraceFormat,
        detect_format,
        load_trace,
        read_token_column,
        read_token_pairs,
        register_format,
    )
    from sim.workload.workload import Workload

_LAZY: dict[str, str] = {
    "ColumnMap": "sim.workload.spec",
    "CompositeWorkload": "sim.workload.spec",
    "ConstantTokens": "sim.workload.spec",
    "DiurnalWorkload": "sim.workload.spec",
    "GENERATORS": "sim.workload.generators",
    "GammaWorkload": "sim.workload.spec",
    "JointTokens": "sim.workload.spec",
    "LognormalTokens": "sim.workload.spec",
    "MMPPWorkload": "sim.workload.spec",
    "PoissonWorkload": "sim.workload.spec",
    "ServeGenWorkload": "sim.workload.spec",
    "SpikeWorkload": "sim.workload.spec",
    "StepWorkload": "sim.workload.spec",
    "StreamSource": "sim.workload.generators",
    "SubStreams": "sim.workload.generators",
    "TRACE_FORMATS": "sim.workload.traces",
    "TokenDist": "sim.workload.spec",
    "TraceFormat": "sim.workload.traces",
    "TraceTokens": "sim.workload.spec",
    "TraceWorkload": "sim.workload.spec",
    "Transform": "sim.workload.spec",
    "Workload": "sim.workload.workload",
    "WorkloadSpec": "sim.workload.spec",
    "apply_transform": "sim.workload.build",
    "build_workload": "sim.workload.build",
    "detect_format": "sim.workload.traces",
    "load_trace": "sim.workload.traces",
    "parse_workload_spec": "sim.workload.spec",
    "rate_series": "sim.workload.stats",
    "read_token_column": "sim.workload.traces",
    "read_token_pairs": "sim.workload.traces",
    "register_format": "sim.workload.traces",
    "trace_stats": "sim.workload.stats",
}


def __getattr__(name: str) -> Any:
    """Import the submodule that defines ``name`` on first access."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'sim.workload' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "GENERATORS",
    "TRACE_FORMATS",
    "ColumnMap",
    "CompositeWorkload",
    "ConstantTokens",
    "DiurnalWorkload",
    "GammaWorkload",
    "JointTokens",
    "LognormalTokens",
    "MMPPWorkload",
    "PoissonWorkload",
    "ServeGenWorkload",
    "SpikeWorkload",
    "StepWorkload",
    "StreamSource",
    "SubStreams",
    "TokenDist",
    "TraceFormat",
    "TraceTokens",
    "TraceWorkload",
    "Transform",
    "Workload",
    "WorkloadSpec",
    "apply_transform",
    "build_workload",
    "detect_format",
    "load_trace",
    "parse_workload_spec",
    "rate_series",
    "read_token_column",
    "read_token_pairs",
    "register_format",
    "trace_stats",
]
