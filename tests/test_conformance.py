"""Conformance of the ScaleGenAI autoscaler to DESIGN §4, checked on ``result.decisions`` to the tick.

Every scenario is deterministic and small enough to work out by hand:

- ``serving.kind: fixed`` with ``max_batch: 1``: each worker serves one request at a time for a
  constant ``mean_s``, so TTFT = E2E = queueing delay + service time and every latency is known;
- ``workload.kind: trace`` from a CSV written to tmp_path (the loader moves the first arrival to
  t = 0; a ``shift`` transform puts it back where the test wants it);
- constant cold starts (``sigma: 0``): a worker requested at t is ready at t + provision + engine;
- ``autoscaler.decision_interval_s: 10``: ticks at t = 0, 10, 20, ...; arrivals, completions and
  ready times sit at x.5 s so that no event ties with a tick (ties are ordered by SimPy's event
  ids, which is not a semantic the design promises).

Each test's docstring gives the expected decision times in one line; the comment under it
derives them from the knobs. ``docs/conformance.md`` tabulates the cases and the DESIGN §4
sentence each one checks. Where the code reads DESIGN §4 more narrowly (scale to zero waits
for an empty queue), the test pins the code's reading and says why.

Notation in the derivations: W = time_window_sec, U = scaling_up_timeout_sec,
D = scaling_down_timeout_sec, Z = scale_to_zero_timeout_sec, s = service time, N = workers
(requested, provisioning, loading or ready), S = the statistic at a tick, p = price per worker-hour.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from sim import scenario_from_dict, simulate
from sim.fleet.catalog import Catalog
from sim.metrics import Result

MODEL = "meta-llama/Meta-Llama-3-8B"
A100_PRICE = Catalog.builtin().price_per_hour("A100", 1, cloud="aws")
H100_PRICE = Catalog.builtin().price_per_hour("H100", 1, cloud="aws")
NEVER_READY = 1000.0  # a cold start longer than every horizon here: added workers never serve

# (time_s, action, delta, workers, reason). ``workers`` is N at the tick, before the action.
# A reason starting with "blocked" must match exactly; any other reason is matched as a substring.
Row = tuple[float, str, int, int, str]


# --- helpers -------------------------------------------------------------------------------------


def run(
    tmp_path: Path,
    arrivals: list[float],
    *,
    horizon: float,
    min_workers: int = 1,
    service_s: float = 4.0,
    upper: float = 5,
    lower: float = 1,
    window: int = 30,
    up: int = 60,
    down: int = 60,
    to_zero: int = 1800,
    cold_s: tuple[float, float] = (NEVER_READY, 0.0),
    max_price: float = 0,
    updates: list[dict[str, Any]] | None = None,
    serving: dict[str, Any] | None = None,
    request_timeout_s: float = 1e6,
    extra: dict[str, Any] | None = None,
    tokens: list[tuple[int, int]] | None = None,
    **autoscaler: Any,
) -> Result:
    """Simulate a one-deployment scenario with the given arrivals (s) and knobs; return the Result.

    ``cold_s`` = (provisioning, engine start) seconds, constants; ``autoscaler`` keywords go to the
    scenario's ``autoscaler:`` section (timeout_semantics, statistic, metric, max_workers, ...);
    ``extra`` is deep-merged into the scenario mapping last.
    """
    # The cases below were derived with the window holding finished requests only; the
    # default (count_waiting: true) has its own cases, which pass it explicitly.
    autoscaler.setdefault("count_waiting", False)
    csv = tmp_path / "trace.csv"
    lines = ["arrival_s,prompt_tokens,output_tokens"]
    toks = tokens or [(100, 50)] * len(arrivals)
    lines += [f"{a!r},{p},{o}" for a, (p, o) in zip(arrivals, toks, strict=True)]
    csv.write_text("\n".join(lines) + "\n", encoding="utf-8")
    workload: dict[str, Any] = {"kind": "trace", "path": str(csv), "format": "csv"}
    if arrivals[0] > 0:  # the loader starts the trace at t = 0; shift it back
        workload["transforms"] = [{"op": "shift", "offset_s": arrivals[0]}]
    data = {
        "name": "conformance",
        "deployment": {
            "name": "conformance",
            "model": MODEL,
            "inf_type": "llm",
            "cloud_providers": ["aws"],  # prices: the AWS rows of the built-in catalog
            "initial_worker_config": {
                "min_workers": min_workers,
                "initial_workers_gpu": "A100",
                "initial_workers_gpu_num": 1,
            },
            "autoscaling_config": {
                "time_window_sec": window,
                "upper_allowed_latency_sec": upper,
                "lower_allowed_latency_sec": lower,
                "scaling_up_timeout_sec": up,
                "scaling_down_timeout_sec": down,
                "scale_to_zero_timeout_sec": to_zero,
            },
            "max_price_per_hour": max_price,
        },
        "workload": workload,
        "fleet": {
            "cold_start": {
                "provision_s": {"median": cold_s[0], "sigma": 0},
                "image_pull_s": {"median": 0, "sigma": 0},
                "weight_download_gb_per_s": 1000,
                "engine_start_s": {"median": cold_s[1], "sigma": 0},
            },
            "spot": {"preemption": {"kind": "none"}},
        },
        "serving": serving or {"kind": "fixed", "mean_s": service_s, "max_batch": 1},
        "gateway": {"request_timeout_s": request_timeout_s},
        "autoscaler": {"decision_interval_s": 10, **autoscaler},
        "updates": updates or [],
        "sim": {"horizon_s": horizon, "seed": 1},
    }
    return simulate(scenario_from_dict(_merge(data, extra or {})))


def _merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``patch`` deep-merged in (mappings merge, anything else replaces)."""
    out = dict(base)
    for k, v in patch.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def rows(result: Result) -> list[Row]:
    """decisions.csv as (time, action, delta, workers, reason) tuples."""
    d = result.decisions
    cols = zip(
        d.time_s.tolist(), d.action.tolist(), d.delta.tolist(), d.workers.tolist(),
        d.reason.tolist(), strict=True,
    )
    return [(float(t), str(a), int(dl), int(w), str(r)) for t, a, dl, w, r in cols]


def assert_timeline(result: Result, expected: list[Row]) -> None:
    """Every logged decision, and only those, at the expected ticks with the expected content."""
    got = rows(result)
    got_key = [(t, a, dl, w) for t, a, dl, w, _ in got]
    exp_key = [(t, a, dl, w) for t, a, dl, w, _ in expected]
    assert got_key == exp_key, _diff(got, expected)
    for g, e in zip(got, expected, strict=True):
        if e[4].startswith("blocked"):
            assert g[4] == e[4], f"t={g[0]}: reason {g[4]!r}, expected {e[4]!r}"
        else:
            assert e[4] in g[4], f"t={g[0]}: reason {g[4]!r} does not contain {e[4]!r}"


def _diff(got: list[Row], expected: list[Row]) -> str:
    lines = ["decisions differ (got | expected):"]
    for i in range(max(len(got), len(expected))):
        g = got[i][:4] + (got[i][4],) if i < len(got) else "-"
        e = expected[i] if i < len(expected) else "-"
        mark = "  " if g == e or (i < len(got) and i < len(expected) and g[:4] == e[:4]) else "!!"
        lines.append(f"{mark} {g} | {e}")
    return "\n".join(lines)


def blocked(times: range | list[float], reason: str, workers: int) -> list[Row]:
    """Rows of ticks that wanted to act and were blocked."""
    return [(float(t), "none", 0, workers, reason) for t in times]


def statistic_at(result: Result, t: float) -> float:
    """The statistic logged at tick ``t``."""
    d = result.decisions
    hit = d[d.time_s == t]
    assert len(hit) == 1, f"no single decision row at t={t}:\n{d}"
    return float(hit.statistic.iloc[0])


def ticks(start: int, stop: int) -> range:
    """Ticks start, start+10, ..., stop (inclusive)."""
    return range(start, stop + 1, 10)


# --- 1. a step up in load, for each timeout_semantics ----------------------------------------------

# Light load: one request every 10 s at 0.5, 10.5, ..., 90.5; s = 4, so each is served alone
# and S = 4, inside the band [lower 1, upper 5]. Step: from 100.5 one request every 2 s, twice
# the capacity of the one worker; added workers never become ready (cold start 1000 s), so the
# queue grows for the rest of the run. Step request k (arrival 100.5 + 2k) finishes at
# 104.5 + 4k with latency 4 + 2k. W = 30:
#   t=110: window (80,110] = {4, 4, 4, 6}            -> S = 4.5, not > 5
#   t=120: window (90,120] = {4, 4, 6, 8, 10}        -> S = 6.4 > 5: the condition starts here
# and S only grows after that (k=9..16 in (140,170] -> S = 29; k=12..18 in (150,180] -> S = 34;
# k=24..31 in (200,230] -> S = 59; k=27..33 in (210,240] -> S = 64).
STEP = [0.5 + 10 * i for i in range(10)] + [100.5 + 2 * k for k in range(78)]
STEP_HORIZON = 255.0  # last tick 250


def test_step_up_cooldown(tmp_path: Path) -> None:
    """cooldown, U=60: scale-ups at 120, 180, 240; `blocked: scale-up cooldown` at every tick between."""
    # The first scale-up is not delayed (no scale-up yet), so it comes at the first tick with
    # S > upper, t0 = 120; each next one at the first tick with t - last scale-up >= U = 60.
    result = run(tmp_path, STEP, horizon=STEP_HORIZON, up=60, down=60)
    cd = "blocked: scale-up cooldown"
    assert_timeline(
        result,
        [(120.0, "scale_up", 1, 1, "S=6.4s>upper=5s")]
        + blocked(ticks(130, 170), cd, 2)
        + [(180.0, "scale_up", 1, 2, "S=34s>upper=5s")]
        + blocked(ticks(190, 230), cd, 3)
        + [(240.0, "scale_up", 1, 3, "S=64s>upper=5s")]
        + blocked([250], cd, 4),
    )
    assert statistic_at(result, 120.0) == pytest.approx(6.4)
    assert statistic_at(result, 180.0) == pytest.approx(34.0)


def test_step_up_sustained(tmp_path: Path) -> None:
    """sustained, U=60: scale-ups at 180 and 240; `blocked: not sustained (up)` in between."""
    # The condition holds from t0 = 120; it must have held at every tick for U: act at
    # t0 + U = 180, the clock restarts there, so the next is at 240.
    result = run(tmp_path, STEP, horizon=STEP_HORIZON, up=60, down=60, timeout_semantics="sustained")
    ns = "blocked: not sustained (up)"
    assert_timeline(
        result,
        blocked(ticks(120, 170), ns, 1)
        + [(180.0, "scale_up", 1, 1, "S=34s>upper=5s")]
        + blocked(ticks(190, 230), ns, 2)
        + [(240.0, "scale_up", 1, 2, "S=64s>upper=5s")]
        + blocked([250], ns, 3),
    )


def test_step_up_stabilization(tmp_path: Path) -> None:
    """stabilization, U=60 (D=120): scale-ups at 170 and 230; `blocked: stabilization window (up)` between."""
    # Each tick recommends N+1 while S > upper, else N. A scale-up acts on the smallest
    # recommendation over the last U seconds, i.e. the ticks in (t-60, t]: six ticks. They all
    # say N+1 first at t = 120 + 50 = 170 (N=1 -> 2). After that the older recommendations
    # (2) equal the new N, so the next needs six ticks recommending 3: 180..230 -> act at 230.
    result = run(
        tmp_path, STEP, horizon=STEP_HORIZON, up=60, down=120, timeout_semantics="stabilization"
    )
    sw = "blocked: stabilization window (up)"
    assert_timeline(
        result,
        blocked(ticks(120, 160), sw, 1)
        + [(170.0, "scale_up", 1, 1, "S=29s>upper=5s")]
        + blocked(ticks(180, 220), sw, 2)
        + [(230.0, "scale_up", 1, 2, "S=59s>upper=5s")]
        + blocked(ticks(240, 250), sw, 3),
    )


def test_stabilization_equal_timeouts(tmp_path: Path) -> None:
    """stabilization, U=D=60 (the defaults are equal too): scale-ups at 170 and 230, as with D=120."""
    # The up window (t-60, t] does not depend on D; see test_step_up_stabilization.
    result = run(
        tmp_path, STEP, horizon=STEP_HORIZON, up=60, down=60, timeout_semantics="stabilization"
    )
    ups = result.decisions[result.decisions.action == "scale_up"]
    assert ups.time_s.tolist() == [170.0, 230.0]


# --- 2. a burst, then quiet, for each timeout_semantics ---------------------------------------------

# Twelve requests at 0.5; s = 4 on the one ready worker: request i finishes at 4.5 + 4i with
# latency 4 + 4i (the last at 48.5). Added workers are ready 45.5 s after they are requested
# (provision 5 + engine 40.5), too late to serve the burst. max_workers = 3. Then quiet, with
# single requests at 100.5, 140.5 and 190.5 (latency 4, below lower = 4.5). W = 20, upper 5:
#   S > 5 at ticks 10..60 (t=10: {4, 8} -> S = 6; t=20: {4,8,12,16} -> 10; t=30: {12..28} -> 20;
#   t=40: {20..36} -> 28; t=50: {32..48} -> 40; t=60: {44, 48} -> 46);
#   nothing finished in the window at 70..100, 130, 140, 170, 180, 190; S = 4 < 4.5 at 110, 120
#   (104.5), 150, 160 (144.5) and 200, 210 (194.5).
BURST = [0.5] * 12 + [100.5, 140.5, 190.5]
BURST_KNOBS: dict[str, Any] = dict(
    horizon=215.0, upper=5, lower=4.5, window=20, up=20, down=60, cold_s=(5.0, 40.5), max_workers=3
)


def test_burst_quiet_cooldown(tmp_path: Path) -> None:
    """cooldown, U=20, D=60: up at 10, 30; down at 90, 150; blocked (cooldown, max_workers) between."""
    # Up: first tick with S > upper is 10 (no earlier scale-up) -> up; 20 is < U after it
    # (cooldown); 30 -> up (N=3); 40 cooldown; 50 and 60: cooldown over but N = max_workers.
    # Workers requested at 10 and 30 are ready at 55.5 and 75.5.
    # Down needs ready > max(min_workers, 1) = 1 and t - last action (either way: the
    # scale-up at 30) >= D: 70, 80 blocked; 90 -> down ("window empty, nothing waiting" counts
    # as below lower); then 100..140 blocked; 150 -> down (S = 4 < 4.5); ready = 1 after that.
    result = run(tmp_path, BURST, **BURST_KNOBS)
    up_cd, down_cd = "blocked: scale-up cooldown", "blocked: scale-down cooldown"
    assert_timeline(
        result,
        [(10.0, "scale_up", 1, 1, "S=6s>upper=5s")]
        + blocked([20], up_cd, 2)
        + [(30.0, "scale_up", 1, 2, "S=20s>upper=5s")]
        + blocked([40], up_cd, 3)
        + blocked([50, 60], "blocked: max_workers", 3)
        + blocked([70, 80], down_cd, 3)
        + [(90.0, "scale_down", -1, 3, "window empty, nothing waiting")]
        + blocked(ticks(100, 140), down_cd, 2)
        + [(150.0, "scale_down", -1, 2, "S=4s<lower=4.5s")],
    )
    assert math.isnan(statistic_at(result, 90.0))
    assert statistic_at(result, 150.0) == pytest.approx(4.0)


def test_burst_quiet_sustained(tmp_path: Path) -> None:
    """sustained, U=20, D=60: up at 30, 50; down at 140, 200; `blocked: not sustained` between."""
    # Up: S > upper from 10, so act at 10 + U = 30 (N=2) and, the clock restarting, at 50
    # (N=3); 60 is 10 s into the new streak. Workers requested at 30 and 50 are ready at 75.5
    # and 95.5. Down: at 70 only one worker is ready, so the condition (which includes ready >
    # max(min_workers, 1)) first holds at 80 and holds at every tick after it: act at
    # 80 + D = 140 (nothing finished in (120,140]), then at 200 (S = 4 < 4.5 from 194.5).
    result = run(tmp_path, BURST, timeout_semantics="sustained", **BURST_KNOBS)
    up_ns, down_ns = "blocked: not sustained (up)", "blocked: not sustained (down)"
    assert_timeline(
        result,
        blocked([10, 20], up_ns, 1)
        + [(30.0, "scale_up", 1, 1, "S=20s>upper=5s")]
        + blocked([40], up_ns, 2)
        + [(50.0, "scale_up", 1, 2, "S=40s>upper=5s")]
        + blocked([60], up_ns, 3)
        + blocked(ticks(80, 130), down_ns, 3)
        + [(140.0, "scale_down", -1, 3, "window empty, nothing waiting")]
        + blocked(ticks(150, 190), down_ns, 2)
        + [(200.0, "scale_down", -1, 2, "S=4s<lower=4.5s")],
    )


def test_burst_quiet_stabilization(tmp_path: Path) -> None:
    """stabilization, U=20, D=60: up at 20, 40; down at 120, 180; `blocked: stabilization window` between."""
    # Recommendation per tick: N+1 (S > upper), N-1 (below lower or nothing finished, and
    # ready > 1), else N. Up acts on the min over (t-20, t] (ticks t-10, t), down on the max
    # over (t-60, t] (six ticks).
    # Up: tick 0 recommends 1, so at 10 the min is 1; at 20 both 10 and 20 say 2 -> up (N=2);
    # 30 recommends 3 but 20 said 2 -> blocked; 40 -> up (N=3); 50 blocked; at 60 the min
    # is 4 > 3 but N = max_workers. Workers requested at 20, 40 are ready at 65.5, 85.5.
    # Down: from 70 every tick recommends N-1 = 2, but 50 and 60 said 4: blocked until the
    # window (60,120] holds only 2s -> down at 120 (S = 4 < 4.5); then the window must be free
    # of the 2s recommended at N=3, i.e. (120, 180] -> down at 180 (nothing finished).
    result = run(tmp_path, BURST, timeout_semantics="stabilization", **BURST_KNOBS)
    up_sw, down_sw = "blocked: stabilization window (up)", "blocked: stabilization window (down)"
    assert_timeline(
        result,
        blocked([10], up_sw, 1)
        + [(20.0, "scale_up", 1, 1, "S=10s>upper=5s")]
        + blocked([30], up_sw, 2)
        + [(40.0, "scale_up", 1, 2, "S=28s>upper=5s")]
        + blocked([50], up_sw, 3)
        + blocked([60], "blocked: max_workers", 3)
        + blocked(ticks(70, 110), down_sw, 3)
        + [(120.0, "scale_down", -1, 3, "S=4s<lower=4.5s")]
        + blocked(ticks(130, 170), down_sw, 2)
        + [(180.0, "scale_down", -1, 2, "window empty, nothing waiting")],
    )


# --- 3. the statistic, the metric and count_waiting -------------------------------------------------

# Ten requests at 0.5 (one worker, s = 1): latencies 1, 2, ..., 10 (done at 1.5 .. 10.5), then
# ten alone at 20.5, 22.5, ..., 38.5: latency 1 each (done by 39.5). At t = 40 with W = 60 the
# window holds all 20: sorted = [1]*11 + [2, 3, ..., 10]; queueing delays = [0]*11 + [1..9].
# upper = 0.5 and max_workers = 1 make every tick with a finished request log
# "blocked: max_workers" with its S, so the statistic can be read at t = 40.
# Percentiles interpolate linearly between order statistics (rank q/100 * (n - 1), n = 20):
#   p50: rank 9.5  -> x[9], x[10] = 1, 1           -> 1.0
#   p90: rank 17.1 -> x[17] = 8, x[18] = 9         -> 8.1
#   p95: rank 18.05 -> 9 + 0.05                    -> 9.05
#   p99: rank 18.81 -> 9 + 0.81                    -> 9.81
#   mean = (1 + ... + 10 + 10) / 20 = 65 / 20      -> 3.25
# and for the queue metric (latency - 1): mean 45/20 = 2.25, p90 7.1, p95 8.05, p99 8.81 (its p50
# is 0, inside the band, so that tick logs nothing).
WINDOW_MIX = [0.5] * 10 + [20.5 + 2 * k for k in range(10)]
WINDOW_KNOBS: dict[str, Any] = dict(
    horizon=45.0, service_s=1.0, upper=0.5, lower=0.1, window=60, max_workers=1
)


@pytest.mark.parametrize(
    ("statistic", "metric", "expected"),
    [
        ("mean", "ttft", 3.25),
        ("p50", "ttft", 1.0),
        ("p90", "ttft", 8.1),
        ("p95", "ttft", 9.05),
        ("p99", "ttft", 9.81),
        ("mean", "e2e", 3.25),
        ("p90", "e2e", 8.1),
        ("mean", "queue", 2.25),
        ("p90", "queue", 7.1),
        ("p95", "queue", 8.05),
        ("p99", "queue", 8.81),
        ("mean", "auto", 3.25),  # auto = ttft for inf_type llm
    ],
)
def test_statistic_value(tmp_path: Path, statistic: str, metric: str, expected: float) -> None:
    """The `statistic` column at t=40 is the hand-computed statistic of the metric over (t-W, t]."""
    # See WINDOW_MIX for the window's values. With the fixed service model the first token is
    # the completion, so ttft = e2e; queue = dispatch - arrival = latency - s.
    result = run(tmp_path, WINDOW_MIX, statistic=statistic, metric=metric, **WINDOW_KNOBS)
    row = result.decisions[result.decisions.time_s == 40.0]
    assert row.reason.tolist() == ["blocked: max_workers"]
    assert statistic_at(result, 40.0) == pytest.approx(expected, abs=1e-9)


def test_window_is_half_open(tmp_path: Path) -> None:
    """The window is (t-W, t]: at t=40, W=30 a request finished at exactly 10.0 is out, one at 11.0 in."""
    # Ten requests at 1.0 (s = 1) finish at 2.0, ..., 11.0 with latencies 1..10; ten alone at
    # 20.5 + 2k finish by 39.5 with latency 1. W = 30: (10, 40] holds the 10 (done 11.0) and the
    # ten 1s -> S = 20/11. W = 31: (9, 40] adds the 9 (done 10.0) -> S = 29/12.
    arrivals = [1.0] * 10 + [20.5 + 2 * k for k in range(10)]
    knobs = {**WINDOW_KNOBS, "window": 30}
    assert statistic_at(run(tmp_path, arrivals, **knobs), 40.0) == pytest.approx(20 / 11)
    knobs["window"] = 31
    assert statistic_at(run(tmp_path, arrivals, **knobs), 40.0) == pytest.approx(29 / 12)


def test_metric_ttft_vs_e2e_llm(tmp_path: Path) -> None:
    """With the llm service model, metric ttft and e2e log the mean of first_token-arrival and completion-arrival over (t-W, t]."""
    # Not computed by hand (the batch timing comes from the profile): the expected value is
    # recomputed from the request log, which shows the engine picks the metric's column and
    # the window's requests; TTFT < E2E for 50-token outputs.
    arrivals = [0.5 + 0.7 * i for i in range(40)]
    serving = {"kind": "llm", "max_batch": 8}
    seen = {}
    for metric in ("ttft", "e2e"):
        res = run(
            tmp_path, arrivals, horizon=45.0, upper=0.001, lower=0.0005, window=20,
            max_workers=1, metric=metric, serving=serving,
        )
        req = res.requests
        # Each metric enters the window when it is known: TTFT at the first token, E2E at
        # completion.
        seen_at = req.first_token_s if metric == "ttft" else req.completion_s
        done = req[(seen_at > 40.0 - 20) & (seen_at <= 40.0)]
        assert len(done) > 5
        col = "ttft_s" if metric == "ttft" else "e2e_s"
        seen[metric] = statistic_at(res, 40.0)
        assert seen[metric] == pytest.approx(float(done[col].mean()), rel=1e-9)
    assert seen["ttft"] < seen["e2e"]


# Stuck queue: s = 8; requests at 0.5, 1.5, 2.5, 3.5. At t = 10 request 0 has finished (8.5,
# latency 8), request 1 runs (since 8.5) and requests 2, 3 wait, aged 7.5 and 6.5.
@pytest.mark.parametrize(
    ("count_waiting", "statistic", "expected"),
    [
        (False, "mean", 8.0),
        (True, "mean", (8.0 + 7.5 + 6.5) / 3),
        (True, "p50", 7.5),
    ],
)
def test_count_waiting_value(
    tmp_path: Path, count_waiting: bool, statistic: str, expected: float
) -> None:
    """count_waiting adds the ages of waiting requests to the window: S at t=10 = mean(8, 7.5, 6.5)."""
    # Finished in (−20, 10]: {8}; waiting at 10: ages {7.5, 6.5} (the running one is not waiting).
    result = run(
        tmp_path, [0.5, 1.5, 2.5, 3.5], horizon=15.0, service_s=8.0, upper=0.5, lower=0.1,
        window=30, max_workers=1, count_waiting=count_waiting, statistic=statistic,
    )
    assert statistic_at(result, 10.0) == pytest.approx(expected)


STUCK = [0.5 + i for i in range(10)]  # ten requests at 0.5 .. 9.5; s = 100: one runs, nine wait


def test_count_waiting_stuck_queue(tmp_path: Path) -> None:
    """count_waiting: a stuck queue scales up at t=10, before anything finishes (S = 4.5 > 3)."""
    # At t = 10 nothing has finished (the first completion is at 100.5); nine requests wait,
    # aged 8.5, 7.5, ..., 0.5 -> S = 4.5 > upper = 3 -> scale up at once (no scale-up yet).
    result = run(
        tmp_path, STUCK, horizon=15.0, service_s=100.0, upper=3, lower=1, count_waiting=True
    )
    assert_timeline(result, [(10.0, "scale_up", 1, 1, "upper")])
    assert statistic_at(result, 10.0) == pytest.approx(4.5)


def test_stuck_queue_without_count_waiting(tmp_path: Path) -> None:
    """count_waiting false: the same stuck queue scales up only at 110, the first tick after a finish."""
    # The first request finishes at 100.5 (latency 100); the tick at 110 sees S = 100 > 3.
    result = run(tmp_path, STUCK, horizon=115.0, service_s=100.0, upper=3, lower=1)
    assert_timeline(result, [(110.0, "scale_up", 1, 1, "S=100s>upper=3s")])


# --- 4. scale to zero, scale from zero, the floor -------------------------------------------------------


def test_scale_from_and_to_zero(tmp_path: Path) -> None:
    """min_workers 0, Z=60, U=1000: from_zero at 40 and 130, to_zero at 120 and 210."""
    # N = 0 from the start. Request at 35.5 -> the next tick, 40, requests one worker (ready
    # 9.5 s later, at 49.5; the request finishes at 51.5). Idle (nothing waiting or in flight)
    # from 51.5; + Z = 111.5 -> drain all at the first tick >= 111.5: 120. Request at 125.5 ->
    # from_zero at 130 even though the last scale-up (40) is only 90 s < U = 1000 ago; ready
    # 139.5, done 141.5; to_zero at the first tick >= 201.5: 210. In between S = 16 (one
    # finish) is inside [1, 30] and one ready worker is not > max(min_workers, 1).
    result = run(
        tmp_path, [35.5, 125.5], horizon=215.0, min_workers=0, service_s=2.0, upper=30,
        lower=1, up=1000, down=1000, to_zero=60, cold_s=(5.0, 4.5),
    )
    assert_timeline(
        result,
        [
            (40.0, "from_zero", 1, 0, "waiting at N=0"),
            (120.0, "to_zero", -1, 1, "idle for"),
            (130.0, "from_zero", 1, 0, "waiting at N=0"),
            (210.0, "to_zero", -1, 1, "idle for"),
        ],
    )
    w = result.workers
    assert w.requested_s.tolist() == [40.0, 130.0]
    assert w.ready_s.tolist() == [49.5, 139.5]
    assert w.drain_s.tolist() == [120.0, 210.0]


@pytest.mark.parametrize(
    ("idle_from", "service_s", "to_zero", "expected"),
    [("arrival", 2.0, 64, 100.0), ("arrival", 2.0, 65, 110.0),
     ("done", 2.5, 68, 120.0), ("done", 2.5, 69, 130.0)],
)
def test_scale_to_zero_boundary(
    tmp_path: Path, idle_from: str, service_s: float, to_zero: int, expected: float
) -> None:
    """Idle since 36.0 (last arrival) or 52.0 (last finish): t - since >= Z counts, so Z=64 drains at 100, 65 at 110 (arrival); 68 at 120, 69 at 130 (done)."""
    # Arrival 36.0, from_zero at 40, ready 49.5, done at 49.5 + s. idle_from: arrival times
    # from 36.0 (first tick with 36 + Z <= t: 100 for Z = 64, equality; 110 for 65);
    # idle_from: done from the finish at 52.0 (s = 2.5): 120 for Z = 68, 130 for 69.
    result = run(
        tmp_path, [36.0], horizon=135.0, min_workers=0, service_s=service_s, upper=30, lower=1,
        up=1000, down=1000, to_zero=to_zero, cold_s=(5.0, 4.5), idle_from=idle_from,
    )
    why = "no arrival" if idle_from == "arrival" else "idle for"
    assert_timeline(
        result,
        [(40.0, "from_zero", 1, 0, "waiting at N=0"), (expected, "to_zero", -1, 1, why)],
    )


def test_scale_to_zero_drains_all(tmp_path: Path) -> None:
    """Two workers, min_workers 0 after an update at 1: to_zero drains both at 80 = first tick >= 14.5 + 60."""
    # min_workers 2 (both ready at 0); the update at 1.0 sets min_workers 0 (not immediate).
    # Requests at 5.5 and 12.5 (s = 2, latency 2 inside [1, 30]; W = 300 keeps them in the
    # window, so no scale-down is wanted). Idle from the last finish 14.5; + Z = 74.5 ->
    # to_zero at the first tick >= 74.5, 80, drains both (delta -N).
    result = run(
        tmp_path, [5.5, 12.5], horizon=95.0, min_workers=2, service_s=2.0, upper=30, lower=1,
        window=300, up=1000, down=1000, to_zero=60,
        updates=[{"at_s": 1.0, "body": {"initial_worker_config": {"min_workers": 0}}}],
    )
    assert_timeline(
        result,
        [(1.0, "update", 0, 2, "PUT body applied"), (80.0, "to_zero", -2, 2, "idle for")],
    )
    assert result.workers.drain_s.tolist() == [80.0, 80.0]


def test_scale_to_zero_waits_for_the_queue(tmp_path: Path) -> None:
    """min_workers 0, Z=60: from_zero at 10; no to_zero while the request still waits, although nothing arrived for Z."""
    # The request at 0.5 waits for a worker that is never ready (cold start 1000 s). Step 3
    # drains only when nothing arrived for Z *and* nothing waits: draining the worker a waiting
    # request depends on would only request it again at the next tick (step 2), a loop that
    # restarts the cold start every Z seconds. So after from_zero nothing more is logged.
    result = run(tmp_path, [0.5], horizon=85.0, min_workers=0, to_zero=60, up=1000, down=1000)
    assert_timeline(result, [(10.0, "from_zero", 1, 0, "waiting at N=0")])


def test_floor_after_update_raising_min_workers(tmp_path: Path) -> None:
    """An update at 55.5 raising min_workers 1 -> 3: the floor requests 2 workers at the next tick, 60."""
    # Step 1 of the loop: N = 1 < min_workers = 3 -> request the difference now (no timeout
    # gates the floor). They are ready at 60 + 10 = 70; afterwards N = 3 = min_workers and the
    # one request (latency 4) keeps S inside the band: nothing else is logged.
    result = run(
        tmp_path, [0.5], horizon=95.0, cold_s=(5.0, 5.0), up=1000, down=1000,
        updates=[{"at_s": 55.5, "body": {"initial_worker_config": {"min_workers": 3}}}],
    )
    assert_timeline(
        result,
        [
            (55.5, "update", 0, 1, "PUT body applied"),
            (60.0, "floor", 2, 1, "min_workers=3"),
        ],
    )
    assert result.workers.requested_s.tolist() == [0.0, 60.0, 60.0]
    assert result.workers.ready_s.tolist() == [0.0, 70.0, 70.0]


# --- 5. caps: price and max_workers ------------------------------------------------------------------


def _live_price_max(result: Result) -> float:
    """Largest summed hourly price of non-terminated workers at any time."""
    w = result.workers
    points = sorted(set(w.requested_s.tolist()))
    return max(
        float(w.price_per_hour_usd[(w.requested_s <= t) & (w.terminated_s > t)].sum())
        for t in points
    )


@pytest.mark.parametrize("cap", ["price", "max_workers"])
def test_cap_blocks_scale_up(tmp_path: Path, cap: str) -> None:
    """A cap fitting exactly 3 workers: ups at 120, 180; `blocked: price cap` (or max_workers) at 240, 250."""
    # The cooldown step of test_step_up_cooldown. max_price_per_hour = 3.5 p fits 3 workers
    # (a 4th would make 4 p > 3.5 p); max_workers = 3 likewise. Ups at 120 (N=2) and 180
    # (N=3); at 240 the cooldown has passed but the cap refuses, and again at 250.
    knobs: dict[str, Any] = (
        {"max_price": 3.5 * A100_PRICE} if cap == "price" else {"max_workers": 3}
    )
    result = run(tmp_path, STEP, horizon=STEP_HORIZON, up=60, down=60, **knobs)
    cd = "blocked: scale-up cooldown"
    reason = "blocked: price cap" if cap == "price" else "blocked: max_workers"
    assert_timeline(
        result,
        [(120.0, "scale_up", 1, 1, "upper")]
        + blocked(ticks(130, 170), cd, 2)
        + [(180.0, "scale_up", 1, 2, "upper")]
        + blocked(ticks(190, 230), cd, 3)
        + blocked([240, 250], reason, 3),
    )
    assert _live_price_max(result) == pytest.approx(3 * A100_PRICE)
    if cap == "price":
        assert _live_price_max(result) <= 3.5 * A100_PRICE


def test_price_cap_counts_draining_workers(tmp_path: Path) -> None:
    """Cap 2.5 p: a draining (not yet terminated) worker still counts, so ups are refused at 40, 50 and allowed at 60."""
    # min_workers 2 (w0, w1 ready at 0), s = 30. Request 0 at 0.5 -> w0 until 30.5; request 1
    # at 20.5 -> w1 (least loaded) until 50.5. Update at 25.5: min_workers 1, immediate ->
    # drain the newest of two equally busy workers, w1 (it finishes its request at 50.5),
    # and reset the timers (U = 1 s). t=40: S = 30 (request 0) > 5, cooldown over, but
    # w0 + draining w1 = 2 p and a third would make 3 p > 2.5 p -> blocked; same at 50.
    # w1 terminates at 50.5: at 60 there is room -> up (N=1 -> 2); at 70 2 p + p > 2.5 p again.
    result = run(
        tmp_path, [0.5, 20.5], horizon=75.0, min_workers=2, service_s=30.0, up=1, down=1000,
        max_price=2.5 * A100_PRICE,
        updates=[{
            "at_s": 25.5,
            "body": {"initial_worker_config": {"min_workers": 1}, "imidiate_scale_down": True},
        }],
    )
    assert_timeline(
        result,
        [(25.5, "update", -1, 2, "imidiate_scale_down")]
        + blocked([40, 50], "blocked: price cap", 1)
        + [(60.0, "scale_up", 1, 1, "S=30s>upper=5s")]
        + blocked([70], "blocked: price cap", 2),
    )
    assert result.workers.terminated_s.tolist()[:2] == [75.0, 50.5]
    assert _live_price_max(result) <= 2.5 * A100_PRICE


# --- 6. updates with imidiate_scale_down, and the victim order ------------------------------------------


def test_immediate_scale_down_resets_timers(tmp_path: Path) -> None:
    """imidiate_scale_down at 100.5 drains to min_workers at once; the next scale-down waits D from 100.5: at 170, not 120."""
    # min_workers 3, all ready at 0; one request at 0.5. Update at 100.5: min_workers 2 with
    # imidiate_scale_down -> drain 1 now (the newest, w2) and reset the timers. Update at
    # 110.5: min_workers 1 (not immediate). From 120 two ready workers > max(1, 1) and nothing
    # finished -> scale-down wanted; t - last action >= D = 60 first at 100.5 + 60 = 160.5 ->
    # blocked at 120..160, down at 170. (Without the reset, the last action would be the
    # creation at 0 and the scale-down would come at 120.)
    result = run(
        tmp_path, [0.5], horizon=185.0, min_workers=3, up=60, down=60,
        updates=[
            {
                "at_s": 100.5,
                "body": {"initial_worker_config": {"min_workers": 2}, "imidiate_scale_down": True},
            },
            {"at_s": 110.5, "body": {"initial_worker_config": {"min_workers": 1}}},
        ],
    )
    assert_timeline(
        result,
        [
            (100.5, "update", -1, 3, "PUT body applied, imidiate_scale_down"),
            (110.5, "update", 0, 2, "PUT body applied"),
        ]
        + blocked(ticks(120, 160), "blocked: scale-down cooldown", 2)
        + [(170.0, "scale_down", -1, 2, "window empty, nothing waiting")],
    )
    assert "imidiate" not in rows(result)[1][4]
    w = result.workers
    assert w.drain_s.tolist()[1:] == [170.0, 100.5]
    assert w.end_reason.tolist() == ["horizon", "scale_down", "update"]


def test_victim_order(tmp_path: Path) -> None:
    """Victims: most expensive first (busy H100), then fewest in flight (idle w0), then newest (w2 before w1)."""
    # min_workers 3 A100 (w0, w1, w2 ready at 0), s = 100. Requests at 0.5, 1.5, 2.5 go to
    # w0, w1, w2 (least loaded, in order) and finish at 100.5, 101.5, 102.5. Update at 15.5:
    # GPU H100, min_workers 4 -> floor at 20 adds w3 (H100), ready at 30; the request at 35.5
    # goes to w3 (the only idle one) until 135.5. Update at 101.0: min_workers 1, immediate ->
    # drain 3. At 101.0: w3 H100 busy; w0 A100 idle; w1, w2 A100 busy. Order: w3 (price),
    # w0 (fewest in flight), w2 (newer than w1). w1 stays.
    result = run(
        tmp_path, [0.5, 1.5, 2.5, 35.5], horizon=145.0, min_workers=3, service_s=100.0,
        upper=1000, lower=0.001, up=1000, down=1000, cold_s=(5.0, 5.0),
        updates=[
            {
                "at_s": 15.5,
                "body": {"initial_worker_config": {"min_workers": 4, "initial_workers_gpu": "H100"}},
            },
            {
                "at_s": 101.0,
                "body": {"initial_worker_config": {"min_workers": 1}, "imidiate_scale_down": True},
            },
        ],
    )
    assert_timeline(
        result,
        [
            (15.5, "update", 0, 3, "PUT body applied"),
            (20.0, "floor", 1, 3, "min_workers=4"),
            (101.0, "update", -3, 4, "imidiate_scale_down"),
        ],
    )
    w = result.workers.set_index("worker_id")
    assert w.gpu.tolist() == ["A100", "A100", "A100", "H100"]
    assert w.price_per_hour_usd.tolist() == pytest.approx([A100_PRICE] * 3 + [H100_PRICE])
    assert w.end_reason.tolist() == ["update", "horizon", "update", "update"]
    assert math.isnan(w.drain_s[1])
    assert w.drain_s[[0, 2, 3]].tolist() == [101.0, 101.0, 101.0]
    # Draining workers finish what they run: w0 was idle, w2 and w3 finish their requests.
    assert w.terminated_s[[0, 2, 3]].tolist() == [101.0, 102.5, 135.5]


def test_first_scale_down_counts_creation_as_an_action(tmp_path: Path) -> None:
    """No scaling yet: the first scale-down waits D from t=0 (creation counts as the last action): at 60, not 40."""
    # DESIGN §4 is silent on the cooldown before the first action; the code (and this test)
    # count the creation of the deployment at t = 0 as an action, so a fresh deployment does
    # not shrink within D. min_workers 2 (ready at 0), lowered to 1 at 1.0 (not immediate).
    # One request at 0.5 (done 4.5, S = 4 in [1, 5]); W = 30: from 40 nothing finished ->
    # below lower with 2 ready > 1; t - 0 >= D = 60 first at 60.
    result = run(
        tmp_path, [0.5], horizon=75.0, min_workers=2, up=60, down=60,
        updates=[{"at_s": 1.0, "body": {"initial_worker_config": {"min_workers": 1}}}],
    )
    assert_timeline(
        result,
        [(1.0, "update", 0, 2, "PUT body applied")]
        + blocked([40, 50], "blocked: scale-down cooldown", 2)
        + [(60.0, "scale_down", -1, 2, "window empty, nothing waiting")],
    )


def test_failed_requests_count_in_window(tmp_path: Path) -> None:
    """A request that timed out in the queue counts in the window with its time to failure: S=5 at t=10 -> scale-up."""
    # s = 100: request 0 (0.5) runs; request 1 (1.5) waits and fails at 1.5 + 5 = 6.5
    # (gateway.request_timeout_s = 5), a finished request with latency 5. At t = 10 the
    # window holds only it -> S = 5 > upper = 4.5 -> scale up.
    result = run(
        tmp_path, [0.5, 1.5], horizon=15.0, service_s=100.0, upper=4.5, lower=1,
        request_timeout_s=5.0,
    )
    assert_timeline(result, [(10.0, "scale_up", 1, 1, "S=5s>upper=4.5s")])
    assert result.requests.status.tolist() == ["in_flight", "failed"]


def test_victim_order_cloud_before_on_prem(tmp_path: Path) -> None:
    """Cloud before on-prem, even when the on-prem worker costs more per hour: the update at 5.5 drains the cloud worker."""
    # min_workers 2 with use_on_prem on node-a (1 x A100, billed 100 USD/GPU-h) and
    # use_cloudburst: w0 is on-prem, w1 overflows to the cloud (p = 2.74 USD/h). Both idle.
    # Immediate update to min_workers 1 at 5.5 -> one victim: cloud before on-prem -> w1.
    result = run(
        tmp_path, [20.5], horizon=25.0, min_workers=2, up=1000, down=1000,
        updates=[{
            "at_s": 5.5,
            "body": {"initial_worker_config": {"min_workers": 1}, "imidiate_scale_down": True},
        }],
        extra={
            "deployment": {"initial_worker_config": {
                "use_on_prem": True, "use_cloudburst": True, "on_prem_node_ids": ["node-a"],
            }},
            "fleet": {
                "on_prem_nodes": [{"id": "node-a", "gpu": "A100", "gpus": 1}],
                "on_prem_gpu_hour_usd": 100.0,
            },
        },
    )
    assert_timeline(result, [(5.5, "update", -1, 2, "imidiate_scale_down")])
    w = result.workers
    assert w.on_prem.tolist() == [True, False]
    assert w.price_per_hour_usd.tolist() == pytest.approx([100.0, A100_PRICE])
    assert w.drain_s.tolist()[1] == 5.5
    assert math.isnan(w.drain_s.tolist()[0])


def test_decisions_csv_columns(tmp_path: Path) -> None:
    """decisions.csv has the columns time_s, policy, statistic, workers, action, delta, reason."""
    result = run(tmp_path, STUCK, horizon=115.0, service_s=100.0, upper=3, lower=1)
    assert list(result.decisions.columns) == [
        "time_s", "policy", "statistic", "workers", "action", "delta", "reason",
    ]
    assert set(result.decisions.policy) == {"scalegen"}
    out = tmp_path / "decisions.csv"
    result.decisions.to_csv(out, index=False)
    back = pd.read_csv(out)
    assert back.time_s.tolist() == [110.0]
    assert np.isclose(back.statistic.iloc[0], 100.0)


# --- 6. overload and idleness (the window is no signal while requests wait) -------------------------

LLM_8B = {"model": "meta-llama/Llama-3.1-8B-Instruct"}


def _llm_run(tmp_path: Path, arrivals: list[float], tokens: list[tuple[int, int]], **kw: Any) -> Result:
    """``run`` with the continuous-batching LLM service of Llama-3.1-8B on 1xA100."""
    extra = kw.pop("extra", {})
    return run(
        tmp_path, arrivals, tokens=tokens, serving={"kind": "llm", "max_batch": kw.pop("max_batch", 256)},
        extra=_merge({"deployment": LLM_8B}, extra), **kw,
    )


OVERLOAD = [float(i) + 0.5 for i in range(30)]  # 30 requests at 1/s, 500 tokens in, 8,000 out


@pytest.mark.parametrize("count_waiting", [False, True])
def test_no_scale_down_while_requests_wait(tmp_path: Path, count_waiting: bool) -> None:
    """3 workers x batch 4 under 30 long generations, floor lowered to 1 at 1 s: no drain while any request waits; latencies equal a fixed fleet of 3."""
    # 12 requests run, 18 wait. The old reading drained at 60 and 120 ("no request finished in
    # window") and TTFT p95 was ~450-510 s. Right: while anything waits, no scale-down, so
    # with max_workers 3 every request is served exactly as by a fixed fleet of three, and the
    # only scale-downs come after the queue empties.
    knobs: dict[str, Any] = {
        "horizon": 2000.0, "min_workers": 3, "upper": 4, "lower": 1, "window": 60,
        "up": 60, "down": 60, "max_batch": 4, "max_workers": 3,
    }
    tokens = [(500, 8000)] * 30
    res = _llm_run(
        tmp_path, OVERLOAD, tokens, count_waiting=count_waiting,
        updates=[{"at_s": 1.0, "body": {"initial_worker_config": {"min_workers": 1}}}], **knobs,
    )
    fixed = _llm_run(tmp_path, OVERLOAD, tokens, policy="fixed", **knobs)
    assert res.summary["requests"]["completed"] == 30
    cols = ["dispatch_s", "first_token_s", "completion_s", "worker"]
    pd.testing.assert_frame_equal(res.requests[cols], fixed.requests[cols])
    assert res.summary["ttft_s"]["p95"] == fixed.summary["ttft_s"]["p95"]
    last_dispatch = float(res.requests.dispatch_s.max())
    downs = res.decisions[res.decisions.delta < 0]
    assert len(downs) == 2 and (downs.time_s > last_dispatch).all()
    waiting = res.decisions[res.decisions.reason == "blocked: requests waiting"]
    assert (waiting.time_s < last_dispatch + 10).all()
    if not count_waiting:  # the window holds fast TTFTs (< lower) while 18 requests wait
        assert len(waiting) > 0


def test_ttft_enters_the_window_at_the_first_token(tmp_path: Path) -> None:
    """metric ttft: one 6,000-token generation at 0.5 is seen at the first tick after its first token (not at completion)."""
    # The request's first token comes within a second (prefill of 100 tokens); it completes
    # ~90 s later. upper 0.001 and max_workers 1 log S at every tick with a sample: the first
    # logged tick is 10 with S = its TTFT, long before completion.
    res = _llm_run(
        tmp_path, [0.5], [(100, 6000)], horizon=200.0, upper=0.001, lower=0.0005,
        window=300, max_workers=1,
    )
    req = res.requests.iloc[0]
    assert req.first_token_s < 10.0 < req.completion_s - 60
    d = res.decisions
    assert d.time_s.iloc[0] == 10.0
    assert statistic_at(res, 10.0) == pytest.approx(req.first_token_s - req.arrival_s)


def test_scale_to_zero_waits_for_in_flight(tmp_path: Path) -> None:
    """min_workers 0 (update at 1), Z=60: a 6,000-token generation from 130 and a request at 200 are served by the warm worker; zero is reached at the first tick >= last finish + Z."""
    # Old reading (idle = no arrival for Z): drain at 190 while the generation still runs,
    # and the 200 s request waits for a fresh cold start (TTFT ~122 s, 2 cold starts). Right
    # (KEDA HTTP add-on, Knative): idle only once nothing waits or runs, so the worker serves
    # the 200 s request at once and is drained at the first tick >= its last finish + 60.
    # Short requests every 30 s from 0.5 keep the worker busy enough (idle spells < Z) until
    # the long generation arrives at 130.5.
    arrivals = [0.5, 30.5, 60.5, 90.5, 120.5, 130.5, 200.5]
    tokens = [(500, 100)] * 5 + [(500, 6000), (500, 100)]
    res = _llm_run(
        tmp_path, arrivals, tokens, horizon=400.0, upper=30,
        lower=0.001, up=1000, down=1000, to_zero=60, cold_s=(60.0, 60.0),
        updates=[{"at_s": 1.0, "body": {"initial_worker_config": {"min_workers": 0}}}],
    )
    req = res.requests
    last_done = float(req.completion_s.max())
    assert last_done > 200.5  # the generation is still running when the next request arrives
    assert float(req.ttft_s.iloc[-1]) < 1.0  # served at once by the warm worker
    to_zero = math.ceil((last_done + 60) / 10) * 10
    assert_timeline(
        res, [(1.0, "update", 0, 1, "PUT body applied"), (to_zero, "to_zero", -1, 1, "idle for")]
    )
    assert res.summary["workers"]["cold_starts"] == 0
    assert len(res.workers) == 1


# --- 7. step: one | proportional, and stabilization on desired counts (Kubernetes HPA) -------------


def test_step_proportional_cooldown(tmp_path: Path) -> None:
    """step, cooldown, step proportional: up +1 at 120 (ceil(1 x 6.4/5) = 2), +12 at 180 (ceil(2 x 34/5) = 14), +86 at 240 (ceil(14 x 64/5) = 180, capped by max_workers 100)."""
    # Same ticks as case 1 (the cooldown gates when); proportional sets how many: HPA's
    # desired = ceil(N x S / target) with the upper bound as target.
    result = run(
        tmp_path, STEP, horizon=STEP_HORIZON, upper=5, lower=1, up=60, down=60,
        step="proportional",
    )
    expected = (
        [(120.0, "scale_up", 1, 1, "desired 2")]
        + blocked(ticks(130, 170), "blocked: scale-up cooldown", 2)
        + [(180.0, "scale_up", 12, 2, "desired 14")]
        + blocked(ticks(190, 230), "blocked: scale-up cooldown", 14)
        + [(240.0, "scale_up", 86, 14, "desired 180")]
        + blocked([250], "blocked: scale-up cooldown", 100)
    )
    assert_timeline(result, expected)


def test_stabilization_proportional(tmp_path: Path) -> None:
    """step, stabilization, proportional, U=60, D=120: blocked 120-160; +1 at 170; blocked 180; +1 at 190, 200, 210, 220; +8 at 230; +2 at 240; +11 at 250."""
    # Each tick recommends ceil(N x S / 5) while S > 5 (else N). S at 120..170 with N = 1:
    # 6.4, 10, 14, 19, 24, 29 -> recommendations 2, 2, 3, 4, 5, 6. Desired =
    # min(max(N, min over (t-60, t]), max over (t-120, t]): 120-160 the up window still holds
    # a 1 (ticks <= 110) -> blocked; 170: min(120..170) = 2 -> +1. Then N = 2 and S = 34, 39,
    # 44 at 180, 190, 200 -> recommendations 14, 16, 27 (N = 2, 2, 3); the up window's minimum
    # is the oldest of the N = 1 recommendations: 180: min(130..180) = 2 = N -> blocked;
    # 190: 3 -> +1; 200: 4 -> +1; 210: 5 -> +1; 220: 6 -> +1. At 210, 220, 230 S = 49, 54, 59
    # with N = 4, 5, 6 -> 40, 54, 71; 230: min(180..230) = 14 -> +8; 240 (S = 64, N = 14 ->
    # 180): min(190..240) = 16 -> +2; 250 (S = 69, N = 16 -> 221): min(200..250) = 27 -> +11.
    # The down window's maximum is never below these, so it never binds.
    result = run(
        tmp_path, STEP, horizon=STEP_HORIZON, upper=5, lower=1, up=60, down=120,
        timeout_semantics="stabilization", step="proportional",
    )
    expected = (
        blocked(ticks(120, 160), "blocked: stabilization window (up)", 1)
        + [(170.0, "scale_up", 1, 1, "desired 2")]
        + blocked([180], "blocked: stabilization window (up)", 2)
        + [
            (190.0, "scale_up", 1, 2, "desired 3"),
            (200.0, "scale_up", 1, 3, "desired 4"),
            (210.0, "scale_up", 1, 4, "desired 5"),
            (220.0, "scale_up", 1, 5, "desired 6"),
            (230.0, "scale_up", 8, 6, "desired 14"),
            (240.0, "scale_up", 2, 14, "desired 16"),
            (250.0, "scale_up", 11, 16, "desired 27"),
        ]
    )
    assert_timeline(result, expected)
    assert statistic_at(result, 170.0) == pytest.approx(29.0)


def test_stabilization_differs_from_cooldown(tmp_path: Path) -> None:
    """Fixed 4 s service at 1 req/s from one worker, U = 300: stabilization on desired counts does not space steps like the cooldown."""
    # The switch must show something: the cooldown adds one worker per U; HPA's reading moves
    # to the stabilized desired count. Both start from the same first scale-up tick.
    arrivals = [0.5 + i for i in range(900)]
    kw: dict[str, Any] = {
        "horizon": 905.0, "upper": 5, "lower": 1, "up": 300, "down": 600, "window": 60,
        "cold_s": (30.0, 30.0),
    }
    cool = run(tmp_path, arrivals, **kw)
    stab = run(tmp_path, arrivals, timeout_semantics="stabilization", step="proportional", **kw)
    ups_cool = cool.decisions[cool.decisions.delta > 0]
    ups_stab = stab.decisions[stab.decisions.delta > 0]
    assert ups_cool.time_s.diff().dropna().ge(300).all()
    assert ups_cool.delta.eq(1).all()
    assert list(ups_stab.time_s) != list(ups_cool.time_s)
