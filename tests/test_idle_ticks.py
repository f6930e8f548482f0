"""Idle stretches cost nothing: the control loop skips ticks that provably change nothing
(:mod:`sim.engine.idle`), with results identical to ticking every interval.

The conformance case below is worked out by hand in the style of ``tests/test_conformance.py``
(fixed 2 s service, constant cold start 5 + 4.5 s, ticks every 10 s, scale to zero after 60 s
idle); the equivalence cases run each shipped policy with skipping on and off and compare the
whole run record.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import pytest

from sim import scenario_from_dict
from sim.cli import main
from sim.engine.core import Engine
from sim.engine.idle import Opaque, SymbolicTime, _Probe, holds, probe, tick_grid
from sim.engine.record import RunRecord
from sim.fleet.model import FleetModel
from sim.policies import build_policy
from sim.policies.base import NO_OP, Decision, Observation
from sim.rng import Streams
from sim.workload import build_workload

GAP = 1e9  # the second request arrives ~31.7 years after the first


def scenario(tmp_path: Path, arrivals: list[float], *, min_workers: int = 0, tick: float = 10,
             **autoscaler: Any) -> Any:
    csv = tmp_path / "trace.csv"
    csv.write_text("arrival_s,prompt_tokens,output_tokens\n"
                   + "".join(f"{a!r},100,50\n" for a in arrivals), encoding="utf-8")
    workload: dict[str, Any] = {"kind": "trace", "path": str(csv), "format": "csv"}
    if arrivals[0] > 0:  # the loader starts the trace at t = 0; shift it back
        workload["transforms"] = [{"op": "shift", "offset_s": arrivals[0]}]
    return scenario_from_dict({
        "name": "idle",
        "deployment": {
            "name": "idle", "model": "meta-llama/Meta-Llama-3-8B", "inf_type": "llm",
            "cloud_providers": ["aws"],
            "initial_worker_config": {"min_workers": min_workers, "initial_workers_gpu": "A100",
                                      "initial_workers_gpu_num": 1},
            "autoscaling_config": {
                "time_window_sec": 30, "upper_allowed_latency_sec": 30,
                "lower_allowed_latency_sec": 1, "scaling_up_timeout_sec": 60,
                "scaling_down_timeout_sec": 60, "scale_to_zero_timeout_sec": 60,
            },
        },
        "workload": workload,
        "fleet": {
            "cold_start": {
                "provision_s": {"median": 5.0, "sigma": 0}, "image_pull_s": {"median": 0, "sigma": 0},
                "weight_download_gb_per_s": 1000, "engine_start_s": {"median": 4.5, "sigma": 0},
            },
            "spot": {"preemption": {"kind": "none"}},
        },
        "serving": {"kind": "fixed", "mean_s": 2.0, "max_batch": 1},
        "autoscaler": {"decision_interval_s": tick, "count_waiting": False, **autoscaler},
        "sim": {"seed": 1},
    })


def run(sc: Any, *, skip: bool = True) -> tuple[Engine, RunRecord]:
    streams = Streams(1)
    workload = build_workload(sc.workload, streams, sc.base_dir)
    policy = build_policy(sc.deployment, sc.autoscaler)
    bind = getattr(policy, "bind", None)
    if callable(bind):
        bind(sc, workload)
    engine = Engine.from_scenario(sc, workload, policy, seed=1, fleet=FleetModel(sc, streams))
    engine.control.skip_idle = skip
    return engine, engine.run()


def comparable(rec: RunRecord) -> str:
    """Everything the run measured except wall time, as one string (NaN-safe equality)."""
    cols = rec.requests
    assert cols is not None
    return repr((
        [dataclasses.astuple(d) for d in rec.decisions],
        [dataclasses.astuple(w) for w in rec.workers],
        vars(rec.timeline), vars(rec.queue), rec.horizon_s, rec.events, rec.queue_area,
        rec.queue_max, rec.warnings,
        {k: getattr(cols, k).tolist() for k in cols.__dataclass_fields__},
    ))


def test_scale_to_zero_then_a_gap_of_thirty_years(tmp_path: Path) -> None:
    """from_zero at 40, to_zero at 120, from_zero at 1e9 + 10 (ready 1e9 + 19.5); 11 ticks run,
    99,999,992 skipped, 1e8 + 3 in all."""
    # Request 1 at 35.5: tick 40 asks for a worker (ready 49.5, done 51.5). It is in the
    # window (W = 30) until 65.5 and its E2E (51.5) until 81.5, so ticks 50-90 run; idle since
    # 51.5 + Z = 60 -> to_zero at the first tick >= 111.5: 120 (100 and 110 are skipped: the
    # probe at 90 records "t - 51.5 >= 60" false, and it flips at 120). From 130 on N = 0 and
    # nothing waits: every tick up to 1e9 is skipped (the next event is the arrival at
    # 1e9 + 5.5). Tick 1e9 + 10 asks for a worker: ready 1e9 + 19.5, done 1e9 + 21.5, when the
    # run ends (no horizon: the last request resolved). Ticks 0..1e9+20 step 10: 1e8 + 3.
    # Run: 0, 40, 50, 60, 70, 80, 90, 120, 130, 1e9 + 10, 1e9 + 20 (11). Skipped: 10-30 (3),
    # 100-110 (2), 140..1e9 ((1e9 - 140) / 10 + 1 = 99,999,987).
    engine, rec = run(scenario(tmp_path, [35.5, GAP + 5.5]))
    got = [(d.time_s, d.action, d.delta, d.workers) for d in rec.decisions]
    assert got == [
        (40.0, "from_zero", 1, 0), (120.0, "to_zero", -1, 1), (GAP + 10, "from_zero", 1, 0),
    ]
    assert [w.requested_s for w in rec.workers] == [40.0, GAP + 10]
    assert [w.ready_s for w in rec.workers] == [49.5, GAP + 19.5]
    assert rec.workers[0].drain_s == 120.0
    assert rec.requests is not None
    assert rec.requests.completion_s.tolist() == [51.5, GAP + 21.5]
    assert rec.horizon_s == GAP + 21.5
    ctl = engine.control
    assert (ctl.ticks_run, ctl.ticks_skipped) == (11, 99_999_992)
    # Skipped ticks count as the events they would have been: the summary's count is the same.
    assert ctl.ticks_run + ctl.ticks_skipped == 100_000_003
    # The run spans more ticks than DENSE_TICK_ROWS: quiet ticks keep no queue-sample row
    # (0, 90 and 130 ran but were quiet: nothing waiting, in the window or decided).
    assert rec.queue.time_s == [40.0, 50.0, 60.0, 70.0, 80.0, 120.0, GAP + 10, GAP + 20]
    assert any("quiet control ticks have no row" in w for w in rec.warnings)


def test_same_timeline_without_skipping(tmp_path: Path) -> None:
    """The hand-computed case with a 10,000 s gap: identical run records with and without
    skipping, queue samples included (a row per tick: the run is short)."""
    sc = scenario(tmp_path, [35.5, 10_005.5])
    on, rec_on = run(sc)
    off, rec_off = run(sc, skip=False)
    assert comparable(rec_on) == comparable(rec_off)
    assert off.control.ticks_skipped == 0
    assert on.control.ticks_run + on.control.ticks_skipped == off.control.ticks_run == 1003
    assert on.control.ticks_run == 11
    assert len(rec_on.queue.time_s) == 1003


ARRIVALS = [0.0, 1.5, 2.0, 40.5, 41.0, 700.25, 701.0, 702.5, 2500.0, 2500.5, 4000.125]


@pytest.mark.parametrize("tick", [10.0, 7.3])
@pytest.mark.parametrize("min_workers", [0, 2])
@pytest.mark.parametrize(
    "autoscaler",
    [{}, {"timeout_semantics": "sustained"}, {"timeout_semantics": "stabilization"},
     {"idle_from": "arrival"}, {"policy": "knative"}, {"policy": "hpa"}, {"policy": "keda"},
     {"policy": "ray_serve"}, {"policy": "skyserve"}, {"policy": "fixed"},
     {"policy": "sla_planner"}, {"policy": "fixed_peak"}, {"policy": "hindsight"}],
    ids=lambda a: "-".join(str(v) for v in a.values()) or "scalegen",
)
def test_every_policy_is_identical_with_and_without_skipping(
    tmp_path: Path, tick: float, min_workers: int, autoscaler: dict[str, Any]
) -> None:
    """Bursts with idle gaps, ticks that are and are not binary fractions (7.3 replays the
    additions): decisions, workers, timeline, queue samples and requests identical."""
    sc = scenario(tmp_path, ARRIVALS, min_workers=min_workers, tick=tick, **autoscaler)
    on, rec_on = run(sc)
    _, rec_off = run(sc, skip=False)
    assert comparable(rec_on) == comparable(rec_off)
    if not autoscaler:
        assert on.control.ticks_skipped > on.control.ticks_run  # it does skip


def test_fine_ticks_replay_additions(tmp_path: Path) -> None:
    """Ticks every 0.1 s (not a short binary fraction): skipped tick times are replayed by
    repeated addition, and the run is identical to ticking every time."""
    sc = scenario(tmp_path, ARRIVALS[:8], tick=0.1)
    on, rec_on = run(sc)
    _, rec_off = run(sc, skip=False)
    assert comparable(rec_on) == comparable(rec_off)
    assert on.control.ticks_skipped > on.control.ticks_run


def test_absurd_span_runs_from_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Two trace rows 200 years apart (~6.3e8 ticks) run instead of being refused."""
    trace = tmp_path / "t.csv"
    trace.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n"
                     "2023-11-16 18:15:46,100,5\n2223-11-16 18:15:46,100,5\n")
    body = tmp_path / "c.json"
    body.write_text('{"name": "x", "model": "meta-llama/Meta-Llama-3-8B"}')
    out = tmp_path / "o"
    code = main(["run", "--deployment", str(body), "--trace", str(trace), "-q", "--no-report",
                 "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    import json

    summary = json.loads((out / "summary.json").read_text())
    assert summary["requests"]["completed"] == 2


# -- the probe --------------------------------------------------------------------------------


def _obs(**kw: Any) -> Observation:
    base: dict[str, Any] = dict(
        time_s=100.0, workers=1, ready=1, starting=0, queue_len=0, running=0,
        statistic=math.nan, finished_in_window=0, arrivals_in_window=0, window_s=30.0,
        last_arrival_s=10.0, min_workers=0, addable=5, addable_limit="", price_per_hour_usd=1.0,
        idle_since_s=12.0,
    )
    base.update(kw)
    return Observation(**base)


class _Timer:
    """Acts once t - idle_since >= 60; stores nothing."""

    def decide(self, obs: Observation) -> Decision:
        if obs.time_s - obs.idle_since_s >= 60:
            return Decision("to_zero", -obs.workers, "idle")
        return NO_OP


class _Stamp:
    """Stores the time of every tick (as Knative's averages do): never skipped."""

    def __init__(self) -> None:
        self.last = 0.0

    def decide(self, obs: Observation) -> Decision:
        self.last = obs.time_s
        return NO_OP


class _Floor:
    """Reads the time in a way the probe cannot follow."""

    def decide(self, obs: Observation) -> Decision:
        return NO_OP if math.floor(obs.time_s) % 2 == 0 else Decision("none", 0, "")


def test_probe_records_comparisons_and_refuses_what_it_cannot_follow() -> None:
    comps = probe(_Timer(), _obs(time_s=40.0), 40.0)
    assert comps is not None and len(comps) == 1
    assert holds(comps, 71.9) and not holds(comps, 72.0)  # 72 - 12 >= 60 flips the outcome
    assert probe(_Timer(), _obs(time_s=80.0), 80.0) is None  # it acts: not a no-op
    assert probe(_Stamp(), _obs(), 100.0) is None  # state changes every tick
    assert probe(_Floor(), _obs(), 100.0) is None  # math.floor(t): opaque
    t = SymbolicTime(5.0, (), _Probe())
    for use in (lambda: float(t), lambda: t == 5.0, lambda: f"{t}", lambda: bool(t),
                lambda: t * 0, lambda: t - t):
        with pytest.raises(Opaque):
            use()


def test_tick_grid_matches_repeated_addition() -> None:
    grid = tick_grid(130.0, 10.0, 10**8)
    assert grid is not None and grid(1) == 140.0 and grid(99_999_987) == 1e9
    g = tick_grid(0.5, 0.25, 1000)
    assert g is not None
    x = 0.5
    for k in range(1, 1001):
        x += 0.25
        assert g(k) == x
    assert tick_grid(0.0, 0.1, 1000) is None  # 0.1 is not a short binary fraction: replay
    assert tick_grid(2.0**52, 1.0, 2**52) is None  # past 2**53 additions could round
