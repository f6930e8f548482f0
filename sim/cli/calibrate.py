"""``sim calibrate``: fit a worker's profile to measured runs of the user's own engine."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def cmd_calibrate(args: argparse.Namespace) -> int:
    """Fit, print in-sample and leave-one-out errors and warnings, write a profile file."""
    import yaml

    from sim.calibrate import FITTED, Engine, calibrate, read_runs
    from sim.engine.paged import default_batched_tokens
    from sim.errors import ProfileError
    from sim.hardware import canonical_gpu
    from sim.serving.profiles import get_profile

    for flag, val in (("--max-num-seqs", args.max_num_seqs),
                      ("--max-num-batched-tokens", args.max_num_batched_tokens),
                      ("--kv-capacity", args.kv_capacity)):
        if val is not None and val < 1:
            raise ProfileError(f"{flag} must be >= 1, got {val}")
    runs = read_runs(args.inputs)
    gpu = canonical_gpu(args.gpu)
    base = get_profile(args.model, gpu, args.gpus, engine=args.engine)
    kv = args.kv_capacity or base.kv_capacity_tokens
    engine = Engine(kv, args.max_num_seqs,
                    args.max_num_batched_tokens or default_batched_tokens(gpu),
                    args.kv_admission)
    cal = calibrate(runs, kv, engine=engine, start=[getattr(base, k) for k in FITTED])
    replayed = sum(r.replayed for r in runs)
    print(f"calibrated {base.model} on {args.gpus} x {gpu} from {cal.runs} runs "
          f"(KV capacity {kv:,} tokens)")
    if replayed:
        print(f"  {replayed} runs replayed through the {engine.admission} scheduler "
              f"(max_num_seqs {engine.max_seqs}, max_num_batched_tokens "
              f"{engine.batched_tokens}); {cal.rounds} fit-and-replay rounds")
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
                   help="vLLM `bench serve --save-result` JSON files (bursts or runs at a "
                   "--request-rate) and/or CSVs of runs (requests, prompt, output, "
                   "ttft_s/tpot_s/latency_s) or of requests (arrival_s, prompt, output, "
                   "ttft_s/tpot_s)")
    p.add_argument("--model", required=True, help="model name or Hugging Face id")
    p.add_argument("--gpu", required=True, help="GPU type, e.g. A100, H100")
    p.add_argument("--gpus", type=int, default=1, help="GPUs per worker (TP size; default 1)")
    p.add_argument("--engine", default="vllm-0.14",
                   choices=["vllm-0.14", "vllm-0.24", "eager-2024"],
                   help="engine preset for the KV capacity and embed terms (default vllm-0.14)")
    p.add_argument("--kv-capacity", type=int, default=None,
                   help="KV-cache tokens of your engine (vLLM logs 'GPU KV cache size'); "
                   "default: the composed profile's")
    p.add_argument("--max-num-seqs", type=int, default=256,
                   help="replayed runs: your server's max_num_seqs (default 256)")
    p.add_argument("--max-num-batched-tokens", type=int, default=None,
                   help="replayed runs: your server's max_num_batched_tokens (default: vLLM's "
                   "for the GPU)")
    p.add_argument("--kv-admission", choices=["paged", "reserve"], default="paged",
                   help="replayed runs: the scheduler to replay them on (default paged)")
    p.add_argument("--out", default="calibrated-profile.yaml",
                   help="profile file to write (default calibrated-profile.yaml)")
    p.set_defaults(func=cmd_calibrate)
