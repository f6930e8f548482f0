"""Fleet realism in the engine: spot preemption, placement, on-prem/cloudburst, caps, cost split."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from sim import scenario_from_dict, simulate
from sim.fleet.catalog import Catalog
from sim.fleet.offers import shape_offer
from sim.report import render_report

MODEL = "meta-llama/Meta-Llama-3-8B"


def _scenario(deployment: dict[str, Any] | None = None, **sections: Any) -> Any:
    dep: dict[str, Any] = {
        "name": "fleet",
        "model": MODEL,
        "cloud_providers": ["AWS"],
        "initial_worker_config": {"min_workers": 2, "initial_workers_gpu": "A100",
                                  "initial_workers_gpu_num": 1},
    }
    dep.update(deployment or {})
    data: dict[str, Any] = {
        "name": "fleet",
        "deployment": dep,
        "workload": {"kind": "poisson", "rate_per_s": 1.0, "duration_s": 3600,
                     "prompt_tokens": 10, "output_tokens": 10},
        "serving": {"kind": "exponential", "mean_s": 1.0, "max_batch": 1},
        "autoscaler": {"policy": "fixed"},
    }
    data.update(sections)
    return scenario_from_dict(data)


def _spot_fleet(
    mean_ttp_s: float, *, on_preempt: str = "retry", hours: float = 20.0, notice_s: float | None = None
) -> Any:
    return _scenario(
        {"allow_spot_instances": True,
         "initial_worker_config": {"min_workers": 10, "initial_workers_gpu": "A100",
                                   "initial_workers_gpu_num": 1}},
        workload={"kind": "poisson", "rate_per_s": 4.0, "duration_s": hours * 3600,
                  "prompt_tokens": 10, "output_tokens": 10},
        fleet={"spot": {"preemption": {"kind": "hazard", "mean_time_to_preemption_s": mean_ttp_s},
                        "on_preempt": on_preempt, "notice_s": notice_s}},
    )


def test_hazard_preemptions_match_the_rate() -> None:
    """Preemption count over ~200 spot worker-hours is within 3 sigma of exposure / mean time to preemption."""
    res = simulate(_spot_fleet(7200.0), seed=3)
    w = res.workers[res.workers.spot]
    # Exposure: VM running until the preemption notice (drain) or the end of the run.
    end = np.where(w.end_reason == "preempted", w.drain_s, w.terminated_s)
    exposure_h = float(np.nansum(end - w.provisioned_s)) / 3600.0
    expected = exposure_h / 2.0
    observed = int((w.end_reason == "preempted").sum())
    assert exposure_h > 150
    assert abs(observed - expected) <= 3 * math.sqrt(expected), (observed, expected)
    assert res.summary["workers"]["preemptions"] == observed


def test_heavy_preemption_loses_no_request() -> None:
    """With a preemption every ~10 minutes per worker, every request still ends completed, failed or in flight."""
    for on_preempt in ("retry", "fail"):
        # No notice period: requests in service at the notice are cut off, not finished.
        res = simulate(_spot_fleet(600.0, on_preempt=on_preempt, hours=2.0, notice_s=0), seed=1)
        r = res.summary["requests"]
        assert r["arrived"] == r["completed"] + r["failed"] + r["in_flight"]
        assert res.summary["workers"]["preemptions"] > 50
        failed = res.requests[res.requests.status == "failed"]
        assert (failed.fail_reason != "").all()
        if on_preempt == "retry":
            assert r["retried"] > 0 and r["failed_by_reason"]["preempted"] == 0
        else:
            assert r["failed_by_reason"]["preempted"] > 0


def test_replacement_requested_at_notice() -> None:
    """Every preemption notice requests a replacement at the same instant, logged as 'replace'."""
    res = simulate(_spot_fleet(1800.0, hours=2.0), seed=2)
    notices = sorted(res.workers.loc[res.workers.end_reason == "preempted", "drain_s"])
    replaced = sorted(res.decisions.loc[res.decisions.action == "replace", "time_s"])
    assert notices and notices == replaced


def test_cost_split_sums_to_total_and_spot_is_cheaper() -> None:
    """On-demand + spot + on-prem = total; the spot twin is cheaper and the report explains by how much."""
    spot = simulate(_spot_fleet(10800.0, hours=4.0), seed=1)
    on_demand = simulate(
        _scenario({"initial_worker_config": {"min_workers": 10, "initial_workers_gpu": "A100",
                                             "initial_workers_gpu_num": 1}},
                  workload={"kind": "poisson", "rate_per_s": 4.0, "duration_s": 4 * 3600,
                            "prompt_tokens": 10, "output_tokens": 10}),
        seed=1,
    )
    for res in (spot, on_demand):
        c = res.summary["cost"]
        assert c["on_demand_usd"] + c["spot_usd"] + c["on_prem_usd"] == pytest.approx(c["total_usd"])
    assert spot.summary["cost"]["total_usd"] < on_demand.summary["cost"]["total_usd"]
    # The saving is measured against the counterfactual: this very on-demand twin, same seed.
    saved = on_demand.summary["cost"]["total_usd"] - spot.summary["cost"]["total_usd"]
    assert spot.summary["cost"]["spot_savings_usd"] == pytest.approx(saved, rel=1e-12)
    cf = spot.summary["spot_counterfactual"]
    assert cf["cost_total_usd"] == on_demand.summary["cost"]["total_usd"]
    assert cf["change"]["ttft_p95_s"] == pytest.approx(
        spot.summary["ttft_s"]["p95"] - on_demand.summary["ttft_s"]["p95"]
    )
    assert "spot_counterfactual" not in on_demand.summary
    text = render_report(spot)
    assert "## Spot" in text and "spot saved" in text and "spot off" in text


def test_price_cap_never_exceeded() -> None:
    """With max_price_per_hour fitting 3 A100 workers, the summed price of live workers never exceeds it."""
    price = shape_offer(Catalog.builtin(), "A100", 1, clouds=("AWS",)).usd_per_h
    sc = _scenario(
        {"max_price_per_hour": 3 * price + 0.01,
         "initial_worker_config": {"min_workers": 1, "initial_workers_gpu": "A100",
                                   "initial_workers_gpu_num": 1, "use_same_gpus_when_scaling": True},
         "autoscaling_config": {"scaling_up_timeout_sec": 30, "upper_allowed_latency_sec": 1,
                                "lower_allowed_latency_sec": 0.5}},
        workload={"kind": "poisson", "rate_per_s": 5.0, "duration_s": 1800,
                  "prompt_tokens": 10, "output_tokens": 10},
        autoscaler={"policy": "scalegen"},
    )
    res = simulate(sc, seed=1)
    assert res.summary["workers"]["max"] == 3
    assert (res.timeline.cost_rate_usd_per_h <= 3 * price + 0.01 + 1e-9).all()
    assert (res.decisions.reason == "blocked: price cap").any()


def _hetero(upper: float, prompt: int = 500, output: int = 200) -> Any:
    return _scenario(
        {"cloud_providers": ["AWS"],
         "initial_worker_config": {"min_workers": 1, "initial_workers_gpu": "A100",
                                   "initial_workers_gpu_num": 1, "use_same_gpus_when_scaling": False},
         "autoscaling_config": {"scaling_up_timeout_sec": 60, "upper_allowed_latency_sec": upper,
                                "lower_allowed_latency_sec": upper / 6}},
        workload={"kind": "poisson", "rate_per_s": 30.0, "duration_s": 900,
                  "prompt_tokens": {"dist": "lognormal", "mean": prompt, "cv": 1.0},
                  "output_tokens": {"dist": "lognormal", "mean": output, "cv": 1.0}},
        serving={"kind": "llm"},
        autoscaler={"policy": "scalegen"},
    )


def _rated_offers(sc: Any, res: Any) -> list[tuple[float, str, float | None]]:
    """(USD/h, "gpus x gpu", rated throughput or None) of every AWS offer that holds the model,
    rated on the run's own request mix as the placement rule rates it."""
    from sim.fleet.model import FleetModel
    from sim.rng import Streams

    fleet = FleetModel(sc, Streams(1))
    req = res.requests
    fleet.set_request_mix(float(req.prompt_tokens.mean()), float(req.output_tokens.mean()))
    fits = fleet._fits(sc.deployment)
    out = []
    for o in fleet.catalog.offers(clouds=["AWS"]):
        if fits(o.gpu, o.gpus):
            rate, _ = fleet.rating(sc.deployment, o.gpu, o.gpus)
            out.append((o.on_demand_usd_per_h, f"{o.gpus}x{o.gpu}", rate))
    return out


def test_heterogeneous_scale_ups_take_the_lowest_price_per_throughput() -> None:
    """use_same_gpus_when_scaling false: scale-ups take the offer with the lowest price per rated output token/s (not the cheapest per hour, an L4), each with its own profile."""
    sc = _hetero(upper=0.3)
    res = simulate(sc, seed=1)
    w = res.workers
    assert w.loc[w.initial, "gpu"].tolist() == ["A100"]
    scaled = w[~w.initial]
    assert len(scaled) > 0 and len(set(zip(scaled.gpu, scaled.gpus, strict=True))) == 1
    offers = _rated_offers(sc, res)
    best = min((p / r, shape) for p, shape, r in offers if r is not None)
    assert f"{scaled.gpus.iloc[0]}x{scaled.gpu.iloc[0]}" == best[1]
    chosen = scaled.price_per_hour_usd.iloc[0]
    # The cheapest per hour (an L4 at ~$0.80/h) rates ~10x lower: it loses per token/s.
    l4 = [(p, r) for p, shape, r in offers if shape == "1xL4" and r is not None]
    assert l4 and min(p for p, _ in l4) < chosen and best[0] < min(p / r for p, r in l4)
    shapes = res.summary["workers"]["scale_up_shapes"]
    assert sum(shapes.values()) == len(scaled) and next(iter(shapes)).startswith(best[1])
    assert "lowest price per rated throughput" in res.summary["placement"][0]


def test_offers_that_miss_the_slo_alone_are_left_out() -> None:
    """A TTFT band that a lone 4,000-token prefill cannot meet on small GPUs leaves them out (and says so)."""
    sc = _hetero(upper=0.25, prompt=4000, output=50)
    res = simulate(sc, seed=1)
    offers = _rated_offers(sc, res)
    left_out = {shape for _, shape, r in offers if r is None}
    assert left_out  # some shapes are too slow for a lone request
    scaled = res.workers[~res.workers.initial]
    assert len(scaled) > 0
    assert not {f"{g}x{n}" for n, g in zip(scaled.gpu, scaled.gpus, strict=True)} & left_out
    assert "left out as a lone request misses the SLO" in res.summary["placement"][0]


def test_instance_types_restrict_offers() -> None:
    """instance_types replaces the GPU shape: workers run on the listed instance type only."""
    sc = _scenario({"initial_worker_config": {"min_workers": 2, "instance_types": ["g6e.xlarge"]}})
    res = simulate(sc, seed=1)
    assert set(res.workers.instance_type) == {"g6e.xlarge"} and set(res.workers.gpu) == {"L40S"}


def test_on_demand_base_keeps_first_workers_on_demand() -> None:
    """fleet.spot.on_demand_base 3 with spot allowed: 3 on-demand workers, the rest spot."""
    sc = _scenario(
        {"allow_spot_instances": True,
         "initial_worker_config": {"min_workers": 5, "initial_workers_gpu": "A100",
                                   "initial_workers_gpu_num": 1}},
        fleet={"spot": {"on_demand_base": 3, "preemption": {"kind": "none"}}},
    )
    w = simulate(sc, seed=1).workers
    assert (~w.spot).sum() == 3 and w.spot.sum() == 2


def test_on_prem_first_then_cloudburst() -> None:
    """On-prem GPUs fill first (no provisioning, on-prem price); overflow goes to the cloud only with cloudburst."""
    nodes = [{"id": "rack-a", "gpu": "A100", "gpus": 2}]
    base = {"use_on_prem": True, "on_prem_node_ids": ["rack-a"], "min_workers": 4,
            "initial_workers_gpu": "A100", "initial_workers_gpu_num": 1}
    burst = simulate(
        _scenario({"initial_worker_config": {**base, "use_cloudburst": True}},
                  fleet={"on_prem_nodes": nodes, "on_prem_gpu_hour_usd": 0.5}),
        seed=1,
    )
    w = burst.workers
    assert w.on_prem.sum() == 2 and (~w.on_prem).sum() == 2
    assert (w.loc[w.on_prem, "price_per_hour_usd"] == 0.5).all()
    assert burst.summary["cost"]["on_prem_usd"] > 0
    no_burst = simulate(
        _scenario({"initial_worker_config": {**base, "use_cloudburst": False}},
                  fleet={"on_prem_nodes": nodes}),
        seed=1,
    )
    assert no_burst.workers.on_prem.all() and len(no_burst.workers) == 2
    assert (no_burst.decisions.reason == "blocked: on-prem full").any()


def test_admission_cap_rejects_excess() -> None:
    """throughput_cap admission: a token bucket at max_throughput_rate output tokens/s rejects the excess."""
    sc = _scenario(
        {"max_throughput_rate": 20},  # 2 requests/s of 10 tokens, against 4 arriving per second
        workload={"kind": "poisson", "rate_per_s": 4.0, "duration_s": 1800,
                  "prompt_tokens": 10, "output_tokens": 10},
        autoscaler={"policy": "fixed", "throughput_cap": "admission"},
        gateway={"admission_burst_s": 5},
    )
    r = simulate(sc, seed=1).summary["requests"]
    share = r["failed_by_reason"]["rejected"] / r["arrived"]
    assert share == pytest.approx(0.5, abs=0.05)


def test_gateway_round_trip_outside_its_cloud() -> None:
    """A gateway in another cloud adds gateway.network_rtt_s to every request's first token and completion."""
    def run(gw_cloud: str) -> Any:
        # The cheapest AWS A100 zone in the built-in catalog is in us-east-2.
        return simulate(
            _scenario({"gateway_config": {"name": gw_cloud, "region": "us-east-2"}},
                      gateway={"network_rtt_s": 0.05}),
            seed=1,
        )

    near, far = run("AWS"), run("DATACRUNCH")
    assert set(near.workers.region) == {"us-east-2"}
    diff = (far.requests.completion_s - far.requests.arrival_s) - (
        near.requests.completion_s - near.requests.arrival_s
    )
    assert np.allclose(diff, 0.05)


@pytest.mark.parametrize("granularity", [60.0, 3600.0])
def test_billing_granularity_rounds_up(granularity: float) -> None:
    """Coarser billing never costs less, and each worker's billed time is a multiple of the granule."""
    fine = simulate(_scenario(), seed=1)
    coarse = simulate(_scenario(fleet={"billing_granularity_s": granularity}), seed=1)
    assert coarse.summary["cost"]["total_usd"] >= fine.summary["cost"]["total_usd"]
    assert np.allclose(np.mod(coarse.workers.billed_s, granularity), 0)


def _trace_scenario(tmp_path: Any, ticks: list[int], *, workers: int = 3, timeout_s: float = 300,
                    hours: float = 2.0) -> Any:
    """Spot A100 workers in GCP us-central1-a, whose capacity follows ``ticks`` (600 s each)."""
    import json

    trace = tmp_path / "us-central1-a_a100.json"
    trace.write_text(json.dumps({"metadata": {"gap_seconds": 600}, "data": ticks}))
    return _scenario(
        {"allow_spot_instances": True, "cloud_providers": ["GCP"],
         "initial_worker_config": {"min_workers": workers, "initial_workers_gpu": "A100",
                                   "initial_workers_gpu_num": 1}},
        workload={"kind": "poisson", "rate_per_s": 1.0, "duration_s": hours * 3600,
                  "prompt_tokens": 10, "output_tokens": 10},
        fleet={"spot": {"preemption": {"kind": "trace", "trace_path": str(trace), "repeat": False},
                        "spot_acquire_timeout_s": timeout_s}},
    )


def test_trace_preemptions_exactly_where_capacity_drops(tmp_path: Any) -> None:
    """Capacity 3 → 1 at 600 s and 1 → 0 at 1200 s: 2 then 1 spot workers get a notice at exactly those times."""
    res = simulate(_trace_scenario(tmp_path, [3, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]), seed=1)
    w = res.workers
    pre = w[w.end_reason == "preempted"].sort_values("drain_s")
    assert pre.drain_s.tolist() == [600.0, 600.0, 1200.0]
    assert set(w.loc[w.spot, "zone"]) == {"us-central1-a"}


def test_zero_capacity_falls_back_to_on_demand(tmp_path: Any) -> None:
    """At zero spot capacity a spot request fails after spot_acquire_timeout_s and an on-demand worker replaces it."""
    res = simulate(_trace_scenario(tmp_path, [0] * 12, workers=2, timeout_s=300), seed=1)
    w = res.workers
    failed = w[w.end_reason == "provision_failed"]
    assert len(failed) == 2 and (failed.terminated_s == 300.0).all() and failed.spot.all()
    assert (failed.billed_s == 0).all()
    on_demand = w[~w.spot]
    assert len(on_demand) == 2 and (on_demand.requested_s == 300.0).all()


def test_spot_waits_for_capacity_within_the_timeout(tmp_path: Any) -> None:
    """Capacity returning 600 s later, within a 900 s acquire timeout, is waited for: the worker stays spot."""
    res = simulate(_trace_scenario(tmp_path, [0, 1, 1, 1], workers=1, timeout_s=900, hours=0.6),
                   seed=1)
    w = res.workers
    assert len(w) == 1 and w.spot.all() and w.provisioned_s.iloc[0] >= 600.0


def test_fine_tune_pays_an_adapter_load_at_cold_start() -> None:
    """A deployment with base_model adds fleet.cold_start.adapter_load_s to a scale-up's loading stage."""
    stages = {"provision_s": 10, "image_pull_s": 20, "engine_start_s": 30,
              "weight_download_gb_per_s": 1.0, "adapter_load_s": 7}
    common = {"serving": {"kind": "llm"}, "fleet": {"cold_start": stages},
              "sim": {"start": "cold", "horizon_s": 600}}
    base = simulate(_scenario({"initial_worker_config": {"min_workers": 1}}, **common), seed=1)
    tuned = simulate(
        _scenario({"model": "acme/llama3-8b-support-ft", "base_model": MODEL,
                   "initial_worker_config": {"min_workers": 1}}, **common),
        seed=1,
    )
    startup = lambda r: float(r.workers.ready_s.iloc[0] - r.workers.requested_s.iloc[0])  # noqa: E731
    assert startup(tuned) - startup(base) == pytest.approx(7.0)
    assert startup(base) == pytest.approx(10 + 20 + 16.06 / 1.0 + 30)


def test_price_overrides_replace_catalog_prices() -> None:
    """fleet.price_overrides replaces a catalog price: a negotiated p4d rate prices the A100 workers."""
    sc = _scenario(fleet={"price_overrides": [
        {"cloud": "AWS", "instance_type": "p4d.24xlarge", "on_demand_usd_per_h": 16.0}]})
    w = simulate(sc, seed=1).workers
    assert np.allclose(w.price_per_hour_usd, 2.0)  # 16 / 8 GPUs


def test_bad_price_override_names_the_field() -> None:
    """An override with an unknown column is a ConfigError on fleet.price_overrides."""
    from sim.errors import ConfigError

    sc = _scenario(fleet={"price_overrides": [
        {"cloud": "AWS", "instance_type": "p4d.24xlarge", "price": 16.0}]})
    with pytest.raises(ConfigError, match="fleet.price_overrides.*unknown column"):
        simulate(sc, seed=1)


# --- regressions from the third QA pass ------------------------------------------------------------


def test_price_cap_holds_for_multi_worker_scale_ups_with_cloudburst() -> None:
    """A scale-up of 3 that starts on free on-prem GPUs stops at the price cap for the cloud part."""
    sc = _scenario(
        {"max_price_per_hour": 3,
         "cloud_providers": [],
         "initial_worker_config": {"min_workers": 0, "initial_workers_gpu": "A100",
                                   "initial_workers_gpu_num": 1, "use_same_gpus_when_scaling": True,
                                   "use_on_prem": True, "use_cloudburst": True,
                                   "on_prem_node_ids": ["n1"]},
         "autoscaling_config": {"upper_allowed_latency_sec": 0.5, "lower_allowed_latency_sec": 0.01,
                                "scaling_up_timeout_sec": 1}},
        workload={"kind": "poisson", "rate_per_s": 5.0, "duration_s": 200,
                  "prompt_tokens": 100, "output_tokens": 10},
        serving={"kind": "fixed", "mean_s": 2.0, "max_batch": 1},
        fleet={"on_prem_nodes": [{"id": "n1", "gpu": "A100", "gpus": 2}],
               "cold_start": {"provision_s": 10, "image_pull_s": 0, "engine_start_s": 5}},
        autoscaler={"policy": "scalegen", "scale_up_step": 3},
        sim={"horizon_s": 300},
    )
    res = simulate(sc, seed=1)
    assert (res.timeline.cost_rate_usd_per_h <= 3 + 1e-9).all()
    assert (res.decisions.reason == "blocked: price cap").any()


def test_admission_rejections_do_not_hide_overload() -> None:
    """Requests rejected on arrival stay out of the autoscaler's window: the overloaded worker still scales up."""
    sc = _scenario(
        {"max_throughput_rate": 40,
         "autoscaling_config": {"time_window_sec": 60, "upper_allowed_latency_sec": 5,
                                "lower_allowed_latency_sec": 0.01, "scaling_up_timeout_sec": 30},
         "initial_worker_config": {"min_workers": 1, "initial_workers_gpu": "A100",
                                   "initial_workers_gpu_num": 1}},
        workload={"kind": "poisson", "rate_per_s": 10.0, "duration_s": 600,
                  "prompt_tokens": 100, "output_tokens": 10},
        serving={"kind": "fixed", "mean_s": 2.0, "max_batch": 4},
        gateway={"request_timeout_s": 120, "admission_burst_s": 1},
        autoscaler={"policy": "scalegen", "throughput_cap": "admission", "statistic": "p50",
                    "max_workers": 10},
        sim={"horizon_s": 600},
    )
    res = simulate(sc, seed=1)
    assert res.summary["requests"]["failed_by_reason"]["rejected"] > 0
    assert res.summary["workers"]["scale_ups"] > 0


def test_embedding_admission_counts_input_tokens() -> None:
    """For an embedding deployment the admission token bucket spends prompt tokens, so excess input is rejected."""
    sc = _scenario(
        {"model": "BAAI/bge-large-en", "inf_type": "embedding", "max_throughput_rate": 1000},
        workload={"kind": "poisson", "rate_per_s": 100.0, "duration_s": 60,
                  "prompt_tokens": 300, "output_tokens": 0},
        serving={"kind": "auto"},
        autoscaler={"policy": "fixed", "throughput_cap": "admission"},
        gateway={"admission_burst_s": 1},
    )
    r = simulate(sc, seed=1).summary["requests"]
    # 30,000 input tokens/s offered against 1,000/s: about 1 in 30 requests is admitted.
    assert r["failed_by_reason"]["rejected"] / r["arrived"] == pytest.approx(1 - 1 / 30, abs=0.02)


def test_waiting_spot_workers_keep_waiting_until_their_deadline(tmp_path: Any) -> None:
    """Two spot workers wait for capacity (0, then 1 at 600 s, 2 at 1200 s) with a 1500 s limit: both get spot."""
    # The second loses the capacity that appears at 600 s to the first and waits on for the
    # next, inside its own deadline, instead of falling back to on-demand at once.
    sc = _trace_scenario(tmp_path, [0, 1, 2, 2], workers=2, timeout_s=1500, hours=0.5)
    w = simulate(sc, seed=1).workers
    assert len(w) == 2 and w.spot.all() and (w.end_reason != "provision_failed").all()
    first, second = sorted(w.provisioned_s)  # provisioning starts once capacity is there
    assert 600.0 < first < 1200.0 < second


def test_preemption_notice_keeps_an_earlier_drain_time(tmp_path: Any) -> None:
    """A worker drained by an update at 100 s and preempted later keeps drain_s = 100 s."""
    import json

    trace = tmp_path / "us-central1-a_a100.json"
    trace.write_text(json.dumps({"metadata": {"gap_seconds": 120}, "data": [1, 0, 0, 0]}))
    sc = _scenario(
        {"allow_spot_instances": True, "cloud_providers": ["GCP"],
         "initial_worker_config": {"min_workers": 1, "initial_workers_gpu": "A100",
                                   "initial_workers_gpu_num": 1}},
        workload={"kind": "poisson", "rate_per_s": 1.0, "requests": 2,
                  "prompt_tokens": 10, "output_tokens": 10},
        serving={"kind": "fixed", "mean_s": 200.0, "max_batch": 4},
        fleet={"spot": {"preemption": {"kind": "trace", "trace_path": str(trace), "repeat": False}}},
        updates=[{"at_s": 100, "body": {"initial_worker_config": {"min_workers": 0},
                                        "imidiate_scale_down": True}}],
        sim={"horizon_s": 400},
    )
    w = simulate(sc, seed=1).workers
    first = w.iloc[0]
    assert first.drain_s == 100.0 and first.terminated_s > 100.0
