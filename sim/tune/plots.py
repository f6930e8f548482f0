"""Plots and markdown of sweeps and tunes: cost vs latency with the Pareto front, knob heatmaps.

Only called when results are written (never per evaluation). matplotlib with the Agg backend.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from sim.tune.metrics import COST, Constraint, pareto_mask

#: Distinct values above which a numeric knob is binned for a heatmap.
MAX_LEVELS = 8
BINS = 6


def _plt() -> object:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def feasible_mask(means: pd.DataFrame, constraints: Sequence[Constraint]) -> np.ndarray:
    """Points (rows of ``means``) whose mean figures meet every constraint."""
    ok = np.ones(len(means), dtype=bool)
    for c in constraints:
        if c.figure not in means.columns:
            return np.zeros(len(means), dtype=bool)
        vals = means[c.figure].to_numpy(dtype=float)
        ok &= np.array([c.met(v) for v in vals])
    return ok


def plot_pareto(means: pd.DataFrame, latency: str, path: Path,
                constraints: Sequence[Constraint] = (), title: str = "",
                cost: str = COST) -> Path:
    """``cost`` (per hour) vs ``latency`` for every point, feasible ones filled, the front drawn."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.5))  # type: ignore[attr-defined]
    cost_name = cost
    costs = means[cost_name].to_numpy(dtype=float)
    lat = means[latency].to_numpy(dtype=float)
    feas = feasible_mask(means, constraints)
    ax.scatter(lat[~feas], costs[~feas], s=18, facecolors="none", edgecolors="tab:gray",
               label="misses a constraint" if constraints else "point")
    ax.scatter(lat[feas], costs[feas], s=18, color="tab:blue", label="meets the constraints")
    front = pareto_mask(costs, lat)
    order = np.argsort(lat[front])
    ax.step(lat[front][order], costs[front][order], where="post", color="tab:red", lw=1.2,
            label="Pareto front")
    for c in constraints:
        if c.figure == latency:
            ax.axvline(c.bound, color="tab:green", ls="--", lw=1, label=str(c))
    ax.set_xlabel(latency + " (s)" if latency.split(".")[0].endswith("_s") else latency)
    ax.set_ylabel("cost per hour (USD)" if cost_name == COST else cost_name)
    finite = lat[np.isfinite(lat) & (lat > 0)]
    if len(finite) and finite.max() / finite.min() > 20:  # latencies spanning decades
        ax.set_xscale("log")
    ax.set_title(title or f"cost vs {latency}, mean over seeds")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)  # type: ignore[attr-defined]
    return path


def _levels(series: pd.Series) -> pd.Series:
    """Heatmap levels of a knob: its values when few, else equal-width bins."""
    values = series.dropna().unique()
    if len(values) <= MAX_LEVELS or not pd.api.types.is_numeric_dtype(series):
        return series.astype(str) if not pd.api.types.is_numeric_dtype(series) else series
    return pd.cut(series.astype(float), BINS, precision=2)


def _short(name: str) -> str:
    return name.rsplit(".", 1)[-1]


def plot_heatmaps(means: pd.DataFrame, knobs: Sequence[str], out: Path,
                  figure: str = COST) -> list[Path]:
    """One heatmap per pair of knobs: the mean of ``figure`` over the points in each cell."""
    plt = _plt()
    paths = []
    for a, b in itertools.combinations(knobs, 2):
        frame = pd.DataFrame({"a": _levels(means[a]), "b": _levels(means[b]),
                              "v": means[figure].astype(float)})
        pivot = frame.pivot_table(index="a", columns="b", values="v", aggfunc="mean",
                                  observed=False)
        if pivot.empty:
            continue
        fig, ax = plt.subplots(figsize=(1.2 + 0.9 * pivot.shape[1], 1.2 + 0.5 * pivot.shape[0]))  # type: ignore[attr-defined]
        im = ax.imshow(pivot.to_numpy(dtype=float), aspect="auto", cmap="viridis", origin="lower")
        ax.set_xticks(range(pivot.shape[1]), [str(x) for x in pivot.columns], rotation=45,
                      ha="right", fontsize=7)
        ax.set_yticks(range(pivot.shape[0]), [str(y) for y in pivot.index], fontsize=7)
        for (i, j), v in np.ndenumerate(pivot.to_numpy(dtype=float)):
            if np.isfinite(v):
                ax.text(j, i, f"{v:.3g}", ha="center", va="center", fontsize=7, color="white")
        ax.set_xlabel(_short(b))
        ax.set_ylabel(_short(a))
        ax.set_title(f"mean {figure}", fontsize=9)
        fig.colorbar(im, ax=ax)
        fig.tight_layout()
        name = re.sub(r"[^A-Za-z0-9_]+", "_", f"heatmap_{_short(a)}__{_short(b)}") + ".png"
        fig.savefig(out / name, dpi=100)
        plt.close(fig)  # type: ignore[attr-defined]
        paths.append(out / name)
    return paths


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return "n/a" if not np.isfinite(v) else f"{v:.4g}"
    return str(v)


def markdown_table(frame: pd.DataFrame, columns: Sequence[str]) -> str:
    """A GitHub markdown table of ``columns`` (short headers for dotted names)."""
    cols = [c for c in columns if c in frame.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, row in frame.iterrows():
        lines.append("| " + " | ".join(_fmt(row[c]) for c in cols) + " |")
    return "\n".join(lines)
