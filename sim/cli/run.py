"""``sim run``: simulate a scenario (or replications of it) and write the results."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sim.cli.common import (
    SET_SOURCE,
    check_trace_format,
    headline,
    print_warnings,
    progress_bar,
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
        if args.workers is not None and args.scheduler != "local":
            raise ConfigError("--workers and --scheduler are exclusive: local processes or a "
                              "Dask cluster (with --scheduler local, --workers sizes the local "
                              "Dask cluster)", source="sim run")


def _limits(args: argparse.Namespace) -> Any:
    """The run's resource limits from --max-requests and --max-memory."""
    from sim.estimate import Limits, parse_size

    if args.max_requests is not None and args.max_requests < 1:
        raise ConfigError(f"expected a count >= 1, got {args.max_requests}", source="--max-requests")
    memory = None
    if args.max_memory is not None:
        try:
            memory = parse_size(args.max_memory)
        except ValueError as exc:
            raise ConfigError(str(exc), source="--max-memory") from None
    kwargs: dict[str, Any] = {"max_memory_bytes": memory}
    if args.max_requests is not None:
        kwargs["max_requests"] = args.max_requests
    return Limits(**kwargs)


def cmd_run(args: argparse.Namespace) -> int:
    """``sim run``: simulate a scenario and write summary, tables, report and plots."""
    from sim.cli.trace import trace_options
    from sim.estimate import check_limits, estimate_built, estimate_spec
    from sim.io import atomic_result_dir, check_result_dir, slugify, write_files, write_run
    from sim.rng import Streams
    from sim.run import simulate, workload_span
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
    # The name is a label, never a path: "../x" or "/etc" must not escape results/.
    out = Path(args.out) if args.out else Path("results") / slugify(scenario.name)
    check_result_dir(out)  # a bad --out fails before the simulation, not after
    limits = _limits(args)
    check_limits(estimate_spec(scenario), limits)  # before anything is allocated
    if args.seeds is not None:
        return _run_replications(scenario, args, out, checks)
    seed = scenario.sim.seed if args.seed is None else args.seed
    workload = build_workload(scenario.workload, Streams(seed), scenario.base_dir)
    check_limits(estimate_built(scenario, len(workload), workload_span(workload)), limits)
    total = float(scenario.sim.horizon_s or workload_span(workload))
    update, bar = progress_bar(total, not args.quiet, force=args.progress)
    try:
        if scenario.sim.results == "stream":
            # The per-request table is written while the run goes, into the staging folder
            # that becomes ``out`` only when every file is written.
            with atomic_result_dir(out, seed=seed) as stage:
                result = simulate(scenario, seed, progress=update, workload=workload,
                                  limits=limits, requests_path=stage / "requests.parquet")
                write_files(result, stage, report=not args.no_report)
        else:
            result = simulate(scenario, seed, progress=update, workload=workload, limits=limits)
    finally:
        if bar is not None:
            bar.close()
    if scenario.sim.results != "stream":
        write_run(result, out, report=not args.no_report)
    if not args.quiet:
        print_warnings(checks, result.summary.get("warnings") or [])
        print(headline(result.summary))
        names = sorted(f.name for f in out.iterdir() if f.suffix != ".png")
        plots = "" if args.no_report else ", plots"
        print(f"wrote {out}/ ({', '.join(names)}{plots})")
    return 0


def _run_replications(
    scenario: Any, args: argparse.Namespace, out: Path, checks: Sequence[str] = ()
) -> int:
    """``sim run --seeds``: seed-N/ per replication, replications.json and one combined
    report, written all or nothing (a previous single run's files do not survive)."""
    from sim.io import atomic_result_dir, write_json, write_result
    from sim.replicate import parse_seeds, replicate, replication_summary
    from sim.report.replications import replication_table, write_replications_report

    seeds = parse_seeds(args.seeds, min_count=2)
    bar = None
    if not args.quiet and (sys.stderr.isatty() or args.progress):
        from tqdm import tqdm

        bar = tqdm(total=len(seeds), unit="run", desc="replications", leave=False)

    def done(seed: int, result: Any) -> None:
        if bar is not None:
            bar.update(1)

    # Nothing is written until every seed has run: an interrupted or failed run (Ctrl-C,
    # SIGTERM) leaves the output folder as it was.
    try:
        workers = args.workers or (max(1, os.cpu_count() or 1) if args.scheduler == "local" else 1)
        results = replicate(scenario, seeds, workers=workers, scheduler=args.scheduler,
                            on_done=done)
    finally:
        if bar is not None:
            bar.close()
    agg = replication_summary(results)
    with atomic_result_dir(out, seed=seeds, summary_name="replications.json") as stage:
        for seed, result in zip(seeds, results, strict=True):
            write_result(result, stage / f"seed-{seed}")
        write_json(agg, stage / "replications.json")
        write_replications_report(agg, [r.summary for r in results], stage, scenario.name)
    if not args.quiet:
        print_warnings(checks, agg.get("warnings") or [])
        print(replication_table(agg))
        print(f"wrote {out}/ (seed-*/ per replication, replications.json, report.md, report.html)")
    return 0


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
                     help="run --seeds on the Dask cluster at ADDR (tcp://host:8786), or on a "
                     "local Dask cluster of --workers processes with 'local', instead of a "
                     "process pool")
    run.add_argument("--out", metavar="DIR", help="output folder (default: results/<scenario name>)")
    run.add_argument("--max-requests", type=int, metavar="N",
                     help="refuse runs estimated above N requests (default 50,000,000)")
    run.add_argument("--max-memory", metavar="SIZE",
                     help="refuse runs estimated to need more memory, e.g. 4G (default: 3/4 of RAM)")
    run.add_argument("--progress", action="store_true",
                     help="show the progress bar even when stderr is not a terminal")
    run.add_argument("-q", "--quiet", action="store_true", help="no progress bar, no summary")
    run.add_argument("--no-report", action="store_true",
                     help="write the results only: no report.md and no plots (skips matplotlib)")
    run.set_defaults(func=cmd_run)
