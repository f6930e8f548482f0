"""One simulation run end to end: scenario → workload, fleet, policy → engine → Result."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
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
    requests_path: str | Path | None = None,
) -> Result:
    """Simulate ``scenario`` once and return its :class:`~sim.metrics.Result`.

    ``seed`` overrides ``scenario.sim.seed``; the same seed gives bit-identical results.
    ``workload`` may be passed pre-built (e.g. to share one trace across many configs).
    Before building the workload and again before simulating, the run's size is estimated
    (:mod:`sim.estimate`) and a run beyond ``limits`` (default: 50M requests, 3/4 of physical
    memory) raises :class:`~sim.errors.LimitError` with the estimate.

    With ``sim.results: stream``, the per-request table is written to ``requests_path``
    (Parquet, one row group per batch of resolved requests; :mod:`sim.metrics.stream`) while
    the run goes; without a path the run keeps no table (as ``summary``) and says so in its
    warnings.
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
    tally = writer = None
    sink: Callable[[Any, Any], None] | None = None
    mode = scenario.sim.results
    if mode != "full":
        # No per-request table in memory: the engine hands each batch of resolved requests
        # to the tally (and, streaming, to the file).
        tally = RequestTally(
            slo_metric=canonical_slo_metric(scenario.slo_metric()),
            slo_threshold_s=scenario.slo_threshold_s(),
            warmup_s=float(scenario.sim.warmup_s),
            exact=False,
        )
        sink = tally.add
        if mode == "stream" and requests_path is not None:
            from sim.metrics.stream import RequestTableWriter

            writer = RequestTableWriter(requests_path)
            add_tally, add_row = tally.add, writer.add

            def tee(req: Any, request_id: Any) -> None:
                add_tally(req)
                add_row(req, request_id)

            sink = tee
        elif mode == "stream":
            mode = "summary"
    try:
        record = Engine.from_scenario(
            scenario, workload, policy, seed=seed, fleet=fleet, progress=progress,
            request_sink=sink,
        ).run()
    finally:
        if writer is not None:
            writer.close()
    if scenario.sim.results == "stream" and writer is None:
        record.warnings.append(
            "sim.results: stream has no file to stream to here (sim run streams into its "
            "--out folder); the per-request table was not kept, as with summary"
        )
    result = build_result(
        record,
        slo_metric=scenario.slo_metric(),
        slo_threshold_s=scenario.slo_threshold_s(),
        warmup_s=float(scenario.sim.warmup_s),
        scenario_dict=resolved_dict(scenario),
        billing_granularity_s=float(scenario.fleet.billing_granularity_s),
        request_tally=tally,
        results_mode=mode,
    )
    if scenario.deployment.allow_spot_instances and scenario.fleet.spot.counterfactual:
        _spot_savings(result, scenario, seed, workload)
    return result


def _spot_savings(result: Result, scenario: Scenario, seed: int, workload: Any) -> None:
    """Spot savings against the counterfactual (DESIGN §5): the same scenario with
    ``allow_spot_instances: false``, on the same seed and requests (common random numbers),
    minus this run's cost, with the latency change beside it, into ``summary``."""
    off = scenario.model_copy(
        update={"deployment": scenario.deployment.model_copy(update={"allow_spot_instances": False})}
    )
    cf = simulate(off, seed, workload=workload).summary
    s = result.summary
    cost, cf_cost = s["cost"], cf["cost"]

    def delta(section: str, key: str) -> float | None:
        a, b = s[section].get(key), cf[section].get(key)
        return None if a is None or b is None else float(a) - float(b)

    cost["spot_savings_usd"] = float(cf_cost["total_usd"]) - float(cost["total_usd"])
    cost["spot_savings_per_hour_usd"] = (
        None if cf_cost["per_hour_usd"] is None or cost["per_hour_usd"] is None
        else float(cf_cost["per_hour_usd"]) - float(cost["per_hour_usd"])
    )
    s["spot_counterfactual"] = {
        "what": "the same scenario with allow_spot_instances false, same seed and requests",
        "cost_total_usd": cf_cost["total_usd"],
        "cost_per_hour_usd": cf_cost["per_hour_usd"],
        "ttft_p95_s": cf["ttft_s"]["p95"],
        "latency_e2e_p95_s": cf["latency_e2e_s"]["p95"],
        "slo_attainment": cf["slo"]["attainment"],
        "requests_failed": cf["requests"]["failed"],
        # This run minus the counterfactual: what spot changed (positive = spot was slower).
        "change": {
            "ttft_p95_s": delta("ttft_s", "p95"),
            "latency_e2e_p95_s": delta("latency_e2e_s", "p95"),
            "slo_attainment": delta("slo", "attainment"),
            "requests_failed": s["requests"]["failed"] - cf["requests"]["failed"],
        },
    }


def workload_span(workload: Any) -> float:
    """Seconds from t = 0 to the last arrival of a built workload (0 when empty)."""
    return float(workload.arrival_s[-1]) if len(workload) else 0.0
