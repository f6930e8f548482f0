"""Cost of the paged scheduler: the engine benchmark's reference case with
``serving.kv_admission: paged`` (the default) against ``reserve``.

    python benchmarks/bench_paged.py [--requests 100000] [--repeats 8]
    valgrind --tool=cachegrind --cache-sim=no python benchmarks/bench_paged.py \\
        --requests 24000 --only paged          # and --only reserve, --only none (setup)

Without ``--only``: CPU time (``time.process_time``) of whole ``sim.simulate`` calls, paged and
reserve *interleaved in one process* (order alternating per pair), the median ratio of the
pairs and its range. On a shared machine a single run varies by tens of percent, so the
ratio needs many pairs. With ``--only X`` it runs one ``simulate`` of X (``none``: only the
setup) so that an instruction counter (cachegrind: deterministic, whatever else the
machine does) gives ``instructions(X) - instructions(none)`` per variant.

Speed is never asserted by tests; this script measures it.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_engine import reference  # noqa: E402

from sim import scenario_from_dict, simulate  # noqa: E402
from sim.rng import Streams  # noqa: E402
from sim.workload import build_workload  # noqa: E402


def main() -> None:
    """Measure and print."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=8, help="interleaved pairs")
    ap.add_argument("--only", choices=("paged", "reserve", "none"),
                    help="one simulate of this variant (for an instruction counter)")
    args = ap.parse_args()
    scs = {}
    for adm in ("paged", "reserve"):
        d = reference(args.requests)
        d["serving"]["kv_admission"] = adm
        scs[adm] = scenario_from_dict(d, base_dir=ROOT)
    sc = scs["paged"]
    workload = build_workload(sc.workload, Streams(sc.sim.seed), sc.base_dir)
    if args.only:
        if args.only != "none":
            simulate(scs[args.only], workload=workload)
        return
    cpu: dict[str, list[float]] = {"paged": [], "reserve": []}
    for i in range(args.repeats):
        for adm in ("paged", "reserve") if i % 2 == 0 else ("reserve", "paged"):
            gc.collect()
            t0 = time.process_time()
            simulate(scs[adm], workload=workload)
            cpu[adm].append(time.process_time() - t0)
    ratios = [p / r for p, r in zip(cpu["paged"], cpu["reserve"], strict=True)]
    n = len(workload.arrival_s)
    for adm, xs in cpu.items():
        print(f"{adm:8s} CPU s {[round(x, 2) for x in xs]}  median "
              f"{n / statistics.median(xs):,.0f} requests per CPU-second")
    print(f"paged / reserve CPU time: median {statistics.median(ratios):.3f} "
          f"(pairs {min(ratios):.3f}-{max(ratios):.3f}), {n:,} requests")


if __name__ == "__main__":
    main()
