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


def slo_of(scenario: Scenario) -> tuple[str, float]:
    """The SLO metric and threshold: ``sim.slo`` or the autoscaler's metric and upper bound."""
    slo = scenario.sim.slo
    metric = slo.metric
    if metric == "auto":
        metric = scenario.autoscaler.metric
    if metric == "auto":
        metric = "e2e" if scenario.deployment.inf_type == "embedding" else "ttft"
    threshold = slo.threshold_s
    if threshold is None:
        threshold = float(scenario.deployment.autoscaling_config.upper_allowed_latency_sec)
    return metric, float(threshold)


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
    policy = build_policy(scenario.deployment, scenario.autoscaler)
    fleet = FleetModel(scenario, streams)
    record = Engine(scenario, workload, policy, seed=seed, fleet=fleet, progress=progress).run()
    metric, threshold = slo_of(scenario)
    return build_result(
        record,
        slo_metric=metric,
        slo_threshold_s=threshold,
        warmup_s=float(scenario.sim.warmup_s),
        scenario_dict=resolved_dict(scenario),
        billing_granularity_s=float(scenario.fleet.billing_granularity_s),
    )
