"""Property tests (hypothesis) of whole runs on random small scenarios (DESIGN §9).

Each example builds a small scenario (random rate, fleet bounds, timeouts, service model,
policy, horizon, spot with hazard preemption on or off) and checks what must hold for every
run: conservation of requests, non-negative latencies in the right order, the worker count
within its bounds, determinism under a seed, and cost growing with price.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from sim import scenario_from_dict, simulate

MODEL = "meta-llama/Meta-Llama-3-8B"
EPS = 1e-9  # float slack on event times

PROPERTY_SETTINGS = settings(
    max_examples=30,
    deadline=None,
    derandomize=True,  # the same examples on every run: a green suite stays green
    suppress_health_check=[HealthCheck.too_slow],
)


@st.composite
def scenarios(draw: st.DrawFn, spot_heavy: bool = False) -> dict[str, Any]:
    """A random small scenario as a dict (valid by construction); ``spot_heavy``: spot workers
    that get preempted often."""
    min_workers = draw(st.integers(1 if spot_heavy else 0, 3))
    max_workers = draw(st.integers(max(min_workers, 1), min_workers + 3))
    kind = draw(st.sampled_from(["exponential", "fixed", "llm"]))
    policy = draw(st.sampled_from(["scalegen", "fixed"]))
    lower = draw(st.floats(0.0, 2.0))
    upper = lower + draw(st.floats(0.1, 5.0))
    spot = spot_heavy or draw(st.booleans())
    preempt = spot_heavy or draw(st.booleans())
    serving: dict[str, Any] = {"kind": kind, "max_batch": draw(st.integers(1, 8))}
    if kind == "llm":
        serving["mode"] = draw(st.sampled_from(["fast", "exact"]))
        prompt: Any = {"dist": "lognormal", "mean": draw(st.integers(20, 400)), "cv": 0.5}
        output: Any = {"dist": "lognormal", "mean": draw(st.integers(5, 100)), "cv": 0.5}
    else:
        serving["mean_s"] = draw(st.floats(0.1, 3.0))
        prompt, output = 10, 10
    horizon = draw(st.floats(20.0, 600.0)) if draw(st.booleans()) else None
    return {
        "name": "prop",
        "deployment": {
            "name": "prop",
            "model": MODEL,
            "allow_spot_instances": spot,
            "initial_worker_config": {
                "min_workers": min_workers,
                "initial_workers_gpu": "A100",
                "initial_workers_gpu_num": 1,
            },
            "autoscaling_config": {
                "time_window_sec": draw(st.integers(5, 120)),
                "lower_allowed_latency_sec": lower,
                "upper_allowed_latency_sec": upper,
                "scaling_up_timeout_sec": draw(st.integers(1, 120)),
                "scaling_down_timeout_sec": draw(st.integers(1, 120)),
                "scale_to_zero_timeout_sec": draw(st.integers(1, 300)),
            },
        },
        "workload": {
            "kind": "poisson",
            "rate_per_s": draw(st.floats(0.05, 3.0)),
            "requests": draw(st.integers(2, 400)),
            "prompt_tokens": prompt,
            "output_tokens": output,
        },
        "serving": serving,
        "gateway": {"request_timeout_s": draw(st.floats(1.0, 600.0))},
        "autoscaler": {
            "policy": policy,
            "max_workers": max_workers,
            "decision_interval_s": draw(st.sampled_from([1.0, 5.0, 10.0])),
            "timeout_semantics": draw(st.sampled_from(["cooldown", "sustained", "stabilization"])),
        },
        "fleet": {
            "cold_start": {
                "provision_s": {"median": draw(st.floats(1.0, 60.0)), "sigma": 0.5},
                "image_pull_s": draw(st.floats(0.0, 30.0)),
                "engine_start_s": draw(st.floats(0.0, 30.0)),
                "weight_download_gb_per_s": 5.0,
            },
            "spot": {
                "preemption": {
                    "kind": "hazard" if preempt else "none",
                    "mean_time_to_preemption_s": draw(st.floats(20.0, 300.0)),
                },
                "notice_s": draw(st.floats(0.0, 30.0)),
                "on_preempt": draw(st.sampled_from(["retry", "fail"])),
            },
        },
        "sim": {"horizon_s": horizon, "max_drain_s": 600.0},
    }


def check_run(res: Any, data: dict[str, Any]) -> None:
    """Invariants of one finished run."""
    s = res.summary
    req = res.requests
    r = s["requests"]
    # Conservation: every arrived request ends completed, failed or in flight.
    assert r["arrived"] == len(req)
    assert r["arrived"] == r["completed"] + r["failed"] + r["in_flight"]
    status = req["status"].astype(str)
    assert set(status) <= {"completed", "failed", "in_flight"}
    assert (status == "completed").sum() == r["completed"]
    assert (status == "failed").sum() == r["failed"]
    failed = status == "failed"
    assert (req.loc[failed, "fail_reason"].astype(str) != "").all()
    assert (req.loc[~failed, "fail_reason"].astype(str) == "").all()
    assert req.loc[status == "in_flight", "completion_s"].isna().all()
    assert req.loc[status != "in_flight", "completion_s"].notna().all()
    horizon = s["sim"]["horizon_s"]
    if data["sim"]["horizon_s"] is None:
        # Without a horizon the run drains: only requests still running after max_drain_s remain.
        assert horizon <= req["arrival_s"].max() + data["sim"]["max_drain_s"] + EPS
    else:
        assert horizon == pytest.approx(data["sim"]["horizon_s"])
    assert (req["arrival_s"] <= horizon + EPS).all()
    # Latencies are non-negative and ordered: arrival <= dispatch <= first token <= completion.
    done = req[status == "completed"]
    for col in ("e2e_s", "ttft_s", "queue_s"):
        assert (done[col] >= -EPS).all(), col
    assert (done["dispatch_s"] <= done["first_token_s"] + EPS).all()
    assert (done["first_token_s"] <= done["completion_s"] + EPS).all()
    assert (req["completion_s"].dropna() <= horizon + EPS).all()
    for key in ("latency_e2e_s", "ttft_s", "queue_s"):
        v = s[key]["p50"]
        assert v is None or v >= -EPS
    # The worker count stays within [min_workers, max_workers] (no price cap in these runs).
    tl = res.timeline
    n = tl["workers_total"].to_numpy()
    max_workers = data["autoscaler"]["max_workers"]
    min_workers = data["deployment"]["initial_worker_config"]["min_workers"]
    assert n.min() >= 0 and n.max() <= max_workers
    assert (n >= min_workers).all(), tl
    assert s["workers"]["max"] <= max_workers
    # Workers: lifecycle times in order; billed time and cost non-negative.
    w = res.workers
    assert (w["billed_s"] >= 0).all() and (w["cost_usd"] >= 0).all()
    for a, b in (
        ("requested_s", "provisioned_s"),
        ("provisioned_s", "ready_s"),
        ("requested_s", "terminated_s"),
    ):
        both = w[[a, b]].dropna()
        assert (both[a] <= both[b] + EPS).all(), (a, b)
    if not data["deployment"]["allow_spot_instances"]:
        assert not w["spot"].any()
    assert s["cost"]["total_usd"] == pytest.approx(w["cost_usd"].sum())
    assert s["cost"]["total_usd"] >= 0


@PROPERTY_SETTINGS
@given(data=scenarios(), seed=st.integers(0, 2**16))
def test_random_scenarios_invariants_and_determinism(data: dict[str, Any], seed: int) -> None:
    """Conservation, latency order, worker bounds hold; the same seed gives identical DataFrames."""
    _check_scenario(data, seed)


@settings(PROPERTY_SETTINGS, max_examples=20)
@given(data=scenarios(spot_heavy=True), seed=st.integers(0, 2**16))
def test_spot_preemption_scenarios_invariants(data: dict[str, Any], seed: int) -> None:
    """With frequent spot preemptions (retry or fail), the same invariants and determinism hold."""
    _check_scenario(data, seed)


@settings(PROPERTY_SETTINGS, max_examples=20)
@given(data=scenarios(), spot_heavy=st.booleans(), seed=st.integers(0, 2**16))
def test_llm_fast_equals_exact_on_random_scenarios(
    data: dict[str, Any], spot_heavy: bool, seed: int
) -> None:
    """Fast and exact LLM modes agree per request (to 1e-9) under autoscaling, timeouts and preemption."""
    # Regression test: simultaneous joins at a segment start used to diverge (fixed in 0df7313).
    data = copy.deepcopy(data)
    data["serving"] = {"kind": "llm", "max_batch": data["serving"]["max_batch"]}
    data["workload"]["prompt_tokens"] = {"dist": "lognormal", "mean": 200, "cv": 0.5}
    data["workload"]["output_tokens"] = {"dist": "lognormal", "mean": 50, "cv": 0.5}
    if spot_heavy:
        data["deployment"]["allow_spot_instances"] = True
        data["fleet"]["spot"]["preemption"]["kind"] = "hazard"
    res = {}
    for mode in ("fast", "exact"):
        data["serving"]["mode"] = mode
        res[mode] = simulate(scenario_from_dict(data), seed=seed)
    a, b = res["fast"].requests, res["exact"].requests
    assert list(a["status"]) == list(b["status"])
    for col in ("dispatch_s", "first_token_s", "completion_s"):
        np.testing.assert_allclose(a[col], b[col], rtol=1e-9, err_msg=col)


@settings(PROPERTY_SETTINGS, max_examples=20)
@given(
    data=scenarios(),
    prompt_mean=st.integers(200, 3000),
    output_mean=st.integers(1, 20),
    seed=st.integers(0, 2**16),
)
def test_llm_long_prompts_keep_time_order(
    data: dict[str, Any], prompt_mean: int, output_mean: int, seed: int
) -> None:
    """LLM runs with long prompts and short outputs under queueing keep all invariants (first token <= completion)."""
    # Regression test for free prefills on queue refills (fixed in bc1e562).
    data = copy.deepcopy(data)
    data["serving"] = {"kind": "llm", "max_batch": data["serving"]["max_batch"]}
    data["workload"]["rate_per_s"] = max(data["workload"]["rate_per_s"], 1.0)
    data["workload"]["prompt_tokens"] = {"dist": "lognormal", "mean": prompt_mean, "cv": 0.8}
    data["workload"]["output_tokens"] = {"dist": "lognormal", "mean": output_mean, "cv": 0.8}
    check_run(simulate(scenario_from_dict(data), seed=seed), data)


def _check_scenario(data: dict[str, Any], seed: int) -> None:
    sc = scenario_from_dict(data)
    a = simulate(sc, seed=seed)
    check_run(a, data)
    # What the example exercised (shown with --hypothesis-show-statistics).
    s = a.summary
    for name, hit in (
        ("preemption", s["workers"]["preemptions"] > 0),
        ("timeout", s["requests"]["failed_by_reason"]["timeout"] > 0),
        ("in flight at horizon", s["requests"]["in_flight"] > 0),
        ("retried", s["requests"]["retried"] > 0),
        ("scale-up", s["workers"]["scale_ups"] > 0),
        ("scale-down", s["workers"]["scale_downs"] > 0),
    ):
        if hit:
            event(name)
    b = simulate(sc, seed=seed)
    pd.testing.assert_frame_equal(a.requests, b.requests)
    pd.testing.assert_frame_equal(a.workers, b.workers)
    pd.testing.assert_frame_equal(a.decisions, b.decisions)
    pd.testing.assert_frame_equal(a.timeline, b.timeline)


@PROPERTY_SETTINGS
@given(
    rate=st.floats(0.1, 10.0),
    n=st.integers(3, 200),
    seed=st.integers(0, 2**16),
)
def test_different_seeds_give_different_arrivals(rate: float, n: int, seed: int) -> None:
    """Two seeds give different Poisson arrival times (the seed reaches the arrival stream)."""
    data = {
        "name": "seeds",
        "deployment": {
            "name": "seeds",
            "model": MODEL,
            "initial_worker_config": {
                "min_workers": 1,
                "initial_workers_gpu": "A100",
                "initial_workers_gpu_num": 1,
            },
        },
        "workload": {
            "kind": "poisson",
            "rate_per_s": rate,
            "requests": n,
            "prompt_tokens": 1,
            "output_tokens": 1,
        },
        "serving": {"kind": "fixed", "mean_s": 0.01, "max_batch": 1},
        "autoscaler": {"policy": "fixed"},
    }
    sc = scenario_from_dict(data)
    a = simulate(sc, seed=seed).requests["arrival_s"].to_numpy()
    b = simulate(sc, seed=seed + 1).requests["arrival_s"].to_numpy()
    assert len(a) == len(b) == n
    assert not np.array_equal(a, b)


CATALOG_HEADER = (
    "cloud,region,zone,instance_type,gpu,gpus,vcpus,on_demand_usd_per_h,spot_usd_per_h\n"
)


@pytest.fixture(scope="module")
def catalogs(tmp_path_factory: pytest.TempPathFactory) -> dict[float, str]:
    """Two user catalogs with one 1 x A100 offer at $2/h and at $2/h x 3."""
    out = {}
    folder = tmp_path_factory.mktemp("catalogs")
    for factor in (1.0, 3.0):
        p = folder / f"catalog_x{factor:g}.csv"
        od, spot = 2.0 * factor, 0.8 * factor
        p.write_text(CATALOG_HEADER + f"AWS,us-east-1,use1-az1,test.a100,A100,1,12,{od},{spot}\n")
        out[factor] = str(p)
    return out


@PROPERTY_SETTINGS
@given(
    rate=st.floats(0.2, 4.0),
    min_workers=st.integers(0, 2),
    spot=st.booleans(),
    seed=st.integers(0, 1000),
)
def test_cost_grows_with_price(
    catalogs: dict[float, str], rate: float, min_workers: int, spot: bool, seed: int
) -> None:
    """Tripling every price in the catalog triples the cost of the same run (and changes nothing else)."""
    costs = {}
    frames = {}
    for factor, path in catalogs.items():
        data = {
            "name": "price",
            "deployment": {
                "name": "price",
                "model": MODEL,
                "allow_spot_instances": spot,
                "initial_worker_config": {
                    "min_workers": min_workers,
                    "initial_workers_gpu": "A100",
                    "initial_workers_gpu_num": 1,
                },
            },
            "workload": {
                "kind": "poisson",
                "rate_per_s": rate,
                "requests": 100,
                "prompt_tokens": 1,
                "output_tokens": 1,
            },
            "serving": {"kind": "exponential", "mean_s": 1.0, "max_batch": 1},
            "fleet": {
                "catalog": path,
                "cold_start": {"provision_s": 20, "image_pull_s": 10, "engine_start_s": 10},
                "spot": {"preemption": {"kind": "none"}},
            },
            "autoscaler": {"max_workers": 4},
        }
        res = simulate(scenario_from_dict(data), seed=seed)
        costs[factor] = res.summary["cost"]["total_usd"]
        frames[factor] = res
        price = res.workers["price_per_hour_usd"].to_numpy()
        np.testing.assert_allclose(price, (0.8 if spot else 2.0) * factor, rtol=1e-12)
    pd.testing.assert_frame_equal(frames[1.0].requests, frames[3.0].requests)
    if costs[1.0] > 0:
        assert costs[3.0] == pytest.approx(3 * costs[1.0], rel=1e-9)
        assert costs[3.0] > costs[1.0]
    else:
        assert costs[3.0] == 0
    assert math.isfinite(costs[3.0])


def test_cost_grows_with_price_across_gpu_types() -> None:
    """Same queueing run on a dearer GPU type (H100 vs A100) costs more, in proportion to the price."""
    res = {}
    for gpu in ("A100", "H100"):
        data = {
            "name": "gpu",
            "deployment": {
                "name": "gpu",
                "model": MODEL,
                "initial_worker_config": {
                    "min_workers": 2,
                    "initial_workers_gpu": gpu,
                    "initial_workers_gpu_num": 1,
                },
            },
            "workload": {
                "kind": "poisson",
                "rate_per_s": 1.0,
                "requests": 200,
                "prompt_tokens": 1,
                "output_tokens": 1,
            },
            "serving": {"kind": "fixed", "mean_s": 0.5, "max_batch": 1},
            "autoscaler": {"policy": "fixed"},
        }
        res[gpu] = simulate(scenario_from_dict(data), seed=1)
    pa = res["A100"].workers["price_per_hour_usd"].iloc[0]
    ph = res["H100"].workers["price_per_hour_usd"].iloc[0]
    assert ph > pa
    ca, ch = res["A100"].summary["cost"]["total_usd"], res["H100"].summary["cost"]["total_usd"]
    assert ch == pytest.approx(ca * ph / pa, rel=1e-9)
