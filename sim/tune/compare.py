"""``sim compare``: configurations side by side on common random numbers.

Every configuration runs on the same seeds, so each seed's runs see the same arrivals, token
lengths and cold-start draws (:mod:`sim.rng`). The table shows each figure's mean and 95%
interval per configuration and, for every configuration after the first, the paired
difference to the first (per-seed differences, then their mean and t-interval) — much tighter
than the difference of two independent means.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sim.errors import ConfigError
from sim.executor import Runner, SimTask, run_sim_task
from sim.metrics.stats import mean_ci95
from sim.tune.metrics import flatten

#: Rows of the comparison: (label, figure).
FIGURES: tuple[tuple[str, str], ...] = (
    ("cost per hour (USD)", "cost.per_hour_usd"),
    ("cost per 1M output tokens (USD)", "cost.per_1m_output_tokens_usd"),
    ("TTFT p50 (s)", "ttft_s.p50"),
    ("TTFT p95 (s)", "ttft_s.p95"),
    ("TTFT p99 (s)", "ttft_s.p99"),
    ("E2E p50 (s)", "latency_e2e_s.p50"),
    ("E2E p95 (s)", "latency_e2e_s.p95"),
    ("E2E p99 (s)", "latency_e2e_s.p99"),
    ("SLO attainment", "slo.attainment"),
    ("cold starts", "workers.cold_starts"),
    ("failed requests", "requests.failed"),
    ("workers mean", "workers.mean"),
)


def parse_vary(text: str) -> tuple[str, list[Any]]:
    """``"dotted.path=v1,v2,..."`` -> (path, values parsed as YAML scalars); two values at least."""
    import yaml

    path, eq, raw = str(text).partition("=")
    path = path.strip()
    if not eq or not path or not raw.strip():
        raise ConfigError(f"expected dotted.path=v1,v2,..., got {text!r}", source="--vary")
    values = []
    for item in raw.split(","):
        try:
            values.append(yaml.safe_load(item.strip()))
        except yaml.YAMLError:
            raise ConfigError(f"cannot parse {item.strip()!r} as a value", source="--vary",
                              field=path) from None
    if len(values) < 2:
        raise ConfigError("expected two or more values to compare, e.g. path=60,300",
                          source="--vary", field=path)
    return path, values


@dataclass(frozen=True)
class Config:
    """One column: a label, a resolved scenario mapping, its base folder and source."""

    label: str
    data: Mapping[str, Any]
    base_dir: str
    source: str
    overrides: tuple[tuple[str, Any], ...] = ()


@dataclass
class Comparison:
    """Per-config, per-seed figures; the first seed's full results (for the overlay plot)."""

    labels: list[str]
    seeds: list[int]
    figures: list[list[dict[str, float | None]]]  # [config][seed]
    errors: list[str | None]
    first: list[Any]  # Result of the first seed per config (None if it failed)

    def table(self) -> pd.DataFrame:
        """Long table: config, figure, mean, CI, paired difference to the first config and its CI."""
        rows = []
        for i, label in enumerate(self.labels):
            for name, fig in FIGURES:
                vals = _values(self.figures[i], fig)
                ci = mean_ci95(vals) if vals is not None else mean_ci95([])
                row: dict[str, Any] = {"config": label, "figure": fig, "label": name,
                                       "mean": ci["mean"], "ci95_low": ci["ci95_low"],
                                       "ci95_high": ci["ci95_high"], "half_width": ci["half_width"]}
                base = _values(self.figures[0], fig)
                if i > 0 and vals is not None and base is not None:
                    d = mean_ci95([a - b for a, b in zip(vals, base, strict=True)])
                    row.update(diff=d["mean"], diff_low=d["ci95_low"], diff_high=d["ci95_high"],
                               diff_half_width=d["half_width"])
                rows.append(row)
        return pd.DataFrame(rows)


def _values(runs: Sequence[dict[str, float | None]], fig: str) -> list[float] | None:
    if not runs:
        return None
    vals = [r.get(fig) for r in runs]
    if any(v is None or not math.isfinite(v) for v in vals):
        return None
    return [float(v) for v in vals]  # type: ignore[arg-type]


def run_compare(
    configs: Sequence[Config],
    seeds: Sequence[int],
    runner: Runner,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> Comparison:
    """Run every config on every seed (the first seed keeping its full result for the plot)."""
    seeds = [int(s) for s in seeds]
    tasks = [
        SimTask(dict(c.data), s, c.overrides, c.base_dir, source=c.source,
                keep="result" if j == 0 else "summary")
        for c in configs for j, s in enumerate(seeds)
    ]
    done = 0

    def tick(i: int, out: Any) -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, len(tasks))

    outs = runner.map(run_sim_task, tasks, batch=1, on_result=tick)
    figures: list[list[dict[str, float | None]]] = []
    errors: list[str | None] = []
    first: list[Any] = []
    n = len(seeds)
    for i in range(len(configs)):
        chunk = outs[i * n:(i + 1) * n]
        bad = next((o.error for o in chunk if not o.ok), None)
        errors.append(bad)
        first.append(chunk[0].value if chunk[0].ok else None)
        if bad is not None:
            figures.append([])
            continue
        figures.append([flatten(o.value.summary if j == 0 else o.value)  # type: ignore[union-attr,arg-type]
                        for j, o in enumerate(chunk)])
    return Comparison([c.label for c in configs], seeds, figures, errors, first)


def _cell(mean: Any, half: Any) -> str:
    if mean is None or (isinstance(mean, float) and not math.isfinite(mean)):
        return "n/a"
    text = f"{mean:.4g}"
    if half is not None and isinstance(half, float) and math.isfinite(half):
        text += f" ± {half:.2g}"
    return text


def format_markdown(cmp: Comparison) -> str:
    """Markdown: one row per figure, one column per config; later columns add Δ vs the first."""
    t = cmp.table()
    head = ["figure", *cmp.labels]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, fig in FIGURES:
        cells = [name]
        for i, label in enumerate(cmp.labels):
            if cmp.errors[i]:
                cells.append("failed")
                continue
            r = t[(t["config"] == label) & (t["figure"] == fig)].iloc[0]
            cell = _cell(r["mean"], r["half_width"])
            if i > 0 and "diff" in r and r["diff"] is not None and not pd.isna(r["diff"]):
                cell += f" (Δ {r['diff']:+.3g} ± {r['diff_half_width']:.2g})" \
                    if r["diff_half_width"] is not None and not pd.isna(r["diff_half_width"]) \
                    else f" (Δ {r['diff']:+.3g})"
            cells.append(cell)
        lines.append("| " + " | ".join(cells) + " |")
    notes = [f"- {label}: failed: {err}" for label, err in zip(cmp.labels, cmp.errors, strict=True)
             if err]
    return "\n".join(lines + ([""] + notes if notes else []))


def plot_overlay(cmp: Comparison, path: Path, metric: str = "ttft_s") -> Path:
    """Latency CDFs (first seed) and workers over time of every config, overlaid."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, (ax_c, ax_w) = plt.subplots(1, 2, figsize=(11, 4.2))
    for label, res in zip(cmp.labels, cmp.first, strict=True):
        if res is None:
            continue
        req = res.requests
        vals = np.sort(req.loc[req["status"] == "completed", metric].dropna().to_numpy(float))
        if len(vals):
            ax_c.plot(vals, np.arange(1, len(vals) + 1) / len(vals), label=label, lw=1.4)
        tl = res.timeline
        if len(tl):
            ax_w.step(tl["time_s"] / 60.0, tl["workers_total"], where="post", label=label, lw=1.2)
    ax_c.set_xscale("log")
    ax_c.set_xlabel(f"{metric.removesuffix('_s').upper()} (s)")
    ax_c.set_ylabel("share of completed requests")
    ax_c.set_title(f"latency CDF, seed {cmp.seeds[0]}")
    ax_w.set_xlabel("time (min)")
    ax_w.set_ylabel("workers (requested … ready)")
    ax_w.set_title(f"workers over time, seed {cmp.seeds[0]}")
    for ax in (ax_c, ax_w):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
