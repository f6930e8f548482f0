"""The bench's ``scalegen tuned`` row: ``sim tune`` (:mod:`sim.tune.optimize`) on each scenario's
own fleet, at a small budget.

The search space is the tuner's default (:func:`sim.tune.optimize.default_space`) less the
knobs that change the fleet (spot, ``use_same_gpus_when_scaling``, the worker shape): the
latency band, window, the three timeouts and the floor. The SLO is pinned to the scenario's
(``sim.slo.metric`` and ``threshold_s``, as ``sim tune`` does), so the tuned row is judged by the
same yardstick as every other row; the constraint is the bench's attainment bar. NSGA-II
(seeded) on the suite's first seed; the cheapest trial that meets the bar wins (else the one
closest to it, :func:`sim.tune.optimize.candidates`) and then runs on every seed.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from sim.executor import Runner

#: Knobs that change the fleet rather than the autoscaler: left at the scenario's values.
FLEET_KNOBS = ("deployment.allow_spot_instances",
               "deployment.initial_worker_config.use_same_gpus_when_scaling")
TRIALS = 8
BATCH = 4


def slo_pins(scenario: Any) -> list[str]:
    """Overrides that pin the scenario's SLO (metric, threshold) while its band is tuned."""
    return [f"sim.slo.metric={scenario.slo_metric()}",
            f"sim.slo.threshold_s={scenario.slo_threshold_s():g}"]


def tune_scalegen(scenario: Any, seed: int, runner: Runner, attainment: float, *,
                  trials: int = TRIALS, batch: int = BATCH) -> dict[str, Any]:
    """The winning overrides of a small ``sim tune`` of ``scenario`` (module docstring)."""
    from sim.tune.metrics import parse_constraint
    from sim.tune.optimize import TuneSettings, candidates, default_space, run_study
    from sim.tune.space import WORKER_SHAPE

    dims = [d for d in default_space(scenario)
            if d.name not in FLEET_KNOBS and d.name != WORKER_SHAPE]
    settings = TuneSettings(
        constraints=[parse_constraint(f"slo.attainment>={attainment:g}", source="bench")],
        trials=trials, batch=batch, seeds=(seed,), dims=dims, top=1)
    with tempfile.TemporaryDirectory(prefix="bench-tune-") as d:
        study = run_study(scenario, settings, Path(d), runner)
        best = candidates(study, settings)
    return dict(best[0]["overrides"]) if best else {}
