"""``sim tune``: Optuna constrained multi-objective search of the deployment knobs (DESIGN §8).

Minimise cost per hour and a latency figure (default ``ttft_s.p95``) subject to constraints
such as ``ttft_s.p95<=2`` and ``slo.attainment>=0.99`` — NSGA-II by default, TPE as an
option, both with Optuna's constraint handling (a trial's constraint values are its
violations; <= 0 is feasible). Trials are asked in batches, each batch evaluated through the
:class:`~sim.executor.Runner` on the same seeds (common random numbers), and told in trial
order, so the same sampler seed gives the same trials on one process, a pool or Dask.

The study lives in Optuna journal storage (``OUT/study.journal``; an RDB URL as an option):
a killed tune resumes — trials it had asked but not told are evaluated and told, then the
search continues up to the requested number of trials.

Choosing the winner: the trial means come from few seeds, so the best-looking trials are
re-evaluated, with the starting config, on more seeds (:func:`confirm`), and the winner is the
cheapest whose constraints hold at the cautious end of their 95% confidence interval — not the
luckiest trial. Its savings against the starting config are paired differences on the same
seeds, with 95% intervals.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sim.errors import ConfigError
from sim.executor import Runner, SimTask, run_sim_task
from sim.metrics.stats import mean_ci95
from sim.tune.metrics import COST, Constraint, flatten, pareto_mask
from sim.tune.space import (
    WORKER_SHAPE,
    Choice,
    Dim,
    Range,
    check_knobs,
    overrides_for,
    parse_dim,
)

AC = "deployment.autoscaling_config."
IWC = "deployment.initial_worker_config."
STUDY_NAME = "sim-tune"
JOURNAL = "study.journal"


def shape_choices(scenario: Any) -> list[str]:
    """Worker shapes (``"A100x1"``) of the catalog that hold the model: for each GPU type the
    allowed clouds offer, the smallest count that fits and twice that (more tensor parallelism)."""
    from sim.fleet.model import FleetModel
    from sim.rng import Streams
    from sim.serving.models import GPU_COUNTS, min_gpus_to_fit, resolve_model

    dep = scenario.deployment
    try:
        spec = resolve_model(dep.base_model or dep.model)
    except Exception:  # a queueing service model has no model spec: keep the given shape
        return []
    catalog = FleetModel(scenario, Streams(0)).catalog
    util = scenario.serving.gpu_memory_utilization
    shapes: list[str] = []
    for gpu in sorted(catalog.gpus):
        if not catalog.offers(gpu=gpu, clouds=dep.cloud_providers or None):
            continue
        try:
            fit = min_gpus_to_fit(spec, gpu, utilization=util)
        except Exception:
            continue
        shapes += [f"{gpu}x{n}" for n in GPU_COUNTS if fit <= n <= 2 * fit]
    return shapes


def default_space(scenario: Any) -> list[Dim]:
    """The default search space: the latency band, window, the three timeouts, the floor, the
    worker shape, spot and ``use_same_gpus_when_scaling`` (DESIGN §4 knobs)."""
    dep = scenario.deployment
    floor = dep.initial_worker_config.min_workers
    dims: list[Dim] = [
        Range(AC + "upper_allowed_latency_sec", 0.25, 8.0, log=True),
        Range(AC + "lower_allowed_latency_sec", 0.05, 0.8,
              fraction_of=AC + "upper_allowed_latency_sec"),
        Range(AC + "time_window_sec", 30, 900, log=True, integer=True),
        Range(AC + "scaling_up_timeout_sec", 10, 1800, log=True, integer=True),
        Range(AC + "scaling_down_timeout_sec", 60, 3600, log=True, integer=True),
        Range(IWC + "min_workers", 0, max(3, 2 * floor), integer=True),
        Choice("deployment.allow_spot_instances", (False, True)),
        Choice(IWC + "use_same_gpus_when_scaling", (True, False)),
    ]
    # The idle timer matters whenever the floor may be 0, which the floor's range allows.
    dims.insert(5, Range(AC + "scale_to_zero_timeout_sec", 60, 7200, log=True, integer=True))
    shapes = shape_choices(scenario)
    if len(shapes) > 1:
        dims.append(Choice(WORKER_SHAPE, tuple(shapes)))
    return dims


def space_from_yaml(data: Mapping[str, Any], scenario: Any, *, source: str) -> list[Dim]:
    """The search space of a ``--space`` file: ``space: {knob: spec | null}`` edits the default
    (null drops a knob); with ``replace: true`` only the listed knobs are searched."""
    unknown = set(data) - {"space", "replace"}
    if unknown:
        raise ConfigError(f"unknown key(s) {', '.join(sorted(map(str, unknown)))}; expected "
                          "space, replace", source=source)
    spec = data.get("space") or {}
    if not isinstance(spec, Mapping):
        raise ConfigError("expected a mapping of knob: {low, high} | [values] | null",
                          source=source, field="space")
    dims = {} if data.get("replace") else {d.name: d for d in default_space(scenario)}
    for name, s in spec.items():
        if s is None:
            dims.pop(str(name), None)
        else:
            dims[str(name)] = parse_dim(str(name), s, source=source)
    if not dims:
        raise ConfigError("the search space is empty", source=source, field="space")
    return list(dims.values())


# --- evaluation ----------------------------------------------------------------------------------


def evaluate(
    runner: Runner,
    base: Mapping[str, Any],
    configs: Sequence[Mapping[str, Any]],
    seeds: Sequence[int],
    *,
    base_dir: str,
    source: str,
) -> list[list[dict[str, float | None] | str]]:
    """Each config's flattened figures per seed (or the error text of that run), same seeds for all."""
    tasks = [SimTask(dict(base), int(s), tuple(ov.items()), base_dir, source=source)
             for ov in configs for s in seeds]
    outs = runner.map(run_sim_task, tasks)
    per: list[list[dict[str, float | None] | str]] = []
    for i in range(len(configs)):
        row: list[dict[str, float | None] | str] = []
        for out in outs[i * len(seeds):(i + 1) * len(seeds)]:
            row.append(flatten(out.value) if out.value is not None else (out.error or "failed"))
        per.append(row)
    return per


def _mean(runs: Sequence[Mapping[str, float | None]], figure: str) -> float:
    vals = [r.get(figure) for r in runs]
    clean = [float(v) for v in vals if v is not None and math.isfinite(v)]
    return float(np.mean(clean)) if clean and len(clean) == len(vals) else math.nan


# --- the study -----------------------------------------------------------------------------------


def _optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise ConfigError("sim tune needs optuna: pip install -e '.[tune]'",
                          source="sim tune") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def make_storage(storage: str | None, out: Path) -> Any:
    """Journal file storage in ``out`` by default; an RDB URL (``sqlite:///tune.db``) when given."""
    optuna = _optuna()
    if storage is None or storage.endswith(".journal") or "://" not in storage:
        path = out / JOURNAL if storage is None else Path(storage)
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        return JournalStorage(JournalFileBackend(str(path)))
    return optuna.storages.RDBStorage(storage)


def make_sampler(name: str, seed: int, population: int) -> Any:
    """``nsga2`` (default) or ``tpe``, seeded; both read the constraints each trial sets
    (``Trial.set_constraint``, Optuna >= 5)."""
    optuna = _optuna()
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(population_size=max(2, population), seed=seed)
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, multivariate=True,
                                          n_startup_trials=population)
    raise ConfigError(f"unknown sampler {name!r}; expected nsga2 or tpe", source="--sampler")


def _suggest(trial: Any, dims: Sequence[Dim]) -> dict[str, Any]:
    point: dict[str, Any] = {}
    for d in dims:
        if isinstance(d, Choice):
            point[d.name] = trial.suggest_categorical(d.name, list(d.values))
        elif isinstance(d, Range) and d.integer:
            point[d.name] = trial.suggest_int(d.name, int(math.ceil(d.low)),
                                              int(math.floor(d.high)), log=d.log)
        elif isinstance(d, Range):
            point[d.name] = trial.suggest_float(d.name, d.low, d.high, log=d.log)
    return point


@dataclass
class TuneSettings:
    """What ``sim tune`` optimises and how (see :func:`run_study`)."""

    constraints: Sequence[Constraint] = ()
    cost: str = COST
    latency: str = "ttft_s.p95"
    trials: int = 60
    batch: int = 8
    sampler: str = "nsga2"
    seed: int = 0
    seeds: Sequence[int] = (1,)
    confirm_seeds: Sequence[int] = (1, 2, 3, 4, 5)
    top: int = 5
    storage: str | None = None
    dims: Sequence[Dim] = field(default_factory=list)


def run_study(
    scenario: Any,
    settings: TuneSettings,
    out: Path,
    runner: Runner,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> Any:
    """Run (or resume) the Optuna study until ``settings.trials`` trials have finished; the study."""
    from sim.tune.metrics import pinned_base

    optuna = _optuna()
    from optuna.trial import TrialState

    out.mkdir(parents=True, exist_ok=True)
    base = pinned_base(scenario)
    dims = list(settings.dims)
    check_knobs(dims, base, source="--space")
    study = optuna.create_study(
        study_name=STUDY_NAME, storage=make_storage(settings.storage, out),
        sampler=make_sampler(settings.sampler, settings.seed, settings.batch),
        directions=["minimize", "minimize"], load_if_exists=True,
    )
    kw = {"base_dir": str(scenario.base_dir), "source": scenario.source or "<tune>"}

    def finished() -> int:
        return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.FAIL)))

    def run_batch(trials: list[tuple[Any, dict[str, Any]]]) -> None:
        """Evaluate ``(optuna Trial, knob point)`` pairs on the same seeds; tell in trial order."""
        configs = [overrides_for(p, base, dims) for _, p in trials]
        results = evaluate(runner, base, configs, settings.seeds, **kw)
        for (trial, _), ov, runs in zip(trials, configs, results, strict=True):
            errors = [r for r in runs if isinstance(r, str)]
            ok = [r for r in runs if not isinstance(r, str)]
            trial.set_user_attr("overrides", dict(ov))
            cost, lat = (_mean(ok, settings.cost), _mean(ok, settings.latency)) if ok else (math.nan,) * 2
            if errors or not (math.isfinite(cost) and math.isfinite(lat)):
                trial.set_user_attr("error", errors[0] if errors else
                                    "a figure is undefined (no request completed)")
                study.tell(trial.number, state=TrialState.FAIL)
                continue
            # Optuna reads the violations (<= 0: met) when the trial is told.
            viol = [c.violation(_mean(ok, c.figure)) for c in settings.constraints]
            viol = [v if math.isfinite(v) else 1e9 for v in viol]
            trial.set_user_attr("violations", viol)
            for c, v in zip(settings.constraints, viol, strict=True):
                trial.set_constraint(str(c), v)
            for c in settings.constraints:
                trial.set_user_attr(c.figure, _mean(ok, c.figure))
            study.tell(trial.number, [cost, lat])
        if progress is not None:
            progress(finished(), settings.trials)

    # Resume: trials asked but never told (the tune was killed mid-batch) run first.
    stale = study.get_trials(deepcopy=False, states=(TrialState.RUNNING, TrialState.WAITING))
    if stale:
        run_batch([(optuna.trial.Trial(study, t._trial_id), dict(t.params)) for t in stale])
    if progress is not None:
        progress(finished(), settings.trials)
    while finished() < settings.trials:
        n = min(settings.batch, settings.trials - finished())
        asked = [study.ask() for _ in range(n)]
        run_batch([(t, _suggest(t, dims)) for t in asked])
    return study


# --- choosing the winner -------------------------------------------------------------------------


def candidates(study: Any, settings: TuneSettings) -> list[dict[str, Any]]:
    """Up to ``settings.top`` distinct trials to confirm: feasible ones by cost, then the front."""
    from optuna.trial import TrialState

    done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
    feas = [t for t in done if all(v <= 0 for v in t.user_attrs.get("violations", []))]
    pool = sorted(feas, key=lambda t: (t.values[0], t.values[1], t.number))
    if len(pool) < settings.top:
        rest = sorted((t for t in done if t not in pool),
                      key=lambda t: (sum(max(0.0, v) for v in t.user_attrs.get("violations", [])),
                                     t.values[0], t.number))
        pool += rest
    out, seen = [], set()
    for t in pool:
        ov = t.user_attrs.get("overrides") or {}
        key = repr(sorted(ov.items()))
        if key in seen:
            continue
        seen.add(key)
        out.append({"trial": t.number, "overrides": ov, "params": dict(t.params)})
        if len(out) >= settings.top:
            break
    return out


def pareto_trials(study: Any) -> list[Any]:
    """Completed trials on the cost/latency Pareto front (feasible ones when any are)."""
    from optuna.trial import TrialState

    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    feas = [t for t in done if all(v <= 0 for v in t.user_attrs.get("violations", []))]
    pool = feas or done
    if not pool:
        return []
    mask = pareto_mask(np.array([t.values[0] for t in pool]), np.array([t.values[1] for t in pool]))
    return sorted((t for t, m in zip(pool, mask, strict=True) if m), key=lambda t: t.values[0])


def _ci(values: Sequence[float]) -> dict[str, Any]:
    return dict(mean_ci95([float(v) for v in values]))


def confirm(
    scenario: Any,
    settings: TuneSettings,
    cands: Sequence[Mapping[str, Any]],
    runner: Runner,
) -> dict[str, Any]:
    """Re-evaluate the starting config and each candidate on ``confirm_seeds``; pick the winner.

    Each row has per-figure mean and 95% CI, the paired difference to the starting config
    (same seeds) with its CI, and ``confident``: every constraint holds at the cautious end of
    its CI (upper bounds: CI high <= bound; lower bounds: CI low >= bound). The winner is the
    cheapest confident row (the starting config included); ``None`` when no row is confident.
    """
    from sim.tune.metrics import pinned_base

    base = pinned_base(scenario)
    configs: list[dict[str, Any]] = [{}, *(dict(c["overrides"]) for c in cands)]
    figures = [settings.cost, settings.latency] + [c.figure for c in settings.constraints]
    figures = list(dict.fromkeys(figures))
    per = evaluate(runner, base, configs, settings.confirm_seeds,
                   base_dir=str(scenario.base_dir), source=scenario.source or "<tune>")
    rows: list[dict[str, Any]] = []
    baseline_runs = per[0]
    for i, runs in enumerate(per):
        label = "starting config" if i == 0 else f"trial {cands[i - 1]['trial']}"
        row: dict[str, Any] = {"label": label, "overrides": configs[i],
                               "trial": None if i == 0 else cands[i - 1]["trial"]}
        errors = [r for r in runs if isinstance(r, str)]
        if errors:
            row.update(error=errors[0], confident=False)
            rows.append(row)
            continue
        for f in figures:
            vals = [r.get(f) for r in runs]  # type: ignore[union-attr]
            if any(v is None for v in vals):
                row[f] = _ci([])
                continue
            row[f] = _ci(vals)  # type: ignore[arg-type]
            if not any(isinstance(b, str) for b in baseline_runs):
                bvals = [b.get(f) for b in baseline_runs]  # type: ignore[union-attr]
                if all(v is not None for v in bvals):
                    row[f"diff:{f}"] = _ci([a - b for a, b in zip(vals, bvals, strict=True)])  # type: ignore[operator]
        row["confident"] = all(_holds(c, row.get(c.figure)) for c in settings.constraints)
        rows.append(row)
    cost = settings.cost
    ok = [r for r in rows if r.get("confident") and (r.get(cost) or {}).get("mean") is not None]
    winner = min(ok, key=lambda r: (r[cost]["mean"], r["trial"] is not None)) if ok else None
    return {"rows": rows, "winner": winner, "seeds": list(settings.confirm_seeds),
            "figures": figures}


def _holds(c: Constraint, ci: Mapping[str, Any] | None) -> bool:
    if not ci or ci.get("mean") is None:
        return False
    lo, hi = ci.get("ci95_low"), ci.get("ci95_high")
    if lo is None or hi is None:  # one seed: no interval, judge the mean
        return c.met(ci["mean"])
    return c.met(hi) if c.upper else c.met(lo)
