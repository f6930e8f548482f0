"""The ``sim`` command line: run and validate scenarios, inspect traces.

Every bad input ends as one line on stderr naming the file, field or line, and exit status 2
— never a traceback.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sim.errors import ConfigError, SimError

EXIT_BAD_INPUT = 2

#: What CLI override errors blame.
SET_SOURCE = "--set"

#: Most rate windows `sim trace stats --bin-s` may make (each is a counter in memory).
MAX_BINS = 10_000_000


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
    """The figures `sim run` prints; a missing figure (None, e.g. no request at all) is n/a."""
    req, cost, lat, ttft = summary["requests"], summary["cost"], summary["latency_e2e_s"], summary["ttft_s"]
    slo, wk = summary["slo"], summary["workers"]

    def f(x: Any, unit: str = "s") -> str:
        return "n/a" if x is None else f"{x:.3g}{unit}"

    def usd(x: Any, suffix: str = "") -> str:
        return f"n/a{suffix}" if x is None else f"${x:.2f}{suffix}"

    def num(x: Any, fmt: str = "") -> str:
        return "n/a" if x is None else format(x, fmt)

    def positive(x: Any) -> bool:
        return isinstance(x, int | float) and x > 0

    att = slo["attainment"]
    per_1k = cost.get("per_1k_requests_usd")
    requests = (
        f"requests   arrived {num(req['arrived'])}  completed {num(req['completed'])}"
        f"  failed {num(req['failed'])}  in flight {num(req['in_flight'])}"
    )
    if positive(req.get("retried")):
        requests += f"  retried {req['retried']}"
    workers = (
        f"workers    max {num(wk['max'])}  mean {num(wk['mean'], '.2f')}"
        f"  cold starts {num(wk['cold_starts'])}"
        f"  scale-ups {num(wk['scale_ups'])}  scale-downs {num(wk['scale_downs'])}"
    )
    if positive(wk.get("preemptions")):
        workers += f"  preemptions {wk['preemptions']}"
    return "\n".join(
        [
            requests,
            f"cost       {usd(cost['total_usd'], ' total')}  {usd(cost['per_hour_usd'], '/h')}"
            f"  {'n/a' if per_1k is None else '$' + f(per_1k, '')}/1k requests",
            f"e2e        p50 {f(lat['p50'])}  p95 {f(lat['p95'])}  p99 {f(lat['p99'])}",
            f"ttft       p50 {f(ttft['p50'])}  p95 {f(ttft['p95'])}  p99 {f(ttft['p99'])}",
            f"slo        {slo['metric']} <= {slo['threshold_s']}s: "
            + ("n/a" if att is None else f"{100 * att:.1f}% of requests"),
            workers,
        ]
    )


def _print_warnings(*groups: Iterable[Any]) -> None:
    """Print each distinct warning once, in order, as ``warning: ...`` on stderr."""
    seen: set[str] = set()
    for group in groups:
        for w in group:
            text = str(w)
            if text not in seen:
                seen.add(text)
                print(f"warning: {text}", file=sys.stderr)


def _check_trace_format(fmt: str | None) -> None:
    """``--trace-format`` must name a known format (or auto)."""
    if fmt is None:
        return
    from sim.workload import TRACE_FORMATS

    known = TRACE_FORMATS.names()
    if fmt != "auto" and fmt not in known:
        import difflib

        close = difflib.get_close_matches(fmt, known, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ConfigError(
            f"unknown trace format {fmt!r}; {hint}known: {', '.join(known)} (or auto)",
            source="--trace-format",
        )


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
    _check_trace_format(args.trace_format)
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


@contextmanager
def _writing(out: Path, option: str = "--out") -> Iterator[None]:
    """Turn an OSError while writing results into one line naming the path."""
    try:
        yield
    except OSError as exc:
        where = exc.filename if exc.filename is not None else out
        why = exc.strerror or str(exc)
        raise ConfigError(f"cannot write {where}: {why}", source=option) from None


def _prepare_out(out: Path, option: str = "--out") -> None:
    """Create the output folder up front, so a bad ``--out`` fails before the simulation."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out} exists and is not a folder", source=option)
    with _writing(out, option):
        out.mkdir(parents=True, exist_ok=True)


def cmd_run(args: argparse.Namespace) -> int:
    """``sim run``: simulate a scenario and write summary, tables, report and plots."""
    from sim.io import write_result
    from sim.report import write_report
    from sim.rng import Streams
    from sim.run import simulate
    from sim.scenario import load_scenario, scenario_from_create_body, validate_scenario
    from sim.workload import build_workload

    _check_run_options(args)
    overrides = list(args.set or [])
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
    _prepare_out(out)
    total = float(scenario.sim.horizon_s or (workload.arrival_s[-1] if len(workload) else 0.0))
    update, bar = _progress_bar(total, not args.quiet)
    try:
        result = simulate(scenario, seed, progress=update, workload=workload)
    finally:
        if bar is not None:
            bar.close()
    with _writing(out):
        write_result(result, out)
        write_report(result, out)
    if not args.quiet:
        _print_warnings(checks, result.summary.get("warnings") or [])
        print(_headline(result.summary))
        print(f"wrote {out}/ (summary.json, requests.parquet, workers.parquet, decisions.csv, report.md, plots)")
    return 0


def _run_replications(
    scenario: Any, args: argparse.Namespace, out: Path, checks: Sequence[str] = ()
) -> int:
    """``sim run --seeds``: one full output folder per seed plus replications.json."""
    from sim.io import write_json, write_result
    from sim.replicate import parse_seeds, replicate, replication_summary

    seeds = parse_seeds(args.seeds, min_count=2)
    _prepare_out(out)
    bar = None
    if not args.quiet and sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=len(seeds), unit="run", desc="replications", leave=False)

    def done(seed: int, result: Any) -> None:
        with _writing(out):
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
    with _writing(out):
        write_json(agg, out / "replications.json")
    if not args.quiet:
        _print_warnings(checks, agg.get("warnings") or [])
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


def _dry_build(scenario: Any, *, workload: bool = True) -> None:
    """Build what `sim run` builds before simulating, so `sim validate` fails where it would.

    The workload (trace files, bad rows), the fleet (catalog, serving profile, spot traces,
    cloud providers and instance types: the initial worker is placed, and a scale-up worker
    for the deployment and after each update), and the policy (via ``validate_scenario``).
    """
    from sim.fleet.model import FleetModel
    from sim.rng import Streams
    from sim.scenario import check_updates
    from sim.workload import build_workload

    seed = int(scenario.sim.seed)
    source = scenario.source
    try:
        if workload:
            wl = build_workload(scenario.workload, Streams(seed), scenario.base_dir)
            n = len(wl)
            span = float(wl.arrival_s[-1] - wl.arrival_s[0]) if n else 0.0
            print(f"workload: {n:,} requests over {span:,.0f} s", file=sys.stderr)
        fleet = FleetModel(scenario, Streams(seed))
        fleet.place(scenario.deployment, initial=True, on_demand_workers=0)
        for state in [scenario.deployment, *check_updates(scenario, source=source)]:
            fleet.place(state, initial=False, on_demand_workers=0, peek=True)
    except ConfigError as exc:
        if exc.source is not None or source is None:
            raise
        raise ConfigError(exc.detail, source=source, field=exc.field) from None


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
        patched = apply_overrides({"deployment": data}, sets, source=SET_SOURCE)["deployment"]
        body = parse_create(patched, source=str(args.path))
        # The same catalog checks as a scenario (the worker shape must hold the model, the
        # clouds and instance types exist); the placeholder workload is never run.
        probe = {"kind": "poisson", "rate_per_s": 1, "requests": 1, "prompt_tokens": 1,
                 "output_tokens": 1}
        scenario = scenario_from_dict(
            {"deployment": patched, "workload": probe}, source=str(args.path),
            base_dir=Path(args.path).parent,
        )
        warnings = validate_scenario(scenario, source=str(args.path))
        _dry_build(scenario, workload=False)
        _print_warnings(warnings)
        print(json.dumps(body.to_request(mask_token=True), indent=2))
        return 0
    scenario = load_scenario(args.path, list(args.set or []), override_source=SET_SOURCE)
    warnings = validate_scenario(scenario)
    _dry_build(scenario)
    print(json.dumps(resolved_dict(scenario), indent=2, default=str))
    _print_warnings(warnings)
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

    scenario = load_scenario(args.scenario, list(args.set or []), override_source=SET_SOURCE)
    validate_scenario(scenario)
    seeds = parse_seeds(args.seeds)
    if args.workers < 1:
        raise ConfigError(f"expected a number of processes >= 1, got {args.workers}",
                          source="--workers")
    out = Path(args.out) if args.out else Path("results") / f"{scenario.name}-sensitivity"
    _prepare_out(out)
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
    with _writing(out):
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

    bin_s = args.bin_s
    if not (math.isfinite(bin_s) and bin_s > 0):
        raise ConfigError(f"expected a window > 0 seconds, got {bin_s:g}", source="--bin-s")
    _check_trace_format(args.trace_format)
    wl = load_trace(args.file, args.trace_format or "auto")
    if len(wl) and float(wl.duration_s) / bin_s > MAX_BINS:
        raise ConfigError(
            f"a {bin_s:g} s window makes more than {MAX_BINS:,} bins over this "
            f"{float(wl.duration_s):,.6g} s trace; expected a larger window",
            source="--bin-s",
        )
    stats = trace_stats(wl, bin_s=bin_s)
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
        with _writing(Path(args.plot), "--plot"):
            written = plot_trace(wl, args.plot, bin_s=bin_s)
        print(f"wrote {written}", file=sys.stderr)
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
    run.add_argument("--workers", type=int, default=None, metavar="N",
                     help="processes for --seeds (default 1)")
    run.add_argument("--scheduler", metavar="ADDR",
                     help="run --seeds on the Dask cluster at ADDR (tcp://host:8786) instead "
                     "of local processes")
    run.add_argument("--out", metavar="DIR", help="output folder (default: results/<scenario name>)")
    run.add_argument("-q", "--quiet", action="store_true", help="no progress bar, no summary")
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
