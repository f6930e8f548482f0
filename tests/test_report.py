"""Tests of sim.report: report.md and the three PNG plots."""

from __future__ import annotations

import math

import numpy as np
import pytest
from matplotlib.image import imread

from sim.engine.record import IN_FLIGHT, WorkerRecord
from sim.metrics import build_result
from sim.metrics.example import example_record
from sim.report import render_report, write_report
from sim.report.plots import cumulative_cost, time_unit

PNGS = ("latency_cdf.png", "workers_queue.png", "cost.png")


def _check_pngs(out):
    for name in PNGS:
        p = out / name
        assert p.exists() and p.stat().st_size > 15_000, name
        img = imread(p)
        assert img.shape[0] > 300 and img.shape[1] > 600, (name, img.shape)
        assert float(np.std(img[..., :3])) > 0.02, name  # not a blank canvas


def test_report_and_plots_written(tmp_path):
    """write_report writes report.md with the headline numbers and three non-trivial PNGs."""
    res = build_result(
        example_record(), slo_metric="ttft", slo_threshold_s=2.0, warmup_s=300.0,
        scenario_dict={"name": "demo-run", "deployment": {"model": "meta-llama/Meta-Llama-3-8B"}},
    )  # fmt: skip
    path = write_report(res, tmp_path)
    assert path == tmp_path / "report.md"
    text = path.read_text()
    for needle in ("# Run report: demo-run", "cost per hour", "E2E latency p50 / p95 / p99",
                   "TTFT p50 / p95 / p99", "SLO attainment (TTFT ≤ 2 s)", "requests completed / failed / in flight",
                   "workers max / mean", "cold starts", "preemptions", "## Autoscaler decisions",
                   "`blocked: cooldown`", "metrics.md", "![Latency CDF](latency_cdf.png)"):  # fmt: skip
        assert needle in text, needle
    assert f"${res.summary['cost']['per_hour_usd']:,.2f}" in text
    _check_pngs(tmp_path)


def test_report_without_completions(tmp_path):
    """A run where nothing completed still gives a report, with dashes for undefined numbers."""
    rec = example_record(n_requests=50)
    rec.requests.status[:] = IN_FLIGHT
    rec.requests.fail_reason[:] = 0
    res = build_result(rec, slo_metric="e2e", slo_threshold_s=5.0)
    text = write_report(res, tmp_path).read_text()
    assert "| E2E latency p50 / p95 / p99 | – / – / – |" in text
    assert "no request completed" in text
    for name in PNGS:
        assert (tmp_path / name).stat().st_size > 5_000


def test_many_workers_summarised(tmp_path):
    """More than 30 workers are summarised by shape, cloud and kind instead of listed."""
    rec = example_record(n_requests=100)
    rec.workers += [
        WorkerRecord(10 + i, "H100", 8, "gcp", "us-central1", "us-central1-a", spot=i % 2 == 0,
                     on_prem=False, initial=False, price_per_hour_usd=20.0, requested_s=100.0 + i,
                     provisioned_s=200.0 + i, ready_s=400.0 + i, terminated_s=900.0, end_reason="scale_down")
        for i in range(40)
    ]  # fmt: skip
    text = render_report(build_result(rec, slo_metric="e2e", slo_threshold_s=5.0), tmp_path)
    assert "44 workers" in text and "| 8× H100 | gcp | spot | 20 |" in text
    assert "scale_down: 41" in text


def test_cumulative_cost_integrates_the_rate():
    """Cumulative cost integrates the held cost rate: $3.6/h for 100 s then $7.2/h for 50 s."""
    t, cum = cumulative_cost(np.array([0.0, 100.0]), np.array([3.6, 7.2]), 150.0)
    assert t[-1] == 150.0 and cum[-1] == pytest.approx(0.1 + 0.1)
    assert math.isclose(cum[np.searchsorted(t, 100.0, side="right") - 1], 0.1)


def test_time_unit():
    """Time axes switch from seconds to minutes to hours as the horizon grows."""
    assert time_unit(60)[1] == "s" and time_unit(3600)[1] == "min" and time_unit(86400)[1] == "h"


def test_cdf_drawn_from_at_most_2000_quantiles():
    """A 200k-request CDF is 2,000 quantile points, within 1/2,000 of the exact ECDF."""
    from sim.report.plots import MAX_POINTS, cdf_points

    rng = np.random.default_rng(1)
    values = rng.lognormal(0.0, 1.5, 200_000)
    x, y = cdf_points(values)
    assert len(x) == len(y) == MAX_POINTS == 2000
    exact = np.searchsorted(np.sort(values), x, side="right") / values.size
    assert np.max(np.abs(exact - y)) <= 1.0 / MAX_POINTS + 1e-12
    small_x, small_y = cdf_points(values[:50])
    assert len(small_x) == 50 and small_y[-1] == 1.0  # small samples: the exact ECDF


def test_time_series_bucketed_keeping_peaks():
    """A worker count changing 100k times is drawn as 2,000 buckets that keep each peak."""
    from sim.report.plots import MAX_POINTS, bucket_peaks

    starts = np.arange(100_000, dtype=float)
    values = np.zeros(100_000)
    values[12_345] = 9.0  # a one-second spike
    bx, by = bucket_peaks(starts, values, 100_000.0)
    assert len(bx) == MAX_POINTS and by.max() == 9.0
    assert by[np.searchsorted(bx, 12_345.0, side="right") - 1] == 9.0
    few_x, few_y = bucket_peaks(starts[:10], values[:10], 10.0)
    assert len(few_x) == 10  # short series are drawn as they are


def test_summary_mode_cdf_from_percentiles(tmp_path, monkeypatch):
    """With sim.results: summary (no per-request table) the latency CDF is drawn from the
    summary's percentiles, skipping unknown ones, and its title counts the completed requests."""
    from sim.report import plots

    x, q = plots._summary_cdf({"p50": 1.0, "p90": 2.0, "p95": None, "p99": 4.0, "max": 5.0})
    assert x.tolist() == [1.0, 2.0, 4.0, 5.0] and q.tolist() == [0.5, 0.9, 0.99, 1.0]
    assert plots._summary_cdf({"p50": None})[0].size == 0

    from sim import scenario_from_dict, simulate

    scenario = scenario_from_dict({
        "deployment": {"name": "s", "model": "meta-llama/Meta-Llama-3-8B", "inf_type": "llm",
                       "initial_worker_config": {"min_workers": 1, "initial_workers_gpu": "A100",
                                                 "initial_workers_gpu_num": 1}},
        "workload": {"kind": "poisson", "rate_per_s": 1, "requests": 40, "prompt_tokens": 100,
                     "output_tokens": 20},
        "sim": {"results": "summary"},
    })
    result = simulate(scenario)
    titles = []
    real_save = plots._save
    monkeypatch.setattr(
        plots, "_save", lambda fig, path: titles.append(fig.axes[0].get_title()) or real_save(fig, path)
    )
    plots.plot_latency_cdf(result, tmp_path / "cdf.png")
    assert titles and titles[0].startswith("Latency CDF (40 completed") and "summary" in titles[0]
