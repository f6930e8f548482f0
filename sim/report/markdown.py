"""The run report: ``report.md`` (and ``report.html``) with headline numbers, what they mean,
warnings, workers, decisions and plots."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from sim.report.fmt import pct, seconds, usd
from sim.report.insight import important_warnings, what_this_means
from sim.report.plots import write_plots

if TYPE_CHECKING:
    from sim.metrics.result import Result

MAX_WORKER_ROWS = 30
MAX_REASON_ROWS = 25
MAX_LOG_ROWS = 40  # scaling actions listed one by one; all are in decisions.csv
_METRICS_DOC = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"
_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")


def _s(v: float | None) -> str:
    return "–" if v is None else seconds(v)


def _usd(v: float | None) -> str:
    return "–" if v is None else usd(v)


def _num(v: float | int | None, fmt: str = ",") -> str:
    return "–" if v is None else format(v, fmt)


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out.extend("| " + " | ".join(r) + " |" for r in rows)
    return out


def _headline(s: dict[str, Any]) -> list[str]:
    r, c, w, slo = s["requests"], s["cost"], s["workers"], s["slo"]
    e2e, ttft = s["latency_e2e_s"], s["ttft_s"]
    att = slo["attainment"]
    rows = [
        ["cost per hour", _usd(c["per_hour_usd"])],
        ["total cost", _usd(c["total_usd"]) + f" (on-demand {_usd(c['on_demand_usd'])}, spot {_usd(c['spot_usd'])}, on-prem {_usd(c['on_prem_usd'])})"],
        ["cost per 1k requests", _usd(c["per_1k_requests_usd"])],
        ["E2E latency p50 / p95 / p99", " / ".join(_s(e2e[k]) for k in ("p50", "p95", "p99"))],
        ["TTFT p50 / p95 / p99", " / ".join(_s(ttft[k]) for k in ("p50", "p95", "p99"))],
        [f"SLO attainment ({slo['metric'].upper()} ≤ {slo['threshold_s']:g} s)", "–" if att is None else pct(att)],
        ["requests completed / failed / in flight", f"{r['completed']:,} / {r['failed']:,} / {r['in_flight']:,} (of {r['arrived']:,} arrived)"],
        ["workers max / mean", f"{w['max']} / {_num(w['mean'], '.2f')}"],
        ["GPU-hours billed", _num(w["gpu_hours"], ",.2f")],
        ["cold starts", f"{w['cold_starts']}" + (f" (mean start-up {_s(w['cold_start_mean_s'])})" if w.get("cold_start_mean_s") is not None else "")],
        ["preemptions", str(w["preemptions"])],
        ["scale-ups / scale-downs", f"{w['scale_ups']} / {w['scale_downs']}"],
    ]  # fmt: skip
    failed = {k: v for k, v in r.get("failed_by_reason", {}).items() if v}
    if failed:
        rows.append(["failed by reason", ", ".join(f"{k}: {v:,}" for k, v in failed.items())])
    return _table(["metric", "value"], rows)


def _t(v: Any) -> str:
    return "–" if pd.isna(v) else f"{v:,.1f}"


def _workers_section(workers: pd.DataFrame) -> list[str]:
    if workers.empty:
        return ["No workers were started."]
    if len(workers) <= MAX_WORKER_ROWS:
        rows = []
        for w in workers.to_dict("records"):
            kind = "on-prem" if w["on_prem"] else ("spot" if w["spot"] else "on-demand")
            where = f"{w['cloud']}/{w['zone']}" if w["zone"] else str(w["cloud"])
            rows.append([
                str(w["worker_id"]), f"{w['gpus']}× {w['gpu']}", where, kind, "yes" if w["initial"] else "",
                _t(w["requested_s"]), _t(w["ready_s"]), _t(w["drain_s"]), _t(w["terminated_s"]),
                str(w["end_reason"]) or "running", f"{w['requests_served']:,}", f"{w['billed_s'] / 3600:,.3f}",
                _usd(w["cost_usd"]),
            ])  # fmt: skip
        header = ["id", "shape", "cloud/zone", "kind", "initial", "requested s", "ready s", "drain s",
                  "terminated s", "end", "served", "billed h", "cost"]  # fmt: skip
        return _table(header, rows)
    kinds = (
        workers["spot"]
        .map({True: "spot", False: "on-demand"})
        .where(~workers["on_prem"], "on-prem")
    )
    shape = workers["gpus"].astype(str) + "× " + workers["gpu"].astype(str)
    g = workers.assign(kind=kinds, shape=shape).groupby(["shape", "cloud", "kind"], observed=True)
    agg = g.agg(
        workers=("worker_id", "size"), served=("requests_served", "sum"),
        billed_s=("billed_s", "sum"), cost=("cost_usd", "sum"),
    ).reset_index()  # fmt: skip
    rows = [
        [str(r["shape"]), str(r["cloud"]), str(r["kind"]), f"{r['workers']:,}", f"{r['served']:,}",
         f"{r['billed_s'] / 3600:,.2f}", _usd(r["cost"])]
        for r in agg.to_dict("records")
    ]  # fmt: skip
    ends = workers["end_reason"].replace("", "running").value_counts()
    lines = [
        f"{len(workers):,} workers (per-worker rows in `workers.parquet`), grouped by shape, cloud and kind:",
        "",
    ]
    lines += _table(["shape", "cloud", "kind", "workers", "served", "billed h", "cost"], rows)
    lines += ["", "End reasons: " + ", ".join(f"{k}: {v:,}" for k, v in ends.items())]
    return lines


def _reason_kind(reason: str) -> str:
    # Reasons carry the tick's numbers ("S=5.2>upper=4"); group them by their shape.
    return _NUMBER.sub("#", reason) if reason else "(none)"


def _range(lo: Any, hi: Any) -> str:
    if pd.isna(lo):
        return "–"
    return f"{lo:.3g}" if lo == hi else f"{lo:.3g} – {hi:.3g}"


def _decisions_section(dec: pd.DataFrame) -> list[str]:
    if dec.empty:
        return ["The autoscaler neither acted nor was blocked."]
    has_stat = "statistic" in dec.columns
    stat = dec["statistic"] if has_stat else pd.Series(float("nan"), index=dec.index)
    counts = (
        dec.assign(kind=dec["reason"].map(_reason_kind), stat=stat)
        .groupby(["action", "kind"], observed=True, sort=False)
        .agg(
            reason=("reason", "first"),
            count=("time_s", "size"),
            workers=("delta", "sum"),
            s_min=("stat", "min"),
            s_max=("stat", "max"),
            first=("time_s", "min"),
            last=("time_s", "max"),
        )
        .reset_index()
        .sort_values("count", ascending=False, kind="stable")
    )
    rows = [
        [str(r["action"]), f"`{r['reason'] or '(none)'}`", f"{r['count']:,}",
         _range(r["s_min"], r["s_max"]), f"{r['workers']:+,}", _t(r["first"]), _t(r["last"])]
        for r in counts.head(MAX_REASON_ROWS).to_dict("records")
    ]  # fmt: skip
    lines = [f"{len(dec):,} decisions (every tick that acted or was blocked; all in `decisions.csv`), "
             "grouped by action and reason. The reason is the first one logged; S is the "
             "statistic the policy compared (seconds), its range over the group.", ""]  # fmt: skip
    lines += _table(["action", "reason (first)", "count", "S", "workers Δ", "first s", "last s"], rows)
    if len(counts) > MAX_REASON_ROWS:
        lines += ["", f"… and {len(counts) - MAX_REASON_ROWS} more (action, reason) pairs."]
    acted = dec[dec["delta"] != 0]
    if len(acted):
        log = [
            [_t(r["time_s"]), str(r["action"]), _range(r.get("statistic"), r.get("statistic")),
             f"{int(r['workers']):,}", f"{int(r['delta']):+,}", f"`{r['reason']}`"]
            for r in acted.head(MAX_LOG_ROWS).to_dict("records")
        ]  # fmt: skip
        more = f" (the first {MAX_LOG_ROWS} of {len(acted):,})" if len(acted) > MAX_LOG_ROWS else ""
        lines += ["", f"Scaling actions{more}:", ""]
        lines += _table(["time s", "action", "S", "workers before", "Δ", "reason"], log)
    return lines


def _metrics_link(out_dir: Path) -> str:
    # A relative link only works when the report sits inside the checkout (results/...).
    repo = _METRICS_DOC.parents[1]
    out = out_dir.resolve()
    if _METRICS_DOC.exists() and out.is_relative_to(repo):
        rel = os.path.relpath(_METRICS_DOC, out)
        return f"[docs/metrics.md]({Path(rel).as_posix()})"
    return "`docs/metrics.md` in the simulator's repository"


def _spot_section(s: dict[str, Any]) -> list[str]:
    """Spot: what it saved, what preemption cost in lost work and retried requests."""
    c, w, r = s["cost"], s["workers"], s["requests"]
    if not c.get("spot_usd") and not w.get("preemptions"):
        return []
    cf = s.get("spot_counterfactual")
    if cf is not None and c.get("spot_savings_usd") is not None:
        saved = c["spot_savings_usd"]
        share = f" ({saved / cf['cost_total_usd']:.0%})" if cf["cost_total_usd"] else ""
        ch = cf["change"]

        def secs(x: Any) -> str:
            return "n/a" if x is None else f"{x:+.3g} s"

        att = ch.get("slo_attainment")
        saving = (
            f"Against the same scenario with spot off (same seed and requests: "
            f"{_usd(cf['cost_total_usd'])}), spot saved {_usd(saved)}{share}; with spot, TTFT p95 "
            f"changed by {secs(ch.get('ttft_p95_s'))}, E2E p95 by {secs(ch.get('latency_e2e_p95_s'))}"
            + ("" if att is None else f", SLO attainment by {100 * att:+.1f} points")
            + f" and failures by {ch.get('requests_failed', 0):+,}. "
        )
    else:
        saving = "Spot savings need the counterfactual run (fleet.spot.counterfactual). "
    discount = c.get("spot_price_discount_usd") or 0.0
    return [
        "## Spot",
        "",
        saving
        + f"Spot workers cost {_usd(c['spot_usd'])}, {_usd(discount)} less than the same workers "
        f"on-demand for the same time (a price difference, not the saving). "
        f"{w['preemptions']} preemption(s) sent {r['retried']:,} request(s) back to the queue "
        f"({r.get('retries_total', r['retried']):,} retries) and lost "
        f"{w.get('lost_work_gpu_s', 0.0):,.0f} GPU-seconds of work that was redone; replacement "
        "workers paid cold starts, which shows in the latency tail and the cold-start count.",
        "",
    ]


def render_report(result: Result, out_dir: str | Path = ".") -> str:
    """The markdown text of the run report (plots are referenced by file name)."""
    s = result.summary
    sim, scen = s["sim"], s.get("scenario") or {}
    dep = scen.get("deployment") or {}
    title = scen.get("name") or dep.get("name") or "simulation run"
    policy = (scen.get("autoscaler") or {}).get("policy")
    what = ", ".join(
        x for x in (
            f"model `{dep['model']}`" if dep.get("model") else "",
            f"policy `{policy}`" if policy else "",
            f"seed {sim['seed']}",
            f"horizon {sim['horizon_s']:,.0f} s",
            f"warm-up {sim['warmup_s']:,.0f} s" if sim.get("warmup_s") else "",
        ) if x
    )  # fmt: skip
    lines = [f"# Run report: {title}", "", what + ".", ""]
    description = scen.get("description")
    if description:
        lines += [str(description).strip(), ""]
    lines += [f"**What this means:** {what_this_means(s)}", ""]
    warnings = important_warnings(result)
    if warnings:
        lines += ["## Warnings", ""] + [f"- {w}" for w in warnings] + [""]
    lines += ["## Headline", ""]
    lines += _headline(s)
    lines += ["", "![Latency CDF](latency_cdf.png)", "", "## Workers", ""]
    lines += _workers_section(result.workers)
    shapes = s.get("workers", {}).get("scale_up_shapes") or {}
    if shapes:
        lines += ["", "Workers after the initial fleet, by shape: "
                  + ", ".join(f"{n} × {k}" for k, n in shapes.items()) + "."]
    placement = s.get("placement") or []
    if placement:
        lines += ["", *[f"- Placement: {p}" for p in placement]]
    lines += [
        "",
        "![Workers and queue over time](workers_queue.png)",
        "",
        "## Autoscaler decisions",
        "",
    ]
    lines += _decisions_section(result.decisions)
    lines += ["", "## Cost", "", "![Cost over time](cost.png)", ""]
    lines += _spot_section(s)
    q = s.get("queue", {}).get("mean_len")
    rps = sim.get("requests_per_wall_s")
    lines += [
        "",
        "## Assumptions",
        "",
        ("No warnings." if not warnings else "Warnings are listed at the top."),
        "",
        f"Metric definitions: {_metrics_link(Path(out_dir))}. Latency percentiles are over completed "
        f"requests arriving after the warm-up ({sim.get('warmup_s', 0):g} s); failed and in-flight "
        "requests are excluded from percentiles and count as SLO misses. Cost is billed from VM "
        f"start to termination (or the horizon) in granules of {s['cost'].get('billing_granularity_s') or 1:g} s; "
        "cost per hour divides by the horizon. Mean workers is time-weighted over the horizon."
        + (f" Mean gateway queue length {q:.3g}." if q is not None else ""),
        "",
        f"Simulated {sim['events']:,} events in {sim['wall_s']:.2f} s wall"
        + (f" ({rps:,.0f} requests per wall second)." if rps is not None else "."),
        "",
    ]
    return "\n".join(lines)


def write_report(result: Result, out_dir: str | Path) -> Path:
    """Write report.md, its three PNG plots and the self-contained report.html into
    ``out_dir``; return the path of report.md."""
    from sim.report.html import write_html
    from sim.report.insight import SLO_TARGET

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_plots(result, out)
    text = render_report(result, out)
    path = out / "report.md"
    path.write_text(text, encoding="utf-8")
    write_html(result.summary, text, out, slo_target=SLO_TARGET)
    return path
