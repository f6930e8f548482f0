"""``sim sensitivity``: how cost and latency move under each reading of the knobs (DESIGN §4)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from sim.cli.common import SET_SOURCE, prepare_out, writing
from sim.errors import ConfigError


def cmd_sensitivity(args: argparse.Namespace) -> int:
    """``sim sensitivity``: how cost and latency move under each semantic switch (DESIGN §4)."""
    from sim.io import slugify
    from sim.replicate import parse_seeds
    from sim.scenario import load_scenario, validate_scenario
    from sim.sensitivity import format_table, plot, sensitivity

    scenario = load_scenario(args.scenario, list(args.set or []), override_source=SET_SOURCE)
    validate_scenario(scenario)
    seeds = parse_seeds(args.seeds)
    if args.workers < 1:
        raise ConfigError(f"expected a number of processes >= 1, got {args.workers}",
                          source="--workers")
    out = Path(args.out) if args.out else Path("results") / f"{slugify(scenario.name)}-sensitivity"
    prepare_out(out)
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
    with writing(out):
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


def register(sub: Any) -> None:
    """Add this command to the ``sim`` subparsers."""
    sens = sub.add_parser("sensitivity",
                          help="how cost and latency move under each semantic switch")
    sens.add_argument("scenario", help="scenario YAML file")
    sens.add_argument("--seeds", default="1-3", metavar="SPEC",
                      help="seeds shared by every variant (default 1-3)")
    sens.add_argument("--workers", type=int, default=1, metavar="N", help="processes (default 1)")
    sens.add_argument("--set", action="append", metavar="PATH=VALUE", help="override a field")
    sens.add_argument("--out", metavar="DIR",
                      help="output folder (default: results/<scenario name>-sensitivity)")
    sens.add_argument("-q", "--quiet", action="store_true", help="do not print the table")
    sens.set_defaults(func=cmd_sensitivity)
