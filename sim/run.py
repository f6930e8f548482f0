"""One simulation run end to end: scenario → workload, fleet, policy → engine → Result."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sim.engine.core import Engine
from sim.fleet.model import FleetModel
from sim.metrics import Result, build_result
from sim.policies import build_policy
from sim.rng import Streams
from sim.scenario import Scenario, resolved_dict
from sim.workload import build_workload


def simulate(
    scenario: Scenario,
    seed: int | None = None,
    *,
    progress: Callable[[float], None] | None = None,
    workload: Any = None,
) -> Result:
    """Simulate ``scenario`` once and return its :class:`~sim.metrics.Result`.

    ``seed`` overrides ``scenario.sim.seed``; the same seed gives bit-identical results.
    ``workload`` may be passed pre-built (e.g. to share one trace across many configs).
    """
    seed = scenario.sim.seed if seed is None else int(seed)
    streams = Streams(seed)
    if workload is None:
        workload = build_workload(scenario.workload, streams, scenario.base_dir)
    policy = build_policy(scenario.deployment, scenario.autoscaler, source=scenario.source)
    fleet = FleetModel(scenario, streams)
    record = Engine(scenario, workload, policy, seed=seed, fleet=fleet, progress=progress).run()
    return build_result(
        record,
        slo_metric=scenario.slo_metric(),
        slo_threshold_s=scenario.slo_threshold_s(),
        warmup_s=float(scenario.sim.warmup_s),
        scenario_dict=resolved_dict(scenario),
        billing_granularity_s=float(scenario.fleet.billing_granularity_s),
    )
