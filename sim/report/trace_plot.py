"""PNG of a workload: arrival rate over time and the prompt/output token histograms."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from sim.report.plots import _save, time_unit
from sim.workload.stats import rate_series


def plot_trace(workload: Any, path: str | Path, bin_s: float = 60.0) -> Path:
    """Write ``path``: requests per second in ``bin_s`` windows, and log-scale token histograms."""
    fig = Figure(figsize=(9.0, 6.0), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(2, 2, height_ratios=(1.2, 1.0))
    ax_rate = fig.add_subplot(grid[0, :])
    series = rate_series(workload, bin_s)
    scale, unit = time_unit(float(workload.duration_s))
    ax_rate.step(series.start_s / scale, series.rate_per_s, where="post", color="#1f77b4", lw=1)
    ax_rate.set_xlabel(f"time ({unit})")
    ax_rate.set_ylabel(f"requests/s ({bin_s:g} s bins)")
    ax_rate.set_title(f"{workload.source}: {len(workload):,} requests")
    ax_rate.grid(alpha=0.3)
    for col, (name, values) in enumerate(
        (("prompt tokens", workload.prompt_tokens), ("output tokens", workload.output_tokens))
    ):
        ax = fig.add_subplot(grid[1, col])
        v = np.asarray(values)
        v = v[v > 0]
        if v.size:
            bins = np.logspace(0, np.log10(max(v.max(), 2)), 40).tolist()
            ax.hist(v, bins=bins, color="#ff7f0e" if col else "#2ca02c", alpha=0.85)
            ax.set_xscale("log")
            ax.axvline(float(np.median(v)), color="0.2", ls="--", lw=1, label=f"median {np.median(v):,.0f}")
            ax.legend(fontsize=8, frameon=False)
        ax.set_xlabel(name)
        ax.set_ylabel("requests")
        ax.grid(alpha=0.3)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    return _save(fig, out)

