"""``sim sweep``: every point of a knob grid (or random / Latin-hypercube sample) on the same
seeds, into one resumable Parquet table, with a markdown summary, Pareto plot and heatmaps."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from sim.cli.common import SET_SOURCE, prepare_out, print_warnings, writing
from sim.cli.parallel import add_parallel_args, count_bar, make_runner


def cmd_sweep(args: argparse.Namespace) -> int:
    """Run or resume the sweep; print the cheapest feasible points."""
    from sim.replicate import parse_seeds
    from sim.scenario import load_scenario, validate_scenario
    from sim.tune.metrics import COST, parse_constraint, parse_figure
    from sim.tune.space import load_space
    from sim.tune.sweep import point_means, run_sweep, write_sweep_report

    scenario = load_scenario(args.scenario, list(args.set or []), override_source=SET_SOURCE)
    checks = validate_scenario(scenario)
    space = load_space(args.grid)
    seeds_text = args.seeds or str(space.extra.get("seeds", "1"))
    seeds = parse_seeds(seeds_text, source="--seeds" if args.seeds else f"{args.grid}: seeds")
    texts = list(args.constraint or space.extra.get("constraints") or [])
    constraints = [parse_constraint(t) for t in texts]
    latency = parse_figure(args.latency, source="--latency")
    out = Path(args.out) if args.out else Path("results") / f"{scenario.name}-sweep"
    prepare_out(out)
    runner = make_runner(args)
    with count_bar("sweep", "run", args.quiet) as progress, runner:
        result = run_sweep(scenario, space, seeds, out, runner=runner, progress=progress)
    with writing(out):
        write_sweep_report(result, space, constraints=constraints, latency=latency,
                           title=f"{scenario.name} sweep")
    if not args.quiet:
        print_warnings(checks)
        means = point_means(result.table, space.columns)
        print(f"{len(means)} points x {len(seeds)} seeds: {result.ran} run, {result.skipped} "
              f"resumed, {result.failed} failed")
        if not means.empty and COST in means.columns:
            from sim.tune.plots import feasible_mask

            feas = means[feasible_mask(means, constraints)].sort_values(COST)
            if len(feas):
                best = feas.iloc[0]
                knobs = ", ".join(f"{k}={best[k]}" for k in space.columns)
                print(f"cheapest meeting {', '.join(map(str, constraints)) or 'no constraint'}: "
                      f"point {int(best['point'])} ({knobs}): ${best[COST]:.3f}/h, "
                      f"{latency} {best.get(latency, float('nan')):.3g}")
            else:
                print("no point meets the constraints")
        print(f"wrote {out}/ (sweep.parquet, sweep.md, pareto.png, heatmaps)")
    return 0


def register(sub: Any) -> None:
    """Add ``sim sweep`` to the ``sim`` subparsers."""
    p = sub.add_parser(
        "sweep", help="run a grid or sample of knob values on common seeds (resumable)",
        description="Run every point of GRID.yaml on the same seeds into OUT/sweep.parquet; "
        "re-running resumes. Example: sim sweep scenarios/quickstart.yaml --grid grid.yaml "
        "--constraint 'ttft_s.p95<=2' --workers 2",
    )
    p.add_argument("scenario", help="scenario YAML file")
    p.add_argument("--grid", required=True, metavar="GRID.yaml",
                   help="dotted paths to value lists (grid:), and/or ranges: with random: N or lhs: N")
    p.add_argument("--constraint", action="append", metavar="FIG<=X",
                   help="a constraint for the summary, e.g. 'ttft_s.p95<=2' (repeatable)")
    p.add_argument("--latency", default="ttft_s.p95", metavar="FIG",
                   help="latency figure of the Pareto plot (default ttft_s.p95)")
    add_parallel_args(p, seeds=None, default_note="the grid file's seeds:, else 1")
    p.set_defaults(func=cmd_sweep)
