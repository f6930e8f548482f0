"""What a run's numbers mean: the one-line reading and the warnings a report puts first.

Rules of thumb, not a model: they point at the knob most likely to move the figure that
missed, and quote the scenario's current value so the reader can see what to change.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from sim.metrics.result import Result

#: SLO attainment below this reads as "missed"; at or above as "met".
SLO_TARGET = 0.95
#: A queue peak of at least this many requests per worker reads as "undersized".
QUEUE_PER_WORKER = 10


def _knob(scenario: dict[str, Any], section: str, key: str) -> str:
    value = ((scenario.get("deployment") or {}).get(section) or {}).get(key)
    return "" if value is None else f" (now {value:g})" if isinstance(value, int | float) else ""


def what_this_means(summary: dict[str, Any]) -> str:
    """One or two sentences reading the headline: met or missed the SLO, why, what to try."""
    req, slo, w = summary["requests"], summary["slo"], summary["workers"]
    queue = summary.get("queue") or {}
    scen = summary.get("scenario") or {}
    cost = summary["cost"].get("per_hour_usd")
    att = slo.get("attainment")
    if not req.get("arrived"):
        return "No request arrived in this run, so there is nothing to measure but the idle cost."
    if att is None:
        return "No request was measured (all arrived during the warm-up): shorten sim.warmup_s."
    goal = f"{slo['metric'].upper()} ≤ {slo['threshold_s']:g} s"
    cost_txt = f" at ${cost:,.2f}/h" if cost is not None else ""
    failed = {k: v for k, v in (req.get("failed_by_reason") or {}).items() if v}
    parts: list[str] = []
    if att >= SLO_TARGET:
        parts.append(
            f"{att:.1%} of requests met the SLO ({goal}){cost_txt} with "
            f"{w['mean']:.2f} workers on average."
            if w.get("mean") is not None
            else f"{att:.1%} of requests met the SLO ({goal}){cost_txt}."
        )
        if att >= 0.999 and (w.get("max") or 0) > 1:
            parts.append(
                "There may be room to save: try a higher `lower_allowed_latency_sec`"
                f"{_knob(scen, 'autoscaling_config', 'lower_allowed_latency_sec')} or a shorter "
                f"`scaling_down_timeout_sec`"
                f"{_knob(scen, 'autoscaling_config', 'scaling_down_timeout_sec')} and compare the cost."
            )
    else:
        peak = int(queue.get("max_len") or 0)
        parts.append(f"Only {att:.1%} of requests met the SLO ({goal}){cost_txt}.")
        if peak >= QUEUE_PER_WORKER * max(int(w.get("max") or 1), 1):
            parts.append(
                f"The queue peaked at {peak:,} requests: the fleet is undersized for the peaks "
                "and grows too slowly. Try a shorter `scaling_up_timeout_sec`"
                f"{_knob(scen, 'autoscaling_config', 'scaling_up_timeout_sec')}, a lower "
                "`upper_allowed_latency_sec`"
                f"{_knob(scen, 'autoscaling_config', 'upper_allowed_latency_sec')} or a higher "
                f"`min_workers`{_knob(scen, 'initial_worker_config', 'min_workers')}."
            )
        else:
            parts.append(
                f"The queue stayed short (peak {peak:,} requests): the time goes in serving, not "
                "waiting, so more workers help less than a faster GPU shape or a smaller "
                "`serving.max_batch`."
            )
    if failed:
        parts.append(
            f"{sum(failed.values()):,} requests failed ("
            + ", ".join(f"{k}: {v:,}" for k, v in failed.items()) + ")."
        )
    return " ".join(parts)


def _shape(gpu: Any, gpus: Any) -> str:
    return f"{gpus}× {gpu}"


def important_warnings(result: Result) -> list[str]:
    """Warnings a reader must see first: failed requests by reason, scale-ups placed on a
    different GPU shape than the initial workers, then the run's own warnings."""
    s = result.summary
    out: list[str] = []
    failed = {k: v for k, v in (s["requests"].get("failed_by_reason") or {}).items() if v}
    if failed.get("too_large"):
        out.append(
            f"{failed['too_large']:,} requests were rejected as too long for the model's context "
            "or every worker's KV cache (failed, reason too_large): cap the token lengths or "
            "choose a model with a longer context."
        )
    if failed.get("rejected"):
        out.append(
            f"{failed['rejected']:,} requests were rejected at admission by "
            "max_throughput_rate (failed, reason rejected)."
        )
    if failed.get("timeout"):
        out.append(f"{failed['timeout']:,} requests timed out waiting in the gateway queue.")
    wk = result.workers
    if len(wk) and {"initial", "gpu", "gpus"} <= set(wk.columns):
        first = wk[wk["initial"].astype(bool)]
        later = wk[~wk["initial"].astype(bool)]
        if len(first) and len(later):
            home = set(zip(first["gpu"].astype(str), first["gpus"], strict=True))
            other = later[[(g, n) not in home for g, n in
                           zip(later["gpu"].astype(str), later["gpus"], strict=True)]]
            if len(other):
                shapes = pd.Series([_shape(g, n) for g, n in
                                    zip(other["gpu"], other["gpus"], strict=True)]).value_counts()
                out.append(
                    f"{len(other):,} of {len(later):,} workers added after the start ran on a "
                    "different GPU shape than the initial workers ("
                    + ", ".join(f"{k}: {v:,}" for k, v in shapes.items())
                    + f" instead of {', '.join(sorted(_shape(g, n) for g, n in home))}): their "
                    "speed and price differ."
                )
    seen = set(out)
    for w in s.get("warnings") or []:
        if str(w) not in seen:
            seen.add(str(w))
            out.append(str(w))
    return out
