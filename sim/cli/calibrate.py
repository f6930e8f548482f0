"""``sim calibrate``: fit a worker's profile to measured runs of the user's own engine."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def cmd_calibrate(args: argparse.Namespace) -> int:
    """Fit, print in-sample and leave-one-out errors and warnings, write a profile file."""
    import yaml

    from sim.calibrate import calibrate, read_runs
    from sim.hardware import canonical_gpu
    from sim.serving.profiles import get_profile

    runs = read_runs(args.inputs)
    gpu = canonical_gpu(args.gpu)
    base = get_profile(args.model, gpu, args.gpus, engine=args.engine)
    kv = args.kv_capacity or base.kv_capacity_tokens
    cal = calibrate(runs, kv)
    print(f"calibrated {base.model} on {args.gpus} x {gpu} from {cal.runs} runs "
          f"(KV capacity {kv:,} tokens)")
    for k, v in cal.coefficients.items():
        print(f"  {k:<24} {v:.4g}")
    print(f"{'metric':<8} {'points':>6} {'in-sample median':>17} {'worst':>7} "
          f"{'leave-one-out median':>21} {'worst':>7}")
    for m, s in cal.in_sample.items():
        lo = cal.loo.get(m)
        loo = f"{lo['median_abs']:>20.1%} {lo['worst_abs']:>7.1%}" if lo else f"{'-':>20} {'-':>7}"
        print(f"{m:<8} {int(s['points']):>6} {s['median_abs']:>16.1%} {s['worst_abs']:>7.1%} "
              f"{loo}")
    for w in cal.warnings:
        print(f"warning: {w}")
    doc: dict[str, Any] = {
        "model": base.model, "gpu": gpu, "gpus": args.gpus, **cal.coefficients,
        # An embedding pass is one prefill: keep the composed embed terms.
        "embed_base_s": base.embed_base_s, "embed_per_token_s": base.embed_per_token_s,
        "source": f"sim calibrate on {', '.join(Path(p).name for p in args.inputs)} "
                  f"({cal.runs} runs; leave-one-out median error "
                  + ", ".join(f"{m} {s['median_abs']:.0%}" for m, s in cal.loo.items()) + ")",
    }
    if args.kv_capacity:
        doc["kv_capacity_tokens"] = int(args.kv_capacity)
    out = Path(args.out)
    out.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    print(f"wrote {out} (use it as serving.profile: {out})")
    return 0


def register(sub: Any) -> None:
    """Add this command to the ``sim`` subparsers."""
    p = sub.add_parser("calibrate", help="fit a worker profile to your engine's measured runs")
    p.add_argument("inputs", nargs="+", metavar="FILE",
                   help="vLLM `bench serve --save-result` JSON files (bursts, --request-rate "
                   "inf) and/or CSVs of runs: requests, prompt, output, ttft_s/tpot_s/latency_s")
    p.add_argument("--model", required=True, help="model name or Hugging Face id")
    p.add_argument("--gpu", required=True, help="GPU type, e.g. A100, H100")
    p.add_argument("--gpus", type=int, default=1, help="GPUs per worker (TP size; default 1)")
    p.add_argument("--engine", default="vllm-0.14",
                   choices=["vllm-0.14", "vllm-0.24", "eager-2024"],
                   help="engine preset for the KV capacity and embed terms (default vllm-0.14)")
    p.add_argument("--kv-capacity", type=int, default=None,
                   help="KV-cache tokens of your engine (vLLM logs 'GPU KV cache size'); "
                   "default: the composed profile's")
    p.add_argument("--out", default="calibrated-profile.yaml",
                   help="profile file to write (default calibrated-profile.yaml)")
    p.set_defaults(func=cmd_calibrate)
