"""``sim run``: simulate a scenario (or replications of it) and write the results."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sim.cli.common import (
    SET_SOURCE,
    check_trace_format,
    headline,
    prepare_out,
    print_warnings,
    progress_bar,
    writing,
)
from sim.cli.trace import add_trace_options
from sim.errors import ConfigError, SimError


def _check_run_options(args: argparse.Namespace) -> None:
    """Reject option combinations `sim run` would otherwise silently ignore."""
    if args.scenario and args.deployment:
        raise ConfigError(
            "a scenario file and --deployment are exclusive: give SCENARIO.yaml, or "
            "--deployment CREATE.json --trace FILE",
            source="sim run",
        )
    if not args.deployment:
        given = [o for o, v in (("--trace", args.trace), ("--trace-format", args.trace_format)) if v]
        if given:
            raise ConfigError(
                f"{'/'.join(given)} go{'es' if len(given) == 1 else ''} only with --deployment "
                "CREATE.json; a scenario file sets its own workload (override it with "
                "--set workload.path=FILE)",
                source="sim run",
            )
    check_trace_format(args.trace_format)
    if args.seed is not None and args.seed < 0:
        raise ConfigError(f"expected a seed >= 0, got {args.seed}", source="--seed")
    if args.seeds is not None and args.seed is not None:
        raise ConfigError(
            "--seed and --seeds are exclusive: --seed N for one run, --seeds SPEC (e.g. 1-10) "
            "for replications",
            source="sim run",
        )
    if args.workers is not None:
        if args.workers < 1:
            raise ConfigError(f"expected a number of processes >= 1, got {args.workers}",
                              source="--workers")
        if args.seeds is None:
            raise ConfigError(
                "--workers goes only with --seeds (it is the number of processes that run "
                "the replications)",
                source="sim run",
            )
    if args.scheduler is not None:
        if args.seeds is None:
            raise ConfigError("--scheduler goes only with --seeds (it runs the replications)",
                              source="sim run")
        if args.workers is not None:
            raise ConfigError("--workers and --scheduler are exclusive: local processes or a "
                              "Dask cluster", source="sim run")


def cmd_run(args: argparse.Namespace) -> int:
    """``sim run``: simulate a scenario and write summary, tables, report and plots."""
    from sim.cli.trace import trace_options
    from sim.io import write_result
    from sim.report import write_report
    from sim.rng import Streams
    from sim.run import simulate
    from sim.scenario import load_scenario, scenario_from_create_body, validate_scenario
    from sim.workload import build_workload

    _check_run_options(args)
    overrides = list(args.set or []) + trace_options(args)
    if args.deployment:
        if not args.trace:
            raise SimError("sim run --deployment needs --trace FILE (the requests to replay)")
        scenario = scenario_from_create_body(
            args.deployment, args.trace, trace_format=args.trace_format, overrides=overrides,
            override_source=SET_SOURCE,
        )
    elif args.scenario:
        scenario = load_scenario(args.scenario, overrides, override_source=SET_SOURCE)
    else:
        raise SimError("sim run needs a SCENARIO.yaml, or --deployment CREATE.json --trace FILE")
    checks = validate_scenario(scenario)
    out = Path(args.out) if args.out else Path("results") / scenario.name
    if args.seeds is not None:
        return _run_replications(scenario, args, out, checks)
    seed = scenario.sim.seed if args.seed is None else args.seed
    workload = build_workload(scenario.workload, Streams(seed), scenario.base_dir)
    prepare_out(out)
    total = float(scenario.sim.horizon_s or (workload.arrival_s[-1] if len(workload) else 0.0))
    update, bar = progress_bar(total, not args.quiet)
    try:
        result = simulate(scenario, seed, progress=update, workload=workload)
    finally:
        if bar is not None:
            bar.close()
    with writing(out):
        write_result(result, out)
        write_report(result, out)
    if not args.quiet:
        print_warnings(checks, result.summary.get("warnings") or [])
        print(headline(result.summary))
        print(f"wrote {out}/ (summary.json, requests.parquet, workers.parquet, decisions.csv, report.md, plots)")
    return 0


def _run_replications(
    scenario: Any, args: argparse.Namespace, out: Path, checks: Sequence[str] = ()
) -> int:
    """``sim run --seeds``: one full output folder per seed plus replications.json."""
    from sim.io import write_json, write_result
    from sim.replicate import parse_seeds, replicate, replication_summary

    seeds = parse_seeds(args.seeds, min_count=2)
    prepare_out(out)
    bar = None
    if not args.quiet and sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=len(seeds), unit="run", desc="replications", leave=False)

    def done(seed: int, result: Any) -> None:
        with writing(out):
            write_result(result, out / f"seed-{seed}")
        if bar is not None:
            bar.update(1)

    try:
        if args.scheduler:
            from sim.replicate import dask_executor

            with dask_executor(args.scheduler) as executor:
                results = replicate(scenario, seeds, executor=executor, on_done=done)
        else:
            results = replicate(scenario, seeds, workers=args.workers or 1, on_done=done)
    finally:
        if bar is not None:
            bar.close()
    agg = replication_summary(results)
    with writing(out):
        write_json(agg, out / "replications.json")
    if not args.quiet:
        print_warnings(checks, agg.get("warnings") or [])
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


def register(sub: Any) -> None:
    """Add this command to the ``sim`` subparsers."""
    run = sub.add_parser("run", help="simulate a scenario and report cost and latency")
    run.add_argument("scenario", nargs="?", help="scenario YAML file")
    run.add_argument("--deployment", metavar="CREATE.json", help="a POST /sg_inf/create body")
    run.add_argument("--trace", metavar="FILE", help="request trace to replay (with --deployment)")
    run.add_argument("--trace-format", metavar="FMT", help="trace format (default: detected)")
    run.add_argument("--set", action="append", metavar="PATH=VALUE",
                     help="override a scenario field, e.g. deployment.autoscaling_config.time_window_sec=120")
    add_trace_options(run)
    run.add_argument("--seed", type=int, help="random seed (default: sim.seed)")
    run.add_argument("--seeds", metavar="SPEC",
                     help="replications, e.g. 1-10 or 1,2,7: mean and 95%% CI of every figure")
    run.add_argument("--workers", type=int, default=None, metavar="N",
                     help="processes for --seeds (default 1)")
    run.add_argument("--scheduler", metavar="ADDR",
                     help="run --seeds on the Dask cluster at ADDR (tcp://host:8786) instead "
                     "of local processes")
    run.add_argument("--out", metavar="DIR", help="output folder (default: results/<scenario name>)")
    run.add_argument("-q", "--quiet", action="store_true", help="no progress bar, no summary")
    run.set_defaults(func=cmd_run)
