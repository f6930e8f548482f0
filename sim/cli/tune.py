"""``sim tune``: Optuna search for the cheapest config meeting latency constraints, confirmed
on more seeds; writes best.json (a create body) and a report against the starting config."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from sim.cli.common import SET_SOURCE, prepare_out, print_warnings, writing
from sim.cli.parallel import add_parallel_args, count_bar, make_runner
from sim.errors import ConfigError


def _objectives(values: list[str]) -> tuple[str, str | None]:
    """(cost objective, latency objective or None) from ``--objective`` (at most two)."""
    from sim.tune.metrics import COST, parse_figure

    cost, latency = COST, None
    if len(values) > 2:
        raise ConfigError("at most two objectives: a cost figure and a latency figure",
                          source="--objective")
    for v in values:
        name = parse_figure(v)
        if name.startswith("cost."):
            cost = name
        else:
            latency = name
    return cost, latency


def cmd_tune(args: argparse.Namespace) -> int:
    """Run or resume the study, confirm the best candidates, write the outputs."""
    from sim.io import read_yaml_or_json
    from sim.replicate import parse_seeds
    from sim.scenario import load_scenario, validate_scenario
    from sim.tune.metrics import parse_constraint
    from sim.tune.optimize import (
        TuneSettings,
        candidates,
        confirm,
        default_space,
        run_study,
        space_from_yaml,
    )
    from sim.tune.tune_report import write_outputs

    scenario = load_scenario(args.scenario, list(args.set or []), override_source=SET_SOURCE)
    checks = validate_scenario(scenario)
    constraints = [parse_constraint(t) for t in args.constraint or []]
    cost, latency = _objectives(list(args.objective or []))
    if latency is None:
        uppers = [c.figure for c in constraints if c.upper and not c.figure.startswith("cost.")]
        latency = uppers[0] if uppers else "ttft_s.p95"
    for name, value in (("--trials", args.trials), ("--top", args.top)):
        if value < 1:
            raise ConfigError(f"expected a whole number >= 1, got {value}", source=name)
    dims = (space_from_yaml(read_yaml_or_json(args.space), scenario, source=args.space)
            if args.space else default_space(scenario))
    out = Path(args.out) if args.out else Path("results") / f"{scenario.name}-tune"
    prepare_out(out)
    runner = make_runner(args)
    with runner:
        batch = args.batch or max(8, 4 * runner.parallelism)
        settings = TuneSettings(
            constraints=constraints, cost=cost, latency=latency, trials=args.trials,
            batch=batch, sampler=args.sampler, seed=args.seed,
            seeds=parse_seeds(args.seeds), confirm_seeds=parse_seeds(
                args.confirm_seeds, min_count=2, source="--confirm-seeds"),
            top=args.top, storage=args.storage, dims=dims,
        )
        with count_bar("tune", "trial", args.quiet) as progress:
            study = run_study(scenario, settings, out, runner, progress=progress)
        cands = candidates(study, settings)
        confirmed = confirm(scenario, settings, cands, runner)
    with writing(out):
        write_outputs(scenario, study, settings, confirmed, out)
    if not args.quiet:
        print_warnings(checks)
        print((out / "report.md").read_text().split("![Pareto front](pareto.png)")[-1].strip())
        print(f"wrote {out}/ (trials.csv, pareto.csv, pareto.png, candidates.csv, "
              f"{'best.json, ' if confirmed['winner'] else ''}tune.json, report.md)")
    return 0


def register(sub: Any) -> None:
    """Add ``sim tune`` to the ``sim`` subparsers."""
    p = sub.add_parser(
        "tune", help="search the knobs for the cheapest config meeting latency constraints",
        description="Optuna (NSGA-II or TPE) over autoscaling_config, min_workers, worker shape "
        "and spot, on common seeds; the best candidates are re-run on --confirm-seeds and the "
        "winner written as OUT/best.json. Example: sim tune scenarios/azure_conv_llama3_8b_a100.yaml "
        "--constraint 'ttft_s.p95<=2' --constraint 'slo.attainment>=0.99' --trials 60 --workers 2",
    )
    p.add_argument("scenario", help="scenario YAML file (its deployment is the starting config)")
    p.add_argument("--trials", type=int, default=60, help="trials to run (default 60)")
    p.add_argument("--constraint", action="append", metavar="FIG<=X",
                   help="e.g. 'ttft_s.p95<=2' or 'slo.attainment>=0.99' (repeatable)")
    p.add_argument("--objective", action="append", metavar="FIG",
                   help="objectives to minimise: a cost figure (default cost.per_hour_usd) and a "
                   "latency figure (default: the first latency constraint's, else ttft_s.p95)")
    p.add_argument("--sampler", choices=("nsga2", "tpe"), default="nsga2",
                   help="Optuna sampler (default nsga2)")
    p.add_argument("--seed", type=int, default=0, help="sampler seed (default 0)")
    p.add_argument("--confirm-seeds", default="1-5", metavar="SPEC",
                   help="seeds the best candidates are re-run on (default 1-5)")
    p.add_argument("--top", type=int, default=5, help="candidates to confirm (default 5)")
    p.add_argument("--batch", type=int, default=None, metavar="N",
                   help="trials asked per batch (default max(8, 4 x parallel workers))")
    p.add_argument("--space", metavar="SPACE.yaml",
                   help="edit the search space: space: {knob: {low, high, log, int} | [values] "
                   "| null}, replace: true to search only those")
    p.add_argument("--storage", metavar="URL",
                   help="Optuna storage: a journal file (default OUT/study.journal) or an RDB "
                   "URL such as sqlite:///tune.db")
    add_parallel_args(p, seeds="1")
    p.set_defaults(func=cmd_tune)
