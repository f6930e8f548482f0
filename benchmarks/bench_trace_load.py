"""Benchmark: load time and peak memory of a large Azure-style trace, plus generator speed.

Writes a synthetic Azure-format CSV (TIMESTAMP with 7 fractional digits, ContextTokens,
GeneratedTokens) to /tmp, then loads it with ``sim.workload.load_trace`` in a fresh
subprocess so that the peak RSS measured is that of loading alone (plus interpreter and
library imports, reported separately as the baseline).

    python benchmarks/bench_trace_load.py [--rows 10000000] [--path /tmp/azure_10m.csv] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, sys.argv[2])
import numpy, pyarrow, pandas  # noqa: F401  (imports count in the baseline, not in the load)
from sim.workload import load_trace

def hwm_mb():
    # VmHWM is reset by exec; ru_maxrss is not (it would report the parent's peak on Linux).
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

base = hwm_mb()
t0 = time.perf_counter()
wl = load_trace(sys.argv[1])
dt = time.perf_counter() - t0
print(json.dumps({"rows": len(wl), "load_s": dt, "baseline_rss_mb": base,
                  "peak_rss_mb": hwm_mb(), "span_s": wl.duration_s}))
"""


def write_azure_csv(path: Path, rows: int, seed: int = 0) -> float:
    """Write ``rows`` synthetic Azure-format requests to ``path``; return the seconds it took."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pa_csv

    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    chunk = 1_000_000
    start = np.datetime64("2023-11-16T18:15:46", "ns").astype(np.int64)
    last = start
    # The header is written by hand: arrow would quote the names, the real trace does not.
    opts = pa_csv.WriteOptions(include_header=False, quoting_style="none")
    schema = pa.schema(
        [("TIMESTAMP", pa.string()), ("ContextTokens", pa.int64()), ("GeneratedTokens", pa.int64())]
    )
    with path.open("wb") as fh:
        fh.write(b"TIMESTAMP,ContextTokens,GeneratedTokens\n")
        with pa_csv.CSVWriter(fh, schema, write_options=opts) as writer:
            for lo in range(0, rows, chunk):
                n = min(chunk, rows - lo)
                # ~100 req/s Poisson gaps, rounded to 100 ns as in the real trace's 7 digits.
                gaps = np.rint(rng.exponential(1e7, n)).astype(np.int64) * 100
                ts = last + np.cumsum(gaps)
                last = int(ts[-1])
                text = pc.cast(pa.array(ts.view("datetime64[ns]")), pa.string())
                text = pc.utf8_slice_codeunits(text, 0, 27)  # 9 -> 7 fractional digits
                prompt = np.maximum(1, rng.lognormal(6.5, 1.0, n).astype(np.int64))
                output = rng.integers(0, 800, n)
                writer.write_table(
                    pa.table(
                        {"TIMESTAMP": text, "ContextTokens": prompt, "GeneratedTokens": output}
                    )
                )
    return time.perf_counter() - t0


def bench_generators() -> dict[str, float]:
    """Seconds to build a 1M-request Poisson and a ~1M-request diurnal workload."""
    sys.path.insert(0, str(ROOT))
    from sim.rng import Streams
    from sim.workload import build_workload, parse_workload_spec

    out = {}
    specs = {
        "poisson_1M_s": {
            "kind": "poisson",
            "rate_per_s": 100.0,
            "requests": 1_000_000,
            "prompt_tokens": {"dist": "lognormal", "mean": 1000, "cv": 1.0},
            "output_tokens": {"dist": "lognormal", "mean": 200, "cv": 1.0},
        },
        "diurnal_1M_s": {
            "kind": "diurnal",
            "mean_rate_per_s": 1_000_000 / 86400,
            "peak_to_trough": 5.0,
            "duration_s": 86400.0,
            "prompt_tokens": {"dist": "lognormal", "mean": 1000, "cv": 1.0},
            "output_tokens": {"dist": "lognormal", "mean": 200, "cv": 1.0},
        },
    }
    for name, raw in specs.items():
        spec = parse_workload_spec(raw)
        build_workload(spec, Streams(0))  # warm-up (imports, first allocation)
        t0 = time.perf_counter()
        build_workload(spec, Streams(1))
        out[name] = time.perf_counter() - t0
    return out


def main() -> None:
    """Generate the file if needed, load it in a subprocess, print the figures as JSON."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--path", type=Path, default=None)
    ap.add_argument("--keep", action="store_true", help="keep the generated CSV")
    args = ap.parse_args()
    path = args.path or Path(f"/tmp/bench_azure_{args.rows}.csv")
    result: dict[str, object] = {"rows_requested": args.rows, "path": str(path)}
    if not path.exists():
        result["generate_s"] = round(write_azure_csv(path, args.rows), 2)
    result["file_mb"] = round(path.stat().st_size / 2**20, 1)
    child = subprocess.run(
        [sys.executable, "-c", _CHILD, str(path), str(ROOT)],
        check=True,
        capture_output=True,
        text=True,
    )
    result.update(json.loads(child.stdout))
    result.update({k: round(v, 3) for k, v in bench_generators().items()})
    result["cpus"] = os.cpu_count()
    print(json.dumps(result, indent=2))
    if not args.keep and args.path is None:
        path.unlink()


if __name__ == "__main__":
    main()
