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
    from sim.scenario import load_create_body, load_scenario, resolved_dict, validate_scenario

    if str(args.path).endswith(".json"):
        # A bare create body: validate it as the API would receive it.
        body = load_create_body(args.path)
        print(json.dumps(body.to_request(mask_token=True), indent=2))
        return 0
    scenario = load_scenario(args.path, list(args.set or []))
    warnings = validate_scenario(scenario)
    print(json.dumps(resolved_dict(scenario), indent=2, default=str))
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
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
