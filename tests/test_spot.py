"""Tests of spot capacity traces, the per-zone spot market and the hazard preemption model."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim import scenario_from_dict, simulate
from sim.errors import ConfigError, TraceError
from sim.fleet.spot import (
    UNLIMITED,
    CapacityChange,
    CapacityTrace,
    HazardPreemption,
    SpotMarket,
    load_capacity_trace,
    load_capacity_traces,
    trace_summary,
    zone_from_filename,
)
from sim.rng import Streams

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
CBL = DATA / "spot_traces"
GCP = DATA / "spot_traces_gcp_a100"
needs_data = pytest.mark.skipif(
    not (CBL.is_dir() and GCP.is_dir()), reason="shared spot traces not checked out"
)

FOUR_NODE = CBL / "preemption" / "4-node" / "aws-08-03-2023" / "us-west-2c_v100_1.json"
ONE_NODE = CBL / "preemption" / "1-node" / "aws-04-22-2023" / "us-west-2b_v100_1.json"
SIXTEEN = CBL / "availability" / "16-node" / "aws-08-27-2023" / "us-east-2b_v100_1.json"
GCP_A = GCP / "us-central1-a_a100_40gb_8.json"


def _raw(path: Path) -> tuple[float, list[int]]:
    """The gap and tick values of a trace file, read independently of the loader."""
    doc = json.loads(path.read_text())
    return float(doc["metadata"]["gap_seconds"]), doc["data"]


def _write(tmp_path: Path, name: str, doc: object) -> Path:
    """Write ``doc`` as JSON to ``tmp_path/name``."""
    p = tmp_path / name
    p.write_text(json.dumps(doc))
    return p


def _hand() -> CapacityTrace:
    """A small hand-made count trace: ticks of 10 s holding 3 3 1 0 2."""
    return CapacityTrace.from_ticks([3, 3, 1, 0, 2], 10.0, zone="z1")


# -- loading the real files -------------------------------------------------------------------
@needs_data
@pytest.mark.parametrize("path", [FOUR_NODE, SIXTEEN, GCP_A], ids=["4-node", "16-node", "gcp"])
def test_count_files_load_tick_for_tick(path: Path) -> None:
    """A count trace (Can't-Be-Late multi-node, SpotHedge GCP) loads with every tick's value."""
    gap, data = _raw(path)
    tr = load_capacity_trace(path)
    assert tr.content == "count"
    assert tr.gap_seconds == gap
    assert tr.n_ticks == len(data)
    assert tr.duration_s == len(data) * gap
    assert tr.times_s.dtype == np.float64 and tr.capacity.dtype == np.int64
    assert tr.times_s[0] == 0.0
    ticks = np.arange(len(data)) * gap
    assert np.array_equal(tr.capacity_at_many(ticks), np.array(data))
    assert np.array_equal(tr.capacity_at_many(ticks + gap / 2), np.array(data))


@needs_data
def test_gcp_zone_and_tick_from_spothedge_file() -> None:
    """The SpotHedge GCP A100 file gives its zone from the file name and 150 s ticks."""
    tr = load_capacity_trace(GCP_A)
    assert tr.zone == "us-central1-a"
    assert tr.gap_seconds == 150.0
    assert tr.duration_s == 770 * 150.0
    assert tr.source == str(GCP_A)
    assert load_capacity_trace(GCP_A, zone="gcp-a").zone == "gcp-a"


@needs_data
def test_binary_file_loads_and_inverts_with_preempted_polarity() -> None:
    """A 1-node 0/1 file is binary; polarity 'preempted' gives 1 - value at every tick."""
    gap, data = _raw(ONE_NODE)
    avail = load_capacity_trace(ONE_NODE)
    pre = load_capacity_trace(ONE_NODE, polarity="preempted")
    assert avail.content == "binary" and pre.content == "binary"
    ticks = np.arange(len(data)) * gap
    assert np.array_equal(avail.capacity_at_many(ticks), np.array(data))
    assert np.array_equal(pre.capacity_at_many(ticks), 1 - np.array(data))


@needs_data
def test_directory_loads_every_zone() -> None:
    """A directory of traces loads one trace per JSON file, zones from the file names."""
    traces = load_capacity_traces(GCP, content="count")
    assert [t.zone for t in traces] == [
        "asia-northeast1-a", "europe-west4-a", "us-central1-a", "us-central1-b",
        "us-east1-b", "us-west1-b",
    ]
    assert all(t.content == "count" for t in traces)
    market = SpotMarket(traces)
    assert market.kind == "trace" and len(market.zones) == 6


@needs_data
def test_doc_table_is_current() -> None:
    """docs/spot.md carries the table that scripts/spot_trace_table.py generates now."""
    spec = importlib.util.spec_from_file_location(
        "spot_trace_table", REPO / "scripts" / "spot_trace_table.py"
    )
    assert spec is not None and spec.loader is not None
    mod: ModuleType = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("spot_trace_table", mod)
    spec.loader.exec_module(mod)
    assert mod.main(["--check"]) == 0


# -- polarity and content on hand-written files -----------------------------------------------
def test_polarity_inversion_on_small_file(tmp_path: Path) -> None:
    """polarity='preempted' turns 1 (preempted) into capacity 0 and 0 into capacity 1."""
    p = _write(tmp_path, "zone-x_v100_1.json", {"metadata": {"gap_seconds": 5}, "data": [0, 1, 1, 0]})
    assert load_capacity_trace(p).capacity_at_many([0, 5, 10, 15]).tolist() == [0, 1, 1, 0]
    inv = load_capacity_trace(p, polarity="preempted")
    assert inv.capacity_at_many([0, 5, 10, 15]).tolist() == [1, 0, 0, 1]
    assert inv.zone == "zone-x"


def test_preempted_polarity_refused_on_count_file(tmp_path: Path) -> None:
    """Inverting a count trace makes no sense, so it is a TraceError naming the file."""
    p = _write(tmp_path, "z_a.json", {"metadata": {"gap_seconds": 5}, "data": [0, 3, 4]})
    with pytest.raises(TraceError, match="z_a.json"):
        load_capacity_trace(p, polarity="preempted")
    q = _write(tmp_path, "z_b.json", {"metadata": {"gap_seconds": 5}, "data": [0, 1]})
    with pytest.raises(TraceError, match="count trace"):
        load_capacity_trace(q, polarity="preempted", content="count")


def test_binary_capacity_scales_available_ticks(tmp_path: Path) -> None:
    """binary_capacity makes an available tick of a 0/1 file stand for that many instances."""
    p = _write(tmp_path, "z_a.json", {"metadata": {"gap_seconds": 5}, "data": [1, 0, 1]})
    tr = load_capacity_trace(p, binary_capacity=UNLIMITED)
    assert tr.capacity.tolist() == [UNLIMITED, 0, UNLIMITED]


def test_extra_prices_key_is_ignored(tmp_path: Path) -> None:
    """A per-tick prices array next to data (some Can't-Be-Late files) does not disturb loading."""
    doc = {"metadata": {"gap_seconds": 32}, "data": [0, 1], "prices": [0.9, 0.9]}
    assert load_capacity_trace(_write(tmp_path, "z_a.json", doc)).capacity.tolist() == [0, 1]


def test_zone_from_filename() -> None:
    """The zone is the file name up to its first underscore."""
    assert zone_from_filename("x/us-central1-a_a100_40gb_8.json") == "us-central1-a"
    assert zone_from_filename("us-east-1f_v100_1.json") == "us-east-1f"
    assert zone_from_filename("plain.json") == "plain"


# -- bad files ---------------------------------------------------------------------------------
def test_bad_json_names_the_file(tmp_path: Path) -> None:
    """Malformed JSON is a TraceError that names the file and the line."""
    p = tmp_path / "broken_trace.json"
    p.write_text('{"metadata": {"gap_seconds": 5},\n "data": [1, 2,, 3]}')
    with pytest.raises(TraceError, match="broken_trace.json") as ei:
        load_capacity_trace(p)
    assert ei.value.path == str(p) and ei.value.line == 2


def test_negative_value_names_file_and_index(tmp_path: Path) -> None:
    """A negative capacity is a TraceError naming the file and the index of the value."""
    p = _write(tmp_path, "neg_a.json", {"metadata": {"gap_seconds": 5}, "data": [1, 2, -1, 3]})
    with pytest.raises(TraceError, match=r"neg_a\.json.*data\[2\] = -1"):
        load_capacity_trace(p)


@pytest.mark.parametrize(
    ("doc", "msg"),
    [
        ({"metadata": {"gap_seconds": 5}, "data": [1, 2.5]}, r"data\[1\] = 2\.5"),
        ({"metadata": {"gap_seconds": 5}, "data": [1, None]}, r"data\[1\] = None"),
        ({"metadata": {"gap_seconds": 5}, "data": [True]}, r"data\[0\] = True"),
        ({"metadata": {"gap_seconds": 5}, "data": []}, "empty"),
        ({"metadata": {"gap_seconds": 0}, "data": [1]}, "gap_seconds"),
        ({"metadata": {}, "data": [1]}, "gap_seconds"),
        ({"data": [1]}, "gap_seconds"),
        ([1, 2, 3], "metadata"),
    ],
    ids=["fraction", "null", "bool", "empty", "zero-gap", "no-gap", "no-metadata", "bare-list"],
)
def test_malformed_content_names_the_file(tmp_path: Path, doc: object, msg: str) -> None:
    """Each malformed shape or value is a TraceError naming the file and what is wrong."""
    p = _write(tmp_path, "bad_a.json", doc)
    with pytest.raises(TraceError, match=msg) as ei:
        load_capacity_trace(p)
    assert "bad_a.json" in str(ei.value)


def test_missing_file_is_trace_error(tmp_path: Path) -> None:
    """A file that does not exist is a TraceError naming it, not an OSError."""
    with pytest.raises(TraceError, match="nope.json"):
        load_capacity_trace(tmp_path / "nope.json")


# -- step semantics, drops, tiling -------------------------------------------------------------
def test_capacity_at_step_semantics() -> None:
    """A tick's value applies from its start (inclusive) to the next tick (exclusive)."""
    tr = _hand()
    assert tr.times_s.tolist() == [0.0, 20.0, 30.0, 40.0]  # only change points are kept
    assert tr.capacity.tolist() == [3, 1, 0, 2]
    expect = {0: 3, 5: 3, 10: 3, 19.999: 3, 20: 1, 29.5: 1, 30: 0, 39.99: 0, 40: 2, 49.9: 2}
    for t, c in expect.items():
        assert tr.capacity_at(t) == c, t
    assert tr.capacity_at_many(list(expect)).tolist() == list(expect.values())
    with pytest.raises(ValueError):
        tr.capacity_at(-1.0)


def test_drops_match_hand_made_trace() -> None:
    """drops() lists exactly the decreases with the new capacity, not the rises."""
    times, caps = CapacityTrace.from_ticks([4, 4, 2, 2, 3, 0, 0, 1, 1, 0], 60.0).drops()
    assert times.tolist() == [120.0, 300.0, 540.0]
    assert caps.tolist() == [2, 0, 0]


def test_tiling_beyond_trace_length() -> None:
    """With repeat the trace tiles (time modulo duration); without, the last value holds."""
    tr = _hand()  # duration 50 s: 3 3 1 0 2
    assert tr.duration_s == 50.0
    assert tr.capacity_at_many([50, 69, 70, 80, 90, 100, 1020]).tolist() == [3, 3, 1, 0, 2, 3, 1]
    held = tr.with_repeat(False)
    assert held.capacity_at_many([49, 50, 1e6]).tolist() == [2, 2, 2]
    # The wrap-around (2 → 3 at t = 50) is a change only when tiling.
    assert list(tr.changes(0, 100)) == [
        (20.0, 1), (30.0, 0), (40.0, 2), (50.0, 3), (70.0, 1), (80.0, 0), (90.0, 2), (100.0, 3)
    ]
    assert list(held.changes(0, 1e6)) == [(20.0, 1), (30.0, 0), (40.0, 2)]


def test_constant_wrap_is_not_a_change() -> None:
    """A trace whose last value equals its first tiles without a change at the seam."""
    tr = CapacityTrace.from_ticks([2, 1, 2], 10.0)
    assert list(tr.changes(0, 60)) == [(10.0, 1), (20.0, 2), (40.0, 1), (50.0, 2)]
    assert math.isinf(CapacityTrace.from_ticks([3, 3], 10.0).next_change_after(0.0))


def test_time_scale_compresses_times() -> None:
    """time_scale multiplies every time; the tick value sequence is unchanged."""
    tr = CapacityTrace.from_ticks([3, 3, 1, 0, 2], 10.0, time_scale=0.5)
    assert tr.times_s.tolist() == [0.0, 10.0, 15.0, 20.0]
    assert tr.duration_s == 25.0 and tr.gap_seconds == 10.0 and tr.time_scale == 0.5
    again = _hand().scaled(0.5)
    assert again.times_s.tolist() == tr.times_s.tolist() and again.time_scale == 0.5


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(st.integers(0, 5), min_size=1, max_size=30),
    gap=st.sampled_from([1.0, 30.0, 150.0]),
    scale=st.sampled_from([1.0, 1 / 3, 0.1, 7.0]),
    start=st.floats(0, 5000),
)
def test_change_events_see_their_own_capacity(
    values: list[int], gap: float, scale: float, start: float
) -> None:
    """At every change the engine is told of (many periods in), capacity_at gives the new value."""
    tr = CapacityTrace.from_ticks(values, gap, time_scale=scale)
    horizon = start + 20 * tr.duration_s
    last = start
    for ts, cap in tr.changes(start, horizon):
        assert ts > last
        assert tr.capacity_at(ts) == cap
        assert tr.next_change_after(last) == ts
        last = ts


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(st.integers(0, 5), min_size=1, max_size=30),
    ts=st.lists(st.floats(0, 1e5), min_size=1, max_size=20),
)
def test_vectorised_lookup_matches_scalar(values: list[int], ts: list[float]) -> None:
    """capacity_at_many equals capacity_at applied element by element."""
    tr = CapacityTrace.from_ticks(values, 7.0)
    assert tr.capacity_at_many(ts).tolist() == [tr.capacity_at(t) for t in ts]


# -- the market --------------------------------------------------------------------------------
def _market() -> SpotMarket:
    """Two zones: z1 = 3 3 1 0 2 and z2 = 0 0 4 4 4 on 10 s ticks."""
    return SpotMarket([_hand(), CapacityTrace.from_ticks([0, 0, 4, 4, 4], 10.0, zone="z2")])


def test_excess_to_preempt() -> None:
    """At a drop, the spot workers over the zone's new capacity are the ones to preempt."""
    m = _market()
    assert m.excess("z1", 20.0, 3) == 2  # 3 → 1 with 3 spot workers: 2 must go
    assert m.excess("z1", 20.0, 1) == 0
    assert m.excess("z1", 30.0, 1) == 1  # 1 → 0
    assert m.excess("z1", 5.0, 3) == 0
    assert m.preemptions_at(20.0, {"z1": 3, "z2": 0}) == {"z1": 2}
    assert m.preemptions_at(30.0, {"z1": 2, "z2": 4}) == {"z1": 2}
    assert m.preemptions_at(0.0, {"z1": 3, "z2": 1}) == {"z2": 1}


def test_acquisition_refused_at_zero_and_allowed_with_room() -> None:
    """A spot worker is refused at zero capacity or when full, allowed when capacity > workers."""
    m = _market()
    assert not m.can_acquire("z1", 35.0, 0)  # capacity 0
    assert not m.can_acquire("z2", 0.0, 0)
    assert m.can_acquire("z1", 0.0, 2)  # 3 > 2
    assert not m.can_acquire("z1", 0.0, 3)  # full
    assert m.can_acquire("z2", 25.0, 3)
    assert m.acquirable_zones(25.0, {"z1": 0, "z2": 1}) == ["z2", "z1"]  # room 3, then 1
    assert m.acquirable_zones(35.0, {"z2": 4}) == []


def test_next_available_for_retry_and_fallback() -> None:
    """next_available is now if there is room, else when capacity next exceeds the workers."""
    m = _market()
    assert m.next_available("z2", 0.0) == 20.0
    assert m.next_available("z2", 25.0) == 25.0
    assert m.next_available("z1", 30.0) == 40.0
    assert m.next_available("z1", 41.0, spot_workers=2) == 50.0  # the tiled 3 at t = 50
    held = SpotMarket([_hand().with_repeat(False)])
    assert math.isinf(held.next_available("z1", 41.0, spot_workers=2))
    never = SpotMarket([CapacityTrace.from_ticks([0, 0], 150.0, zone="dead")])
    assert math.isinf(never.next_available("dead", 0.0))


def test_changes_merge_zones_in_time_order() -> None:
    """changes() yields every zone's changes sorted by time, and next_change_after agrees."""
    m = _market()
    got = list(m.changes(0.0, 60.0))
    assert got == [
        CapacityChange(20.0, "z1", 1), CapacityChange(20.0, "z2", 4),
        CapacityChange(30.0, "z1", 0), CapacityChange(40.0, "z1", 2),
        CapacityChange(50.0, "z1", 3), CapacityChange(50.0, "z2", 0),
    ]
    assert m.next_change_after(20.0) == 30.0
    assert m.next_change_after(0.0, zone="z2") == 20.0
    assert list(m.changes(20.0, 30.0)) == [CapacityChange(30.0, "z1", 0)]


def test_market_without_traces_is_unlimited() -> None:
    """Hazard (or no) preemption: every zone has unlimited room and no capacity events."""
    m = SpotMarket(hazard=HazardPreemption(3600.0, Streams(1).get("preemption")))
    assert m.kind == "hazard"
    assert m.can_acquire("anywhere", 0.0, 10_000)
    assert m.preemptions_at(0.0, {"anywhere": 10_000}) == {}
    assert list(m.changes()) == [] and math.isinf(m.next_change_after(0.0))
    assert SpotMarket().kind == "none"


def test_duplicate_and_unknown_zones_are_config_errors() -> None:
    """Two traces for one zone, or a zone without a trace, are ConfigErrors."""
    with pytest.raises(ConfigError, match="two spot traces"):
        SpotMarket([_hand(), _hand()])
    with pytest.raises(ConfigError, match="no spot capacity trace"):
        _market().capacity("z9", 0.0)


# -- hazard --------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_hazard_sample_mean_within_confidence_bound(seed: int) -> None:
    """The mean of 20 000 exponential draws is within 4 standard errors of the configured mean."""
    mean, n = 10_800.0, 20_000
    h = HazardPreemption(mean, Streams(seed).get("preemption"))
    draws = np.array([h.sample() for _ in range(n)])
    assert np.all(draws >= 0)
    assert abs(draws.mean() - mean) <= 4 * mean / math.sqrt(n)


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_hazard_preemption_count_is_poisson(seed: int) -> None:
    """Preemptions of a re-acquired worker over 2 000 worker-hours fall in the Poisson 4-sigma band."""
    mean, horizon = 10_800.0, 2_000 * 3600.0
    h = HazardPreemption(mean, Streams(seed).get("preemption"))
    t, count = 0.0, 0
    while True:
        t += h.sample()
        if t > horizon:
            break
        count += 1
    lam = horizon / mean  # ≈ 667 expected
    assert abs(count - lam) <= 4 * math.sqrt(lam)


def test_hazard_rejects_bad_mean_and_allows_infinity() -> None:
    """A non-positive mean is refused; an infinite mean never preempts."""
    rng = Streams(0).get("preemption")
    with pytest.raises(ValueError):
        HazardPreemption(0.0, rng)
    assert math.isinf(HazardPreemption(math.inf, rng).sample())


# -- figures ----------------------------------------------------------------------------------
def test_trace_summary_of_hand_made_trace() -> None:
    """trace_summary gives the time-weighted mean, time at zero, drops and the preemption rates."""
    s = trace_summary(CapacityTrace.from_ticks([2, 2, 0, 1, 0, 2], 3600.0, zone="z"))
    assert s["duration_h"] == 6.0
    assert s["mean_capacity"] == pytest.approx(7 / 6)
    assert s["frac_time_zero"] == pytest.approx(2 / 6)
    assert s["drops"] == 2 and s["instances_lost"] == 3
    assert s["mean_time_between_drops_s"] == 3 * 3600.0
    # One instance: up 4 h, falls to zero twice → 12 a day, mean 2 h to preemption.
    assert s["one_instance_preemptions"] == 2
    assert s["one_instance_preemptions_per_day"] == pytest.approx(12.0)
    assert s["one_instance_mean_time_to_preemption_s"] == 2 * 3600.0
    # Per instance: 3 lost over 7 instance-hours.
    assert s["per_instance_preemptions_per_day"] == pytest.approx(3 / 7 * 24)


def _return_to_spot_scenario(tmp_path: Path, back: bool) -> Any:
    """70B on 8xA100 GCP spot; no spot capacity in the zone for the first 1,800 s, then 4."""
    trace = tmp_path / "us-central1-a_a100_40gb_8.json"
    trace.write_text(json.dumps({"metadata": {"gap_seconds": 150}, "data": [0] * 12 + [4] * 60}))
    return scenario_from_dict({
        "name": "return-to-spot",
        "deployment": {
            "name": "r2s", "model": "meta-llama/Llama-2-70b", "inf_type": "llm",
            "allow_spot_instances": True, "cloud_providers": ["GCP"],
            "initial_worker_config": {"min_workers": 2, "initial_workers_gpu": "A100",
                                      "initial_workers_gpu_num": 8,
                                      "use_same_gpus_when_scaling": True},
        },
        "workload": {"kind": "poisson", "rate_per_s": 0.2, "duration_s": 7200,
                     "prompt_tokens": 500, "output_tokens": 100},
        "fleet": {"spot": {"preemption": {"kind": "trace", "trace_path": str(trace)},
                           "spot_acquire_timeout_s": 300, "return_to_spot": back}},
        "autoscaler": {"policy": "fixed"},
        "sim": {"seed": 1, "horizon_s": 7200},
    })


def test_return_to_spot_replaces_on_demand_fallbacks(tmp_path: Path) -> None:
    """No spot capacity for 1,800 s, then capacity: the on-demand fallbacks are replaced by spot workers (started first, the on-demand ones drained once they are ready); with return_to_spot false they stay."""
    back = simulate(_return_to_spot_scenario(tmp_path, True), seed=1)
    stay = simulate(_return_to_spot_scenario(tmp_path, False), seed=1)
    w = back.workers
    fallbacks = w[(~w.spot) & (w.requested_s == 300.0)]
    assert len(fallbacks) == 2  # the initial spot requests gave up at the 300 s deadline
    spot_back = w[w.spot & (w.requested_s >= 1800.0)]
    assert len(spot_back) == 2 and spot_back.requested_s.min() == pytest.approx(1800.0)
    # Each fallback drains when a spot replacement is ready, never before.
    assert set(fallbacks.end_reason) == {"return_to_spot"}
    assert sorted(fallbacks.drain_s) == pytest.approx(sorted(spot_back.ready_s))
    assert (spot_back.end_reason == "horizon").all()
    assert back.summary["cost"]["spot_usd"] > 0
    assert back.summary["cost"]["total_usd"] < stay.summary["cost"]["total_usd"]
    sw = stay.workers
    assert not sw.spot[sw.requested_s > 0].any()
