"""``sim bench``: scenarios × policies × seeds through a process pool, into a leaderboard.

A suite names scenario files (with overrides that shorten them to the suite's size), the
policies to run (each at its source's documented defaults and control period) and the seeds.
Each (scenario, policy, seed) is one :func:`sim.simulate` run on common random numbers (the
same seed gives every policy the same arrivals). Per scenario the bench also computes the
capacity lower bound and the hindsight MILP (its cost, status and gap) for each seed.

The leaderboard has one row per (scenario, policy): means over seeds with 95 % intervals of
cost per hour, TTFT and E2E p50/p95/p99, SLO attainment, cold starts and preemptions, plus the
cost ratio to the hindsight replay and to the capacity bound.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from sim.bench.deficit import bucket_means, deficit
from sim.bench.tuned import slo_pins, tune_scalegen
from sim.executor import Runner
from sim.metrics.stats import mean_ci95
from sim.replicate import raise_failure

REPO = Path(__file__).resolve().parents[2]

#: Control-loop period per policy (s): each source's own (Knative tick-interval 2 s, HPA sync
#: period 15 s, Ray Serve metrics interval 10 s, SkyServe decision interval 20 s).
TICK_S = {"knative": 2.0, "hpa": 15.0, "keda": 15.0, "ray_serve": 10.0, "skyserve": 20.0}

BASELINES = ("scalegen", "knative", "hpa", "keda", "ray_serve", "skyserve", "sla_planner",
             "fixed_peak", "fixed_mean", "hindsight")
ORACLES = ("fixed_peak", "fixed_mean", "hindsight")

#: The small sweep behind each baseline's "tuned" row: its main target knob over three values
#: (the documented default among them); the cheapest setting with SLO attainment >= 0.9 on the
#: first seed wins (else the one with the best attainment) and then runs on every seed.
SWEEPS: dict[str, tuple[str, tuple[float, ...]]] = {
    "knative": ("container_concurrency_target", (10, 30, 100)),
    "hpa": ("target_value", (10, 30, 70)),
    "keda": ("target_value", (10, 30, 100)),
    "ray_serve": ("target_ongoing_requests", (2, 16, 64)),
    "skyserve": ("target_qps_per_replica", (1, 2.5, 5)),
    "sla_planner": ("itl_s", (0.02, 0.05, 0.1)),
}
ATTAINMENT_OK = 0.9
BUCKET_S = 60.0  # the hindsight MILP's time bucket (s)


@dataclass(frozen=True)
class BenchScenario:
    """One scenario of a suite: a file and the overrides that size it for the suite."""

    label: str
    path: str  # relative to the repository
    overrides: tuple[str, ...] = ()


@dataclass(frozen=True)
class Suite:
    """Scenarios × policies × seeds."""

    name: str
    scenarios: tuple[BenchScenario, ...]
    policies: tuple[str, ...] = BASELINES
    seeds: tuple[int, ...] = (1,)
    notes: tuple[str, ...] = field(default=())
    sweep: bool = False  # add each baseline's best setting from SWEEPS as "<policy> tuned"


SUITES: dict[str, Suite] = {
    "smoke": Suite(
        "smoke",
        (
            BenchScenario("bursty", "scenarios/bursty_mmpp.yaml", ("workload.duration_s=1800",)),
            BenchScenario("diurnal", "scenarios/quickstart.yaml", ("workload.duration_s=1800",)),
        ),
        seeds=(1,),
        notes=("CI-sized: 30 min of each scenario, one seed, no sweep.",),
    ),
    "default": Suite(
        "default",
        (
            BenchScenario("bursty_mmpp", "scenarios/bursty_mmpp.yaml", ("workload.duration_s=7200",)),
            BenchScenario("diurnal_s2z", "scenarios/diurnal_scale_to_zero.yaml",
                          ("workload.duration_s=21600", "workload.peak_at_s=21600")),
            BenchScenario("quickstart_diurnal", "scenarios/quickstart.yaml", ()),
            BenchScenario("llama2_70b", "scenarios/llama2_70b_4xa100_80gb.yaml", ()),
            BenchScenario("heterogeneous", "scenarios/heterogeneous_8b_cheapest.yaml", ()),
            BenchScenario("azure_conv", "scenarios/azure_conv_llama3_8b_a100.yaml", ()),
            BenchScenario("spot_70b_trace", "scenarios/spot_llama2_70b_gcp_a100.yaml",
                          ("workload.duration_s=21600",)),
            BenchScenario("spike", "scenarios/spike_llama3_8b_a100.yaml", ()),
            BenchScenario("scale_from_zero", "scenarios/scale_from_zero_llama3_8b.yaml", ()),
            BenchScenario("azure_code", "scenarios/azure_code_llama3_8b_a100.yaml", ()),
            BenchScenario("servegen_day_s2z", "scenarios/servegen_day_scale_to_zero.yaml", ()),
        ),
        seeds=(1, 2),
        sweep=True,
        notes=("Sized for a 2-core machine: 2 seeds; bursty_mmpp cut to 2 h; the diurnal "
               "scale-to-zero day cut to its 6 h rising quarter (night to peak); the spot "
               "capacity-trace scenario cut to its first 6 h. `scalegen tuned` is an 8-trial "
               "`sim tune` (NSGA-II) of the band, window, timeouts and floor on the first seed, "
               "fleet and SLO held fixed.",),
    ),
}


def _run(job: tuple[Any, int, str, str]) -> dict[str, Any]:
    """One run: its summary figures and its worker timeline (for the plots)."""
    from sim.run import simulate

    scenario, seed, label, policy = job
    r = simulate(scenario, seed)
    s = r.summary
    row = {
        "scenario": label, "policy": policy, "seed": seed,
        "cost_per_hour_usd": s["cost"]["per_hour_usd"],
        "cost_total_usd": s["cost"]["total_usd"],
        "ttft_p50_s": s["ttft_s"]["p50"], "ttft_p95_s": s["ttft_s"]["p95"],
        "ttft_p99_s": s["ttft_s"]["p99"],
        "e2e_p50_s": s["latency_e2e_s"]["p50"], "e2e_p95_s": s["latency_e2e_s"]["p95"],
        "e2e_p99_s": s["latency_e2e_s"]["p99"],
        "slo_attainment": s["slo"]["attainment"],
        "cold_starts": s["workers"]["cold_starts"], "preemptions": s["workers"]["preemptions"],
        "workers_max": s["workers"]["max"], "failed": s["requests"]["failed"],
        "horizon_s": s["sim"]["horizon_s"],
    }
    tl = r.timeline
    timeline = {"t": tl["time_s"].tolist(), "n": tl["workers_total"].tolist()} if len(tl) else {}
    ready = bucket_means(tl["time_s"].to_numpy(), tl["workers_ready"].to_numpy(), float(s["sim"]["horizon_s"]),
                         BUCKET_S)
    return {"row": row, "timeline": timeline, "ready": ready}


def _yardsticks(scenario: Any, seed: int, utilisations: dict[str, float]) -> dict[str, Any]:
    """The capacity bound and the hindsight MILP for one seed's trace."""
    from sim.bench.demand import bucket_demand
    from sim.bench.hindsight import capacity_bound, solve
    from sim.rng import Streams
    from sim.workload import build_workload

    wl = build_workload(scenario.workload, Streams(seed), scenario.base_dir)
    dem = bucket_demand(scenario, wl, BUCKET_S, utilisations=utilisations)
    sched = solve(scenario, wl, bucket_s=BUCKET_S, demand=dem)
    bound = capacity_bound(scenario, wl)
    return {"seed": seed, "bound_usd": bound["cost_usd"], "milp_usd": sched.cost_usd,
            "milp_status": sched.status, "milp_gap": sched.gap, "milp_wall_s": sched.wall_s,
            "milp_time_limit_s": sched.time_limit_s,
            "milp_shortfall": sched.shortfall_worker_buckets, "utilisation": dem.utilisation,
            "milp_kinds": " ".join(f"{k}({s})" for k, s in zip(sched.kinds, sched.shapes,
                                                                strict=True)),
            "utilisation_by_shape": _shape_text(utilisations), "need": dem.need}


def _shape_text(utilisations: dict[str, float]) -> str:
    """u* per shape as the oracles' ``utilisation_by_shape`` knob reads it."""
    return ",".join(f"{k}={v:.6f}" for k, v in utilisations.items())


Job = tuple[Any, int, str, str]  # (scenario, seed, scenario label, policy label)


def _load(bs: BenchScenario, policy: str, util: dict[str, float],
          params: dict[str, Any] | None = None, extra: Sequence[str] = ()) -> Any:
    """The suite's scenario under ``policy`` at its source's control period."""
    from sim.scenario import load_scenario

    sets = list(bs.overrides) + [f"autoscaler.policy={policy}"]
    if policy in TICK_S:
        sets.append(f"autoscaler.decision_interval_s={TICK_S[policy]:g}")
    if policy in ORACLES:
        sets.append(f"autoscaler.params.utilisation_by_shape={_shape_text(util)}")
    for k, v in (params or {}).items():
        sets.append(f"autoscaler.params.{k}={v}")
    return load_scenario(REPO / bs.path, sets + list(extra))


def build_jobs(suite: Suite, policies: Sequence[str] | None = None,
               ) -> tuple[list[Job], dict[str, Any]]:
    """The runs of a suite and, per scenario label, its base scenario and u* of each worker
    shape (measured once per scenario on the first seed's trace; the oracles share it)."""
    from sim.bench.demand import shape_utilisations
    from sim.rng import Streams
    from sim.scenario import load_scenario
    from sim.workload import build_workload

    jobs: list[Job] = []
    bases = {}
    for bs in suite.scenarios:
        base = load_scenario(REPO / bs.path, list(bs.overrides))
        wl = build_workload(base.workload, Streams(suite.seeds[0]), base.base_dir)
        util = shape_utilisations(base, wl)
        bases[bs.label] = (base, util, bs)
        for policy in policies or suite.policies:
            sc = _load(bs, policy, util)
            jobs.extend((sc, seed, bs.label, policy) for seed in suite.seeds)
    return jobs, bases


def _map(runner: Runner, jobs: Sequence[Job], tick: Callable[[], None],
         ) -> list[dict[str, Any]]:
    """Run ``jobs`` through the shared executor layer, in order; a failing run raises its
    error once the others have finished."""
    results = runner.map(_run, list(jobs), on_result=lambda _i, _out: tick())
    for out in results:
        raise_failure(out)
    return [out.value for out in results if out.value is not None]


def documented_default(policy: str, knob: str) -> float:
    """The documented default of a baseline's swept knob (its params dataclass field)."""
    import dataclasses

    from sim.policies.hpa import HpaParams, KedaParams
    from sim.policies.knative import KnativeParams
    from sim.policies.ray_serve import RayServeParams
    from sim.policies.skyserve import SkyServeParams
    from sim.policies.sla_planner import SlaPlannerParams

    cls = {"knative": KnativeParams, "hpa": HpaParams, "keda": KedaParams,
           "ray_serve": RayServeParams, "skyserve": SkyServeParams,
           "sla_planner": SlaPlannerParams}[policy]
    default: Any = {f.name: f for f in dataclasses.fields(cls)}[knob].default
    return float(default)


def _best(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The cheapest row meeting the attainment bar, else the one with the best attainment."""
    ok = [r for r in rows if (r["slo_attainment"] or 0) >= ATTAINMENT_OK]
    if ok:
        return min(ok, key=lambda r: r["cost_per_hour_usd"])
    return max(rows, key=lambda r: r["slo_attainment"] or 0)


def run_suite(suite: Suite, *, workers: int = 1, policies: Sequence[str] | None = None,
              executor: Executor | None = None,
              progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Run every job of ``suite`` (and, with ``suite.sweep``, each baseline's small sweep on
    the first seed, then its best setting on the other seeds); return per-run rows, the
    yardsticks, the chosen settings and the first seed's worker timelines."""
    jobs, bases = build_jobs(suite, policies)
    chosen = [p for p in (policies or suite.policies) if p in SWEEPS] if suite.sweep else []
    # A sweep value equal to the documented default is the defaults run itself (same scenario,
    # same seed): it is reused, not run again.
    sweep_jobs: list[Job] = []
    sweep_keys: list[tuple[str, str, str, float]] = []
    for label, (_base, util, bs) in bases.items():
        for policy in chosen:
            knob, values = SWEEPS[policy]
            for v in values:
                if v != documented_default(policy, knob):
                    sweep_jobs.append((_load(bs, policy, util, {knob: v}), suite.seeds[0], label,
                                       f"{policy} tuned"))
                    sweep_keys.append((label, policy, knob, v))
    tune = suite.sweep and "scalegen" in (policies or suite.policies)
    total = len(jobs) + len(sweep_jobs) + len(bases) * len(suite.seeds) + (
        len(bases) * len(chosen) * (len(suite.seeds) - 1)) + (
        len(bases) * (1 + len(suite.seeds)) if tune else 0)
    done = 0

    def tick() -> None:
        nonlocal done
        done += 1
        if progress:
            progress(done, total)

    yard: list[dict[str, Any]] = []
    settings: dict[tuple[str, str], str] = {}
    # The shared executor layer: this process, a pool (workers > 1) or a given executor.
    with Runner(workers, executor=executor) as runner:
        outs = _map(runner, jobs, tick)
        all_jobs = list(jobs)
        by_key = {(j[2], j[3], j[1]): (j, o) for j, o in zip(jobs, outs, strict=True)}
        if chosen:
            sweep_outs = _map(runner, sweep_jobs, tick) if sweep_jobs else []
            best_jobs: list[Job] = []
            picks: list[tuple[Job, dict[str, Any]]] = []
            for label, (_base, util, bs) in bases.items():
                for policy in chosen:
                    knob, values = SWEEPS[policy]
                    tried: list[tuple[float, Job | None, dict[str, Any]]] = []
                    for v in values:
                        if v == documented_default(policy, knob):
                            j, o = by_key[(label, policy, suite.seeds[0])]
                            tried.append((v, None, o))
                        else:
                            i = sweep_keys.index((label, policy, knob, v))
                            tried.append((v, sweep_jobs[i], sweep_outs[i]))
                    best = _best([t[2]["row"] for t in tried])
                    v, job, out = next(t for t in tried if t[2]["row"] is best)
                    name = f"{policy} tuned"
                    settings[(label, name)] = f"{knob}={v:g}"
                    if job is None:  # the default won: the defaults runs, relabelled
                        for seed in suite.seeds:
                            j, o = by_key[(label, policy, seed)]
                            picks.append(((j[0], seed, label, name),
                                          {**o, "row": {**o["row"], "policy": name}}))
                        continue
                    picks.append((job, out))
                    best_jobs.extend((_load(bs, policy, util, {knob: v}), seed, label, name)
                                     for seed in suite.seeds[1:])
            outs += [o for _, o in picks]
            all_jobs += [j for j, _ in picks]
            outs += _map(runner, best_jobs, tick)
            all_jobs += best_jobs
        if tune:
            # scalegen tuned: a small sim tune per scenario on the first seed, then every seed.
            tuned_jobs: list[Job] = []
            for label, (base, util, bs) in bases.items():
                ov = tune_scalegen(base, suite.seeds[0], runner, ATTAINMENT_OK)
                tick()
                sets = [f"{k}={v}" for k, v in ov.items()] + slo_pins(base)
                settings[(label, "scalegen tuned")] = ", ".join(
                    f"{k.rsplit('.', 1)[-1]}={v}" for k, v in ov.items())
                tuned_jobs.extend((_load(bs, "scalegen", util, extra=sets), seed, label,
                                   "scalegen tuned") for seed in suite.seeds)
            outs += _map(runner, tuned_jobs, tick)
            all_jobs += tuned_jobs
    for label, (base, util, _bs) in bases.items():
        for seed in suite.seeds:
            y = _yardsticks(base, seed, util)
            y["scenario"] = label
            yard.append(y)
            tick()
    need = {(y["scenario"], y["seed"]): y.pop("need") for y in yard}
    runs = pd.DataFrame([o["row"] for o in outs])
    # The share of the MILP's SLO-feasible need each run's ready fleet did not provide.
    runs["deficit"] = [deficit(need[(str(j[2]), int(j[1]))], o["ready"])
                       for j, o in zip(all_jobs, outs, strict=True)]
    runs["setting"] = [settings.get((str(r.scenario), str(r.policy)), "defaults")
                       for r in runs.itertuples()]
    timelines = {(j[2], j[3]): o["timeline"] for j, o in zip(all_jobs, outs, strict=True)
                 if j[1] == suite.seeds[0]}
    return {"runs": runs, "yardsticks": pd.DataFrame(yard), "timelines": timelines}


METRICS = ("cost_per_hour_usd", "ttft_p50_s", "ttft_p95_s", "ttft_p99_s", "e2e_p50_s",
           "e2e_p95_s", "e2e_p99_s", "slo_attainment", "cold_starts", "preemptions", "deficit")


def leaderboard(runs: pd.DataFrame, yardsticks: pd.DataFrame) -> pd.DataFrame:
    """One row per (scenario, policy): mean and 95 % half-width of each metric over seeds,
    the cost ratio to the hindsight replay and to the capacity bound (cost per hour, same
    horizon)."""
    rows = []
    for (label, policy), g in runs.groupby(["scenario", "policy"], sort=False):
        row: dict[str, Any] = {"scenario": label, "policy": policy, "seeds": len(g),
                               "setting": g["setting"].iloc[0] if "setting" in g else "defaults"}
        for m in METRICS:
            if m not in g:  # a results folder from before the column existed
                continue
            ci = mean_ci95([float(v) for v in g[m] if v is not None and math.isfinite(float(v))])
            row[m] = ci["mean"]
            row[m + "_hw"] = ci["half_width"]
        rows.append(row)
    lb = pd.DataFrame(rows)
    cost = runs.groupby(["scenario", "policy"])["cost_per_hour_usd"].mean()
    hz = runs.groupby("scenario")["horizon_s"].mean()
    bound = (yardsticks.groupby("scenario")["bound_usd"].mean() / (hz / 3600.0)) if len(
        yardsticks) else pd.Series(dtype=float)
    lb["ratio_to_hindsight"] = [
        row.cost_per_hour_usd / cost.get((row.scenario, "hindsight"), math.nan)
        for row in lb.itertuples()
    ]
    lb["bound_cost_per_hour_usd"] = [bound.get(s, math.nan) for s in lb.scenario]
    lb["ratio_to_bound"] = lb.cost_per_hour_usd / lb.bound_cost_per_hour_usd
    return lb


def _first(y: pd.DataFrame, col: str, default: Any) -> Any:
    """The first value of ``col`` (a results folder from before the column existed: default)."""
    if col not in y or not len(y) or pd.isna(y[col].iloc[0]):
        return default
    return y[col].iloc[0]


def to_markdown(lb: pd.DataFrame, yardsticks: pd.DataFrame, suite: Suite) -> str:
    """The leaderboard as markdown tables, one per scenario, best cost first among policies
    with SLO attainment >= 0.9."""
    out = [f"# Benchmark leaderboard: suite `{suite.name}`", "",
           f"Seeds {list(suite.seeds)}; each cell is the mean over seeds ± the 95 % "
           "half-width. `vs hindsight` = cost / the hindsight replay's cost; `vs bound` = cost "
           "/ the capacity lower bound. Policies run at their sources' documented defaults; "
           "a `tuned` row is the best of a three-value sweep of its main knob on the first "
           "seed (cheapest with SLO attainment >= 0.9). Rows meeting that bar come first, "
           "cheapest first. `need unmet` = the share of the hindsight MILP's SLO-feasible "
           "worker-time (per minute) the run's ready fleet did not provide: a policy costs less "
           "than the hindsight replay only by leaving some of it unmet. " + " ".join(suite.notes), ""]

    def f(v: Any, hw: Any, nd: int = 2) -> str:
        if v is None or not math.isfinite(v):
            return "–"
        return f"{v:.{nd}f} ± {hw:.{nd}f}" if hw and math.isfinite(hw) else f"{v:.{nd}f}"

    out += overview(lb) + [""]
    for label, g in lb.groupby("scenario", sort=False):
        y = yardsticks[yardsticks.scenario == label]
        out.append(f"## {label}")
        if len(y):
            out.append(
                f"Capacity bound {g.bound_cost_per_hour_usd.iloc[0]:.2f} $/h; hindsight MILP "
                f"{y.milp_status.iloc[0]}, gap {y.milp_gap.max():.1e} (time limit "
                f"{_first(y, 'milp_time_limit_s', math.nan):g} s), solved in "
                f"{y.milp_wall_s.max():.1f} s, over {_first(y, 'milp_kinds', 'on_demand')}; "
                f"SLO-feasible utilisation u* = "
                f"{_first(y, 'utilisation_by_shape', '') or f'{y.utilisation.iloc[0]:.2f}'}.")
        out += ["", "| policy | cost $/h | vs hindsight | vs bound | TTFT p50 s | TTFT p95 s | "
                "TTFT p99 s | E2E p95 s | SLO att. | cold starts | preemptions | need unmet |",
                "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        g = g.assign(_ok=g.slo_attainment >= 0.9).sort_values(
            ["_ok", "cost_per_hour_usd"], ascending=[False, True])
        for r in g.itertuples():
            name = str(r.policy) if r.setting == "defaults" else f"{r.policy!s} ({r.setting!s})"
            out.append(
                f"| {name} | {f(r.cost_per_hour_usd, r.cost_per_hour_usd_hw)} | "
                f"{r.ratio_to_hindsight:.2f} | {r.ratio_to_bound:.1f} | "
                f"{f(r.ttft_p50_s, r.ttft_p50_s_hw)} | {f(r.ttft_p95_s, r.ttft_p95_s_hw)} | "
                f"{f(r.ttft_p99_s, r.ttft_p99_s_hw)} | {f(r.e2e_p95_s, r.e2e_p95_s_hw)} | "
                f"{f(r.slo_attainment, r.slo_attainment_hw, 3)} | "
                f"{f(r.cold_starts, r.cold_starts_hw, 1)} | {f(r.preemptions, r.preemptions_hw, 1)} | "
                f"{f(getattr(r, 'deficit', math.nan), getattr(r, 'deficit_hw', math.nan), 3)} |")
        out.append("")
    return "\n".join(out)


def overview(lb: pd.DataFrame) -> list[str]:
    """A policy × scenario table of cost / hindsight cost with SLO attainment in brackets
    (markdown lines); a cell is bold when it meets the attainment bar."""
    scen = list(dict.fromkeys(lb.scenario))
    lines = ["## Overview: cost / hindsight cost (SLO attainment)", "",
             "| policy | " + " | ".join(scen) + " |", "|---|" + "---|" * len(scen)]
    for policy in dict.fromkeys(lb.policy):
        cells = []
        for sname in scen:
            r = lb[(lb.policy == policy) & (lb.scenario == sname)]
            if not len(r):
                cells.append("")
                continue
            ratio, att = float(r.ratio_to_hindsight.iloc[0]), float(r.slo_attainment.iloc[0])
            cell = f"{ratio:.2f} ({att:.2f})"
            cells.append(f"**{cell}**" if att >= ATTAINMENT_OK else cell)
        lines.append(f"| {policy} | " + " | ".join(cells) + " |")
    return lines


def plot(lb: pd.DataFrame, timelines: dict[tuple[str, str], dict[str, Any]], out: Path) -> list[Path]:
    """cost_vs_p95.png (one panel per scenario) and workers_<scenario>.png (N over time)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    labels = list(dict.fromkeys(lb.scenario))
    ncol = min(4, len(labels))
    nrow = -(-len(labels) // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.5 * ncol, 3.8 * nrow), squeeze=False)
    for ax in axes.flat[len(labels):]:
        ax.set_visible(False)
    for ax, label in zip(axes.flat, labels, strict=False):
        g = lb[lb.scenario == label]
        for r in g.itertuples():
            # Intervals clipped at 0: a latency or a cost is never negative.
            x, y = r.ttft_p95_s, r.cost_per_hour_usd
            # one seed: no half-width (None or NaN)
            xh, yh = (float(v) if v is not None and v == v else 0.0
                      for v in (r.ttft_p95_s_hw, r.cost_per_hour_usd_hw))
            ax.errorbar(x, y, xerr=[[min(xh, x)], [xh]], yerr=[[min(yh, y)], [yh]], fmt="o",
                        capsize=2)
            ax.annotate(r.policy, (x, y), fontsize=7)
        ax.set_xscale("symlog", linthresh=1.0)
        ax.set_xlabel("TTFT p95 (s)")
        ax.set_ylabel("cost ($/h)")
        ax.set_title(label)
    fig.tight_layout()
    p = out / "cost_vs_p95.png"
    fig.savefig(p, dpi=90)
    plt.close(fig)
    paths.append(p)
    for label in labels:
        fig, ax = plt.subplots(figsize=(8, 3.5))
        ax.set_prop_cycle(color=[plt.get_cmap("tab20")(i) for i in range(20)])  # 16 rows: 20 colours
        for (lab, policy), tl in timelines.items():
            if lab == label and tl:
                ax.step(tl["t"], tl["n"], where="post", label=policy, lw=1)
        ax.set_xlabel("time (s)")
        ax.set_ylabel("workers N")
        ax.set_title(f"{label}: workers over time (first seed)")
        ax.legend(fontsize=7, ncol=2)
        fig.tight_layout()
        p = out / f"workers_{label}.png"
        fig.savefig(p, dpi=90)
        plt.close(fig)
        paths.append(p)
    return paths
