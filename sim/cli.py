"""The ``sim`` command line: run and validate scenarios, inspect traces.

Every bad input ends as one line on stderr naming the file, field or line, and exit status 2
— never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sim.errors import SimError

EXIT_BAD_INPUT = 2


def _progress_bar(total_s: float, enabled: bool) -> tuple[Callable[[float], None] | None, Any]:
    """A tqdm bar over simulated time on a terminal; nothing when piped or quiet."""
    if not enabled or not sys.stderr.isatty() or total_s <= 0:
        return None, None
    from tqdm import tqdm

    bar = tqdm(total=round(total_s), unit="sim-s", desc="simulating", leave=False)

    def update(t: float) -> None:
        bar.update(max(0, round(min(t, total_s)) - bar.n))

    return update, bar


def _headline(summary: dict[str, Any]) -> str:
    req, cost, lat, ttft = summary["requests"], summary["cost"], summary["latency_e2e_s"], summary["ttft_s"]
    slo, wk = summary["slo"], summary["workers"]

    def f(x: Any, unit: str = "s") -> str:
        return "n/a" if x is None else f"{x:.3g}{unit}"

    att = slo["attainment"]
    return "\n".join(
        [
            f"requests   arrived {req['arrived']}  completed {req['completed']}  failed {req['failed']}"
            f"  in flight {req['in_flight']}",
            f"cost       ${cost['total_usd']:.2f} total  ${cost['per_hour_usd']:.2f}/h"
            f"  ${f(cost['per_1k_requests_usd'], '')}/1k requests",
            f"e2e        p50 {f(lat['p50'])}  p95 {f(lat['p95'])}  p99 {f(lat['p99'])}",
            f"ttft       p50 {f(ttft['p50'])}  p95 {f(ttft['p95'])}  p99 {f(ttft['p99'])}",
            f"slo        {slo['metric']} <= {slo['threshold_s']}s: "
            + ("n/a" if att is None else f"{100 * att:.1f}% of requests"),
            f"workers    max {wk['max']}  mean {wk['mean']:.2f}  cold starts {wk['cold_starts']}"
            f"  scale-ups {wk['scale_ups']}  scale-downs {wk['scale_downs']}",
        ]
    )


def cmd_run(args: argparse.Namespace) -> int:
    """``sim run``: simulate a scenario and write summary, tables, report and plots."""
    from sim.io import write_result
    from sim.report import write_report
    from sim.rng import Streams
    from sim.run import simulate
    from sim.scenario import load_scenario, scenario_from_create_body, validate_scenario
    from sim.workload import build_workload

    overrides = list(args.set or [])
    if args.deployment:
        if not args.trace:
            raise SimError("sim run --deployment needs --trace FILE (the requests to replay)")
        scenario = scenario_from_create_body(
            args.deployment, args.trace, trace_format=args.trace_format, overrides=overrides
        )
    elif args.scenario:
        scenario = load_scenario(args.scenario, overrides)
    else:
        raise SimError("sim run needs a SCENARIO.yaml, or --deployment CREATE.json --trace FILE")
    validate_scenario(scenario)
    out = Path(args.out) if args.out else Path("results") / scenario.name
    if args.seeds:
        return _run_replications(scenario, args, out)
    seed = scenario.sim.seed if args.seed is None else args.seed
    workload = build_workload(scenario.workload, Streams(seed), scenario.base_dir)
    total = float(scenario.sim.horizon_s or (workload.arrival_s[-1] if len(workload) else 0.0))
    update, bar = _progress_bar(total, not args.quiet)
    try:
        result = simulate(scenario, seed, progress=update, workload=workload)
    finally:
        if bar is not None:
            bar.close()
    write_result(result, out)
    write_report(result, out)
    if not args.quiet:
        print(_headline(result.summary))
        print(f"wrote {out}/ (summary.json, requests.parquet, workers.parquet, decisions.csv, report.md, plots)")
    return 0


def _run_replications(scenario: Any, args: argparse.Namespace, out: Path) -> int:
    """``sim run --seeds``: one full output folder per seed plus replications.json."""
    from sim.io import write_json, write_result
    from sim.replicate import parse_seeds, replicate, replication_summary

    seeds = parse_seeds(args.seeds)
    bar = None
    if not args.quiet and sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=len(seeds), unit="run", desc="replications", leave=False)

    def done(seed: int, result: Any) -> None:
        write_result(result, out / f"seed-{seed}")
        if bar is not None:
            bar.update(1)

    try:
        results = replicate(scenario, seeds, workers=args.workers, on_done=done)
    finally:
        if bar is not None:
            bar.close()
    agg = replication_summary(results)
    write_json(agg, out / "replications.json")
    if not args.quiet:
        print(_replication_table(agg))
        print(f"wrote {out}/ (seed-*/ per replication, replications.json)")
    return 0


def _replication_table(agg: dict[str, Any]) -> str:
    rows = [
        ("cost per hour (USD)", ("cost", "per_hour_usd")),
        ("E2E p50 (s)", ("latency_e2e_s", "p50")),
        ("E2E p95 (s)", ("latency_e2e_s", "p95")),
        ("TTFT p95 (s)", ("ttft_s", "p95")),
        ("SLO attainment", ("slo", "attainment")),
        ("workers mean", ("workers", "mean")),
    ]
    lines = [f"{agg['replications']['n']} replications, mean ± 95% CI half-width"]
    for label, path in rows:
        leaf = agg.get(path[0], {}).get(path[1], {})
        mean, half = leaf.get("mean"), leaf.get("half_width")
        if mean is None:
            lines.append(f"{label:22s} n/a")
        else:
            lines.append(f"{label:22s} {mean:.4g} ± {half if half is not None else float('nan'):.2g}")
    return "\n".join(lines)


def cmd_validate(args: argparse.Namespace) -> int:
    """``sim validate``: print the resolved scenario (or create body) or the error."""
    from sim.api.schema import parse_create
    from sim.io import read_yaml_or_json
    from sim.scenario import (
        apply_overrides,
        load_scenario,
        resolved_dict,
        scenario_from_dict,
        validate_scenario,
    )

    data = read_yaml_or_json(args.path)
    if "deployment" not in data and "model" in data:
        # A bare create body: validate it as the API would receive it. --set paths may be
        # written relative to the body or with the scenario's "deployment." prefix.
        sets = [x if x.startswith("deployment.") else f"deployment.{x}" for x in args.set or []]
        patched = apply_overrides({"deployment": data}, sets)["deployment"]
        body = parse_create(patched, source=str(args.path))
        # The same catalog checks as a scenario (the worker shape must hold the model); the
        # placeholder workload is never run.
        probe = {"kind": "poisson", "rate_per_s": 1, "requests": 1, "prompt_tokens": 1,
                 "output_tokens": 1}
        for w in validate_scenario(
            scenario_from_dict({"deployment": patched, "workload": probe}, source=str(args.path)),
            source=str(args.path),
        ):
            print(f"warning: {w}", file=sys.stderr)
        print(json.dumps(body.to_request(mask_token=True), indent=2))
        return 0
    scenario = load_scenario(args.path, list(args.set or []))
    warnings = validate_scenario(scenario)
    print(json.dumps(resolved_dict(scenario), indent=2, default=str))
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    return 0


# --- fidelity and sensitivity commands (sim profile show, sim sensitivity) -------------------


def cmd_profile_show(args: argparse.Namespace) -> int:
    """``sim profile show``: a profile's source, KV room and predicted TTFT/TPOT/throughput."""
    from sim.errors import ConfigError
    from sim.fidelity import format_profile_table, profile_table
    from sim.fleet.gpus import canonical_gpu
    from sim.serving.profiles import get_profile

    try:
        batches = [int(b) for b in str(args.batch).split(",") if b.strip()]
    except ValueError:
        raise ConfigError(f"expected batch sizes like 1,8,32,128, got {args.batch!r}",
                          source="--batch") from None
    profile = get_profile(args.model, canonical_gpu(args.gpu), args.count, path=args.profile)
    info = profile_table(profile, batches=batches, prompt=args.prompt, context=args.context,
                         max_batch=args.max_batch)
    print(format_profile_table(info))
    return 0


def cmd_sensitivity(args: argparse.Namespace) -> int:
    """``sim sensitivity``: how cost and latency move under each semantic switch (DESIGN §4)."""
    from sim.replicate import parse_seeds
    from sim.scenario import load_scenario, validate_scenario
    from sim.sensitivity import format_table, plot, sensitivity

    scenario = load_scenario(args.scenario, list(args.set or []))
    validate_scenario(scenario)
    seeds = parse_seeds(args.seeds)
    out = Path(args.out) if args.out else Path("results") / f"{scenario.name}-sensitivity"
    bar = None
    if not args.quiet and sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(unit="config", desc="sensitivity", leave=False)

    def progress(done: int, total: int) -> None:
        if bar is not None:
            bar.total = total
            bar.update(done - bar.n)

    try:
        df = sensitivity(scenario, seeds=seeds, workers=args.workers, progress=progress)
    finally:
        if bar is not None:
            bar.close()
    out.mkdir(parents=True, exist_ok=True)
    df.to_csv(out / "sensitivity.csv", index=False)
    plot(df, out / "sensitivity.png", title=f"{scenario.name}: change vs baseline "
         f"(seeds {args.seeds}, mean of paired differences, 95% CI)")
    if not args.quiet:
        print(f"{scenario.name}, seeds {args.seeds}: mean (paired change vs baseline ± 95% CI "
              "half-width)")
        print(format_table(df))
        print(f"wrote {out}/ (sensitivity.csv, sensitivity.png)")
    return 0


def _add_fidelity_commands(sub: Any) -> None:
    """Register ``sim profile show`` and ``sim sensitivity``."""
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
    show.add_argument("--profile", metavar="PATH", help="user profile file (serving.profile)")
    show.set_defaults(func=cmd_profile_show)

    sens = sub.add_parser("sensitivity",
                          help="how cost and latency move under each semantic switch")
    sens.add_argument("scenario", help="scenario YAML file")
    sens.add_argument("--seeds", default="1-3", metavar="SPEC",
                      help="seeds shared by every variant (default 1-3)")
    sens.add_argument("--workers", type=int, default=1, metavar="N", help="processes (default 1)")
    sens.add_argument("--set", action="append", metavar="PATH=VALUE", help="override a field")
    sens.add_argument("--out", metavar="DIR",
                      help="output folder (default: results/<scenario name>-sensitivity)")
    sens.add_argument("--quiet", action="store_true", help="do not print the table")
    sens.set_defaults(func=cmd_sensitivity)


# --- end of fidelity and sensitivity commands ----------------------------------------------


def cmd_trace_stats(args: argparse.Namespace) -> int:
    """``sim trace stats``: request count, span, rates, burstiness and token quantiles of a trace."""
    from sim.report.trace_plot import plot_trace
    from sim.workload import load_trace, trace_stats

    wl = load_trace(args.file, args.trace_format or "auto")
    stats = trace_stats(wl, bin_s=args.bin_s)
    if args.json:
        print(json.dumps(stats, indent=2, default=float))
    else:
        r, ia = stats["rate_per_min"], stats["interarrival_s"]
        p, o = stats["prompt_tokens"], stats["output_tokens"]
        print(f"{stats['source']}")
        print(f"requests        {stats['requests']:,} over {stats['span_s']:,.0f} s"
              f" ({stats['mean_rate_per_s']:.3g} req/s)")
        print(f"rate per minute mean {r['mean']:.1f}  p50 {r['p50']:.1f}  peak {r['peak']:.1f}"
              f" at {r['peak_at_s']:,.0f} s  empty bins {r['empty_bins']}")
        print(f"inter-arrival   mean {ia['mean']:.3g} s  CV {ia['cv']:.2f} (1 = Poisson)")
        for name, q in (("prompt tokens", p), ("output tokens", o)):
            print(f"{name:15s} " + "  ".join(f"{k} {v:,.0f}" for k, v in q.items()
                                               if isinstance(v, int | float)))
        for w in stats["warnings"]:
            print(f"warning: {w}", file=sys.stderr)
    if args.plot:
        print(f"wrote {plot_trace(wl, args.plot, bin_s=args.bin_s)}", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``sim`` command."""
    parser = argparse.ArgumentParser(
        prog="sim",
        description="Autoscaling policy simulator for GPU inference deployments "
        "(ScaleGenAI inference API semantics).",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="simulate a scenario and report cost and latency")
    run.add_argument("scenario", nargs="?", help="scenario YAML file")
    run.add_argument("--deployment", metavar="CREATE.json", help="a POST /sg_inf/create body")
    run.add_argument("--trace", metavar="FILE", help="request trace to replay (with --deployment)")
    run.add_argument("--trace-format", metavar="FMT", help="trace format (default: detected)")
    run.add_argument("--set", action="append", metavar="PATH=VALUE",
                     help="override a scenario field, e.g. deployment.autoscaling_config.time_window_sec=120")
    run.add_argument("--seed", type=int, help="random seed (default: sim.seed)")
    run.add_argument("--seeds", metavar="SPEC",
                     help="replications, e.g. 1-10 or 1,2,7: mean and 95%% CI of every figure")
    run.add_argument("--workers", type=int, default=1, metavar="N",
                     help="processes for --seeds (default 1)")
    run.add_argument("--out", metavar="DIR", help="output folder (default: results/<scenario name>)")
    run.add_argument("--quiet", action="store_true", help="no progress bar, no summary")
    run.set_defaults(func=cmd_run)

    val = sub.add_parser("validate", help="print the resolved scenario or the error")
    val.add_argument("path", help="scenario YAML or create-request JSON")
    val.add_argument("--set", action="append", metavar="PATH=VALUE", help="override a field")
    val.set_defaults(func=cmd_validate)
    _add_fidelity_commands(sub)  # sim profile show, sim sensitivity
    trace = sub.add_parser("trace", help="inspect request traces")
    trace_sub = trace.add_subparsers(dest="trace_command", required=True)
    stats = trace_sub.add_parser("stats", help="count, span, rates, burstiness, token quantiles")
    stats.add_argument("file", help="trace file (azure, mooncake, burstgpt, vidur, csv, jsonl, parquet)")
    stats.add_argument("--trace-format", metavar="FMT", help="format (default: detected)")
    stats.add_argument("--bin-s", type=float, default=60.0, help="rate window in seconds (default 60)")
    stats.add_argument("--plot", metavar="PNG", help="also write rate-over-time and token histograms")
    stats.add_argument("--json", action="store_true", help="print the statistics as JSON")
    stats.set_defaults(func=cmd_trace_stats)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sim`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
        return code
    except SimError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader (e.g. `| head`) went away: stop quietly, as Unix tools do.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
