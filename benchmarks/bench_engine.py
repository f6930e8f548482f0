"""Engine speed: simulated requests per CPU-second against an idiomatic SimPy M/M/c.

    python benchmarks/bench_engine.py [--requests 300000] [--repeats 5] [--fleet 8,32,128,512]
                                      [--lengths 1e6,3e6,10e6,30e6,60e6] [--out-dir results/bench]

Three measurements, each written to ``results/bench/`` as JSON and printed:

1. **Ratio** (``engine_speed.json``): the reference case — Llama-3-8B on autoscaled 1×A100
   workers (``scalegen`` policy, a TTFT band, warm-pool scale-ups, 2..32 workers) under
   hourly diurnal traffic (peak/trough 4), so the autoscaler scales up and down and requests
   queue at the gateway some of the time — timed by ``time.process_time`` (CPU seconds, so
   other processes on the machine do not count) around the whole ``sim.simulate`` call
   (engine plus result building). Next to it an idiomatic SimPy M/M/8 at ρ = 0.8 (a process
   per customer, ``simpy.Resource``) with the same number of customers. The two are
   *interleaved* (engine, M/M/c, engine, M/M/c, ...) so slow phases of a shared machine hit
   both; each pair gives a ratio and the median ratio is reported first, with its range.
2. **Fleet sweep** (``engine_fleet_sweep.json``): a fixed fleet of W workers (no autoscaler
   actions) at 80% of its measured capacity, CPU µs per request for W = 8 … 512. Flat means
   dispatch does not scan the fleet.
3. **Length sweep** (``engine_length_sweep.json``, only with ``--lengths``): the fortnight
   scenario (``scenarios/fortnight_diurnal_llama3_8b.yaml``) cut to N requests, each point in
   a fresh process (``sim.results: summary``): CPU s, wall s and peak RSS (``ru_maxrss``).

Speed is never asserted by tests; this script measures it.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import simpy

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sim import scenario_from_dict, simulate  # noqa: E402
from sim.rng import Streams  # noqa: E402
from sim.workload import build_workload  # noqa: E402

MMC_SERVERS = 8
MMC_RHO = 0.8
REF_MEAN_RATE = 12.0  # requests/s, averaged over the hourly cycle
FORTNIGHT = ROOT / "scenarios" / "fortnight_diurnal_llama3_8b.yaml"


def machine() -> str:
    """CPU model, core count and Python: stated beside every absolute figure."""
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{cpu} ({os.cpu_count()} cores), {platform.system()} {platform.machine()}, "
        f"Python {platform.python_version()}"
    )


def reference(requests: int) -> dict[str, Any]:
    """The reference scenario: autoscaled A100 workers under an hourly diurnal cycle."""
    return {
        "name": "bench-reference",
        "deployment": {
            "name": "bench",
            "model": "meta-llama/Meta-Llama-3-8B",
            "inf_type": "llm",
            "initial_worker_config": {
                "min_workers": 2, "initial_workers_gpu": "A100", "initial_workers_gpu_num": 1,
            },
            "autoscaling_config": {
                "time_window_sec": 60, "upper_allowed_latency_sec": 2.0,
                "lower_allowed_latency_sec": 0.5, "scaling_up_timeout_sec": 30,
                "scaling_down_timeout_sec": 120, "scale_to_zero_timeout_sec": 1800,
                "enable_speedup_shared": True,
            },
        },
        "workload": {
            "kind": "diurnal",
            "mean_rate_per_s": REF_MEAN_RATE,
            "peak_to_trough": 4,
            "period_s": 3600,
            "duration_s": requests / REF_MEAN_RATE,
            "prompt_tokens": {"dist": "lognormal", "mean": 1000, "cv": 1.0},
            "output_tokens": {"dist": "lognormal", "mean": 250, "cv": 1.0},
        },
        "serving": {"max_batch": 64},
        "autoscaler": {"policy": "scalegen", "max_workers": 32},
    }


def fixed_fleet(workers: int, requests: int, rate: float) -> dict[str, Any]:
    """A fixed fleet of ``workers`` under Poisson arrivals at ``rate`` (fleet-size sweep)."""
    sc = reference(requests)
    sc["deployment"]["initial_worker_config"]["min_workers"] = workers
    sc["autoscaler"] = {"policy": "fixed", "max_workers": workers}
    sc["workload"] = {
        "kind": "poisson", "rate_per_s": rate, "requests": requests,
        "prompt_tokens": {"dist": "lognormal", "mean": 1000, "cv": 1.0},
        "output_tokens": {"dist": "lognormal", "mean": 250, "cv": 1.0},
    }
    sc["gateway"] = {"request_timeout_s": 3e8}
    return sc


def mmc_idiomatic(requests: int, servers: int, rho: float, seed: int) -> float:
    """CPU seconds of an idiomatic SimPy M/M/c: one process per customer."""
    rng = np.random.default_rng(seed)
    lam = rho * servers
    inter = rng.exponential(1 / lam, requests).tolist()
    service = rng.exponential(1.0, requests).tolist()
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
    t0 = time.process_time()
    env.run()
    return time.process_time() - t0


def cpu_simulate(sc: Any, workload: Any) -> tuple[float, Any]:
    """CPU seconds of one ``simulate`` call (engine and result building) and its result."""
    gc.collect()
    t0 = time.process_time()
    res = simulate(sc, workload=workload)
    return time.process_time() - t0, res


def ratio(requests: int, repeats: int) -> dict[str, Any]:
    """Interleaved engine / M/M/c pairs on the reference case."""
    sc = scenario_from_dict(reference(requests), base_dir=ROOT)
    workload = build_workload(sc.workload, Streams(sc.sim.seed), sc.base_dir)
    n = len(workload.arrival_s)
    eng, mmc, ratios = [], [], []
    res = None
    for i in range(repeats):
        e, res = cpu_simulate(sc, workload)
        gc.collect()
        m = mmc_idiomatic(n, MMC_SERVERS, MMC_RHO, seed=i + 1)
        eng.append(e)
        mmc.append(m)
        ratios.append((n / e) / (n / m))
        print(f"  pair {i + 1}: engine {n / e:,.0f} req/CPU-s, M/M/c {n / m:,.0f} req/CPU-s, "
              f"ratio {ratios[-1]:.3f}", file=sys.stderr)
    assert res is not None
    s = res.summary
    queue = res.queue
    return {
        "ratio_engine_over_idiomatic_mmc": round(statistics.median(ratios), 3),
        "ratio_range": [round(min(ratios), 3), round(max(ratios), 3)],
        "method": (
            "median over interleaved pairs of (reference requests per CPU-second of a whole "
            "sim.simulate call) / (idiomatic SimPy M/M/8 rho=0.8 customers per CPU-second), "
            "time.process_time"
        ),
        "requests": n,
        "pairs": repeats,
        "engine_req_per_cpu_s": round(n / statistics.median(eng)),
        "mmc_idiomatic_req_per_cpu_s": round(n / statistics.median(mmc)),
        "engine_cpu_s": [round(x, 3) for x in eng],
        "mmc_cpu_s": [round(x, 3) for x in mmc],
        "events_per_request": round(s["sim"]["events"] / n, 2),
        "reference_scales": {
            "scale_ups": s["workers"]["scale_ups"],
            "scale_downs": s["workers"]["scale_downs"],
            "workers_mean": round(s["workers"]["mean"], 2),
            "workers_max": s["workers"]["max"],
            "share_of_ticks_with_gateway_queue": round(float((queue.queue_len > 0).mean()), 3),
            "queue_max_len": s["queue"]["max_len"],
            "ttft_p50_s": s["ttft_s"]["p50"],
            "ttft_p99_s": s["ttft_s"]["p99"],
        },
    }


def capacity(workers: int, requests: int) -> float:
    """Completions per second of ``workers`` when every request waits at t = 0."""
    sc = scenario_from_dict(fixed_fleet(workers, requests, 1e6), base_dir=ROOT)
    res = simulate(sc, seed=7)
    done = res.requests[res.requests.status == "completed"]
    return float(len(done) / done.completion_s.max())


def fleet_sweep(sizes: list[int], per_worker: int) -> list[dict[str, Any]]:
    """CPU µs per request of fixed fleets at 80% load, per fleet size."""
    mu8 = capacity(8, 20_000) / 8  # per-worker capacity (the same shape everywhere)
    rows = []
    for w in sizes:
        n = max(per_worker * w, 100_000)
        sc = scenario_from_dict(fixed_fleet(w, n, 0.8 * mu8 * w), base_dir=ROOT)
        workload = build_workload(sc.workload, Streams(sc.sim.seed), sc.base_dir)
        cpu, res = cpu_simulate(sc, workload)
        rows.append({
            "workers": w, "requests": n, "cpu_s": round(cpu, 3),
            "cpu_us_per_request": round(cpu / n * 1e6, 2),
            "events_per_request": round(res.summary["sim"]["events"] / n, 2),
        })
        print(f"  fleet {w:4d}: {rows[-1]['cpu_us_per_request']} µs/request", file=sys.stderr)
    return rows


def length_point(requests: int, results: str) -> dict[str, Any]:
    """One point of the length sweep, run in this (fresh) process."""
    from sim import load_scenario

    rate = 50.0
    sc = load_scenario(
        FORTNIGHT,
        overrides=[f"workload.duration_s={requests / rate:.1f}"]
        + ([f"sim.results={results}"] if results != "full" else []),
    )
    w0, c0 = time.perf_counter(), time.process_time()
    res = simulate(sc)
    cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    s = res.summary
    return {
        "requests": s["requests"]["arrived"], "cpu_s": round(cpu, 1), "wall_s": round(wall, 1),
        "peak_rss_mib": round(rss),
        "bytes_per_request_peak": round(rss * 2**20 / max(s["requests"]["arrived"], 1)),
        "workers_mean": s["workers"]["mean"], "ttft_p99_s": s["ttft_s"]["p99"],
    }


def length_sweep(lengths: list[int], results: str) -> list[dict[str, Any]]:
    """Each length in a fresh interpreter, so peak RSS is that run's alone."""
    rows = []
    for n in lengths:
        out = subprocess.run(
            [sys.executable, __file__, "--point", str(n), "--results", results],
            check=True, capture_output=True, text=True,
        )
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(f"  length {n:>11,}: {rows[-1]}", file=sys.stderr)
    return rows


def main() -> None:
    """Run the benchmark and print/write its figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=300_000, help="reference-case requests")
    ap.add_argument("--repeats", type=int, default=5, help="interleaved engine/M/M/c pairs")
    ap.add_argument("--fleet", default="8,32,128,512", help="fleet sizes ('' to skip)")
    ap.add_argument("--per-worker", type=int, default=2_000,
                    help="fleet sweep: requests per worker (at least 100,000 per point)")
    ap.add_argument("--lengths", default="", help="length sweep, e.g. 1e6,3e6,10e6 ('' skips)")
    ap.add_argument("--results", default="summary", choices=("summary", "full"),
                    help="sim.results of the length-sweep runs")
    ap.add_argument("--skip-ratio", action="store_true", help="only the sweeps")
    ap.add_argument("--out-dir", default=str(ROOT / "results" / "bench"))
    ap.add_argument("--point", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.point is not None:
        print(json.dumps(length_point(args.point, args.results)))
        return
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    meta = {"machine": machine(), "simpy": simpy.__version__, "numpy": np.__version__}
    if not args.skip_ratio:
        fig = {**ratio(args.requests, args.repeats), **meta}
        for k, v in fig.items():
            print(f"{k:36s} {v}")
        (out / "engine_speed.json").write_text(json.dumps(fig, indent=2) + "\n")
    if args.fleet:
        rows = fleet_sweep([int(x) for x in args.fleet.split(",")], args.per_worker)
        (out / "engine_fleet_sweep.json").write_text(
            json.dumps({"points": rows, **meta}, indent=2) + "\n"
        )
    if args.lengths:
        rows = length_sweep([int(float(x)) for x in args.lengths.split(",")], args.results)
        (out / "engine_length_sweep.json").write_text(
            json.dumps({"results": args.results, "points": rows, **meta}, indent=2) + "\n"
        )


if __name__ == "__main__":
    main()
