"""Engine speed: simulated requests per wall-second for the reference case of issue #2.

Reference: Llama-3-8B on 1×A100 workers, 8 workers at ~80% load, the ``scalegen`` policy
active, continuous batching in ``fast`` mode. Next to it, in the same process, an idiomatic
SimPy M/M/c (a process per customer, ``simpy.Resource``) with the same number of requests
and servers at ρ = 0.8 — the yardstick DESIGN §7 measures against.

    python benchmarks/bench_engine.py [--requests 500000] [--out results/bench/engine_speed.json]

Load is defined against measured capacity: a saturation run (every request waiting at t = 0
on the same 8 workers) gives the pool's maximum completion rate μ_max, and the reference run
uses Poisson arrivals at 0.8 μ_max.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import simpy

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sim import scenario_from_dict, simulate  # noqa: E402
from sim.rng import Streams  # noqa: E402
from sim.workload import build_workload  # noqa: E402

WORKERS = 8


def scenario(requests: int, rate: float, *, saturate: bool = False) -> dict:
    """The reference scenario as a dict (a create body plus workload)."""
    return {
        "name": "bench-reference",
        "deployment": {
            "name": "bench",
            "model": "meta-llama/Meta-Llama-3-8B",
            "inf_type": "llm",
            "initial_worker_config": {
                "min_workers": WORKERS, "initial_workers_gpu": "A100", "initial_workers_gpu_num": 1,
            },
            # Bounds wide enough that the fleet stays near 8 while the policy runs every tick.
            "autoscaling_config": {
                "time_window_sec": 300, "upper_allowed_latency_sec": 30,
                "lower_allowed_latency_sec": 0.01, "scaling_up_timeout_sec": 1200,
                "scaling_down_timeout_sec": 1200, "scale_to_zero_timeout_sec": 1800,
            },
        },
        "workload": {
            "kind": "poisson",
            "rate_per_s": rate,
            "requests": requests,
            "prompt_tokens": {"dist": "lognormal", "mean": 1000, "cv": 1.0},
            "output_tokens": {"dist": "lognormal", "mean": 250, "cv": 1.0},
        },
        "serving": {"max_batch": 64},
        "autoscaler": {"policy": "fixed" if saturate else "scalegen", "max_workers": WORKERS},
        "gateway": {"request_timeout_s": 1e9},
    }


def capacity(requests: int) -> float:
    """Completions per second of the 8-worker pool when every request waits at t = 0."""
    sc = scenario_from_dict(scenario(requests, 1e9, saturate=True), base_dir=ROOT)
    res = simulate(sc, seed=7)
    done = res.requests[res.requests.status == "completed"]
    return float(len(done) / done.completion_s.max())


def mmc_idiomatic(requests: int, servers: int, rho: float, seed: int) -> float:
    """Wall seconds of an idiomatic SimPy M/M/c: one process per customer."""
    rng = np.random.default_rng(seed)
    mu = 1.0
    lam = rho * servers * mu
    inter = rng.exponential(1 / lam, requests).tolist()
    service = rng.exponential(1 / mu, requests).tolist()
    env = simpy.Environment()
    res = simpy.Resource(env, capacity=servers)

    def customer(i: int):  # noqa: ANN202
        with res.request() as req:
            yield req
            yield env.timeout(service[i])

    def source():  # noqa: ANN202
        for i in range(requests):
            yield env.timeout(inter[i])
            env.process(customer(i))

    env.process(source())
    t0 = time.perf_counter()
    env.run()
    return time.perf_counter() - t0


def main() -> None:
    """Run the benchmark and print/write its figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=500_000)
    ap.add_argument("--out", default=str(ROOT / "results" / "bench" / "engine_speed.json"))
    ap.add_argument("--repeats", type=int, default=3,
                    help="runs of each case; the fastest counts (as timeit does: noise only slows)")
    args = ap.parse_args()
    n = args.requests

    mu_max = capacity(min(n, 50_000))
    rate = 0.8 * mu_max
    sc = scenario_from_dict(scenario(n, rate), base_dir=ROOT)
    workload = build_workload(sc.workload, Streams(sc.sim.seed), sc.base_dir)
    engine_walls, ref_walls = [], []
    for _ in range(args.repeats):
        gc.collect()
        t0 = time.perf_counter()
        res = simulate(sc, workload=workload)
        ref_walls.append(time.perf_counter() - t0)
        engine_walls.append(res.summary["sim"]["wall_s"])
    engine_wall, ref_wall = min(engine_walls), min(ref_walls)
    req_bytes = int(res.requests.memory_usage(deep=True).sum())
    cols = res.record.requests
    col_bytes = sum(getattr(cols, f).nbytes for f in cols.__dataclass_fields__)

    mmc_walls = []
    for _ in range(args.repeats):
        gc.collect()
        mmc_walls.append(mmc_idiomatic(n, WORKERS, 0.8, seed=1))
    mmc_wall = min(mmc_walls)
    figures = {
        "requests": n,
        "repeats": args.repeats,
        "capacity_req_per_s": round(mu_max, 3),
        "arrival_rate_req_per_s": round(rate, 3),
        "reference_engine_wall_s": round(engine_wall, 3),
        "reference_total_wall_s": round(ref_wall, 3),
        "reference_req_per_wall_s": round(n / engine_wall),
        "reference_events_per_request": round(res.summary["sim"]["events"] / n, 2),
        "mmc_idiomatic_simpy_wall_s": round(mmc_wall, 3),
        "mmc_idiomatic_req_per_wall_s": round(n / mmc_wall),
        "ratio_reference_over_idiomatic_mmc": round((n / engine_wall) / (n / mmc_wall), 3),
        "result_bytes_per_request_dataframe": round(req_bytes / n, 1),
        "result_bytes_per_request_columns": round(col_bytes / n, 1),
        "reference_p95_e2e_s": res.summary["latency_e2e_s"]["p95"],
        "reference_mean_workers": res.summary["workers"]["mean"],
        "python": platform.python_version(),
        "simpy": simpy.__version__,
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
    }
    for k, v in figures.items():
        print(f"{k:40s} {v}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
