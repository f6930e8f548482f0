"""Tests of the workload library (issue 3): more trace formats, generators, transforms, stats."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.errors import ConfigError, TraceError
from sim.rng import Streams
from sim.workload import (
    MMPPWorkload,
    SubStreams,
    Workload,
    build_workload,
    detect_format,
    load_trace,
    parse_workload_spec,
    rate_series,
    trace_stats,
)
from sim.workload import transforms as tf
from sim.workload.generators import load_servegen

SHARED = Path("/work/shared/data")
if not SHARED.is_dir():
    SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
CONV = SHARED / "azure_llm_2023" / "AzureLLMInferenceTrace_conv.csv"
SERVEGEN = SHARED / "servegen" / "m-large"
needs_azure = pytest.mark.skipif(not CONV.is_file(), reason="shared Azure traces not available")
needs_servegen = pytest.mark.skipif(
    not SERVEGEN.is_dir(), reason="shared ServeGen data not available"
)

TOK = {"prompt_tokens": 100, "output_tokens": 10}


def build(raw: dict, seed: int = 0, base_dir: Path | str = ".") -> Workload:
    return build_workload(parse_workload_spec(raw), Streams(seed), base_dir)


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def wl_of(t: list[float] | np.ndarray) -> Workload:
    t = np.asarray(t, dtype=np.float64)
    n = t.shape[0]
    return Workload(t, np.arange(1, n + 1, dtype=np.int64), np.arange(n, dtype=np.int64), "test")


# --- more trace formats -----------------------------------------------------------------------

MOONCAKE = (
    '{"timestamp": 0, "input_length": 6955, "output_length": 52, "hash_ids": [0, 1, 2]}\n'
    '{"timestamp": 0, "input_length": 6472, "output_length": 26, "hash_ids": [0, 14]}\n'
    '{"timestamp": 3052, "input_length": 8755, "output_length": 31, "hash_ids": [46, 47]}\n'
)

BURSTGPT = (
    "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n"
    "5,ChatGPT,472,18,490,Conversation log\n"
    "45,ChatGPT,1087,0,1087,Conversation log\n"
    "118,GPT-4,417,276,693,Conversation log\n"
    "125,ChatGPT,350,120,470,API log\n"
    "200,ChatGPT,97,33,130,Conversation log\n"
)


def test_mooncake_jsonl(tmp_path):
    """Mooncake JSONL (ms timestamps, hash_ids ignored) is detected and loaded in seconds."""
    p = write(tmp_path / "mooncake_trace.jsonl", MOONCAKE)
    assert detect_format(p).name == "mooncake"
    wl = load_trace(p)
    np.testing.assert_allclose(wl.arrival_s, [0.0, 0.0, 3.052])
    assert list(wl.prompt_tokens) == [6955, 6472, 8755]
    assert list(wl.output_tokens) == [52, 26, 31]


def test_burstgpt_filters_and_failed_kept(tmp_path):
    """BurstGPT: filters on Model and Log Type; failed (0-token) responses kept with a warning."""
    p = write(tmp_path / "BurstGPT_1.csv", BURSTGPT)
    assert detect_format(p).name == "burstgpt"
    wl = load_trace(p, filters={"Model": "ChatGPT", "Log Type": "Conversation log"})
    np.testing.assert_allclose(wl.arrival_s, [0.0, 40.0, 195.0])
    assert list(wl.output_tokens) == [18, 0, 33]
    assert any("1 failed responses" in w for w in wl.warnings)
    assert any("filters kept 3 of 5 rows" in w for w in wl.warnings)


def test_burstgpt_failed_dropped(tmp_path):
    """zero_output: drop removes failed responses and says how many."""
    p = write(tmp_path / "b.csv", BURSTGPT)
    wl = load_trace(p, zero_output="drop", filters={"Model": ["ChatGPT", "GPT-4"]})
    assert len(wl) == 4 and wl.output_tokens.min() > 0
    assert any("dropped 1 requests with 0 output tokens" in w for w in wl.warnings)


def test_filter_bad_row_line_is_original_line(tmp_path):
    """With filters, a bad value's line number is its line in the file, not in the filtered rows."""
    text = BURSTGPT + "300,ChatGPT,oops,1,1,Conversation log\n"
    p = write(tmp_path / "b.csv", text)
    with pytest.raises(TraceError, match="not a number: 'oops'") as err:
        load_trace(p, filters={"Model": "ChatGPT"})
    assert err.value.line == 7


def test_filter_without_match(tmp_path):
    """Filters that match nothing are a TraceError; a filter column the file lacks is named."""
    p = write(tmp_path / "b.csv", BURSTGPT)
    with pytest.raises(TraceError, match="no rows match"):
        load_trace(p, filters={"Model": "Claude"})
    with pytest.raises(TraceError, match="missing columns Region"):
        load_trace(p, filters={"Region": "eu"})


def test_vidur_csv(tmp_path):
    """Vidur/Splitwise processed CSV (arrived_at, num_prefill_tokens, num_decode_tokens) loads."""
    p = write(
        tmp_path / "splitwise_conv.csv",
        "arrived_at,num_prefill_tokens,num_decode_tokens,num_total_tokens\n"
        "0.0,374,44,418\n4.31,396,109,505\n",
    )
    assert detect_format(p).name == "vidur"
    wl = load_trace(p)
    np.testing.assert_allclose(wl.arrival_s, [0.0, 4.31])
    assert list(wl.output_tokens) == [44, 109]


def test_prompt_only_embedding_trace(tmp_path):
    """prompt_only reads traces without an output column (embeddings): every output is 0."""
    p = write(tmp_path / "emb.csv", "arrival,prompt\n0,12\n0.5,30\n")
    wl = load_trace(p, prompt_only=True)
    assert list(wl.output_tokens) == [0, 0]
    spec = {"kind": "trace", "path": str(p), "prompt_only": True}
    assert len(build(spec)) == 2


def test_joint_token_resampling_keeps_pairs(tmp_path):
    """Joint resampling draws (prompt, output) pairs that occur together in the file."""
    rows = [(10, 1), (20, 2), (30, 3), (40, 4)]
    text = "arrival,prompt,output\n" + "".join(f"{i},{p},{o}\n" for i, (p, o) in enumerate(rows))
    write(tmp_path / "pairs.csv", text)
    wl = build(
        {
            "kind": "poisson",
            "rate_per_s": 50,
            "requests": 5000,
            "joint_tokens": {"path": "pairs.csv"},
        },
        base_dir=tmp_path,
    )
    pairs = set(zip(wl.prompt_tokens.tolist(), wl.output_tokens.tolist(), strict=True))
    assert pairs == set(rows)


def test_joint_tokens_exclusive():
    """joint_tokens and prompt_tokens/output_tokens cannot both be given."""
    with pytest.raises(ValueError, match="either joint_tokens"):
        parse_workload_spec(
            {
                "kind": "poisson",
                "rate_per_s": 1,
                "requests": 1,
                "joint_tokens": {"path": "x"},
                **TOK,
            }
        )
    with pytest.raises(ValueError, match="give prompt_tokens and output_tokens"):
        parse_workload_spec({"kind": "poisson", "rate_per_s": 1, "requests": 1, "prompt_tokens": 5})


# --- generators -------------------------------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(
    rate=st.floats(0.5, 50.0),
    cv=st.floats(0.3, 4.0),
    duration=st.floats(200.0, 5000.0),
    seed=st.integers(0, 2**31),
)
def test_gamma_count_within_sampling_error(rate, cv, duration, seed):
    """Gamma renewal counts satisfy |N − λT| <= 5·cv·sqrt(λT) + 5 (renewal CLT, stationary start)."""
    wl = build({"kind": "gamma", "rate_per_s": rate, "cv": cv, "duration_s": duration, **TOK}, seed)
    lam_t = rate * duration
    assert abs(len(wl) - lam_t) <= 5 * cv * math.sqrt(lam_t) + 5


@pytest.mark.parametrize("cv", [0.5, 1.0, 3.0])
def test_gamma_gap_cv(cv):
    """Gamma inter-arrival gaps have the requested mean and coefficient of variation."""
    wl = build({"kind": "gamma", "rate_per_s": 5.0, "cv": cv, "requests": 200_000, **TOK}, 4)
    gaps = np.diff(wl.arrival_s)
    assert gaps.mean() == pytest.approx(0.2, rel=0.03)
    assert gaps.std() / gaps.mean() == pytest.approx(cv, rel=0.03)
    assert len(wl) == 200_000


def test_mmpp_mean_rate_and_burstiness():
    """MMPP: the long-run rate is the sojourn-weighted mean and per-minute counts are overdispersed."""
    raw = {
        "kind": "mmpp",
        "rates_per_s": [2.0, 30.0],
        "mean_sojourn_s": [600.0, 120.0],
        "duration_s": 400_000.0,
        **TOK,
    }
    spec = parse_workload_spec(raw)
    assert isinstance(spec, MMPPWorkload)
    wl = build_workload(spec, Streams(9))
    assert spec.mean_rate_per_s == pytest.approx((2 * 600 + 30 * 120) / 720)
    assert len(wl) / 400_000 == pytest.approx(spec.mean_rate_per_s, rel=0.05)
    counts = rate_series(wl, 60.0)["requests"].to_numpy()[:-1]
    assert counts.var() / counts.mean() > 5  # Poisson would give ~1


@settings(max_examples=20, deadline=None)
@given(r1=st.floats(0.1, 20), r2=st.floats(0.1, 20), seed=st.integers(0, 2**31))
def test_step_counts_per_segment(r1, r2, seed):
    """Step: the count in each segment is within 5 sigma of rate x length, none before the first step."""
    wl = build(
        {
            "kind": "step",
            "steps": [{"at_s": 100, "rate_per_s": r1}, {"at_s": 600, "rate_per_s": r2}],
            "duration_s": 1000,
            **TOK,
        },
        seed,
    )
    t = wl.arrival_s
    assert (t >= 100).all() and (t < 1000).all()
    for lo, hi, r in ((100, 600, r1), (600, 1000, r2)):
        n = np.count_nonzero((t >= lo) & (t < hi))
        assert abs(n - r * (hi - lo)) <= 5 * math.sqrt(r * (hi - lo)) + 1


def test_spike_windows_add_rate():
    """Spike: extra traffic appears only inside the (repeated) spike windows, on top of the base."""
    wl = build(
        {
            "kind": "spike",
            "base_rate_per_s": 2.0,
            "spikes": [{"at_s": 100, "duration_s": 50, "rate_per_s": 40, "every_s": 1000}],
            "duration_s": 100_000,
            **TOK,
        },
        3,
    )
    phase = wl.arrival_s % 1000
    inside = (phase >= 100) & (phase < 150)
    rate_in = inside.sum() / (100 * 50)
    rate_out = (~inside).sum() / (100 * 950)
    assert rate_in == pytest.approx(42.0, rel=0.03)
    assert rate_out == pytest.approx(2.0, rel=0.03)


def test_diurnal_weekly_cycle():
    """Diurnal with a weekly cycle: the weekly harmonic gives the weekly peak/trough and the mean holds."""
    wl = build(
        {
            "kind": "diurnal",
            "mean_rate_per_s": 1.0,
            "peak_to_trough": 3.0,
            "weekly_peak_to_trough": 2.0,
            "duration_s": 8 * 7 * 86400.0,
            **TOK,
        },
        5,
    )
    total = 8 * 7 * 86400.0
    assert abs(len(wl) - total) <= 5 * math.sqrt(total)
    phase = 2 * np.pi * (wl.arrival_s - 2.5 * 86400) / (7 * 86400)
    b_hat = 2 * math.hypot(np.cos(phase).mean(), np.sin(phase).mean())
    assert (1 + b_hat) / (1 - b_hat) == pytest.approx(2.0, rel=0.05)


@needs_servegen
def test_servegen_aggregate_follows_series_at_target_rate():
    """ServeGen (all clients): the mean rate is the target and per-window counts track the series."""
    wl = build({"kind": "servegen", "path": str(SERVEGEN), "mean_rate_per_s": 2.0, **TOK}, 1)
    series = load_servegen(SERVEGEN)
    span = float(series.window_start_s[-1] + series.window_s[-1])
    assert len(wl) / span == pytest.approx(2.0, rel=0.02)
    counts = np.bincount((wl.arrival_s // 600).astype(int), minlength=series.rate.shape[1])
    assert np.corrcoef(counts, series.total_rate)[0, 1] > 0.9
    assert wl.duration_s <= span


@needs_servegen
def test_servegen_clients_and_window():
    """ServeGen with a client list and a start/duration window generates only inside the window."""
    raw = {
        "kind": "servegen",
        "path": str(SERVEGEN),
        "clients": [1, 5],
        "mean_rate_per_s": 1.0,
        "start_s": 86400,
        "duration_s": 2 * 86400,
        **TOK,
    }
    wl = build(raw, 2)
    assert wl.arrival_s.min() >= 0 and wl.duration_s < 2 * 86400
    assert len(wl) / (2 * 86400) == pytest.approx(1.0, rel=0.3)  # two bursty clients: loose
    assert load_servegen(SERVEGEN, (1, 5)).clients == (1, 5)


@needs_servegen
def test_servegen_unknown_client():
    """An unknown ServeGen client id is a ConfigError naming the available ids."""
    with pytest.raises(ConfigError, match="unknown ServeGen client ids \\[9999\\]"):
        build(
            {
                "kind": "servegen",
                "path": str(SERVEGEN),
                "clients": 9999,
                "mean_rate_per_s": 1,
                **TOK,
            }
        )


def test_servegen_missing_folder(tmp_path):
    """A missing ServeGen folder is a ConfigError."""
    with pytest.raises(ConfigError, match="ServeGen folder not found"):
        build({"kind": "servegen", "path": str(tmp_path / "nope"), "mean_rate_per_s": 1, **TOK})


def test_composite_superposes_independent_parts():
    """Composite: the merge of its parts, each from its own streams; identical parts still differ."""
    part = {"kind": "poisson", "rate_per_s": 5, "duration_s": 100, **TOK}
    spike = {
        "kind": "spike",
        "base_rate_per_s": 0,
        "spikes": [{"at_s": 10, "duration_s": 5, "rate_per_s": 50}],
        "duration_s": 100,
        **TOK,
    }
    wl = build({"kind": "composite", "parts": [part, part, spike]}, 1)
    parts = [
        build_workload(parse_workload_spec(p), SubStreams(Streams(1), f"part{i}"))
        for i, p in enumerate((part, part, spike))
    ]
    assert len(wl) == sum(len(p) for p in parts)
    np.testing.assert_array_equal(
        wl.arrival_s, np.sort(np.concatenate([p.arrival_s for p in parts]))
    )
    assert not np.array_equal(parts[0].arrival_s[:5], parts[1].arrival_s[:5])
    again = build({"kind": "composite", "parts": [part, part, spike]}, 1)
    np.testing.assert_array_equal(again.arrival_s, wl.arrival_s)
    np.testing.assert_array_equal(again.prompt_tokens, wl.prompt_tokens)


# --- transforms -------------------------------------------------------------------------------


def test_time_scale_shift_slice_max_requests():
    """time_scale, shift, slice and max_requests do what their names say."""
    w = wl_of([0.0, 1.0, 2.0, 5.0])
    np.testing.assert_allclose(tf.time_scale(w, 2.0).arrival_s, [0, 2, 4, 10])
    np.testing.assert_allclose(tf.shift(w, 3.0).arrival_s, [3, 4, 5, 8])
    s = tf.shift(w, -1.5)
    np.testing.assert_allclose(s.arrival_s, [0.5, 3.5])
    assert list(s.prompt_tokens) == [3, 4]
    sl = tf.slice_time(w, 1.0, 5.0)
    np.testing.assert_allclose(sl.arrival_s, [0.0, 1.0])
    assert list(sl.prompt_tokens) == [2, 3]
    assert list(tf.max_requests(w, 2).arrival_s) == [0.0, 1.0]


def test_repeat_times_until_and_period():
    """repeat tiles with the default period (span + one mean gap), a given count, or up to a horizon."""
    w = wl_of([0.0, 1.0, 2.0])
    r = tf.repeat(w, times=3)
    np.testing.assert_allclose(r.arrival_s, [0, 1, 2, 3, 4, 5, 6, 7, 8])
    assert list(r.prompt_tokens) == [1, 2, 3] * 3
    u = tf.repeat(w, until_s=7.0, period_s=5.0)
    np.testing.assert_allclose(u.arrival_s, [0, 1, 2, 5, 6])
    with pytest.raises(ValueError, match="must exceed the last arrival"):
        tf.repeat(w, times=2, period_s=1.5)


def test_rate_scale_shape_kept():
    """rate_scale 3 keeps every request three times, inside the original span, tokens preserved."""
    rng = np.random.default_rng(0)
    w = wl_of(np.sort(np.random.default_rng(1).uniform(0, 1000, 500)))
    r = tf.rate_scale(w, 3.0, rng, shift_s=30.0)
    assert len(r) == 1500
    assert r.arrival_s.min() >= 0 and r.arrival_s.max() <= w.duration_s
    assert sorted(r.prompt_tokens.tolist()) == sorted(w.prompt_tokens.tolist() * 3)
    assert np.all(np.diff(r.arrival_s) >= 0)


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 400),
    factor=st.floats(0.05, 4.0),
    times=st.integers(1, 5),
    cap=st.integers(1, 500),
    seed=st.integers(0, 2**31),
)
def test_transforms_preserve_counts_as_specified(n, factor, times, cap, seed):
    """Counts: time_scale/shift keep n, repeat(k) gives k·n, max_requests min(n, N), rate_scale ~factor·n."""
    rng = np.random.default_rng(seed)
    w = wl_of(np.sort(rng.uniform(0, 100, n)))
    assert len(tf.time_scale(w, factor)) == n
    assert len(tf.shift(w, factor)) == n
    assert len(tf.repeat(w, times=times, period_s=101.0)) == times * n
    assert len(tf.max_requests(w, cap)) == min(n, cap)
    scaled = tf.rate_scale(w, factor, rng)
    whole = math.floor(factor)
    frac = factor - whole
    if factor >= 1:
        # Whole copies are exact; only the fractional copy is binomial.
        extra = len(scaled) - whole * n
        assert abs(extra - frac * n) <= 5 * math.sqrt(n * frac * (1 - frac)) + 1
    else:
        assert abs(len(scaled) - factor * n) <= 5 * math.sqrt(n * factor * (1 - factor)) + 1
    scaled.check()


def test_transforms_in_yaml_order():
    """Transforms in a spec apply in order: slice then repeat differs from repeat then slice."""
    base = {"kind": "poisson", "rate_per_s": 10, "duration_s": 100, **TOK}
    a = build(
        {
            **base,
            "transforms": [
                {"op": "slice", "end_s": 50},
                {"op": "repeat", "times": 2, "period_s": 50},
            ],
        }
    )
    b = build(
        {
            **base,
            "transforms": [
                {"op": "repeat", "times": 2, "period_s": 100},
                {"op": "slice", "end_s": 50},
            ],
        }
    )
    assert a.duration_s > 50 and b.duration_s < 50
    c = build(
        {
            **base,
            "transforms": [{"op": "rate_scale", "factor": 0.5}, {"op": "max_requests", "n": 10}],
        }
    )
    assert len(c) == 10


def test_transform_spec_errors():
    """Transform specs reject bad parameters at validation time."""
    with pytest.raises(ValueError):
        parse_workload_spec(
            {
                "kind": "poisson",
                "rate_per_s": 1,
                "requests": 5,
                **TOK,
                "transforms": [{"op": "repeat"}],
            }
        )
    with pytest.raises(ValueError):
        parse_workload_spec(
            {
                "kind": "poisson",
                "rate_per_s": 1,
                "requests": 5,
                **TOK,
                "transforms": [{"op": "zoom"}],
            }
        )
    with pytest.raises(ConfigError, match="must exceed the last arrival"):
        build(
            {
                "kind": "poisson",
                "rate_per_s": 1,
                "requests": 50,
                **TOK,
                "transforms": [{"op": "repeat", "times": 2, "period_s": 1}],
            }
        )


# --- trace statistics -------------------------------------------------------------------------


@needs_azure
def test_trace_stats_azure_conv():
    """trace_stats on the Azure conv trace: count, span, per-minute rates and token quantiles."""
    stats = trace_stats(load_trace(CONV))
    assert stats["requests"] == 19_366
    assert 57 * 60 <= stats["span_s"] <= 59 * 60
    assert stats["rate_per_min"]["mean"] == pytest.approx(19_366 / stats["span_s"] * 60)
    assert stats["rate_per_min"]["peak"] >= stats["rate_per_min"]["mean"]
    assert stats["prompt_tokens"]["p50"] <= stats["prompt_tokens"]["p99"]
    assert stats["interarrival_s"]["cv"] > 0.5
    json.dumps(stats)  # JSON-ready


def test_trace_stats_poisson_cv_and_series():
    """A Poisson workload has inter-arrival CV ≈ 1; rate_series counts add up to the requests."""
    wl = build({"kind": "poisson", "rate_per_s": 20, "duration_s": 5000, **TOK}, 8)
    stats = trace_stats(wl)
    assert stats["interarrival_s"]["cv"] == pytest.approx(1.0, abs=0.03)
    assert stats["mean_rate_per_s"] == pytest.approx(20, rel=0.03)
    series = rate_series(wl, 60.0)
    assert int(series["requests"].sum()) == len(wl)
    assert stats["prompt_tokens"]["p50"] == 100 and stats["output_tokens"]["max"] == 10
