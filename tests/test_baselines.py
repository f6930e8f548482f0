"""Conformance of the baseline policies to their sources, on hand-computed timelines.

Each case feeds a policy a sequence of observations (what the engine would show it at each
tick) and compares its decisions with a timeline worked out by hand from the source's
algorithm; the comment above each expectation gives the arithmetic. docs/policies.md lists the
cases and the source sentence each one checks.
"""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from sim.errors import ConfigError
from sim.policies import POLICIES
from sim.policies.base import Observation
from sim.policies.hpa import HpaParams, HpaPolicy, KedaParams, KedaPolicy
from sim.policies.knative import KnativeParams, KnativePolicy
from sim.policies.ray_serve import RayServeParams, RayServePolicy
from sim.policies.skyserve import SkyServeParams, SkyServePolicy
from sim.policies.sla_planner import PREDICTORS, SlaPlannerParams, SlaPlannerPolicy


def obs(t: float, *, workers: int, ready: int | None = None, in_flight: int = 0,
        queue: int = 0, arrived: int = 0, prompt: int = 0, output: int = 0,
        addable: int = 1000) -> Observation:
    """An observation at ``t``: ``in_flight`` requests running (plus ``queue`` waiting)."""
    ready = workers if ready is None else ready
    return Observation(
        time_s=t, workers=workers, ready=ready, starting=workers - ready, queue_len=queue,
        running=in_flight, statistic=math.nan, finished_in_window=0, arrivals_in_window=0,
        window_s=60, last_arrival_s=-math.inf, min_workers=0, addable=addable,
        addable_limit="max_workers", price_per_hour_usd=0.0, arrived_total=arrived,
        prompt_tokens_arrived=prompt, output_tokens_arrived=output,
    )


# --- Knative KPA ---------------------------------------------------------------------------------


def test_knative_panic_overprovisions_on_a_burst() -> None:
    """KPA: a burst starts panic at 2x the threshold; panic holds its peak (8 workers) for a
    stable window although the stable need after the burst is 2 workers; then it steps down at
    most ready/max_scale_down_rate per tick."""
    pol = KnativePolicy(KnativeParams(), min_workers=1)
    n = 1
    log = []
    def tick(t: float, c: int, ready: int | None = None) -> None:
        nonlocal n
        d = pol.decide(obs(t, workers=n, ready=ready, in_flight=c))
        if d.delta:
            log.append((t, d.delta))
            n += d.delta
    for t in range(0, 60, 2):  # steady 50 in flight: ceil(50/70) = 1 worker, no panic
        tick(t, 50)
    assert log == []
    # t=60: panic window (54,60] = {50, 50, 500}: mean 200, ceil(200/70) = 3; 3/1 >= 2 -> panic
    tick(60, 500, ready=1)
    # t=62: {50, 500, 500} = 350 -> 5; t=64: {500} x3 -> ceil(7.14) = 8
    tick(62, 500, ready=1)
    tick(64, 500, ready=1)
    assert log == [(60, 2), (62, 2), (64, 3)]
    # t=66: burst over, {500, 500, 100} = 366.7 -> 6 < held 8: panic never scales down
    tick(66, 100, ready=1)
    for t in range(68, 126, 2):  # all 8 ready: dppc = max(ceil(100/70)=2, floor(8/2)=4)=4, 4/8 < 2
        tick(t, 100, ready=8)
    assert n == 8 and log[-1] == (64, 3)  # held over-provisioned: stable need is 2
    # t=126: 60 s since the last over-threshold tick (66): panic ends; stable (66,126] = 100
    # -> ceil(1.43) = 2, clamped to floor(8/2) = 4 by max_scale_down_rate
    tick(126, 100, ready=8)
    assert log[-1] == (126, -4)
    tick(128, 100, ready=4)  # max(2, floor(4/2) = 2) = 2
    assert log[-1] == (128, -2) and n == 2


def test_knative_scale_to_zero_after_stable_window_and_grace() -> None:
    """KPA: the desired count reaches 0 once a whole stable window (60 s) saw no request; the
    last worker goes after the 30 s grace; a buffered request (activator) brings one back."""
    pol = KnativePolicy(KnativeParams(), min_workers=0)
    acts = []
    n = 1
    for t in range(0, 200, 2):
        c = 10 if t <= 40 else 0
        d = pol.decide(obs(t, workers=n, in_flight=c))
        if d.delta:
            acts.append((t, d.action, d.delta))
            n += d.delta
    # the stable window (t-60, t] holds the last sample of 10 (at 40) up to t = 98: desired 1;
    # from t = 100 desired 0; zero at 100 + 30 = 130
    assert acts == [(130, "to_zero", -1)]
    d = pol.decide(obs(200, workers=0, ready=0, queue=1))
    assert (d.action, d.delta) == ("from_zero", 1)


# --- HPA and KEDA --------------------------------------------------------------------------------


def test_hpa_steps_by_desired_count_and_stabilizes_down() -> None:
    """HPA: ceil(N x metric/target) jumps straight to the desired count (+4 within the
    4-pods/100 % per 15 s rate policies); starting pods count as 0 on the way up; the 300 s
    down-stabilization holds the count, then the 100 %-per-15 s policy lets it drop at once."""
    pol = HpaPolicy(HpaParams(target_value=70), min_workers=1)
    # N = 2 ready, 420 in flight: ratio = 210/70 = 3 -> ceil(3 x 2) = 6; limits: 2+4 = 6,
    # ceil(2 x 2) = 4; select max -> 6
    d = pol.decide(obs(0, workers=2, in_flight=420))
    assert (d.action, d.delta) == ("scale_up", 4)
    # 4 starting: ratio over ready = 3 > 1; with starting at 0 usage: 420/6/70 = 1.0 -> tolerance
    assert pol.decide(obs(15, workers=6, ready=2, in_flight=420)).delta == 0
    # all ready, 70 in flight: raw = ceil(70/6/70 x 6) = 1, but the max of the recommendations
    # in the last 300 s is 6 (t = 0 and 15): held until t = 315 (rec at 15 leaves (t-300, t])
    for t in range(30, 315, 15):
        d = pol.decide(obs(t, workers=6, in_flight=70))
        assert d.delta == 0 and d.reason == "blocked: stabilization window (down)", t
    d = pol.decide(obs(315, workers=6, in_flight=70))
    assert (d.action, d.delta) == ("scale_down", -5)  # floor: minReplicas 1


def test_hpa_tolerance_and_rate_limit() -> None:
    """HPA: a ratio within 10 % changes nothing; a 10x jump on 1 pod is capped at +4 per 15 s
    (max of 4 pods and 100 %), the next +4 only once the period has passed."""
    pol = HpaPolicy(HpaParams(target_value=10), min_workers=1)
    assert pol.decide(obs(0, workers=4, in_flight=43)).delta == 0  # 43/4/10 = 1.075
    pol = HpaPolicy(HpaParams(target_value=10), min_workers=1)
    assert pol.decide(obs(0, workers=1, in_flight=100)).delta == 4  # desired 10 -> 1 + 4 = 5
    # t=10: within the 15 s period 4 were added: period start 1 -> limit 5: blocked
    assert pol.decide(obs(10, workers=5, in_flight=500)).delta == 0
    # t=20: the +4 at t=0 left the period: start 5 -> max(9, 10) = 10
    assert pol.decide(obs(20, workers=5, in_flight=500)).delta == 5


def test_keda_idle_cooldown_and_activation() -> None:
    """KEDA: at min 0, zero after cooldownPeriod (300 s) with pending + in-flight at or below
    the activation threshold since the last active poll; one worker as soon as it is active."""
    pol = KedaPolicy(KedaParams(), min_workers=0)
    n, acts = 1, []
    for t in range(0, 700, 30):
        c = 5 if t <= 90 else 0
        d = pol.decide(obs(t, workers=n, in_flight=c))
        if d.delta:
            acts.append((t, d.action, d.delta))
            n += d.delta
    assert acts == [(390, "to_zero", -1)]  # last active at 90, 90 + 300
    d = pol.decide(obs(720, workers=0, ready=0, queue=1))
    assert (d.action, d.delta) == ("from_zero", 1)


# --- Ray Serve ------------------------------------------------------------------------------------


def test_ray_serve_delays_are_consecutive_decisions() -> None:
    """Ray Serve: 6 ongoing over 1 replica at target 2 -> desired 3, adopted on the 4th
    consecutive upscale decision (upscale_delay_s 30 / 10 s ticks = 3 wait periods); a tick
    with no change resets the count."""
    pol = RayServePolicy(RayServeParams(look_back_period_s=10), tick_s=10, min_workers=1)
    seq = [pol.decide(obs(t, workers=1, in_flight=6)) for t in (0, 10, 20)]
    assert all(d.reason == "blocked: upscale delay" for d in seq)
    assert pol.decide(obs(30, workers=1, in_flight=6)).delta == 2
    pol = RayServePolicy(RayServeParams(look_back_period_s=10), tick_s=10, min_workers=1)
    for t in (0, 10, 20):
        pol.decide(obs(t, workers=1, in_flight=6))
    assert pol.decide(obs(30, workers=1, in_flight=2)).delta == 0  # error 1: reset
    assert pol.decide(obs(40, workers=1, in_flight=6)).delta == 0  # counts from 1 again


def test_ray_serve_smoothing_factor_and_downscale_delay() -> None:
    """Ray Serve: downscaling_factor 0.5 halves the error: 4 replicas, 2 ongoing (error 0.25)
    -> ceil(4 x (1 - 0.75 x 0.5)) = 3, after more than 600/10 = 60 consecutive decisions."""
    pol = RayServePolicy(RayServeParams(look_back_period_s=10, downscaling_factor=0.5),
                         tick_s=10, min_workers=1)
    deltas = [pol.decide(obs(t, workers=4, in_flight=2)).delta for t in range(0, 610, 10)]
    assert deltas[:60] == [0] * 60 and deltas[60] == -1


# --- SkyServe -------------------------------------------------------------------------------------


def test_skyserve_target_qps_and_upscale_delay() -> None:
    """SkyServe: 6 req/s over the 60 s window at 2.5 per replica -> ceil(2.4) = 3 replicas,
    adopted once the upscale counter reaches 300 s / 20 s = 15 consecutive decisions."""
    pol = SkyServePolicy(SkyServeParams(), tick_s=20, min_workers=1)
    n, acts = 1, []
    for i in range(20):
        t = 20.0 * i
        d = pol.decide(obs(t, workers=n, arrived=int(6 * t)))
        if d.delta:
            acts.append((i, d.delta))
            n += d.delta
    # QPS divides by the full 60 s window: i = 1: 120/60 = 2 -> 1 replica (no change);
    # i = 2: 240/60 = 4 -> 2 > 1: the counter starts; i >= 3: 6 -> 3. The 15th consecutive
    # upscale decision (i = 16) adopts the current target, 3.
    assert acts == [(16, 2)]


# --- SLA planner ----------------------------------------------------------------------------------


def test_predictors() -> None:
    """Load predictors: constant = last; moving average of the window; ARIMA(1,1,0) follows a
    ramp (phi capped at 0.99); Kalman settles on a constant level."""
    p = SlaPlannerParams(window=3)
    h = [1.0, 2.0, 3.0, 4.0, 5.0]
    assert PREDICTORS.get("constant")(h, p) == 5.0
    assert PREDICTORS.get("moving_average")(h, p) == 4.0
    assert PREDICTORS.get("arima")(h, p) == pytest.approx(5.0 + 0.99)
    assert PREDICTORS.get("kalman")([7.0] * 10, p) == pytest.approx(7.0)


def test_sla_planner_sizes_from_profile_at_targets() -> None:
    """SLA planner: at the interval end, replicas = ceil(rate x (ISL/P + OSL/D)); with a queueing
    model of 1 s per request and batch 4, P = D = inf and 0.25 s per request: 30 req/s -> 8."""
    pol = SlaPlannerPolicy(SlaPlannerParams(adjustment_interval_s=60), min_workers=1)
    scen = SimpleNamespace(serving=SimpleNamespace(max_batch=4, mean_s=1.0))
    pol.profile = None
    from sim.policies.capacity import queueing
    pol.queue_capacity = queueing(1.0, 4)
    del scen
    assert pol.decide(obs(30, workers=1, arrived=900, prompt=9000, output=9000)).delta == 0
    d = pol.decide(obs(60, workers=1, arrived=1800, prompt=18000, output=18000))
    assert (d.action, d.delta) == ("scale_up", 7)


# --- parameters -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["knative", "hpa", "keda", "ray_serve", "skyserve", "sla_planner",
                                  "fixed_peak", "fixed_mean", "hindsight"])
def test_unknown_param_names_the_nearest(name: str) -> None:
    """Every baseline rejects an unknown ``autoscaler.params`` key with the field named."""
    with pytest.raises(ConfigError) as exc:
        POLICIES.get(name).check_params({"bogus_key": 1})
    assert exc.value.field == "autoscaler.params.bogus_key"


def test_param_types_and_bounds() -> None:
    """A wrong type or an out-of-range value names the field and what was expected."""
    with pytest.raises(ConfigError, match="expected a number > 0"):
        KnativePolicy.check_params({"stable_window_s": 0})
    with pytest.raises(ConfigError, match="expected concurrency | rps"):
        HpaPolicy.check_params({"metric": "cpu"})
    with pytest.raises(ConfigError, match="unknown load predictor"):
        SlaPlannerPolicy.check_params({"predictor": "prophet"})


# --- end to end -----------------------------------------------------------------------------------


def _scenario(policy: str, **params: Any) -> Any:
    from sim import scenario_from_dict
    from tests.helpers import small_scenario

    data = small_scenario("b", workers=1, requests=400, mean_s=2.0)
    data["workload"]["rate_per_s"] = 2.0
    data["autoscaler"] = {"policy": policy, "params": params, "decision_interval_s": 5}
    return scenario_from_dict(data)


@pytest.mark.parametrize("policy", ["knative", "hpa", "keda", "ray_serve", "skyserve",
                                    "sla_planner", "fixed_peak", "fixed_mean", "hindsight"])
def test_every_baseline_runs_and_conserves_requests(policy: str) -> None:
    """Each baseline runs end to end by name; every request ends completed, failed or in flight."""
    from sim import simulate

    params = {"utilisation": 0.8} if policy in ("fixed_peak", "fixed_mean", "hindsight") else {}
    r = simulate(_scenario(policy, **params), seed=3)
    req = r.summary["requests"]
    assert req["arrived"] == req["completed"] + req["failed"] + req["in_flight"] == 400
    assert r.summary["cost"]["total_usd"] > 0
    assert np.isfinite(r.summary["latency_e2e_s"]["p50"])


# --- hindsight optimum ----------------------------------------------------------------------------


@pytest.mark.parametrize(("billing_s", "worker_buckets"), [(1, 6), (300, 10)])
def test_hindsight_milp_lead_time_and_minimum_billing(billing_s: int, worker_buckets: int) -> None:
    """MILP by hand: need [0, 0, 2, 2, 0, 0] ready workers per 60 s bucket, a one-bucket cold
    start: two workers start in bucket 1 and are billed in buckets 1-3 (6 worker-buckets); with
    5-minute minimum billing each start is billed 5 buckets (10; starting in bucket 0 or 1
    costs the same)."""
    from sim import scenario_from_dict
    from sim.bench.demand import Demand, worker_offers
    from sim.bench.hindsight import solve
    from tests.helpers import small_scenario

    data = small_scenario("h", workers=0, requests=10, mean_s=1.0)
    data["fleet"] = {"billing_granularity_s": billing_s}
    sc = scenario_from_dict(data)
    dem = Demand(bucket_s=60, need=np.array([0, 0, 2, 2, 0, 0.0]), utilisation=1.0,
                 min_work_s=0.0, lead_s=60.0, max_workers=10)
    s = solve(sc, None, bucket_s=60, demand=dem)
    price = worker_offers(sc, 1, 60)[0].price_per_hour_usd
    assert s.billed.sum(axis=0)[2:4].tolist() == [2, 2]  # ready when needed
    assert s.cost_usd == pytest.approx(worker_buckets * price / 60)
    assert s.status == "optimal" and s.shortfall_worker_buckets == 0


def test_hindsight_shortfall_before_first_cold_start() -> None:
    """Need in bucket 0 with no warm worker and a one-bucket lead cannot be met: it is reported
    as a shortfall, not an infeasible model."""
    from sim import scenario_from_dict
    from sim.bench.demand import Demand
    from sim.bench.hindsight import solve
    from tests.helpers import small_scenario

    sc = scenario_from_dict(small_scenario("h", workers=0, requests=10, mean_s=1.0))
    dem = Demand(bucket_s=60, need=np.array([3.0, 1.0]), utilisation=1.0, min_work_s=0.0,
                 lead_s=60.0, max_workers=10)
    s = solve(sc, None, bucket_s=60, demand=dem)
    assert s.shortfall_worker_buckets == pytest.approx(3.0)
    assert s.billed.sum(axis=0).tolist() == [1, 1]


def test_readme_user_policy_example_runs(tmp_path: Any, monkeypatch: Any) -> None:
    """The README's ``module:Class`` example, copied verbatim, runs as ``autoscaler.policy``."""
    import re
    import sys
    from pathlib import Path

    from sim import simulate

    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("### Your own policy"):]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None
    (tmp_path / "queue_depth.py").write_text(code.group(1), encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("queue_depth", None)
    sc = _scenario("queue_depth:QueueDepthPolicy", per_worker=2)
    r = simulate(sc, seed=1)
    assert r.summary["requests"]["completed"] == 400
    assert (r.decisions.policy == "queue_depth").any()


def test_hindsight_milp_keeps_the_cheaper_initial_shape() -> None:
    """Two kinds by hand (60 s buckets, 1 s billing): the warm initial worker A ($1/h, not
    buyable) and the scale-up shape B ($3/h, twice A's SLO-feasible throughput, a one-bucket
    cold start). Need in B workers [0.5, 0.5, 1.5, 1.5]: A alone covers buckets 0-1; buckets
    2-3 take A + one B started in bucket 1. Cost (4 A-buckets × $1 + 3 B-buckets × $3) / 60."""
    from types import SimpleNamespace

    from sim import scenario_from_dict
    from sim.bench.demand import Demand
    from sim.bench.hindsight import solve
    from sim.bench.kinds import Kind
    from tests.helpers import small_scenario

    sc = scenario_from_dict(small_scenario("h", workers=1, requests=10, mean_s=1.0))
    a = Kind("initial:1xA", SimpleNamespace(gpu="A", gpus=1), 1.0, initial=1, buyable=False)
    b = Kind("on_demand", SimpleNamespace(gpu="B", gpus=1), 3.0)
    need_b = np.array([0.5, 0.5, 1.5, 1.5])
    dem = Demand(bucket_s=60, need=need_b, utilisation=1.0, min_work_s=0.0, lead_s=60.0,
                 max_workers=10, kinds=(a, b), need_by_kind=np.array([2 * need_b, need_b]),
                 lead_s_by_kind=(0.0, 60.0), utilisation_by_kind=(1.0, 1.0))
    s = solve(sc, None, bucket_s=60, demand=dem)
    assert s.billed.tolist() == [[1, 1, 1, 1], [0, 1, 1, 1]]
    assert s.cost_usd == pytest.approx((4 * 1.0 + 3 * 3.0) / 60)
    assert s.status == "optimal" and s.gap == 0 and s.shortfall_worker_buckets == 0


def test_hindsight_replay_on_70b_keeps_the_initial_worker() -> None:
    """On the 70B scenario the initial 4xA100-80GB worker ($11.16/h) is cheaper than the
    scale-up shape (8xA100, $19.42/h) and serves the load within the SLO: the MILP keeps it,
    and the replay costs no more than scalegen (which never scales there)."""
    from pathlib import Path

    from sim import simulate
    from sim.bench.demand import bucket_demand
    from sim.scenario import load_scenario

    path = Path(__file__).parents[1] / "scenarios" / "llama2_70b_4xa100_80gb.yaml"
    base = ["workload.duration_s=1800"]
    hs = simulate(load_scenario(path, [*base, "autoscaler.policy=hindsight",
                                       "autoscaler.params.utilisation=1.0"]), 1)
    sg = simulate(load_scenario(path, base), 1)
    from sim.bench.hindsight import solve
    from sim.rng import Streams
    from sim.workload import build_workload

    sc = load_scenario(path, base)
    s = solve(sc, build_workload(sc.workload, Streams(1), sc.base_dir),
              demand=bucket_demand(sc, build_workload(sc.workload, Streams(1), sc.base_dir), 60.0,
                                   utilisation=1.0))
    assert s.kinds[0] == "initial:4xA100-80GB" and s.prices[0] < s.prices[1]
    assert s.billed[0].min() == 1 and s.billed[1:].sum() == 0
    assert hs.summary["cost"]["total_usd"] <= sg.summary["cost"]["total_usd"] + 1e-9
    assert hs.summary["workers"]["cold_starts"] == 0


def test_unit_gaps_keep_burstiness_within_a_bucket_only() -> None:
    """Gaps of mean 1 per bucket: a Poisson stream at two rates gives exponential gaps (CV ~1,
    the rate step taken out); pairs of arrivals 1 ms apart keep their clustering (CV > 1)."""
    from types import SimpleNamespace

    from sim.bench.demand import unit_gaps

    rng = np.random.default_rng(0)
    slow = np.cumsum(rng.exponential(1.0, 3000))  # 1 req/s ...
    fast = slow[-1] + np.cumsum(rng.exponential(0.1, 30000))  # ... then 10 req/s
    g = unit_gaps(SimpleNamespace(arrival_s=np.concatenate([slow, fast])), 20000, rng)
    assert g.mean() == pytest.approx(1.0, abs=0.03) and g.std() / g.mean() == pytest.approx(1.0, abs=0.05)
    pairs = np.sort(np.concatenate([np.arange(0, 3000.0, 2.0), np.arange(0, 3000.0, 2.0) + 1e-3]))
    h = unit_gaps(SimpleNamespace(arrival_s=pairs), 1000, rng)
    assert h.mean() == pytest.approx(1.0, abs=0.01) and h.std() / h.mean() > 0.9
    assert np.sort(h)[:400].max() < 0.01  # half the gaps are the 1 ms ones
    few = unit_gaps(SimpleNamespace(arrival_s=np.arange(10.0)), 50, rng)  # too few: exponential
    assert len(few) == 50


def test_fleet_kinds_on_prem_with_cloudburst() -> None:
    """The on-prem scenario: 2 warm on-prem workers of an 8-GPU node (1 GPU each, $0.6/GPU-h)
    and room for 6 more, then the cloud's on-demand A100 (cloudburst) without a bound."""
    from pathlib import Path

    from sim.bench.kinds import fleet_kinds
    from sim.scenario import load_scenario

    sc = load_scenario(Path(__file__).parents[1] / "scenarios" / "onprem_8xa100_cloudburst.yaml")
    kinds = fleet_kinds(sc, 1, 60.0)
    assert [(k.name, k.label, k.initial, k.cap) for k in kinds] == [
        ("on_prem", "1xA100", 2, 8), ("on_demand", "1xA100", 0, None)]
    assert kinds[0].price_per_hour_usd == pytest.approx(0.6)
    assert kinds[1].price_per_hour_usd > kinds[0].price_per_hour_usd
