"""The combined report of replications (``sim run --seeds``): one ``report.md`` and
``report.html`` with the mean and 95% CI of each headline figure, one row per seed, and a
plot of the per-seed spread."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from sim.report.fmt import NA, count, pct, plus_minus, seconds, usd

#: (label, summary section, key, unit) of each figure in the replication table.
ROWS: tuple[tuple[str, str, str, str], ...] = (
    ("cost per hour", "cost", "per_hour_usd", "usd"),
    ("E2E latency p50", "latency_e2e_s", "p50", "seconds"),
    ("E2E latency p95", "latency_e2e_s", "p95", "seconds"),
    ("TTFT p95", "ttft_s", "p95", "seconds"),
    ("SLO attainment", "slo", "attainment", "pct"),
    ("workers mean", "workers", "mean", "count"),
    ("requests failed", "requests", "failed", "count"),
)
_UNIT = {"usd": usd, "seconds": seconds, "pct": pct, "count": count}


def replication_rows(agg: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, "mean ± 95% CI half-width") of each headline figure, formatted as in a single run."""
    out = []
    for label, section, key, unit in ROWS:
        leaf = (agg.get(section) or {}).get(key) or {}
        out.append((label, plus_minus(unit, leaf.get("mean"), leaf.get("half_width"))))
    return out


def replication_table(agg: dict[str, Any]) -> str:
    """The terminal table of ``sim run --seeds``."""
    lines = [f"{agg['replications']['n']} replications, mean ± 95% CI half-width"]
    lines += [f"{label:22s} {value}" for label, value in replication_rows(agg)]
    return "\n".join(lines)


def _plot(summaries: Sequence[dict[str, Any]], path: Path) -> Path:
    fig = Figure(figsize=(9.0, 3.2), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    picks = [ROWS[0], ROWS[2], ROWS[4]]
    axes = fig.subplots(1, len(picks))
    seeds = [s["sim"]["seed"] for s in summaries]
    for ax, (label, section, key, unit) in zip(axes, picks, strict=True):
        vals = [(s.get(section) or {}).get(key) for s in summaries]
        xs = [i for i, v in enumerate(vals) if v is not None]
        ys = [v * (100 if unit == "pct" else 1) for v in vals if v is not None]
        ax.plot(xs, ys, "o", color="#1f77b4")
        if ys:
            ax.axhline(sum(ys) / len(ys), color="0.4", ls="--", lw=1, label="mean")
        ax.set_title(label + {"usd": " ($/h)", "seconds": " (s)", "pct": " (%)"}.get(unit, ""),
                     fontsize=10)
        ax.set_xticks(range(len(seeds)), [str(s) for s in seeds], fontsize=7)
        ax.set_xlabel("seed")
        ax.grid(True, alpha=0.3)
    fig.suptitle("Each replication (one point per seed)")
    fig.savefig(path, dpi=110)
    return path


def render_replications_report(
    agg: dict[str, Any], summaries: Sequence[dict[str, Any]], name: str
) -> str:
    """Markdown of the combined report."""
    n = agg["replications"]["n"]
    lines = [f"# Replications report: {name}", "",
             f"{n} replications (seeds {', '.join(str(s) for s in agg['replications']['seeds'])}); "
             "each seed's files are in `seed-N/`, the aggregate in `replications.json`.", ""]  # fmt: skip
    warnings = agg.get("warnings") or []
    if warnings:
        lines += ["## Warnings", ""] + [f"- {w}" for w in warnings] + [""]
    lines += ["## Mean and 95% confidence interval", "", "| figure | mean ± 95% CI half-width |",
              "|---|---|"]  # fmt: skip
    lines += [f"| {label} | {value} |" for label, value in replication_rows(agg)]
    lines += ["", "![Each replication](replications.png)", "", "## Each seed", ""]
    header = ["seed"] + [label for label, *_ in ROWS]
    lines += ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for s in summaries:
        cells = [str(s["sim"]["seed"])]
        for _, section, key, unit in ROWS:
            v = (s.get(section) or {}).get(key)
            cells.append(NA if v is None else _UNIT[unit](v))
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "The interval is Student's t over the seeds (`replications.json` has every "
              "figure of the summary). Seeds share nothing but the scenario, so the spread is "
              "the run-to-run noise of the traffic, token lengths, cold starts and preemptions.", ""]  # fmt: skip
    return "\n".join(lines)


def write_replications_report(
    agg: dict[str, Any], summaries: Sequence[dict[str, Any]], out_dir: str | Path, name: str
) -> Path:
    """Write report.md, replications.png and report.html into ``out_dir``; return report.md."""
    from sim.report.html import write_html

    out = Path(out_dir)
    _plot(summaries, out / "replications.png")
    text = render_replications_report(agg, summaries, name)
    path = out / "report.md"
    path.write_text(text, encoding="utf-8")
    write_html(None, text, out, slo_target=0.0)
    return path
