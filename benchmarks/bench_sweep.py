"""Sweep speed: configurations evaluated per minute, and a 1,000-point x 1-day sweep estimate.

    python benchmarks/bench_sweep.py [--workers 2] [--points 40] [--day-points 6]
                                     [--out results/bench/sweep_speed.json]

1. **1-hour Azure-conv configurations per minute** (target >= 60 on 2 cores): a
   Latin-hypercube sweep of ``--points`` configurations of
   ``scenarios/azure_conv_llama3_8b_a100.yaml`` (19,366 requests over ~58 min; autoscaling
   band, window, timeouts and floor varied), one seed each, through the same
   :func:`sim.tune.sweep.run_sweep` ``sim sweep`` uses, on a ``--workers`` process pool. Next
   to it: the same configurations simulated one after another in this process with a
   pre-built workload (``simulate`` alone), so the sweep's overhead (task batching,
   scenario validation, journal) is visible as a ratio.
2. **1,000 points x 1 day at 1 req/s** (target < 1 h on 2 cores): ``--day-points``
   configurations of a one-day Poisson workload (86,400 requests, chat-like token lengths) are
   swept the same way; the wall time per configuration times 1,000 is the estimate.

The machine's load average is recorded: on a shared machine the wall-clock figures are lower
bounds. ``cpu_s_per_config`` (CPU time of one configuration simulated in this process) gives
the rate two dedicated cores would reach at perfect scaling
(``configs_per_min_2_dedicated_cores``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sim import load_scenario, scenario_from_dict, simulate  # noqa: E402
from sim.executor import Runner, shared_workload  # noqa: E402
from sim.tune.space import overrides_for, space_from_dict  # noqa: E402
from sim.tune.sweep import run_sweep  # noqa: E402

AC = "deployment.autoscaling_config."
RANGES = {
    AC + "upper_allowed_latency_sec": {"low": 0.5, "high": 8, "log": True},
    AC + "lower_allowed_latency_sec": {"low": 0.1, "high": 0.8,
                                       "fraction_of": AC + "upper_allowed_latency_sec"},
    AC + "time_window_sec": {"low": 30, "high": 600, "int": True, "log": True},
    AC + "scaling_up_timeout_sec": {"low": 10, "high": 1200, "int": True, "log": True},
    AC + "scaling_down_timeout_sec": {"low": 60, "high": 2400, "int": True, "log": True},
    "deployment.initial_worker_config.min_workers": {"low": 1, "high": 3, "int": True},
}


def day_scenario() -> dict:
    """One day of Poisson arrivals at 1 req/s on Llama-3.1-8B / A100 with autoscaling."""
    return {
        "name": "bench-day",
        "deployment": {
            "name": "day", "model": "meta-llama/Llama-3.1-8B-Instruct", "inf_type": "llm",
            "initial_worker_config": {"min_workers": 1, "initial_workers_gpu": "A100",
                                      "initial_workers_gpu_num": 1,
                                      "use_same_gpus_when_scaling": True},
        },
        "workload": {"kind": "poisson", "rate_per_s": 1.0, "duration_s": 86_400,
                     "prompt_tokens": {"dist": "lognormal", "mean": 1000, "cv": 1.0},
                     "output_tokens": {"dist": "lognormal", "mean": 250, "cv": 1.0}},
    }


def sweep_rate(scenario, points: int, workers: int) -> dict:
    """Wall time of a ``points``-configuration sweep on ``workers`` processes, and alone in-process."""
    space = space_from_dict({"lhs": points, "ranges": RANGES, "seed": 7})
    with tempfile.TemporaryDirectory() as tmp, Runner(workers=workers) as runner:
        runner.map(int, [0] * workers, batch=1)  # start the pool outside the timing
        t0 = time.perf_counter()
        res = run_sweep(scenario, space, [1], Path(tmp) / "s", runner=runner)
        wall = time.perf_counter() - t0
    failed = int(res.table["error"].notna().sum())
    # The same configurations, one by one in this process, on a pre-built workload.
    from sim.tune.metrics import pinned_base

    base = pinned_base(scenario)
    wl = shared_workload(scenario, 1)
    n_alone = min(points, 8)
    t0, c0 = time.perf_counter(), time.process_time()
    for point in space.points()[:n_alone]:
        sc = scenario_from_dict(base, base_dir=scenario.base_dir,
                                overrides=overrides_for(point, base, space.ranges))
        simulate(sc, 1, workload=wl)
    alone = (time.perf_counter() - t0) / n_alone
    # CPU seconds are what a config costs on a dedicated core; on a shared machine the wall
    # time also counts the other processes' turns.
    cpu = (time.process_time() - c0) / n_alone
    return {
        "configs": points, "workers": workers, "failed": failed, "wall_s": round(wall, 2),
        "configs_per_min": round(points / wall * 60, 1),
        "s_per_config_alone": round(alone, 3),
        "cpu_s_per_config": round(cpu, 3),
        "configs_per_min_2_dedicated_cores": round(2 * 60 / cpu, 1),
        "ideal_configs_per_min": round(60 / alone * workers, 1),
        "efficiency": round((points / wall) / (workers / alone), 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--points", type=int, default=40)
    ap.add_argument("--day-points", type=int, default=6)
    ap.add_argument("--out", default=str(ROOT / "results" / "bench" / "sweep_speed.json"))
    args = ap.parse_args()
    load0 = os.getloadavg()[0]
    conv = load_scenario(ROOT / "scenarios" / "azure_conv_llama3_8b_a100.yaml")
    hour = sweep_rate(conv, args.points, args.workers)
    print(f"1-hour Azure conv: {hour['configs_per_min']} configs/min on {args.workers} processes "
          f"({hour['s_per_config_alone']} s per config alone, {hour['cpu_s_per_config']} CPU-s: "
          f"{hour['configs_per_min_2_dedicated_cores']}/min on 2 dedicated cores)")
    day = sweep_rate(scenario_from_dict(day_scenario()), args.day_points, args.workers)
    est_h = 1000 / (day["configs_per_min"] / 60) / 3600
    print(f"1-day 1 req/s: {day['configs_per_min']} configs/min -> 1,000 points in ~{est_h:.2f} h "
          f"({1000 * day['cpu_s_per_config'] / 2 / 3600:.2f} h on 2 dedicated cores)")
    out = {
        "azure_conv_1h": hour,
        "day_1rps": {**day, "estimate_1000_points_h": round(est_h, 3),
                     "estimate_1000_points_h_2_dedicated_cores":
                         round(1000 * day["cpu_s_per_config"] / 2 / 3600, 3)},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_avg_1min_start": round(load0, 2),
                    "load_avg_1min_end": round(os.getloadavg()[0], 2)},
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
