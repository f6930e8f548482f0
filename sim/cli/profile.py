"""``sim profile``: inspect the performance profiles of worker shapes."""

from __future__ import annotations

import argparse
from typing import Any


def cmd_profile_show(args: argparse.Namespace) -> int:
    """``sim profile show``: a profile's source, KV room and predicted TTFT/TPOT/throughput."""
    from sim.errors import ConfigError
    from sim.fidelity import format_profile_table, profile_table
    from sim.hardware import canonical_gpu
    from sim.serving.profiles import get_profile

    try:
        batches = [int(b) for b in str(args.batch).split(",") if b.strip()]
    except ValueError:
        raise ConfigError(f"expected batch sizes like 1,8,32,128, got {args.batch!r}",
                          source="--batch") from None
    from sim.serving.models import resolve_model

    spec = resolve_model(args.model, args.model_config)
    vidur = args.profile == "vidur"
    profile = get_profile(spec, canonical_gpu(args.gpu), args.count,
                          path=None if vidur or args.profile is None else args.profile,
                          engine="vidur" if vidur else args.engine)
    info = profile_table(profile, batches=batches, prompt=args.prompt, context=args.context,
                         max_batch=args.max_batch)
    print(format_profile_table(info))
    from sim.fidelity_e2e import error_group_line

    print(error_group_line(profile.model, profile.gpu, profile.gpus,
                           "vidur" if vidur else args.engine))
    from sim.scenario_checks import tensor_parallel_problem

    problem = tensor_parallel_problem(spec, args.count)
    if problem:
        print(f"\nwarning: {problem}")
    if profile.scaled:
        print("\nwarning: no measurement of this GPU (or model) stands behind this profile: it is "
              "scaled (docs/profiles.md); measure your engine and use sim calibrate")
    return 0


def cmd_profile_list(args: argparse.Namespace) -> int:
    """``sim profile list``: the models, GPUs and engines the simulator knows."""
    from sim.hardware import GPU_SPECS
    from sim.serving.compose import MEASURED_GPUS, engines
    from sim.serving.models import MODELS, max_context_tokens

    print("models (composed from measured vLLM operators on "
          f"{', '.join(MEASURED_GPUS)}; any other Hugging Face model via serving.model_config "
          "(its config.json), or by the size in its name)")
    print(f"  {'name':18s} {'Hugging Face id':42s} {'params':>8s} {'KV KiB/tok':>10s} "
          f"{'context':>8s}  kind")
    for m in MODELS.values():
        ctx = max_context_tokens(m.hf_id or m.name)
        kind = "encoder" if m.is_encoder else (f"MoE {m.n_experts}x top-{m.top_k}" if m.is_moe
                                               else "decoder")
        print(f"  {m.name:18s} {m.hf_id or '':42s} {m.params_b:7.2f}B "
              f"{m.kv_bytes_per_token / 1024:10.0f} "
              f"{'-' if ctx is None else format(ctx, ','):>8s}  {kind}")
    print("  (Llama 3.1/3.3 ids, e.g. meta-llama/Llama-3.1-8B-Instruct, use the Llama-3 spec with "
          "a 131,072-token context)")
    print("GPUs (* = operator tables measured; others are scaled from the nearest, with a warning)")
    print(f"  {'name':10s} {'memory GB':>9s} {'HBM GB/s':>9s} {'FP16 TFLOP/s':>13s}")
    for g in GPU_SPECS.values():
        star = "*" if g.name in MEASURED_GPUS else " "
        print(f" {star}{g.name:10s} {g.memory_gb:9.1f} {g.hbm_gbps:9,.0f} {g.fp16_tflops:13,.0f}")
    print("engines (serving.engine)")
    for e in engines().values():
        print(f"  {e.name:11s} {e.description}")
    print("  (serving.profile: vidur = the Vidur-fitted profiles of earlier versions)")
    print("service models (serving.kind): llm (continuous batching, serving.kv_admission paged "
          "| reserve), embedding (token-budget batching), fixed | exponential | lognormal")
    return 0


def register(sub: Any) -> None:
    """Add this command to the ``sim`` subparsers."""
    prof = sub.add_parser("profile", help="inspect performance profiles")
    prof_sub = prof.add_subparsers(dest="profile_command", required=True)
    show = prof_sub.add_parser("show", help="predicted TTFT, TPOT and throughput of a worker shape")
    show.add_argument("model", help="model name or Hugging Face id, e.g. meta-llama/Meta-Llama-3-8B")
    show.add_argument("gpu", help="GPU type, e.g. A100, H100")
    show.add_argument("count", type=int, help="GPUs per worker")
    show.add_argument("--batch", default="1,8,32,128", metavar="B,B,...",
                      help="batch sizes (running sequences) to show (default 1,8,32,128)")
    show.add_argument("--prompt", type=int, default=1024, help="prompt tokens for TTFT (default 1024)")
    show.add_argument("--context", type=int, default=1024,
                      help="KV context tokens per sequence while decoding (default 1024)")
    show.add_argument("--max-batch", type=int, default=256,
                      help="max_batch for the rated throughput (default 256)")
    show.add_argument("--profile", metavar="PATH",
                      help="user profile file (serving.profile), or 'vidur' for the Vidur-fitted "
                      "profiles")
    show.add_argument("--engine", default="vllm-0.14",
                      choices=["vllm-0.14", "vllm-0.24", "eager-2024"],
                      help="engine preset of the composed profiles (serving.engine; default "
                      "vllm-0.14)")
    show.add_argument("--model-config", metavar="CONFIG_JSON",
                      help="Hugging Face config.json of the model (serving.model_config)")
    show.set_defaults(func=cmd_profile_show)
    lst = prof_sub.add_parser("list", help="the models, GPUs and engines the simulator knows")
    lst.set_defaults(func=cmd_profile_list)
