"""One simulation run end to end: scenario → workload, fleet, policy → engine → Result."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sim.engine.core import Engine
from sim.errors import ConfigError
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
    if not isinstance(scenario, Scenario):
        raise TypeError(
            f"simulate() takes a Scenario, not {type(scenario).__name__}: build one with "
            "sim.load_scenario(path) or sim.scenario_from_dict(data)"
        )
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise ConfigError(f"expected an integer seed >= 0, got {seed!r}", field="sim.seed")
    seed = scenario.sim.seed if seed is None else seed
    streams = Streams(seed)
    if workload is None:
        workload = build_workload(scenario.workload, streams, scenario.base_dir)
    policy = build_policy(scenario.deployment, scenario.autoscaler, source=scenario.source)
    bind = getattr(policy, "bind", None)
    if callable(bind):  # policies that read the profile (sla_planner) or the trace (hindsight)
        bind(scenario, workload)
    fleet = FleetModel(scenario, streams)
    record = Engine.from_scenario(
        scenario, workload, policy, seed=seed, fleet=fleet, progress=progress
    ).run()
    return build_result(
        record,
        slo_metric=scenario.slo_metric(),
        slo_threshold_s=scenario.slo_threshold_s(),
        warmup_s=float(scenario.sim.warmup_s),
        scenario_dict=resolved_dict(scenario),
        billing_granularity_s=float(scenario.fleet.billing_granularity_s),
    )
