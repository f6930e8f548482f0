"""PNG plots of one run: latency CDFs, workers and queue over time, cumulative cost.

Every curve is drawn from at most :data:`MAX_POINTS` points: latency CDFs from quantiles,
time series from time buckets (the peak within each), never one point per request, so a
plot of a 10M-request run costs what a plot of a 10k-request run does.

Figures are drawn on matplotlib's Agg canvas directly (no pyplot state, no display), so
plotting is safe in worker processes and never leaks figures between runs.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from sim.metrics.stats import step_segments

if TYPE_CHECKING:
    from sim.metrics.result import Result

DPI = 110
MAX_POINTS = 2000  # points per curve: more than the pixels across a plot adds nothing
_E2E_COLOR = "#1f77b4"
_TTFT_COLOR = "#ff7f0e"


def _figure(
    width: float, height: float, rows: int = 1, height_ratios: tuple[float, ...] | None = None
) -> tuple[Figure, list[Axes]]:
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, 1, sharex=True, squeeze=False, height_ratios=height_ratios)[:, 0]
    return fig, list(axes)


def _legend_above(ax: Axes, handles: list | None = None, labels: list[str] | None = None) -> None:
    # Above the axes, in one row: a legend inside would hide the step lines it explains.
    if handles is None or labels is None:
        handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(handles, labels, loc="lower left", bbox_to_anchor=(0.0, 1.0), ncol=len(handles),
                  fontsize=8.5, frameon=False, borderaxespad=0.2, handlelength=1.6, columnspacing=1.2)  # fmt: skip


def _save(fig: Figure, path: Path) -> Path:
    fig.savefig(path, dpi=DPI)
    return path


def time_unit(horizon_s: float) -> tuple[float, str]:
    """Divisor and label for a time axis that reads well over this horizon."""
    if horizon_s >= 3 * 3600:
        return 3600.0, "h"
    if horizon_s >= 3 * 60:
        return 60.0, "min"
    return 1.0, "s"


def _empty(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="0.4")


def cdf_points(values: np.ndarray, max_points: int = MAX_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """(latency, fraction ≤ latency) of an empirical CDF from at most ``max_points`` quantiles.

    Up to ``max_points`` finite values every value is a point (the exact ECDF); above, the
    quantiles at ``max_points`` evenly spaced fractions (linear interpolation, numpy's
    default), so the curve is within 1/``max_points`` of the exact ECDF in fraction.
    """
    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x)]
    if x.size <= max_points:
        x = np.sort(x)
        return x, np.arange(1, x.size + 1) / max(x.size, 1)
    frac = np.linspace(1.0 / max_points, 1.0, max_points)
    return np.quantile(x, frac), frac


def bucket_peaks(
    starts: np.ndarray, values: np.ndarray, horizon_s: float, max_points: int = MAX_POINTS
) -> tuple[np.ndarray, np.ndarray]:
    """A held step series as at most ``max_points`` (bucket start, peak value) steps.

    With no more segments than ``max_points`` the series is returned as it is; otherwise
    [0, horizon] is cut into ``max_points`` equal buckets and each shows the highest value
    held in it, so short peaks stay visible.
    """
    if starts.size <= max_points or horizon_s <= 0:
        return starts, values
    edges = np.linspace(0.0, horizon_s, max_points + 1)
    # The value held at each bucket's start, then the peak of any change inside the bucket.
    held = values[np.clip(np.searchsorted(starts, edges[:-1], side="right") - 1, 0, None)]
    idx = np.clip(np.searchsorted(edges, starts, side="right") - 1, 0, max_points - 1)
    peak = held.astype(np.float64).copy()
    np.maximum.at(peak, idx, values)
    return edges[:-1], peak


def _summary_cdf(block: dict) -> tuple[np.ndarray, np.ndarray]:
    """CDF points (latency, fraction) from a summary block's percentiles; empty when unknown."""
    pairs = [(block.get(k), q) for k, q in (("p50", 0.5), ("p90", 0.9), ("p95", 0.95),
                                              ("p99", 0.99), ("max", 1.0))]
    known = [(x, q) for x, q in pairs if x is not None]
    if not known:
        return np.empty(0), np.empty(0)
    x, q = zip(*known, strict=True)
    return np.asarray(x, dtype=np.float64), np.asarray(q, dtype=np.float64)


def plot_latency_cdf(result: Result, path: Path) -> Path:
    """Empirical CDFs of E2E latency and TTFT of measured completed requests, log x axis
    (from at most :data:`MAX_POINTS` quantiles each, :func:`cdf_points`)."""
    fig, (ax,) = _figure(7.5, 4.6)
    req = result.requests
    warmup = float(result.summary["sim"]["warmup_s"])
    done = (req["status"] == "completed").to_numpy() & (req["arrival_s"].to_numpy() >= warmup)
    # sim.results: summary|stream keep no per-request table: draw the summary's percentiles.
    from_summary = result.summary["sim"].get("results") in ("summary", "stream")
    drawn = False
    for col, label, color, key in (
        ("e2e_s", "end-to-end (E2E)", _E2E_COLOR, "latency_e2e_s"),
        ("ttft_s", "time to first token (TTFT)", _TTFT_COLOR, "ttft_s"),
    ):
        if from_summary:
            x, y = _summary_cdf(result.summary[key])
        else:
            x, y = cdf_points(req[col].to_numpy()[done])
        if x.size == 0:
            continue
        # Zero latencies cannot sit on a log axis; draw them at the smallest positive value.
        floor = x[x > 0].min() if (x > 0).any() else 1e-3
        x = np.maximum(x, floor)
        p50, p95 = result.summary[key]["p50"], result.summary[key]["p95"]
        draw = ax.plot if from_summary else partial(ax.step, where="post")  # points: no steps
        draw(x, y, color=color, lw=1.8, marker="o" if from_summary else None,
                label=f"{label}  p50 {p50:.3g} s · p95 {p95:.3g} s")  # fmt: skip
        drawn = True
    slo = result.summary["slo"]
    if drawn:
        ax.set_xscale("log")
        if slo["metric"] in ("e2e", "ttft") and slo["threshold_s"] > 0:
            att = slo["attainment"]
            att_txt = f", attainment {att:.1%}" if att is not None else ""
            ax.axvline(slo["threshold_s"], color="0.3", ls="--", lw=1,
                       label=f"SLO: {slo['metric'].upper()} ≤ {slo['threshold_s']:g} s{att_txt}")  # fmt: skip
        for q in (0.5, 0.95, 0.99):
            ax.axhline(q, color="0.85", lw=0.8, zorder=0)
        ax.legend(loc="lower right", fontsize=8.5)
    else:
        _empty(ax, "no completed requests")
    ax.set_ylim(0, 1.01)
    ax.set_xlabel("latency (s, log scale)")
    ax.set_ylabel("fraction of requests ≤ latency")
    n = int(result.summary["requests"]["completed"]) if from_summary else int(done.sum())
    how = "; summary percentiles" if from_summary else ""
    ax.set_title(f"Latency CDF ({n:,} completed requests after warm-up{how})")
    ax.grid(True, which="major", alpha=0.3)
    return _save(fig, path)


MAX_BARS = 600  # more bars than pixels only slows matplotlib down (minutes for a 14-day run)


def _coarsen(q: pd.DataFrame, max_rows: int) -> pd.DataFrame:
    """Merge consecutive queue samples into at most ``max_rows``: arrivals summed, queue
    length and running requests at their peak within each merged interval."""
    if len(q) <= max_rows:
        return q
    k = -(-len(q) // max_rows)
    group = np.arange(len(q)) // k
    return q.groupby(group).agg(
        time_s=("time_s", "last"), queue_len=("queue_len", "max"),
        running=("running", "max"), arrivals=("arrivals", "sum"),
    )


def plot_workers_queue(result: Result, path: Path) -> Path:
    """Workers (total and ready) over time above the gateway queue, with arrivals per interval."""
    horizon = float(result.summary["sim"]["horizon_s"])
    div, unit = time_unit(horizon)
    fig, (ax_w, ax_q) = _figure(9.0, 6.0, rows=2)

    tl = result.timeline
    if len(tl):
        for col, label, color, lw in (
            ("workers_total", "workers (requested … ready)", "#2ca02c", 2.0),
            ("workers_ready", "workers ready", "#1f77b4", 1.4),
        ):
            starts, dur, vals = step_segments(tl["time_s"].to_numpy(), tl[col].to_numpy(), horizon)
            keep = dur > 0
            bx, by = bucket_peaks(starts[keep], vals[keep], horizon)
            xs = np.append(bx, horizon) / div
            ys = np.append(by, by[-1] if by.size else 0)
            ax_w.step(xs, ys, where="post", label=label, color=color, lw=lw)
        ax_w.set_ylim(bottom=0)
        ax_w.yaxis.set_major_locator(MaxNLocator(integer=True))
    else:
        _empty(ax_w, "no worker timeline")
    dec = result.decisions
    for action, marker, color in (
        ("scale_up", "^", "#2ca02c"), ("scale_down", "v", "#d62728"), ("replace", "D", "#8c564b"),
    ):  # fmt: skip
        sel = dec[(dec["action"] == action) & (dec["delta"] != 0)]
        if len(sel) > MAX_POINTS:  # markers beyond this overlap anyway; keep an even spread
            sel = sel.iloc[np.linspace(0, len(sel) - 1, MAX_POINTS).astype(int)]
        if len(sel):
            ax_w.scatter(sel["time_s"] / div, sel["workers"] + sel["delta"], marker=marker, color=color,
                         s=36, zorder=3, label=action.replace("_", " "))  # fmt: skip
    ax_w.set_ylabel("workers")
    fig.suptitle("Worker pool and gateway queue over time")
    ax_w.grid(True, alpha=0.3)
    _legend_above(ax_w)

    q = _coarsen(result.queue, MAX_BARS)
    if len(q):
        t = q["time_s"].to_numpy() / div
        ax_a = ax_q.twinx()
        width = float(np.median(np.diff(t))) if len(t) > 1 else 1.0
        # Arrivals are counted since the previous sample, so each bar ends at its sample time.
        ax_a.bar(t, q["arrivals"], width=-width, align="edge", color="0.75", alpha=0.6,
                 label=f"arrivals per {width * div:g} s")  # fmt: skip
        ax_a.set_ylabel(f"arrivals per {width * div:g} s")
        ax_a.set_ylim(bottom=0)
        ax_q.set_zorder(ax_a.get_zorder() + 1)
        ax_q.patch.set_visible(False)
        # Samples are values at the tick instants (not held between them): draw them as lines.
        ax_q.plot(t, q["queue_len"], color="#d62728", lw=1.5, label="queue length")
        ax_q.plot(t, q["running"], color="#9467bd", lw=1.0, alpha=0.8, label="requests running")
        ax_q.set_ylim(bottom=0)
        ax_q.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax_a.yaxis.set_major_locator(MaxNLocator(integer=True))
        handles = ax_q.get_legend_handles_labels()
        handles_a = ax_a.get_legend_handles_labels()
        _legend_above(ax_q, handles[0] + handles_a[0], handles[1] + handles_a[1])
    else:
        _empty(ax_q, "no queue samples")
    warmup = float(result.summary["sim"].get("warmup_s") or 0.0)
    if warmup > 0:
        for ax in (ax_w, ax_q):
            ax.axvspan(0, min(warmup, horizon) / div, color="0.9", zorder=0)
        ax_w.text(min(warmup, horizon) / div / 2, 0.02, "warm-up", transform=ax_w.get_xaxis_transform(),
                  ha="center", va="bottom", fontsize=8, color="0.4")  # fmt: skip
    ax_q.set_ylabel("requests")
    ax_q.set_xlabel(f"time ({unit})")
    ax_q.set_xlim(0, horizon / div if horizon > 0 else 1)
    ax_q.grid(True, alpha=0.3)
    return _save(fig, path)


def cumulative_cost(
    time_s: np.ndarray, rate_usd_per_h: np.ndarray, horizon_s: float
) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative cost (USD) at each change point of a held cost-rate series, ending at the horizon."""
    starts, dur, vals = step_segments(time_s, rate_usd_per_h, horizon_s)
    cum = np.concatenate(([0.0], np.cumsum(dur * vals / 3600.0)))
    return np.append(starts, horizon_s), cum


def plot_cost(result: Result, path: Path) -> Path:
    """Cumulative cost over time from the timeline's cost rate, above the cost rate itself."""
    horizon = float(result.summary["sim"]["horizon_s"])
    div, unit = time_unit(horizon)
    fig, (ax, ax_r) = _figure(8.0, 5.6, rows=2, height_ratios=(2.0, 1.0))
    tl = result.timeline
    cost = result.summary["cost"]
    if len(tl):
        times = tl["time_s"].to_numpy()
        rate = tl["cost_rate_usd_per_h"].to_numpy()
        t, cum = cumulative_cost(times, rate, horizon)
        if t.size > MAX_POINTS:  # the integral is linear between change points: sample it
            grid = np.linspace(0.0, horizon, MAX_POINTS)
            t, cum = grid, np.interp(grid, t, cum)
        ax.plot(t / div, cum, color="#1f77b4", lw=2, label="cumulative cost (integrated cost rate)")
        total = cost.get("total_usd")
        if total is not None and np.isfinite(total):  # null when a billing figure is not finite
            ax.axhline(total, color="0.35", ls=":", lw=1.2,
                       label=f"billed total ${total:,.2f} (incl. billing granularity)")  # fmt: skip
        starts, dur, vals = step_segments(times, rate, horizon)
        keep = dur > 0
        if keep.any():
            bx, by = bucket_peaks(starts[keep], vals[keep], horizon)
            ax_r.step(np.append(bx, horizon) / div, np.append(by, by[-1]),
                      where="post", color="#ff7f0e", lw=1.5)  # fmt: skip
        _legend_above(ax)
    else:
        _empty(ax, "no cost timeline")
    per_hour = cost["per_hour_usd"]
    fig.suptitle("Cost over time" + (f" (mean ${per_hour:,.2f}/h)" if per_hour is not None else ""))
    ax.set_ylabel("cumulative cost (USD)")
    ax_r.set_ylabel("cost rate (USD/h)")
    ax_r.set_xlabel(f"time ({unit})")
    ax_r.set_xlim(0, horizon / div if horizon > 0 else 1)
    for a in (ax, ax_r):
        a.set_ylim(bottom=0)
        a.grid(True, alpha=0.3)
    return _save(fig, path)


def write_plots(result: Result, out_dir: str | Path) -> dict[str, Path]:
    """Write latency_cdf.png, workers_queue.png and cost.png into ``out_dir``; return their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return {
        "latency_cdf": plot_latency_cdf(result, out / "latency_cdf.png"),
        "workers_queue": plot_workers_queue(result, out / "workers_queue.png"),
        "cost": plot_cost(result, out / "cost.png"),
    }
