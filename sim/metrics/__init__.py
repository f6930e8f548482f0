"""Results of a run: the engine's record turned into DataFrames and the summary dict (DESIGN §3.3, §6)."""

from sim.metrics.replications import summarize_replications
from sim.metrics.result import Result, build_result, canonical_slo_metric, mask_secrets, to_jsonable

__all__ = [
    "Result",
    "build_result",
    "canonical_slo_metric",
    "mask_secrets",
    "summarize_replications",
    "to_jsonable",
]
