"""Sensitivity of a scenario's answer to the semantic switches the vendor leaves open (DESIGN §4).

:func:`sensitivity` runs the scenario as given (the baseline) and one variant per alternative
value of each switch — ``autoscaler.timeout_semantics``, ``metric``, ``statistic``,
``count_waiting``, ``serving.mode`` (when cheap), cold-start times ×0.5/×2 and, when spot is
allowed, the mean time to preemption ×0.5/×2 — under the same seeds. Seeds drive named
random streams (:mod:`sim.rng`), so every variant sees the same arrivals, token lengths and
cold-start draws (common random numbers): the per-seed difference variant − baseline removes
most of the seed-to-seed noise, and its 95% t-interval says whether a switch matters.

The SLO is pinned to the baseline's metric and threshold in every variant, so that switching
the autoscaler's metric changes how it scales, not what SLO attainment measures.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from sim.errors import ConfigError
from sim.executor import Runner
from sim.metrics.stats import mean_ci95
from sim.replicate import replicate
from sim.scenario import Scenario, resolved_dict, scenario_from_dict

#: Outcome figures compared across variants: column stem -> path in the run summary.
METRICS: dict[str, tuple[str, str]] = {
    "cost_per_hour_usd": ("cost", "per_hour_usd"),
    "e2e_p95_s": ("latency_e2e_s", "p95"),
    "ttft_p95_s": ("ttft_s", "p95"),
    "slo_attainment": ("slo", "attainment"),
}

#: Values of the categorical switches of DESIGN §4 (the baseline's own value is skipped).
CATEGORICAL_SWITCHES: dict[str, tuple[Any, ...]] = {
    "autoscaler.timeout_semantics": ("cooldown", "sustained", "stabilization"),
    "autoscaler.metric": ("ttft", "e2e", "queue"),
    "autoscaler.statistic": ("mean", "p50", "p90", "p95", "p99"),
    "autoscaler.count_waiting": (False, True),
}

#: Pseudo-switches that scale a group of world-model settings by a factor.
COLD_START = "fleet.cold_start"
SPOT_PREEMPTION = "fleet.spot.preemption.mean_time_to_preemption_s"
SCALE_FACTORS: tuple[float, ...] = (0.5, 2.0)

#: ``serving.mode: exact`` runs an event per iteration; it is included by default only when
#: the estimated extra time (this many times the baseline's wall time per seed) stays below
#: EXACT_BUDGET_S.
EXACT_SLOWDOWN = 6.0
EXACT_BUDGET_S = 60.0

BASELINE = "baseline"


@dataclass(frozen=True)
class Variant:
    """One alternative reading: a switch, the value shown for it, and the overrides that make it."""

    switch: str
    value: str
    overrides: Mapping[str, Any] = field(default_factory=dict)


def _get(data: Mapping[str, Any], dotted: str) -> Any:
    node: Any = data
    for part in dotted.split("."):
        node = node[part]
    return node


def _label(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"x{value:g}"
    return str(value)


def _cold_start_overrides(base: Mapping[str, Any], factor: float) -> dict[str, Any]:
    """Overrides that multiply every cold-start stage (fresh and warm-pool) by ``factor``."""
    out: dict[str, Any] = {}
    for prefix in ("fleet.cold_start", "fleet.cold_start.warm_pool"):
        node = _get(base, prefix)
        for stage in ("provision_s", "image_pull_s", "engine_start_s"):
            out[f"{prefix}.{stage}.median"] = float(node[stage]["median"]) * factor
        # Download time is weights / bandwidth: a longer stage means a lower bandwidth.
        out[f"{prefix}.weight_download_gb_per_s"] = float(node["weight_download_gb_per_s"]) / factor
    return out


def _spot_applies(base: Mapping[str, Any]) -> bool:
    """Preemption scaling matters only with spot allowed and the hazard model in use."""
    return bool(base["deployment"].get("allow_spot_instances")) and (
        base["fleet"]["spot"]["preemption"]["kind"] == "hazard")


def _factor_variant(base: Mapping[str, Any], switch: str, factor: float) -> Variant:
    if switch == COLD_START:
        return Variant(switch, _label(float(factor)), _cold_start_overrides(base, float(factor)))
    current = float(_get(base, SPOT_PREEMPTION))
    return Variant(switch, _label(float(factor)), {SPOT_PREEMPTION: current * float(factor)})


def _effective(scenario: Scenario, switch: str) -> Any:
    """The baseline's value of a categorical switch, with ``auto`` resolved."""
    if switch == "autoscaler.metric":
        return scenario.metric()
    return _get(resolved_dict(scenario), switch)


def default_variants(scenario: Scenario, *, include_exact: bool = False) -> list[Variant]:
    """One variant per alternative value of each DESIGN §4 switch that applies to ``scenario``."""
    base = resolved_dict(scenario)
    out: list[Variant] = []
    for switch, values in CATEGORICAL_SWITCHES.items():
        current = _effective(scenario, switch)
        out += [Variant(switch, _label(v), {switch: v}) for v in values if v != current]
    if include_exact and scenario.serving_kind() == "llm" and scenario.serving.mode != "exact":
        out.append(Variant("serving.mode", "exact", {"serving.mode": "exact"}))
    out += [_factor_variant(base, COLD_START, f) for f in SCALE_FACTORS]
    if _spot_applies(base):
        out += [_factor_variant(base, SPOT_PREEMPTION, f) for f in SCALE_FACTORS]
    return out


def variants_from_switches(scenario: Scenario,
                           switches: Mapping[str, Sequence[Any]]) -> list[Variant]:
    """Variants for explicit ``{switch: values}``; the baseline's own value is kept (a null check).

    Keys are dotted scenario paths set to each value, or :data:`COLD_START` /
    :data:`SPOT_PREEMPTION`, whose values are factors applied to the baseline's settings.
    """
    base = resolved_dict(scenario)
    out: list[Variant] = []
    for switch, values in switches.items():
        for v in values:
            if switch in (COLD_START, SPOT_PREEMPTION):
                if isinstance(v, bool) or not isinstance(v, int | float) or not v > 0:
                    raise ConfigError(f"{switch} takes positive factors, got {v!r}",
                                      field=switch)
                out.append(_factor_variant(base, switch, float(v)))
            else:
                out.append(Variant(switch, _label(v), {switch: v}))
    return out


def _pinned_base(scenario: Scenario) -> dict[str, Any]:
    """The resolved scenario with the SLO metric and threshold fixed to the baseline's."""
    base = resolved_dict(scenario)
    base["sim"]["slo"] = {"metric": scenario.slo_metric(), "threshold_s": scenario.slo_threshold_s()}
    return base


def _build(base: Mapping[str, Any], scenario: Scenario, variant: Variant) -> Scenario:
    return scenario_from_dict(base, source=f"{scenario.source or scenario.name} [{variant.switch}"
                              f"={variant.value}]", base_dir=scenario.base_dir,
                              overrides=dict(variant.overrides))


def _value(summary: Mapping[str, Any], path: tuple[str, str]) -> float:
    v = summary.get(path[0], {}).get(path[1])
    return math.nan if v is None else float(v)


def _row(variant: Variant, runs: list[dict[str, Any]],
         baseline: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean of each figure and its paired difference from the baseline, with a 95% CI."""
    row: dict[str, Any] = {"switch": variant.switch, "value": variant.value, "runs": len(runs)}
    for stem, path in METRICS.items():
        mine = [_value(s, path) for s in runs]
        base = [_value(s, path) for s in baseline]
        pairs = [(m, b) for m, b in zip(mine, base, strict=True)
                 if math.isfinite(m) and math.isfinite(b)]
        level = mean_ci95([m for m in mine if math.isfinite(m)])
        diff = mean_ci95([m - b for m, b in pairs])
        mean_d, half = diff["mean"], diff["half_width"]
        row[stem] = math.nan if level["mean"] is None else level["mean"]
        row[f"{stem}_diff"] = math.nan if mean_d is None else mean_d
        # One seed gives a difference but no interval (n - 1 = 0 degrees of freedom).
        row[f"{stem}_diff_lo"] = math.nan if half is None or mean_d is None else mean_d - half
        row[f"{stem}_diff_hi"] = math.nan if half is None or mean_d is None else mean_d + half
    return row


def sensitivity(scenario: Scenario, *, seeds: Sequence[int] = (1, 2, 3),
                switches: Mapping[str, Sequence[Any]] | None = None, workers: int = 1,
                executor: Executor | None = None, include_exact: bool | None = None,
                progress: Callable[[int, int], None] | None = None) -> pd.DataFrame:
    """Baseline and one row per switch variant: figure means and paired differences with 95% CIs.

    ``switches`` replaces the default set (:func:`default_variants`) by explicit values
    (:func:`variants_from_switches`). ``include_exact`` adds ``serving.mode: exact``; by
    default it is added when the estimate of its run time is small. ``progress(done, total)``
    is called after each configuration (baseline or variant) has run all its seeds. Rows:
    the baseline first, then the variants by decreasing absolute change of cost per hour.
    """
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ConfigError("sensitivity needs at least one seed", source="--seeds")
    base = _pinned_base(scenario)
    baseline_scenario = _build(base, scenario, Variant(BASELINE, BASELINE))
    with Runner(workers, executor=executor) as runner:
        def run(s: Scenario) -> list[dict[str, Any]]:
            return [r.summary for r in replicate(s, seeds, runner=runner)]

        baseline = run(baseline_scenario)
        if switches is not None:
            variants = variants_from_switches(scenario, switches)
        else:
            if include_exact is None:
                wall = sum(float(s["sim"]["wall_s"]) for s in baseline)
                include_exact = wall * EXACT_SLOWDOWN <= EXACT_BUDGET_S
            variants = default_variants(scenario, include_exact=include_exact)
        rows = [_row(Variant(BASELINE, BASELINE), baseline, baseline)]
        if progress is not None:
            progress(1, 1 + len(variants))
        for i, v in enumerate(variants, 2):
            rows.append(_row(v, run(_build(base, scenario, v)), baseline))
            if progress is not None:
                progress(i, 1 + len(variants))
    df = pd.DataFrame(rows)
    order = df["cost_per_hour_usd_diff"].abs().fillna(-1.0)
    order.iloc[0] = math.inf  # the baseline stays on top
    return df.loc[order.sort_values(ascending=False, kind="stable").index].reset_index(drop=True)


def format_table(df: pd.DataFrame) -> str:
    """The sensitivity table as aligned text: each figure's mean and Δ vs baseline ± CI half-width."""

    def cell(row: pd.Series, stem: str, scale: float, digits: int) -> str:
        mean, d = row[stem] * scale, row[f"{stem}_diff"] * scale
        lo, hi = row[f"{stem}_diff_lo"] * scale, row[f"{stem}_diff_hi"] * scale
        if not math.isfinite(mean):
            return "n/a"
        if row["switch"] == BASELINE:
            return f"{mean:.{digits}f}"
        if not math.isfinite(lo):  # one seed: a difference but no interval
            return f"{mean:.{digits}f} ({d:+.{digits}f})"
        return f"{mean:.{digits}f} ({d:+.{digits}f} ± {(hi - lo) / 2:.{digits}f})"

    heads = ("variant", "cost $/h", "E2E p95 s", "TTFT p95 s", "SLO attain. %")
    body = []
    for _, row in df.iterrows():
        name = BASELINE if row["switch"] == BASELINE else f"{row['switch']}={row['value']}"
        body.append((name, cell(row, "cost_per_hour_usd", 1, 2), cell(row, "e2e_p95_s", 1, 2),
                     cell(row, "ttft_p95_s", 1, 2), cell(row, "slo_attainment", 100, 1)))
    widths = [max(len(r[i]) for r in (heads, *body)) for i in range(len(heads))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(heads, widths, strict=True))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in body]
    return "\n".join(lines)


def plot(df: pd.DataFrame, path: str | Path, title: str = "") -> Path:
    """Bar chart of each variant's paired change vs baseline (95% CI whiskers), one panel per figure."""
    import matplotlib

    matplotlib.use("Agg")  # files only: never open a window, work without a display
    import matplotlib.pyplot as plt

    rows = df[df["switch"] != BASELINE]
    labels = [f"{s}={v}".replace("autoscaler.", "").replace("fleet.spot.preemption.", "spot ")
              for s, v in zip(rows["switch"], rows["value"], strict=True)]
    panels = (("cost_per_hour_usd", "cost per hour (USD)", 1.0),
              ("e2e_p95_s", "E2E p95 (s)", 1.0), ("ttft_p95_s", "TTFT p95 (s)", 1.0),
              ("slo_attainment", "SLO attainment (pp)", 100.0))
    fig, axes = plt.subplots(1, len(panels), figsize=(16, 0.45 * max(len(rows), 4) + 1.6),
                             sharey=True)
    y = list(range(len(rows)))
    for ax, (stem, name, scale) in zip(axes, panels, strict=True):
        d = rows[f"{stem}_diff"].to_numpy() * scale
        lo = rows[f"{stem}_diff_lo"].to_numpy() * scale
        hi = rows[f"{stem}_diff_hi"].to_numpy() * scale
        err = [[max(0.0, x - a) if math.isfinite(a) else 0.0 for x, a in zip(d, lo, strict=True)],
               [max(0.0, b - x) if math.isfinite(b) else 0.0 for x, b in zip(d, hi, strict=True)]]
        colors = ["#c44e52" if x > 0 else "#4c72b0" for x in d]
        ax.barh(y, d, xerr=err, color=colors, capsize=3, ecolor="#333333")
        ax.axvline(0.0, color="black", linewidth=0.8)
        ax.set_title(f"Δ {name}", fontsize=10)
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(y, labels, fontsize=8)
    axes[0].invert_yaxis()  # largest cost change on top, as in the table
    fig.suptitle(title or "change vs baseline (mean of paired differences, 95% CI)", fontsize=11)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
