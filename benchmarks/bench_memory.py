"""Peak memory per simulated request and per control tick: the figures behind
sim.estimate.BYTES_PER_REQUEST and BYTES_PER_TICK.

    python benchmarks/bench_memory.py 100000 1000000
    python benchmarks/bench_memory.py --summary 1000000 4000000
    python benchmarks/bench_memory.py --ticks 1000000 2000000

Runs each size in a fresh process (peak RSS only grows) and prints the peak resident growth
of ``sim.simulate`` per request. Measured on this project's 2-core VMs: 576 B at 100k
requests, 470 B at 1M (the estimate uses 700 B, rounded up); 196 B per tick at 1M ticks
and 187 B at 2M (the estimate uses 200 B).
"""

from __future__ import annotations

import subprocess
import sys

_ONE = """
import resource, sys
import sim
n = int(sys.argv[1])
sc = sim.scenario_from_dict({"name": "m", "deployment": {"name": "m",
    "model": "meta-llama/Meta-Llama-3-8B", "initial_worker_config": {"min_workers": 8,
    "initial_workers_gpu": "A100", "initial_workers_gpu_num": 1}},
    "workload": {"kind": "poisson", "rate_per_s": 20, "requests": n, "prompt_tokens": 500,
                 "output_tokens": 100}, "autoscaler": {"policy": "fixed"},
    "sim": {"results": sys.argv[2]}})
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
sim.simulate(sc, limits=None)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print((peak - base) * 1024 / n)
"""

# Ten requests, then an idle fleet ticking every 10 s to the horizon: the skipped idle ticks
# still keep a queue-sample row each (the run spans at most DENSE_TICK_ROWS ticks), so the
# growth per tick is the row's cost in the engine and the result tables.
_TICKS = """
import resource, sys
import sim
n = int(sys.argv[1])
sc = sim.scenario_from_dict({"name": "m", "deployment": {"name": "m",
    "model": "meta-llama/Meta-Llama-3-8B", "initial_worker_config": {"min_workers": 1,
    "initial_workers_gpu": "A100", "initial_workers_gpu_num": 1}},
    "workload": {"kind": "poisson", "rate_per_s": 1, "requests": 10, "prompt_tokens": 500,
                 "output_tokens": 100}, "autoscaler": {"policy": "fixed"},
    "sim": {"horizon_s": 10.0 * n}})
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
sim.simulate(sc, limits=None)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print((peak - base) * 1024 / n)
"""


def main(sizes: list[int], *, ticks: bool = False, results: str = "full") -> None:
    what = "tick" if ticks else "request"
    for n in sizes:
        args = [sys.executable, "-c", _TICKS, str(n)] if ticks else \
            [sys.executable, "-c", _ONE, str(n), results]
        out = subprocess.run(args, capture_output=True, text=True, check=True).stdout.strip()
        print(f"{n:>12,} {what}s: {float(out):,.0f} bytes of peak RSS per {what}"
              + ("" if ticks else f" (sim.results: {results})"))


if __name__ == "__main__":
    args = sys.argv[1:]
    per_tick = "--ticks" in args
    results = "summary" if "--summary" in args else "full"
    sizes = [int(a) for a in args if not a.startswith("--")]
    main(sizes or ([1_000_000, 2_000_000] if per_tick else [100_000, 1_000_000]),
         ticks=per_tick, results=results)
