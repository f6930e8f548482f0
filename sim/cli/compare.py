"""``sim compare``: two or more configurations on the same seeds, with paired differences."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from sim.cli.common import SET_SOURCE, prepare_out, print_warnings, writing
from sim.cli.parallel import add_parallel_args, count_bar, make_runner
from sim.errors import ConfigError


def _configs(args: argparse.Namespace) -> tuple[list[Any], list[str]]:
    """The columns to compare (and the scenario warnings) from the positional files and --vary."""
    from sim.scenario import load_scenario, resolved_dict, validate_scenario
    from sim.tune.compare import Config, parse_vary

    sets = list(args.set or [])
    if args.vary:
        if len(args.scenarios) != 1:
            raise ConfigError("--vary takes exactly one scenario (it varies one knob of it)",
                              source="--vary")
        path, values = parse_vary(args.vary)
        sc = load_scenario(args.scenarios[0], sets, override_source=SET_SOURCE)
        warnings = validate_scenario(sc)
        base = resolved_dict(sc)
        configs = []
        for v in values:
            # Build each variant now, so a bad value fails before anything runs.
            variant = load_scenario(args.scenarios[0], [*sets, f"{path}={_yaml(v)}"],
                                    override_source="--vary")
            warnings += validate_scenario(variant)
            configs.append(Config(f"{path.rsplit('.', 1)[-1]}={_yaml(v)}", base,
                                  str(sc.base_dir), sc.source or "", ((path, v),)))
        return configs, warnings
    if len(args.scenarios) < 2:
        raise ConfigError("expected two or more scenarios, or one with --vary path=v1,v2",
                          source="sim compare")
    configs, warnings, labels = [], [], []
    for p in args.scenarios:
        sc = load_scenario(p, sets, override_source=SET_SOURCE)
        warnings += validate_scenario(sc)
        label = Path(p).stem
        if label in labels:
            label = p
        labels.append(label)
        configs.append(Config(label, resolved_dict(sc), str(sc.base_dir), sc.source or ""))
    return configs, warnings


def _yaml(v: Any) -> str:
    import yaml

    return str(yaml.safe_dump(v, default_flow_style=True)).strip().removesuffix("...").strip()


def cmd_compare(args: argparse.Namespace) -> int:
    """Run each configuration on the seeds; print and write the table and the overlay plot."""
    from sim.replicate import parse_seeds
    from sim.tune.compare import format_markdown, plot_overlay, run_compare

    configs, warnings = _configs(args)
    seeds = parse_seeds(args.seeds, min_count=2)
    out = Path(args.out) if args.out else Path("results") / "compare"
    prepare_out(out)
    runner = make_runner(args)
    with count_bar("compare", "run", args.quiet) as progress, runner:
        cmp = run_compare(configs, seeds, runner, progress=progress)
    md = format_markdown(cmp)
    title = (f"Comparison on seeds {args.seeds} (common random numbers): mean ± 95% CI "
             f"half-width; Δ = paired difference to {cmp.labels[0]}")
    with writing(out):
        cmp.table().to_csv(out / "compare.csv", index=False)
        plot_overlay(cmp, out / "compare.png")
        (out / "compare.md").write_text(f"{title}\n\n{md}\n\n![overlay](compare.png)\n",
                                        encoding="utf-8")
    if not args.quiet:
        print_warnings(warnings)
        print(title)
        print(md)
        print(f"wrote {out}/ (compare.md, compare.csv, compare.png)")
    return 2 if all(cmp.errors) else 0


def register(sub: Any) -> None:
    """Add ``sim compare`` to the ``sim`` subparsers."""
    p = sub.add_parser(
        "compare", help="configs side by side on the same seeds, with paired differences",
        description="Run two or more scenarios (or one with --vary path=v1,v2) on the same seeds "
        "and show cost, latency, SLO attainment, cold starts and failures with 95%% intervals "
        "and the paired difference to the first. Example: sim compare scenarios/quickstart.yaml "
        "--vary deployment.initial_worker_config.min_workers=1,2,3 --seeds 1-5",
    )
    p.add_argument("scenarios", nargs="+", help="scenario YAML files")
    p.add_argument("--vary", metavar="PATH=V1,V2",
                   help="compare values of one knob of a single scenario")
    add_parallel_args(p, seeds="1-5")
    p.set_defaults(func=cmd_compare)
