"""sim.results: summary — the engine streams resolved requests into a sketch-based tally, keeps
no per-request table, and holds state only for the requests in the system."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sim import load_scenario, simulate
from sim.engine.core import Engine
from sim.policies import build_policy
from sim.rng import Streams
from sim.workload import build_workload

ROOT = Path(__file__).resolve().parents[1]


def _both(name: str, *overrides: str) -> tuple[dict, dict, object]:
    path = ROOT / "scenarios" / name
    full = simulate(load_scenario(path, overrides=list(overrides)))
    summ = simulate(load_scenario(path, overrides=[*overrides, "sim.results=summary"]))
    return full.summary, summ.summary, summ


@pytest.mark.parametrize(
    "name",
    ["quickstart.yaml", "spot_llama2_70b_gcp_a100.yaml", "embedding_bge_large.yaml"],
)
def test_summary_mode_counts_and_costs_equal_full(name: str):
    """Counts, SLO, cost and workers are identical in both modes; percentiles within 2%."""
    full, summ, res = _both(name, "sim.horizon_s=1800")
    for key in ("requests", "slo", "cost", "workers", "queue"):
        assert summ[key] == full[key], key
    for key in ("latency_e2e_s", "ttft_s", "queue_s", "tpot_s"):
        a, b = full[key], summ[key]
        if a["mean"] is None:
            assert set(b.values()) == {None}
            continue
        assert b["mean"] == pytest.approx(a["mean"], rel=1e-9)
        assert b["max"] == pytest.approx(a["max"], rel=1e-6)
        for p in ("p50", "p90", "p95", "p99"):
            assert b[p] == pytest.approx(a[p], rel=0.02, abs=1e-3), (key, p)
    assert summ["sim"]["results"] == "summary" and full["sim"]["results"] == "full"
    assert len(res.requests) == 0  # no per-request table
    assert list(res.requests.columns)  # but the frame keeps its columns


def test_request_slots_are_bounded_by_requests_in_the_system():
    """A long run reuses request slots: their number is the peak in the system, not the trace."""
    sc = load_scenario(
        ROOT / "scenarios" / "fortnight_diurnal_llama3_8b.yaml",
        overrides=["workload.duration_s=1200", "sim.results=summary"],
    )
    streams = Streams(sc.sim.seed)
    wl = build_workload(sc.workload, streams, sc.base_dir)
    policy = build_policy(sc.deployment, sc.autoscaler, source=sc.source)
    seen = []
    engine = Engine.from_scenario(sc, wl, policy, seed=sc.sim.seed,
                                  request_sink=lambda batch, ids: seen.append((batch, ids)))
    record = engine.run()
    n = len(wl.arrival_s)
    assert record.requests is None
    ids = np.concatenate([i for _, i in seen])
    assert sum(len(b.arrival_s) for b, _ in seen) == len(ids) == n
    assert np.array_equal(np.sort(ids), np.arange(n))  # every request handed over exactly once
    assert len(engine.reqs.gid) < n / 10


def test_same_seed_same_summary_in_summary_mode():
    """Summary mode is deterministic: the same seed gives the same summary."""
    path = ROOT / "scenarios" / "quickstart.yaml"
    ov = ["sim.horizon_s=1200", "sim.results=summary"]
    a = simulate(load_scenario(path, overrides=ov)).summary
    b = simulate(load_scenario(path, overrides=ov)).summary
    a["sim"].pop("wall_s"), b["sim"].pop("wall_s")
    a["sim"].pop("requests_per_wall_s"), b["sim"].pop("requests_per_wall_s")
    assert a == b
