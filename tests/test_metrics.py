"""Unit and property tests of sim.metrics: summary values against hand-computed numbers."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.engine.record import (
    COMPLETED,
    FAIL_PREEMPTED,
    FAIL_TIMEOUT,
    FAILED,
    IN_FLIGHT,
    DecisionRecord,
    QueueSamples,
    RequestColumns,
    RunRecord,
    Timeline,
    WorkerRecord,
)
from sim.errors import ConfigError
from sim.metrics import Result, build_result, summarize_replications
from sim.metrics.stats import billed_seconds, mean_ci95, t_quantile_975, time_weighted

NAN = float("nan")
HORIZON = 100.0

# Hand-made run. Per request: arrival, dispatch, first token, completion, prompt, output,
# worker, status, fail reason, retries.
REQUESTS = [
    (0.0, 1.0, 2.0, 10.0, 10, 5, 0, COMPLETED, 0, 0),  # e2e 10, ttft 2, queue 1, tpot 2
    (5.0, 5.0, 6.0, 8.0, 20, 3, 0, COMPLETED, 0, 0),  # e2e 3, ttft 1, queue 0, tpot 1
    (20.0, 22.0, 25.0, 40.0, 30, 1, 1, COMPLETED, 0, 0),  # e2e 20, ttft 5, queue 2, no tpot
    (30.0, 30.0, 30.5, 31.0, 40, 2, 1, COMPLETED, 0, 1),  # e2e 1, ttft 0.5, queue 0, tpot 0.5
    (40.0, NAN, NAN, 90.0, 50, 7, -1, FAILED, FAIL_TIMEOUT, 0),
    (50.0, 55.0, 60.0, NAN, 60, 9, 0, IN_FLIGHT, 0, 0),  # running at the horizon
    (60.0, NAN, NAN, NAN, 70, 9, -1, IN_FLIGHT, 0, 0),  # still queued at the horizon
    (70.0, 71.0, 72.0, 80.0, 80, 9, 1, FAILED, FAIL_PREEMPTED, 2),
    (80.0, 81.0, 83.0, 95.0, 90, 4, 2, COMPLETED, 0, 0),  # e2e 15, ttft 3, queue 1, tpot 4
]


def make_record(requests: list[tuple] | None = None) -> RunRecord:
    """The hand-made run: 9 requests, an on-demand, a spot, an on-prem and a failed worker."""
    rows = REQUESTS if requests is None else requests
    cols: list[Any] = list(zip(*rows, strict=True)) if rows else [()] * 10
    req = RequestColumns.empty(
        np.array(cols[0], dtype=float),
        np.array(cols[4], dtype=np.int64),
        np.array(cols[5], dtype=np.int64),
    )
    req.dispatch_s[:] = cols[1]
    req.first_token_s[:] = cols[2]
    req.completion_s[:] = cols[3]
    req.worker[:] = cols[6]
    req.status[:] = cols[7]
    req.fail_reason[:] = cols[8]
    req.retries[:] = cols[9]
    workers = [
        WorkerRecord(0, "A100", 1, "aws", "us-east-1", "us-east-1a", spot=False, on_prem=False,
                     initial=True, price_per_hour_usd=3.6, requested_s=0.0, provisioned_s=0.0,
                     ready_s=0.0, end_reason="horizon", requests_served=3),
        WorkerRecord(1, "A100", 2, "aws", "us-east-1", "us-east-1b", spot=True, on_prem=False,
                     initial=False, price_per_hour_usd=1.8, requested_s=10.0, provisioned_s=20.5,
                     ready_s=40.0, drain_s=70.0, terminated_s=75.2, end_reason="preempted",
                     requests_served=2),
        WorkerRecord(2, "A100", 1, "onprem", "", "", spot=False, on_prem=True, initial=False,
                     price_per_hour_usd=0.72, requested_s=50.0, ready_s=50.0, requests_served=1),
        WorkerRecord(3, "A100", 2, "aws", "us-east-1", "us-east-1b", spot=True, on_prem=False,
                     initial=False, price_per_hour_usd=1.8, requested_s=60.0, terminated_s=65.0,
                     end_reason="provision_failed"),
    ]  # fmt: skip
    decisions = [
        DecisionRecord(10.0, "scalegen", 5.0, 1, "scale_up", 1, "S=5>upper=4"),
        DecisionRecord(20.0, "scalegen", 6.0, 2, "none", 0, "blocked: cooldown"),
        DecisionRecord(50.0, "scalegen", 7.0, 2, "scale_up", 1, "S=7>upper=4"),
        DecisionRecord(60.0, "scalegen", 8.0, 3, "scale_up", 1, "S=8>upper=4"),
        DecisionRecord(70.0, "scalegen", 0.2, 4, "scale_down", -1, "S=0.2<lower=1"),
        DecisionRecord(72.0, "scalegen", NAN, 3, "replace", 1, "preemption notice"),
    ]
    # N: 1 on [0,10), 2 on [10,50), 3 on [50,60), 4 on [60,65), a zero-length 5 at 65, 3 on
    # [65,70), 2 on [70,100] -> integral 215, mean 2.15, max 4.
    tl = Timeline(
        time_s=[0.0, 10.0, 50.0, 60.0, 65.0, 65.0, 70.0],
        workers_total=[1, 2, 3, 4, 5, 3, 2],
        workers_ready=[1, 1, 2, 2, 2, 2, 2],
        workers_billed=[1, 1, 2, 2, 2, 2, 2],
        cost_rate_usd_per_h=[3.6, 3.6, 7.2, 7.2, 7.2, 7.2, 4.32],
    )
    qs = QueueSamples(time_s=[0.0, 50.0], queue_len=[0, 3], running=[1, 2], arrivals=[0, 6])
    return RunRecord(
        requests=req, workers=workers, decisions=decisions, timeline=tl, queue=qs,
        horizon_s=HORIZON, seed=7, events=1234, wall_s=0.5, queue_area=150.0, queue_max=3,
        warnings=["engine says hi"],
    )  # fmt: skip


def result(**kw: Any) -> Result:
    """build_result on the hand-made run with the test defaults."""
    args: dict[str, Any] = {"slo_metric": "e2e", "slo_threshold_s": 10.0} | kw
    return build_result(make_record(), **args)


def test_request_counts():
    """Counts: arrived = 9, completed 5, failed 2, in flight 2, retried 2 (3 retries)."""
    r = result().summary["requests"]
    assert (r["arrived"], r["completed"], r["failed"], r["in_flight"]) == (9, 5, 2, 2)
    assert r["retried"] == 2 and r["retries_total"] == 3


def test_failed_by_reason():
    """Failures are split by reason with every known reason present."""
    fb = result().summary["requests"]["failed_by_reason"]
    assert fb == {"timeout": 1, "preempted": 1, "too_large": 0, "rejected": 0}


def test_latency_percentiles():
    """E2E, TTFT, queue and TPOT statistics match hand-computed linear-interpolation percentiles."""
    s = result().summary
    assert s["latency_e2e_s"] == pytest.approx(
        {"mean": 9.8, "p50": 10.0, "p90": 18.0, "p95": 19.0, "p99": 19.8, "max": 20.0}
    )
    assert s["ttft_s"] == pytest.approx(
        {"mean": 2.3, "p50": 2.0, "p90": 4.2, "p95": 4.6, "p99": 4.92, "max": 5.0}
    )
    assert s["queue_s"] == pytest.approx(
        {"mean": 0.8, "p50": 1.0, "p90": 1.6, "p95": 1.8, "p99": 1.96, "max": 2.0}
    )
    # TPOT over out > 1 only: [2, 1, 0.5, 4].
    assert s["tpot_s"]["mean"] == pytest.approx(1.875)
    assert s["tpot_s"]["p50"] == pytest.approx(1.5)
    assert s["tpot_s"]["max"] == pytest.approx(4.0)


def test_slo_attainment_counts_failed_and_in_flight_as_misses():
    """Attainment divides by all arrived requests: 3 of 9 meet E2E <= 10 s, 4 of 9 meet TTFT <= 3 s."""
    assert result().summary["slo"] == {
        "metric": "e2e",
        "threshold_s": 10.0,
        "attainment": pytest.approx(3 / 9),
    }
    ttft = result(slo_metric="ttft_s", slo_threshold_s=3.0).summary["slo"]
    assert ttft["metric"] == "ttft" and ttft["attainment"] == pytest.approx(4 / 9)


def test_tpot_slo_counts_single_token_outputs_as_met():
    """A TPOT SLO treats completed one-token outputs (no inter-token gap) as met."""
    # TPOT <= 1: requests 1 (1.0), 3 (0.5) and 2 (out = 1) -> 3 of 9.
    s = result(slo_metric="tpot", slo_threshold_s=1.0).summary["slo"]
    assert s["attainment"] == pytest.approx(3 / 9)


def test_warmup_excludes_early_arrivals():
    """Warm-up 25 s: only requests 3 and 8 are measured for latency, 6 arrivals for the SLO."""
    s = result(warmup_s=25.0).summary
    assert s["latency_e2e_s"]["mean"] == pytest.approx(8.0)
    assert s["latency_e2e_s"]["p50"] == pytest.approx(8.0)
    assert s["ttft_s"]["max"] == pytest.approx(3.0)
    assert s["requests"]["measured"] == 6
    assert s["requests"]["arrived"] == 9  # counts still cover the whole run
    assert s["slo"]["attainment"] == pytest.approx(1 / 6)
    assert s["sim"]["warmup_s"] == 25.0


@pytest.mark.parametrize(
    ("granularity", "billed", "total"),
    [
        (1.0, [100.0, 55.0, 50.0, 0.0], 0.1 + 0.0275 + 0.01),
        (60.0, [120.0, 60.0, 60.0, 0.0], 0.12 + 0.03 + 0.012),
        (3600.0, [3600.0, 3600.0, 3600.0, 0.0], 3.6 + 1.8 + 0.72),
        (0.0, [100.0, 54.7, 50.0, 0.0], (100 * 3.6 + 54.7 * 1.8 + 50 * 0.72) / 3600),
    ],
)
def test_cost_with_billing_granularity(granularity, billed, total):
    """Billed time runs from VM start (ready for on-prem) to termination or horizon, rounded up."""
    r = result(billing_granularity_s=granularity)
    assert r.workers["billed_s"].tolist() == pytest.approx(billed)
    assert r.summary["cost"]["total_usd"] == pytest.approx(total)
    assert r.workers["cost_usd"].sum() == pytest.approx(total)
    assert r.summary["cost"]["billing_granularity_s"] == granularity


def test_cost_split_sums_to_total():
    """On-demand, spot and on-prem costs are the per-kind sums and add up to the total."""
    c = result().summary["cost"]
    assert c["on_demand_usd"] == pytest.approx(0.1)
    assert c["spot_usd"] == pytest.approx(0.0275)
    assert c["on_prem_usd"] == pytest.approx(0.01)
    assert c["on_demand_usd"] + c["spot_usd"] + c["on_prem_usd"] == pytest.approx(c["total_usd"])


def test_cost_rates():
    """Per hour divides by horizon hours; per 1k requests and per 1M tokens use completed requests."""
    c = result().summary["cost"]
    total = 0.1375
    assert c["per_hour_usd"] == pytest.approx(total / (HORIZON / 3600))
    assert c["per_1k_requests_usd"] == pytest.approx(total / 5 * 1000)
    assert c["per_1m_output_tokens_usd"] == pytest.approx(total / 15 * 1e6)


def test_workers_time_weighted_mean_and_max():
    """Mean workers is time-weighted over [0, horizon]; a zero-length sample does not set the max."""
    w = result().summary["workers"]
    assert w["mean"] == pytest.approx(2.15)
    assert w["max"] == 4
    assert w["gpu_hours"] == pytest.approx((100 * 1 + 55 * 2 + 50 * 1) / 3600)


def test_cold_starts_preemptions_and_scaling_counts():
    """Cold starts count non-initial workers that got a machine; replacements are not scale-ups."""
    w = result().summary["workers"]
    assert w["cold_starts"] == 2  # spot worker 1 and on-prem worker 2; worker 3 never got a VM
    assert w["cold_starts_completed"] == 2
    assert w["cold_start_mean_s"] == pytest.approx((30.0 + 0.0) / 2)
    assert w["preemptions"] == 1 and w["provision_failures"] == 1
    assert (w["scale_ups"], w["scale_downs"], w["decisions_blocked"]) == (3, 1, 1)
    assert w["total_started"] == 4


def test_sim_queue_and_warnings_blocks():
    """The sim block carries seed, horizon, wall time and throughput; queue mean is area / horizon."""
    s = result().summary
    assert s["sim"] == {
        "seed": 7, "horizon_s": 100.0, "warmup_s": 0.0, "wall_s": 0.5, "events": 1234,
        "requests_per_wall_s": 18.0, "results": "full",
    }  # fmt: skip
    assert s["queue"] == {"mean_len": 1.5, "max_len": 3}
    assert s["warnings"] == ["engine says hi"]


def test_no_completions_gives_nulls():
    """A run where nothing completed has null latency statistics and cost ratios, not a crash."""
    rows = [(float(i), NAN, NAN, NAN, 10, 5, -1, IN_FLIGHT, 0, 0) for i in range(3)]
    rec = make_record(rows)
    s = build_result(rec, slo_metric="ttft", slo_threshold_s=1.0).summary
    for key in ("latency_e2e_s", "ttft_s", "queue_s", "tpot_s"):
        assert set(s[key].values()) == {None}
    assert s["cost"]["per_1k_requests_usd"] is None
    assert s["cost"]["per_1m_output_tokens_usd"] is None
    assert s["slo"]["attainment"] == 0.0
    assert any("no request completed" in w for w in s["warnings"])
    json.dumps(s, allow_nan=False)


def test_no_requests_at_all():
    """An empty run gives zero counts and a null attainment."""
    s = build_result(make_record([]), slo_metric="e2e", slo_threshold_s=1.0).summary
    assert s["requests"]["arrived"] == 0
    assert s["slo"]["attainment"] is None
    assert s["sim"]["requests_per_wall_s"] == 0.0


def _walk(obj):
    if isinstance(obj, dict):
        for v in obj.values():
            yield from _walk(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _walk(v)
    else:
        yield obj


def test_summary_is_json_native():
    """Every summary leaf is a plain JSON type (no numpy scalars, no NaN)."""
    s = result(
        scenario_dict={"sim": {"seed": np.int64(3), "x": np.float32(0.5), "t": (1, 2)}}
    ).summary
    for leaf in _walk(s):
        assert leaf is None or type(leaf) in (bool, int, float, str), type(leaf)
        if isinstance(leaf, float):
            assert math.isfinite(leaf)
    assert s["scenario"]["sim"] == {"seed": 3, "x": 0.5, "t": [1, 2]}


def test_scenario_hf_token_masked_and_copied():
    """The summary's scenario is a masked copy: hf_token becomes *** and the caller's dict is untouched."""
    scen: dict[str, Any] = {
        "deployment": {"hf_token": "hf_secret", "nested": [{"hf_token": "x"}]},
        "other": {"hf_token": None},
    }
    s = result(scenario_dict=scen).summary
    assert s["scenario"]["deployment"]["hf_token"] == "***"
    assert s["scenario"]["deployment"]["nested"][0]["hf_token"] == "***"
    assert s["scenario"]["other"]["hf_token"] is None  # nothing to hide: not made to look set
    assert scen["deployment"]["hf_token"] == "hf_secret"


def test_requests_frame_columns_and_dtypes():
    """The requests frame has the documented columns and compact dtypes; e2e_s is NaN unless completed."""
    df = result().requests
    assert list(df.columns) == [
        "request_id", "arrival_s", "dispatch_s", "first_token_s", "completion_s", "prompt_tokens",
        "output_tokens", "worker", "status", "fail_reason", "retries", "e2e_s", "ttft_s", "queue_s",
    ]  # fmt: skip
    assert isinstance(df["status"].dtype, pd.CategoricalDtype)
    assert list(df["status"].cat.categories) == ["in_flight", "completed", "failed"]
    assert df["status"].tolist()[4:6] == ["failed", "in_flight"]
    assert df["fail_reason"].tolist()[4] == "timeout" and df["fail_reason"].tolist()[0] == ""
    assert df["request_id"].dtype == np.int32 and df["prompt_tokens"].dtype == np.int32
    assert df["retries"].dtype == np.int16 and df["worker"].dtype == np.int32
    assert np.isnan(df["e2e_s"][4]) and df["e2e_s"][0] == 10.0
    assert df["ttft_s"][7] == 2.0  # the failed request did get a first token


def test_other_frames():
    """Workers, decisions, timeline and queue frames have one row per record and the billing columns."""
    r = result()
    assert len(r.workers) == 4 and {"billed_s", "cost_usd", "end_reason", "zone"} <= set(
        r.workers.columns
    )
    assert r.workers["spot"].dtype == bool
    assert list(r.decisions.columns) == [
        "time_s",
        "policy",
        "statistic",
        "workers",
        "action",
        "delta",
        "reason",
    ]
    assert len(r.decisions) == 6 and len(r.timeline) == 7 and len(r.queue) == 2
    assert r.record is not None


def test_requests_after_horizon_not_counted():
    """Requests arriving after the horizon are dropped from counts and frames, with a warning."""
    rows = [*REQUESTS, (150.0, NAN, NAN, NAN, 10, 5, -1, IN_FLIGHT, 0, 0)]
    s = build_result(make_record(rows), slo_metric="e2e", slo_threshold_s=10.0)
    assert s.summary["requests"]["arrived"] == 9
    assert len(s.requests) == 9
    assert any("after the horizon" in w for w in s.summary["warnings"])


def test_empty_timeline_rebuilt_from_worker_records():
    """Without an engine timeline the worker count is rebuilt from worker lifetimes (until drain)."""
    rec = make_record()
    rec.timeline = Timeline()
    w = build_result(rec, slo_metric="e2e", slo_threshold_s=1.0).summary["workers"]
    # W0 [0,100], W1 [10,70), W2 [50,100], W3 [60,65): integral 100+60+50+5 = 215.
    assert w["mean"] == pytest.approx(2.15)
    assert w["max"] == 4


def test_unknown_slo_metric_is_a_config_error():
    """An unknown SLO metric name raises ConfigError naming the field."""
    with pytest.raises(ConfigError, match="sim.slo.metric"):
        result(slo_metric="p99")


def test_bad_status_code_rejected():
    """A status code outside the record's codes is an engine bug and raises ValueError."""
    rec = make_record()
    rec.requests.status[0] = 9
    with pytest.raises(ValueError, match="status"):
        build_result(rec, slo_metric="e2e", slo_threshold_s=1.0)


def test_billed_seconds_ignores_float_noise():
    """120 s plus float noise bills 2 minutes, not 3; NaN starts bill nothing."""
    out = billed_seconds(np.array([0.0, NAN, 0.0]), np.array([120.0 + 1e-10, 10.0, 120.5]), 60.0)
    assert out.tolist() == [120.0, 0.0, 180.0]


def test_time_weighted_holds_values_until_next_change():
    """A series starting after t = 0 holds the initial value before its first sample."""
    mean, mx, area = time_weighted([5.0, 8.0], [2.0, 1.0], 10.0, initial=0.0)
    assert area == pytest.approx(2 * 3 + 1 * 2) and mean == pytest.approx(0.8) and mx == 2.0


def test_t_quantile():
    """The 95% t quantile matches the table, the normal limit, and scipy where available."""
    assert t_quantile_975(1) == pytest.approx(12.706205)
    assert t_quantile_975(10) == pytest.approx(2.228139)
    assert t_quantile_975(10**6) == pytest.approx(1.959964, abs=1e-5)
    stats = pytest.importorskip("scipy.stats")
    for df in (2, 5, 29, 30, 31, 40, 60, 120, 1000):
        assert t_quantile_975(df) == pytest.approx(float(stats.t.ppf(0.975, df)), abs=2e-6)


def test_mean_ci95_known_data():
    """Values 1..5: mean 3, s = sqrt(2.5), half-width t(4) * s / sqrt(5) = 1.963."""
    ci = mean_ci95([1.0, 2.0, 3.0, 4.0, 5.0])
    half = 2.776445 * math.sqrt(2.5) / math.sqrt(5)
    assert ci["mean"] == 3.0 and ci["n"] == 5
    assert ci["half_width"] == pytest.approx(half)
    assert (ci["ci95_low"], ci["ci95_high"]) == pytest.approx((3 - half, 3 + half))


def test_summarize_replications():
    """Replications: each numeric leaf gets mean and 95% CI; nulls are skipped; labels survive."""
    base = result().summary
    runs = []
    for i, cost in enumerate([1.0, 2.0, 3.0, 4.0, 5.0]):
        s = json.loads(json.dumps(base))
        s["cost"]["per_hour_usd"] = cost
        s["sim"]["seed"] = i
        s["latency_e2e_s"]["p99"] = None if i == 0 else 10.0
        runs.append(s)
    agg = summarize_replications(runs)
    ph = agg["cost"]["per_hour_usd"]
    assert ph["mean"] == 3.0 and ph["n"] == 5
    assert ph["half_width"] == pytest.approx(2.776445 * math.sqrt(2.5) / math.sqrt(5))
    assert agg["latency_e2e_s"]["p99"]["n"] == 4 and agg["latency_e2e_s"]["p99"]["std"] == 0.0
    assert agg["requests"]["failed_by_reason"]["timeout"]["mean"] == 1.0
    assert agg["slo"]["metric"] == "e2e"
    assert agg["replications"] == {"n": 5, "seeds": [0, 1, 2, 3, 4]}
    assert "scenario" not in agg and agg["warnings"] == ["engine says hi"]
    json.dumps(agg, allow_nan=False)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from([IN_FLIGHT, COMPLETED, FAILED]), max_size=200), st.floats(0, 50))
def test_conservation_of_requests(statuses, warmup):
    """Property: arrived = completed + failed + in_flight for any status column and warm-up."""
    n = len(statuses)
    rows = []
    for i, st_ in enumerate(statuses):
        a = float(i) * 100.0 / max(n, 1)
        done = st_ == COMPLETED
        rows.append((a, a + 0.1 if done else NAN, a + 0.2 if done else NAN,
                     a + 1.0 if st_ != IN_FLIGHT else NAN, 10, 3, 0 if done else -1, st_,
                     FAIL_TIMEOUT if st_ == FAILED else 0, 0))  # fmt: skip
    s = build_result(
        make_record(rows), slo_metric="e2e", slo_threshold_s=0.5, warmup_s=warmup
    ).summary
    r = s["requests"]
    assert r["arrived"] == n == r["completed"] + r["failed"] + r["in_flight"]
    assert r["completed"] == statuses.count(COMPLETED)
    assert sum(r["failed_by_reason"].values()) == r["failed"]
    att = s["slo"]["attainment"]
    assert att is None or 0.0 <= att <= 1.0


def test_requests_frame_does_not_alias_the_record():
    """Editing the requests frame in place leaves the engine's record untouched."""
    r = result()
    r.requests.loc[0, "arrival_s"] = -1.0
    r.requests.loc[0, "worker"] = 5
    assert r.record.requests.arrival_s[0] == 0.0 and r.record.requests.worker[0] == 0
