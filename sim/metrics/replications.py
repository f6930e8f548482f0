"""Aggregate the summaries of several runs (seeds) into means with 95% confidence intervals."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from sim.metrics.stats import mean_ci95

# Subtrees that describe the input, not an outcome: not averaged.
_SKIP = frozenset({"scenario", "warnings"})


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _merge(nodes: Sequence[Any]) -> Any:
    """Aggregate one position of the summary tree across runs, or None to drop it."""
    present = [x for x in nodes if x is not None]
    if present and all(isinstance(x, dict) for x in present):
        keys: list[str] = []
        for x in present:
            keys.extend(k for k in x if k not in keys)
        out = {}
        for k in keys:
            merged = _merge([x.get(k) for x in present])
            if merged is not None:
                out[k] = merged
        return out or None
    if present and all(_is_number(x) for x in present):
        # None leaves (an undefined statistic in some runs) are left out of that leaf's n.
        return mean_ci95([float(x) for x in present if math.isfinite(float(x))])
    if all(_is_number(x) or x is None for x in nodes):
        # Every run has null here (e.g. no completions anywhere): keep the leaf, undefined.
        return mean_ci95([])
    if present and all(x == present[0] for x in present):
        return present[0]  # identical labels such as slo.metric
    return None


def summarize_replications(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean, sample std and 95% t-interval of every numeric leaf across replication summaries.

    The result mirrors the summary tree: each numeric leaf becomes
    ``{mean, std, ci95_low, ci95_high, half_width, n}`` (n = runs where it was defined).
    Identical non-numeric leaves are kept as they are; differing ones are dropped. The
    scenario and warnings are not averaged; ``replications`` lists the count and the seeds.
    """
    if not summaries:
        raise ValueError("summarize_replications needs at least one summary")
    body = [{k: v for k, v in s.items() if k not in _SKIP} for s in summaries]
    out: dict[str, Any] = _merge(body) or {}
    seeds = [s.get("sim", {}).get("seed") for s in summaries]
    warnings: list[str] = []
    for s in summaries:
        warnings.extend(w for w in s.get("warnings", []) if w not in warnings)
    out["replications"] = {"n": len(summaries), "seeds": seeds}
    out["warnings"] = warnings
    return out
