"""Unit tests of the engine (sim/engine): gateway, worker lifecycle, control loop, service models.

Workloads are tiny and deterministic: ``trace`` workloads from small CSVs written to tmp_path
(arrivals are shifted so that the first one is at t = 0), or Poisson arrivals with a fixed
service time. Cold starts are made constant (sigma 0) so that every time can be computed by hand.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from sim import scenario_from_dict, simulate

MODEL = "meta-llama/Meta-Llama-3-8B"
REPO = Path(__file__).resolve().parents[1]
AZURE_CONV = REPO / ".." / "shared" / "data" / "azure_llm_2023" / "AzureLLMInferenceTrace_conv.csv"

# Constant cold-start stages: provisioning 100 s, then loading 50 + 0 + 30 = 80 s (the plain
# queueing models carry no weights, so the weight download takes no time).
PROVISION_S, PULL_S, ENGINE_S = 100.0, 50.0, 30.0
COLD = {"provision_s": PROVISION_S, "image_pull_s": PULL_S, "engine_start_s": ENGINE_S}


def merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge ``patch`` into a copy of ``base`` (mappings merge, everything else replaces)."""
    out = copy.deepcopy(base)
    for k, v in patch.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def write_trace(tmp_path: Path, rows: list[tuple[float, int, int]], name: str = "t.csv") -> str:
    """A generic CSV trace (arrival seconds, prompt tokens, output tokens); returns its path."""
    p = tmp_path / name
    p.write_text("arrival,prompt,output\n" + "".join(f"{a},{pr},{o}\n" for a, pr, o in rows))
    return str(p)


def scenario(workload: dict[str, Any], **patch: Any) -> Any:
    """A queueing scenario (fixed 1 s service, one server per worker) patched by ``patch``."""
    base: dict[str, Any] = {
        "name": "unit",
        "deployment": {
            "name": "unit",
            "model": MODEL,
            "initial_worker_config": {
                "min_workers": 1,
                "initial_workers_gpu": "A100",
                "initial_workers_gpu_num": 1,
            },
        },
        "workload": workload,
        "serving": {"kind": "fixed", "mean_s": 1.0, "max_batch": 1},
        "fleet": {"cold_start": COLD},
    }
    return scenario_from_dict(merge(base, patch))


# One request every 20 s on average for 1000 s: a near-idle workload for control-loop tests.
SPARSE: dict[str, Any] = {
    "kind": "poisson", "rate_per_s": 0.05, "duration_s": 1000, "prompt_tokens": 1,
    "output_tokens": 1,
}


def trace(path: str) -> dict[str, Any]:
    """A trace workload section for a generic CSV."""
    return {"kind": "trace", "path": path, "format": "csv"}


def llm_scenario(workload: dict[str, Any], mode: str = "fast", **patch: Any) -> Any:
    """Llama-3-8B on 1 x A100 with continuous batching (built-in profile)."""
    return scenario(
        workload,
        **merge({"serving": {"kind": "llm", "mode": mode, "max_batch": 256}}, patch),
    )


def profile() -> Any:
    """The built-in profile of Llama-3-8B on 1 x A100 (what the engine uses)."""
    from sim.serving.profiles import get_profile

    return get_profile(MODEL, "A100", 1)


# --- gateway -------------------------------------------------------------------------------------


def test_fifo_dispatch_order_single_worker(tmp_path: Path) -> None:
    """One worker, 1 s service: requests are dispatched in arrival order, back to back."""
    path = write_trace(tmp_path, [(0.0, 10, 10), (0.1, 10, 10), (0.2, 10, 10), (0.3, 10, 10)])
    res = simulate(scenario(trace(path), autoscaler={"policy": "fixed"}), seed=1)
    req = res.requests
    np.testing.assert_allclose(req["dispatch_s"], [0.0, 1.0, 2.0, 3.0])
    np.testing.assert_allclose(req["completion_s"], [1.0, 2.0, 3.0, 4.0])
    assert (req["status"] == "completed").all()


def test_fifo_dispatch_order_under_load() -> None:
    """Under heavy load on 3 workers, dispatch times are non-decreasing in arrival order (one FIFO queue)."""
    sc = scenario(
        {
            "kind": "poisson",
            "rate_per_s": 2.9,
            "requests": 3000,
            "prompt_tokens": 1,
            "output_tokens": 1,
        },
        deployment={"initial_worker_config": {"min_workers": 3}},
        serving={"kind": "exponential"},
        autoscaler={"policy": "fixed"},
        gateway={"request_timeout_s": 1e6},
    )
    req = simulate(sc, seed=4).requests
    assert req["queue_s"].max() > 5  # the queue really builds up
    d = req["dispatch_s"].to_numpy()
    assert np.all(np.diff(d) >= 0)


def test_request_timeout_fails_at_arrival_plus_timeout(tmp_path: Path) -> None:
    """A request waiting longer than request_timeout_s fails with reason timeout at exactly arrival + timeout."""
    path = write_trace(tmp_path, [(0.0, 10, 10), (1.0, 10, 10), (2.5, 10, 10)])
    sc = scenario(
        trace(path),
        serving={"mean_s": 100.0},
        gateway={"request_timeout_s": 10.0},
        autoscaler={"policy": "fixed"},
    )
    req = simulate(sc, seed=1).requests
    assert list(req["status"]) == ["completed", "failed", "failed"]
    assert list(req["fail_reason"]) == ["", "timeout", "timeout"]
    assert req["completion_s"].tolist()[1:] == [11.0, 12.5]
    assert req["dispatch_s"].iloc[1:].isna().all()


def test_request_not_timed_out_when_dispatched_in_time(tmp_path: Path) -> None:
    """A request dispatched within its timeout is served, even if it then runs longer than the timeout."""
    path = write_trace(tmp_path, [(0.0, 10, 10), (0.0, 10, 10)])
    sc = scenario(
        trace(path),
        serving={"mean_s": 9.0},
        gateway={"request_timeout_s": 10.0},
        autoscaler={"policy": "fixed"},
    )
    req = simulate(sc, seed=1).requests
    assert (req["status"] == "completed").all()
    np.testing.assert_allclose(req["completion_s"], [9.0, 18.0])


def test_request_larger_than_kv_cache_fails_too_large(tmp_path: Path) -> None:
    """A request whose prompt + output exceed the worker's KV cache fails too_large; its neighbours are served."""
    kv = profile().kv_capacity_tokens
    path = write_trace(tmp_path, [(0.0, 10, 10), (1.0, kv, 1), (2.0, 10, 10)])
    # No context-length limit (max_model_len 0), so that only the KV cache bounds a request.
    no_ctx = {"serving": {"max_model_len": 0}}
    req = simulate(llm_scenario(trace(path), **no_ctx), seed=1).requests
    assert list(req["status"]) == ["completed", "failed", "completed"]
    assert req["fail_reason"].iloc[1] == "too_large"
    assert req["completion_s"].iloc[1] == 1.0
    # Exactly at capacity still fits.
    path2 = write_trace(tmp_path, [(0.0, kv - 1, 1)], name="fits.csv")
    req2 = simulate(llm_scenario(trace(path2), **no_ctx), seed=1).requests
    assert req2["status"].iloc[0] == "completed"


@pytest.mark.parametrize(("model", "served"), [
    ("meta-llama/Meta-Llama-3-8B", False),  # 8,192-token context
    ("meta-llama/Llama-3.1-8B-Instruct", True),  # 131,072 tokens, same architecture
])
def test_context_length_rejects_on_arrival(tmp_path: Path, model: str, served: bool) -> None:
    """A 9,000-token request fails too_large at its arrival on Llama-3-8B (8k context), and is served on Llama-3.1-8B."""
    path = write_trace(tmp_path, [(0.0, 8900, 100), (1.0, 100, 10)])
    res = simulate(llm_scenario(trace(path), deployment={"model": model}), seed=1)
    req = res.requests
    assert req["status"].iloc[1] == "completed"
    if served:
        assert req["status"].iloc[0] == "completed"
    else:
        assert req["status"].iloc[0] == "failed" and req["fail_reason"].iloc[0] == "too_large"
        assert req["completion_s"].iloc[0] == 0.0
        assert any("8,192-token context" in w for w in res.summary["warnings"])


# --- worker lifecycle, billing, control loop -----------------------------------------------------


def _from_zero_scenario(tmp_path: Path, **patch: Any) -> Any:
    """min_workers 0, one request at t = 0, a horizon of 500 s."""
    path = write_trace(tmp_path, [(0.0, 10, 10)])
    base = {
        "deployment": {
            "initial_worker_config": {"min_workers": 0},
            "autoscaling_config": {"scale_to_zero_timeout_sec": 60},
        },
        "sim": {"horizon_s": 500.0},
    }
    return scenario(trace(path), **merge(base, patch))


def test_scale_from_zero_and_cold_start_stage_timing(tmp_path: Path) -> None:
    """From zero, a waiting request gets a worker at the next tick; ready = requested + provisioning + loading."""
    res = simulate(_from_zero_scenario(tmp_path), seed=1)
    w = res.workers
    assert len(w) == 1
    w0 = w.iloc[0]
    assert not w0["initial"]
    assert w0["requested_s"] == 0.0  # the first tick is at t = 0 and sees the request waiting
    assert w0["provisioned_s"] == w0["requested_s"] + PROVISION_S
    assert w0["ready_s"] == w0["requested_s"] + PROVISION_S + PULL_S + ENGINE_S
    d = res.decisions
    assert d.iloc[0]["action"] == "from_zero" and d.iloc[0]["delta"] == 1
    r = res.requests.iloc[0]
    assert r["dispatch_s"] == w0["ready_s"]
    assert r["completion_s"] == w0["ready_s"] + 1.0
    assert res.summary["workers"]["cold_starts"] == 1
    assert res.summary["workers"]["cold_start_mean_s"] == pytest.approx(180.0)


def test_cold_start_weight_download_uses_model_size(tmp_path: Path) -> None:
    """For an LLM worker, loading adds weights_gb / weight_download_gb_per_s to the constant stages."""
    from sim.serving.models import resolve_model

    weights = resolve_model(MODEL).weights_gb
    path = write_trace(tmp_path, [(0.0, 10, 10)])
    sc = llm_scenario(
        trace(path),
        deployment={"initial_worker_config": {"min_workers": 0}},
        fleet={"cold_start": {"weight_download_gb_per_s": 0.5}},
    )
    w0 = simulate(sc, seed=1).workers.iloc[0]
    assert w0["ready_s"] - w0["provisioned_s"] == pytest.approx(PULL_S + ENGINE_S + weights / 0.5)


def test_scale_up_from_shared_warm_pool_uses_warm_stages(tmp_path: Path) -> None:
    """With enable_speedup_shared, scale-ups take the warm-pool stages (no VM provisioning, cached image)."""
    from sim.serving.models import resolve_model

    weights = resolve_model(MODEL).weights_gb
    path = write_trace(tmp_path, [(0.0, 10, 10)])
    sc = llm_scenario(
        trace(path),
        deployment={
            "initial_worker_config": {"min_workers": 0},
            "autoscaling_config": {"enable_speedup_shared": True},
        },
        fleet={
            "cold_start": {
                "warm_pool": {
                    "provision_s": 0,
                    "image_pull_s": 0,
                    "engine_start_s": 20,
                    "weight_download_gb_per_s": 4.0,
                }
            }
        },
    )
    w0 = simulate(sc, seed=1).workers.iloc[0]
    assert w0["provisioned_s"] == w0["requested_s"]
    assert w0["ready_s"] - w0["requested_s"] == pytest.approx(20.0 + weights / 4.0)


def test_billing_runs_from_provisioned_to_terminated(tmp_path: Path) -> None:
    """A worker is billed from the end of provisioning to its termination, at its hourly price."""
    res = simulate(_from_zero_scenario(tmp_path), seed=1)
    w0 = res.workers.iloc[0]
    assert math.isfinite(w0["terminated_s"])
    assert w0["billed_s"] == pytest.approx(w0["terminated_s"] - w0["provisioned_s"])
    assert w0["cost_usd"] == pytest.approx(w0["billed_s"] / 3600 * w0["price_per_hour_usd"])
    assert res.summary["cost"]["total_usd"] == pytest.approx(w0["cost_usd"])


def test_scale_to_zero_after_timeout_without_arrivals(tmp_path: Path) -> None:
    """With min_workers 0 the pool drains to zero once idle (nothing waiting or in flight) for scale_to_zero_timeout_sec."""
    res = simulate(_from_zero_scenario(tmp_path), seed=1)
    d = res.decisions
    to_zero = d[d["action"] == "to_zero"]
    assert len(to_zero) >= 1
    first = to_zero.iloc[0]
    # The request waits for the cold start until t = 180 and runs 1 s; idle from 181, so the
    # first tick >= 181 + 60 is 250 (the old reading, timed from the arrival, drained at 180
    # while the request still ran).
    assert first["time_s"] == 250.0
    w0 = res.workers.iloc[0]
    assert w0["end_reason"] == "scale_to_zero"
    assert w0["drain_s"] == 250.0
    assert w0["terminated_s"] == 250.0
    assert res.requests["status"].iloc[0] == "completed"
    tl = res.timeline
    assert tl["workers_total"].iloc[-1] == 0


def test_scale_to_zero_idle_worker_exactly_at_timeout(tmp_path: Path) -> None:
    """An idle worker is drained at the first tick at least scale_to_zero_timeout_sec after the last arrival."""
    path = write_trace(tmp_path, [(0.0, 10, 10), (3.0, 10, 10)])
    sc = scenario(
        trace(path),
        deployment={"autoscaling_config": {"scale_to_zero_timeout_sec": 60}},
        updates=[{"at_s": 5.0, "body": {"initial_worker_config": {"min_workers": 0}}}],
        sim={"horizon_s": 200.0},
    )
    res = simulate(sc, seed=1)
    d = res.decisions
    to_zero = d[d["action"] == "to_zero"]
    assert to_zero["time_s"].tolist() == [70.0]  # ticks every 10 s; last arrival at 3 s
    w0 = res.workers.iloc[0]
    assert w0["end_reason"] == "scale_to_zero"
    assert w0["terminated_s"] == 70.0
    assert w0["billed_s"] == pytest.approx(70.0)
    tl = res.timeline
    assert tl.loc[tl["time_s"] >= 70.0, "workers_total"].max() == 0
    assert len(res.workers) == 1  # nothing starts again without arrivals


def test_no_scale_up_from_zero_without_waiting_requests(tmp_path: Path) -> None:
    """After scaling to zero, nothing is started again until a request arrives (no scale_up on a stale window)."""
    sc = _from_zero_scenario(
        tmp_path,
        deployment={"autoscaling_config": {"scaling_up_timeout_sec": 60}},
        sim={"horizon_s": 1000.0},
    )
    res = simulate(sc, seed=1)
    d = res.decisions
    t0 = d.loc[d["action"] == "to_zero", "time_s"].min()
    after = d[(d["time_s"] > t0) & (d["delta"] > 0)]
    assert after.empty, after
    # (While the first request waits for the cold start, its growing age scales up at 60 and
    # 120 with count_waiting; none of those workers is requested after the drain.)
    assert (res.workers.requested_s < t0).all()


def test_timeline_counts_requested_workers(tmp_path: Path) -> None:
    """Timeline N (workers_total) includes a worker from the moment it is requested (DESIGN §4: requested..ready)."""
    res = simulate(_from_zero_scenario(tmp_path), seed=1)
    tl = res.timeline
    w0 = res.workers.iloc[0]
    at = tl[tl["time_s"] <= w0["requested_s"]].iloc[-1]
    assert at["workers_total"] == 1, tl


def test_scale_up_cold_start_timing_and_cooldown() -> None:
    """Latency-triggered scale-ups: each new worker is requested at its decision tick, ready after provisioning + loading, and scale-ups are at least scaling_up_timeout_sec apart."""
    sc = scenario(
        {
            "kind": "poisson",
            "rate_per_s": 3.0,
            "duration_s": 600,
            "prompt_tokens": 1,
            "output_tokens": 1,
        },
        deployment={"autoscaling_config": {"scaling_up_timeout_sec": 60}},
        autoscaler={"metric": "e2e", "max_workers": 5},
        gateway={"request_timeout_s": 1e6},
        sim={"horizon_s": 900.0},
    )
    res = simulate(sc, seed=1)
    d = res.decisions
    ups = d[d["action"] == "scale_up"]
    assert len(ups) >= 2
    assert (ups["statistic"] > 4.0).all()  # S above upper_allowed_latency_sec (default 4)
    assert (np.diff(ups["time_s"].to_numpy()) >= 60.0).all()
    new = res.workers[~res.workers["initial"]].reset_index(drop=True)
    assert new["requested_s"].tolist() == ups["time_s"].tolist()
    np.testing.assert_allclose(new["provisioned_s"], new["requested_s"] + PROVISION_S)
    np.testing.assert_allclose(new["ready_s"], new["requested_s"] + PROVISION_S + PULL_S + ENGINE_S)
    assert res.timeline["workers_total"].max() <= 5


def test_floor_adds_workers_after_min_workers_raised(tmp_path: Path) -> None:
    """Floor: after an update raises min_workers above N, the next tick requests the difference at once."""
    sc = scenario(
        SPARSE,
        deployment={"initial_worker_config": {"min_workers": 2}},
        updates=[{"at_s": 45, "body": {"initial_worker_config": {"min_workers": 5}}}],
        sim={"horizon_s": 600.0},
    )
    res = simulate(sc, seed=1)
    d = res.decisions
    floor = d[d["action"] == "floor"]
    assert len(floor) == 1
    assert floor.iloc[0]["time_s"] == 50.0 and floor.iloc[0]["delta"] == 3
    new = res.workers[~res.workers["initial"]]
    assert len(new) == 3
    assert (new["requested_s"] == 50.0).all()
    assert (new["ready_s"] == 50.0 + PROVISION_S + PULL_S + ENGINE_S).all()
    assert res.timeline["workers_total"].iloc[-1] == 5


def test_scale_down_respects_new_floor(tmp_path: Path) -> None:
    """After min_workers is lowered (not immediately), idle workers drain one per cooldown, down to the new floor."""
    sc = scenario(
        SPARSE,
        deployment={
            "initial_worker_config": {"min_workers": 5},
            "autoscaling_config": {"scaling_down_timeout_sec": 60},
        },
        serving={"mean_s": 0.1},
        updates=[{"at_s": 5, "body": {"initial_worker_config": {"min_workers": 2}}}],
        sim={"horizon_s": 1000.0},
    )
    res = simulate(sc, seed=1)
    d = res.decisions
    downs = d[d["action"] == "scale_down"]
    assert downs["time_s"].tolist() == [60.0, 120.0, 180.0]
    assert (downs["delta"] == -1).all()
    tl = res.timeline
    assert tl["workers_total"].min() == 2
    assert tl["workers_total"].iloc[-1] == 2


def test_update_with_imidiate_scale_down_drains_to_new_min(tmp_path: Path) -> None:
    """An update with imidiate_scale_down drains the surplus down to the new min_workers at at_s."""
    sc = scenario(
        SPARSE,
        deployment={"initial_worker_config": {"min_workers": 4}},
        serving={"mean_s": 0.1},
        updates=[
            {
                "at_s": 100.0,
                "body": {"initial_worker_config": {"min_workers": 1}, "imidiate_scale_down": True},
            }
        ],
        sim={"horizon_s": 500.0},
    )
    res = simulate(sc, seed=1)
    w = res.workers
    drained = w[w["end_reason"] == "update"]
    assert len(drained) == 3
    assert (drained["drain_s"] == 100.0).all()
    kept = w[w["end_reason"] != "update"]
    assert len(kept) == 1 and kept.iloc[0]["end_reason"] == "horizon"
    d = res.decisions
    upd = d[d["action"] == "update"].iloc[0]
    assert upd["time_s"] == 100.0 and upd["delta"] == -3
    tl = res.timeline
    assert tl.loc[tl["time_s"] >= 100.0, "workers_total"].max() == 1
    # The drained workers are billed up to their termination only.
    assert drained["billed_s"].max() <= 101.0


def test_horizon_cuts_run_and_counts_in_flight() -> None:
    """horizon_s ends the run: later arrivals are not counted, unfinished requests are in_flight."""
    horizon = 50.0
    sc = scenario(
        {
            "kind": "poisson",
            "rate_per_s": 1.0,
            "duration_s": 200,
            "prompt_tokens": 1,
            "output_tokens": 1,
        },
        serving={"mean_s": 3.0},
        autoscaler={"policy": "fixed"},
        gateway={"request_timeout_s": 1e6},
        sim={"horizon_s": horizon},
    )
    res = simulate(sc, seed=2)
    s = res.summary
    req = res.requests
    assert s["sim"]["horizon_s"] == horizon
    assert (req["arrival_s"] <= horizon).all()
    r = s["requests"]
    assert r["arrived"] == len(req) > 30
    assert r["in_flight"] > 10
    assert r["arrived"] == r["completed"] + r["failed"] + r["in_flight"]
    inflight = req[req["status"] == "in_flight"]
    assert inflight["completion_s"].isna().all()
    assert (req.loc[req["status"] == "completed", "completion_s"] <= horizon).all()
    # Latency statistics exclude in-flight requests.
    assert s["latency_e2e_s"]["max"] <= horizon
    # Workers still up at the horizon end there, billed to it.
    w = res.workers.iloc[0]
    assert w["terminated_s"] == horizon and w["end_reason"] == "horizon"
    assert w["billed_s"] == pytest.approx(horizon)


# --- continuous batching -------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["fast", "exact"])
def test_llm_single_request_times_from_profile(tmp_path: Path, mode: str) -> None:
    """A lone LLM request: TTFT = one prefill-only iteration (base + prefill(p)); E2E adds (out-1) decode steps at batch 1, context p+k."""
    prof = profile()
    p, out = 500, 50
    path = write_trace(tmp_path, [(0.0, p, out)])
    req = simulate(llm_scenario(trace(path), mode=mode), seed=1).requests
    ttft = (
        prof.decode_base_s  # every iteration pays the base cost (Profile.iteration_s(0, 0, [p]))
        + prof.prefill_base_s + prof.prefill_per_token_s * p + prof.prefill_per_token2_s * p * p
    )
    assert ttft == pytest.approx(prof.iteration_s(0, 0, [p]), rel=1e-12)
    decode = sum(
        prof.decode_base_s + prof.decode_per_seq_s * 1 + prof.decode_per_ctx_token_s * (p + k)
        for k in range(1, out)
    )
    r = req.iloc[0]
    assert r["ttft_s"] == pytest.approx(ttft, rel=1e-12)
    assert r["e2e_s"] == pytest.approx(ttft + decode, rel=1e-12)


@pytest.mark.parametrize("mode", ["fast", "exact"])
def test_llm_single_output_token_finishes_at_prefill(tmp_path: Path, mode: str) -> None:
    """A request with one output token completes at its first token (the prefill's output)."""
    path = write_trace(tmp_path, [(0.0, 100, 1), (10.0, 100, 0)])
    req = simulate(llm_scenario(trace(path), mode=mode), seed=1).requests
    np.testing.assert_allclose(req["e2e_s"], req["ttft_s"], rtol=1e-12)
    assert (req["status"] == "completed").all()


def _poisson_llm(rate: float, mode: str) -> Any:
    return llm_scenario(
        {
            "kind": "poisson",
            "rate_per_s": rate,
            "requests": 2000,
            "prompt_tokens": {"dist": "lognormal", "mean": 300, "cv": 0.5},
            "output_tokens": {"dist": "lognormal", "mean": 100, "cv": 0.5},
        },
        mode=mode,
        serving={"max_batch": 8},
        autoscaler={"policy": "fixed"},
        gateway={"request_timeout_s": 1e6},
    )


def llm_capacity_rps() -> float:
    """Saturation throughput of the _poisson_llm shape, measured by flooding the worker (~5 req/s)."""
    req = simulate(_poisson_llm(1000.0, "fast"), seed=3).requests
    return float(len(req) / req["completion_s"].max())


@pytest.mark.validation
@pytest.mark.parametrize("load", [0.1, 0.9])
def test_llm_fast_and_exact_modes_agree_per_request(load: float) -> None:
    """Fast (event skipping) and exact (event per iteration) give the same per-request times to 1e-9 relative."""
    rate = load * llm_capacity_rps()
    fast = simulate(_poisson_llm(rate, "fast"), seed=3).requests
    exact = simulate(_poisson_llm(rate, "exact"), seed=3).requests
    assert (fast["status"] == "completed").all() and (exact["status"] == "completed").all()
    if load > 0.5:
        assert fast["queue_s"].mean() > 0.1  # high load: requests queue at the gateway
    np.testing.assert_array_equal(fast["worker"], exact["worker"])
    for col in ("dispatch_s", "first_token_s", "completion_s"):
        np.testing.assert_allclose(fast[col], exact[col], rtol=1e-9, atol=0, err_msg=col)
    for col in ("ttft_s", "e2e_s"):
        np.testing.assert_allclose(fast[col], exact[col], rtol=1e-9, atol=1e-9, err_msg=col)


@pytest.mark.validation
@pytest.mark.skipif(not AZURE_CONV.exists(), reason="Azure LLM 2023 conv trace not available")
@pytest.mark.parametrize(
    "min_workers",
    # 1: overloaded (scale-ups, cold starts, timeouts); 2: a healthy fleet with some queueing.
    [1, 2],
)
def test_llm_fast_vs_exact_on_azure_conv_trace(min_workers: int) -> None:
    """Acceptance: on the Azure conv trace (Llama-3-8B, A100) fast and exact p50/p95 E2E and TTFT agree within 2%."""
    results = {}
    for mode in ("fast", "exact"):
        sc = llm_scenario(
            {"kind": "trace", "path": str(AZURE_CONV), "format": "azure"},
            mode=mode,
            deployment={"initial_worker_config": {"min_workers": min_workers}},
            autoscaler={"policy": "scalegen"},
        )
        results[mode] = simulate(sc, seed=1)
    f, e = results["fast"].summary, results["exact"].summary
    assert f["requests"]["arrived"] == 19366
    assert f["requests"] == e["requests"]
    lines = []
    for metric in ("latency_e2e_s", "ttft_s"):
        for q in ("p50", "p95"):
            a, b = f[metric][q], e[metric][q]
            rel = abs(a / b - 1)
            lines.append(f"{metric}.{q}: fast {a:.6f} exact {b:.6f} rel diff {rel:.2e}")
            assert rel < 0.02
    print(
        f"\nAzure conv, Llama-3-8B on A100, min_workers {min_workers} "
        f"(failed {f['requests']['failed']}, scale-ups {f['workers']['scale_ups']}):\n  "
        + "\n  ".join(lines)
    )
    fr, er = results["fast"].requests, results["exact"].requests
    np.testing.assert_allclose(fr["completion_s"], er["completion_s"], rtol=1e-9)
    pd.testing.assert_frame_equal(results["fast"].workers, results["exact"].workers)


def test_llm_fast_equals_exact_for_simultaneous_arrivals(tmp_path: Path) -> None:
    """Two requests arriving together at an idle worker get the same times in fast and exact mode (regression)."""
    path = write_trace(tmp_path, [(0.0, 100, 10), (0.0, 100, 10)])
    fast = simulate(llm_scenario(trace(path), mode="fast"), seed=1).requests
    exact = simulate(llm_scenario(trace(path), mode="exact"), seed=1).requests
    for col in ("first_token_s", "completion_s"):
        np.testing.assert_allclose(fast[col], exact[col], rtol=1e-9, err_msg=col)


def test_llm_fast_equals_exact_when_worker_becomes_ready_with_queue(tmp_path: Path) -> None:
    """Requests queued during a cold start, dispatched together when the worker is ready: fast == exact."""
    path = write_trace(tmp_path, [(0.0, 100, 10), (1.0, 200, 20), (2.0, 300, 5)])
    res = {}
    for mode in ("fast", "exact"):
        sc = llm_scenario(
            trace(path), mode=mode, deployment={"initial_worker_config": {"min_workers": 0}}
        )
        res[mode] = simulate(sc, seed=1).requests
    assert (res["fast"]["dispatch_s"] == res["exact"]["dispatch_s"]).all()
    for col in ("first_token_s", "completion_s"):
        np.testing.assert_allclose(res["fast"][col], res["exact"][col], rtol=1e-9, err_msg=col)


def test_requeued_request_never_fails_before_it_was_lost(tmp_path: Path) -> None:
    """A preempted request put back in the queue fails no earlier than its requeue; queue length stays >= 0 (regression, bc1e562)."""
    path = write_trace(tmp_path, [(0.0, 10, 10)])
    sc = scenario(
        trace(path),
        deployment={"allow_spot_instances": True},
        serving={"mean_s": 1000.0},  # longer than the worker's spot lifetime
        gateway={"request_timeout_s": 10.0},
        fleet={
            "cold_start": {"provision_s": 5, "image_pull_s": 5, "engine_start_s": 5},
            "spot": {
                "notice_s": 0,
                "on_preempt": "retry",
                "preemption": {"kind": "hazard", "mean_time_to_preemption_s": 60},
            },
        },
        sim={"horizon_s": 300.0},
    )
    res = simulate(sc, seed=1)
    r = res.requests.iloc[0]
    first = res.workers.iloc[0]
    # Preconditions: the request ran on worker 0, which was preempted after the timeout.
    assert r["retries"] >= 1
    assert first["end_reason"] == "preempted" and first["drain_s"] > 10.0
    assert r["status"] == "failed" and r["fail_reason"] == "timeout"
    assert r["completion_s"] >= first["terminated_s"], (r["completion_s"], first["terminated_s"])
    assert res.summary["queue"]["mean_len"] >= 0


@pytest.mark.parametrize("mode", ["fast", "exact"])
def test_llm_refill_from_queue_charges_prefill(tmp_path: Path, mode: str) -> None:
    """max_batch 1: queued LLM requests are served back to back, each taking one prefill iteration + (out-1) decode steps."""
    # Regression test: a request refilled from the queue at a completion boundary used to get its prefill for free (fixed in bc1e562).
    prof = profile()
    rows = [(0.0, 2000, 1), (0.0, 2000, 1), (0.0, 2000, 3)]
    path = write_trace(tmp_path, rows)
    req = simulate(llm_scenario(trace(path), mode=mode, serving={"max_batch": 1}), seed=1).requests
    assert (req["first_token_s"] <= req["completion_s"]).all(), req
    t = 0.0
    for i, (_, p, out) in enumerate(rows):
        r = req.iloc[i]
        assert r["dispatch_s"] == pytest.approx(t, abs=1e-12)
        ttft = prof.iteration_s(0, 0, [p])  # a prefill-only iteration on the idle worker
        service = ttft + sum(prof.decode_step_s(1, p + k) for k in range(1, out))
        assert r["first_token_s"] - r["dispatch_s"] == pytest.approx(ttft, rel=1e-9)
        assert r["completion_s"] - r["dispatch_s"] == pytest.approx(service, rel=1e-9)
        t = r["completion_s"]


# --- embedding service ---------------------------------------------------------------------------


def test_embedding_batches_up_to_the_token_budget(tmp_path: Path) -> None:
    """Embedding: an idle worker starts at once; waiting requests batch up to the token budget; time = a + b*tokens."""
    # 5 requests of 300 tokens at t=0, budget 1000 tokens: batch 1 = [r0] (the worker was idle),
    # batch 2 = [r1, r2, r3] (900 tokens; r4 would exceed the budget and waits at the gateway),
    # batch 3 = [r4]. Each batch takes embed_base_s + embed_per_token_s * its tokens.
    from sim.serving.profiles import get_profile

    prof = get_profile("BAAI/bge-large-en", "A100", 1)
    path = write_trace(tmp_path, [(0.0, 300, 0)] * 5)
    sc = scenario(
        trace(path),
        deployment={"model": "BAAI/bge-large-en", "inf_type": "embedding"},
        serving={"kind": "auto", "max_batch": 8, "embedding_batch_tokens": 1000},
    )
    req = simulate(sc, seed=1).requests
    t1 = prof.embed_s(300)
    t2 = t1 + prof.embed_s(900)
    t3 = t2 + prof.embed_s(300)
    np.testing.assert_allclose(req["completion_s"], [t1, t2, t2, t2, t3], rtol=1e-12)
    np.testing.assert_allclose(req["dispatch_s"], [0.0, 0.0, 0.0, 0.0, t2], atol=1e-12)
    np.testing.assert_allclose(req["first_token_s"], req["completion_s"], rtol=0)
    assert (req["status"] == "completed").all()


def test_embedding_oversized_request_runs_alone(tmp_path: Path) -> None:
    """A request larger than the token budget is not stuck: it runs as a batch of its own."""
    from sim.serving.profiles import get_profile

    prof = get_profile("BAAI/bge-large-en", "A100", 1)
    path = write_trace(tmp_path, [(0.0, 5000, 0), (0.0, 100, 0)])
    sc = scenario(
        trace(path),
        deployment={"model": "BAAI/bge-large-en", "inf_type": "embedding"},
        serving={"kind": "auto", "max_batch": 8, "embedding_batch_tokens": 1000},
    )
    req = simulate(sc, seed=1).requests
    np.testing.assert_allclose(
        req["completion_s"], [prof.embed_s(5000), prof.embed_s(5000) + prof.embed_s(100)],
        rtol=1e-12,
    )
