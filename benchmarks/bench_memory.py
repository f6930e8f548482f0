"""Peak memory per simulated request: the figure behind sim.estimate.BYTES_PER_REQUEST.

    python benchmarks/bench_memory.py 100000 1000000

Runs each size in a fresh process (peak RSS only grows) and prints the peak resident growth
of ``sim.simulate`` per request. Measured on this project's 2-core VMs: 576 B at 100k
requests, 470 B at 1M (the estimate uses 700 B, rounded up).
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
                 "output_tokens": 100}, "autoscaler": {"policy": "fixed"}})
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
sim.simulate(sc, limits=None)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print((peak - base) * 1024 / n)
"""


def main(sizes: list[int]) -> None:
    for n in sizes:
        out = subprocess.run([sys.executable, "-c", _ONE, str(n)], capture_output=True,
                             text=True, check=True).stdout.strip()
        print(f"{n:>12,} requests: {float(out):,.0f} bytes of peak RSS per request")


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [100_000, 1_000_000])
