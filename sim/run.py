"""One simulation run end to end: scenario → workload, fleet, policy → engine → Result."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sim.engine.core import Engine
from sim.errors import ConfigError
from sim.estimate import Limits, check_limits, estimate_built, estimate_spec
from sim.fleet.model import FleetModel
from sim.metrics import Result, build_result, canonical_slo_metric
from sim.metrics.tally import RequestTally
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
    limits: Limits | None = None,
) -> Result:
    """Simulate ``scenario`` once and return its :class:`~sim.metrics.Result`.

    ``seed`` overrides ``scenario.sim.seed``; the same seed gives bit-identical results.
    ``workload`` may be passed pre-built (e.g. to share one trace across many configs).
    Before building the workload and again before simulating, the run's size is estimated
    (:mod:`sim.estimate`) and a run beyond ``limits`` (default: 50M requests, 3/4 of physical
    memory) raises :class:`~sim.errors.LimitError` with the estimate.
    """
    if not isinstance(scenario, Scenario):
        raise ConfigError(
            f"simulate() takes a Scenario, not {type(scenario).__name__}: build one with "
            "sim.load_scenario(path) or sim.scenario_from_dict(data)"
        )
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise ConfigError(f"expected an integer seed >= 0, got {seed!r}", field="sim.seed")
    seed = scenario.sim.seed if seed is None else seed
    streams = Streams(seed)
    if workload is None:
        check_limits(estimate_spec(scenario), limits)
        workload = build_workload(scenario.workload, streams, scenario.base_dir)
    check_limits(estimate_built(scenario, len(workload), workload_span(workload)), limits)
    policy = build_policy(scenario.deployment, scenario.autoscaler, source=scenario.source)
    bind = getattr(policy, "bind", None)
    if callable(bind):  # policies that read the profile (sla_planner) or the trace (hindsight)
        bind(scenario, workload)
    fleet = FleetModel(scenario, streams)
    tally = None
    if scenario.sim.results == "summary":
        # No per-request table: the engine streams each resolved request into the tally.
        tally = RequestTally(
            slo_metric=canonical_slo_metric(scenario.slo_metric()),
            slo_threshold_s=scenario.slo_threshold_s(),
            warmup_s=float(scenario.sim.warmup_s),
            exact=False,
        )
    record = Engine.from_scenario(
        scenario, workload, policy, seed=seed, fleet=fleet, progress=progress,
        request_sink=tally.add if tally is not None else None,
    ).run()
    return build_result(
        record,
        slo_metric=scenario.slo_metric(),
        slo_threshold_s=scenario.slo_threshold_s(),
        warmup_s=float(scenario.sim.warmup_s),
        scenario_dict=resolved_dict(scenario),
        billing_granularity_s=float(scenario.fleet.billing_granularity_s),
        request_tally=tally,
    )


def workload_span(workload: Any) -> float:
    """Seconds from t = 0 to the last arrival of a built workload (0 when empty)."""
    return float(workload.arrival_s[-1]) if len(workload) else 0.0
