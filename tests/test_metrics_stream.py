"""Streaming results: the request tally fed in batches, the summary-mode sketch's error, and
workloads generated in blocks."""

from __future__ import annotations

import numpy as np
import pytest

from sim.engine.record import COMPLETED, FAIL_TIMEOUT, FAILED, IN_FLIGHT, RequestColumns
from sim.metrics.sketch import StreamStat
from sim.metrics.tally import RequestTally
from sim.workload.generators import BLOCK, diurnal_rate, thinned_arrivals
from sim.workload.spec import LognormalTokens
from sim.workload.tokens import sample_tokens


def _columns(n: int, seed: int = 1) -> RequestColumns:
    rng = np.random.default_rng(seed)
    arrival = np.sort(rng.uniform(0, 1000, n))
    cols = RequestColumns.empty(arrival, rng.integers(1, 500, n), rng.integers(0, 50, n))
    cols.dispatch_s = arrival + rng.exponential(0.5, n)
    cols.first_token_s = cols.dispatch_s + rng.exponential(0.2, n)
    cols.completion_s = cols.first_token_s + rng.exponential(3.0, n)
    status = rng.choice([COMPLETED, FAILED, IN_FLIGHT], n, p=[0.9, 0.07, 0.03])
    cols.status = status.astype(np.int8)
    cols.fail_reason = np.where(status == FAILED, FAIL_TIMEOUT, 0).astype(np.int8)
    cols.retries = rng.integers(0, 2, n).astype(np.int16)
    return cols


def _batches(cols: RequestColumns, cuts: list[int]) -> list[RequestColumns]:
    edges = [0, *cuts, len(cols.arrival_s)]
    names = RequestColumns.__dataclass_fields__
    return [
        RequestColumns(**{k: getattr(cols, k)[a:b] for k in names})
        for a, b in zip(edges, edges[1:], strict=False)
    ]


def _tally(exact: bool) -> RequestTally:
    return RequestTally(slo_metric="ttft", slo_threshold_s=0.6, warmup_s=100.0, exact=exact)


def test_tally_in_batches_counts_like_one_batch():
    """Counts, SLO attainment and exact statistics do not depend on how requests are batched."""
    cols = _columns(20_000)
    whole = _tally(exact=True)
    whole.add(cols)
    parts = _tally(exact=True)
    for b in _batches(cols, [1, 777, 5000, 19_999]):
        parts.add(b)
    a, b = whole.summary(), parts.summary()
    assert a["requests"] == b["requests"]
    assert a["slo"] == b["slo"]
    assert a["latency_e2e_s"] == pytest.approx(b["latency_e2e_s"], rel=1e-12)
    r = a["requests"]
    assert r["arrived"] == r["completed"] + r["failed"] + r["in_flight"] == 20_000


def test_summary_tally_matches_exact_within_the_sketch_error():
    """The sketch's counts and SLO are exact; mean and max exact; percentiles near exact."""
    cols = _columns(50_000, seed=2)
    exact, sketch = _tally(exact=True), _tally(exact=False)
    exact.add(cols)
    for b in _batches(cols, [10_000, 20_000, 30_000]):
        sketch.add(b)
    a, b = exact.summary(), sketch.summary()
    assert a["requests"] == b["requests"] and a["slo"] == b["slo"]
    for key in ("latency_e2e_s", "ttft_s", "queue_s", "tpot_s"):
        assert b[key]["mean"] == pytest.approx(a[key]["mean"], rel=1e-9)
        assert b[key]["max"] == pytest.approx(a[key]["max"], rel=1e-6)
        for p in ("p50", "p90", "p95", "p99"):
            assert b[key][p] == pytest.approx(a[key][p], rel=0.02)


@pytest.mark.parametrize("dist", ["lognormal", "bimodal"])
def test_sketch_rank_error_within_documented_bounds(dist: str):
    """The t-digest's rank error on 1M values stays within the bounds sim/metrics/sketch.py states."""
    rng = np.random.default_rng(11)
    n = 1_000_000
    if dist == "lognormal":
        x = rng.lognormal(0.0, 1.2, n)
    else:  # fast requests plus a slow tail of queued ones
        x = np.concatenate([rng.gamma(2, 0.2, n * 9 // 10), 30 + rng.exponential(50, n // 10)])
        rng.shuffle(x)
    s = StreamStat(exact=False)
    for i in range(0, n, 65_536):
        s.add(x[i : i + 65_536])
    got = s.stats()
    xs = np.sort(x)
    bounds = {"p50": 4e-3, "p90": 2e-3, "p95": 1e-3, "p99": 2e-4}
    for key, q in (("p50", 0.5), ("p90", 0.9), ("p95", 0.95), ("p99", 0.99)):
        rank = np.searchsorted(xs, got[key], side="right") / n
        assert abs(rank - q) <= bounds[key], (key, rank)
    assert got["max"] == x.max()
    assert got["mean"] == pytest.approx(x.mean(), rel=1e-12)


def test_sketch_is_deterministic():
    """The same values in the same batches give the same percentiles (seeds stay bit-identical)."""
    x = np.random.default_rng(5).lognormal(0.0, 1.0, 300_000)
    runs = []
    for _ in range(2):
        s = StreamStat(exact=False)
        for i in range(0, x.size, 50_000):
            s.add(x[i : i + 50_000])
        runs.append(s.stats())
    assert runs[0] == runs[1]


def test_empty_stream_stat_is_null():
    """No values: every statistic is None, in both modes."""
    for exact in (True, False):
        s = StreamStat(exact)
        s.add(np.array([np.nan]))
        assert set(s.stats().values()) == {None}


def test_block_generation_draws_the_same_numbers():
    """Lognormal token counts and thinned arrivals drawn in blocks equal one whole draw."""
    n = BLOCK + 12_345
    spec = LognormalTokens(dist="lognormal", mean=300.0, cv=1.5)
    got = sample_tokens(spec, n, np.random.default_rng(3), base_dir=".", minimum=1)
    from sim.workload.tokens import lognormal_params

    mu, sigma = lognormal_params(300.0, 1.5)
    want = np.maximum(np.rint(np.random.default_rng(3).lognormal(mu, sigma, n)).astype(np.int64), 1)
    np.testing.assert_array_equal(got, want)

    def rate(t: np.ndarray) -> np.ndarray:
        return diurnal_rate(t, 20.0, 4.0, 86400.0, 50400.0)

    got_t = thinned_arrivals(rate, 32.0, 40_000.0, np.random.default_rng(4))
    rng = np.random.default_rng(4)
    cand = np.sort(rng.uniform(0.0, 40_000.0, int(rng.poisson(32.0 * 40_000.0))))
    want_t = cand[rng.random(cand.shape[0]) * 32.0 < rate(cand)]
    assert cand.shape[0] > BLOCK
    np.testing.assert_array_equal(got_t, want_t)
