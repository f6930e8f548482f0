"""``sim bench``: every baseline policy on a suite of scenarios, into a leaderboard."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from sim.cli.common import prepare_out, writing
from sim.errors import ConfigError


def cmd_bench(args: argparse.Namespace) -> int:
    """``sim bench``: run the suite, write leaderboard.{md,csv}, runs.csv and plots."""
    from sim.bench.suite import SUITES, run_suite
    from sim.policies import POLICIES

    if args.suite not in SUITES:
        raise ConfigError(f"unknown suite {args.suite!r}; known: {', '.join(SUITES)}",
                          source="--suite")
    if args.workers < 1:
        raise ConfigError(f"expected a number of processes >= 1, got {args.workers}",
                          source="--workers")
    suite = SUITES[args.suite]
    out = Path(args.out) if args.out else Path("results") / "bench" / suite.name
    if args.render:
        return _write(out, suite, _read(out), args.quiet)
    policies = None
    if args.policies:
        policies = [p.strip() for p in args.policies.split(",") if p.strip()]
        bad = [p for p in policies if p not in POLICIES]
        if bad:
            raise ConfigError(f"unknown policy {bad[0]!r}; known: {', '.join(POLICIES.names())}",
                              source="--policies")
    prepare_out(out)
    bar = None
    if not args.quiet and sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(unit="run", desc=f"bench {suite.name}", leave=False)

    def progress(done: int, total: int) -> None:
        if bar is not None:
            bar.total = total
            bar.update(done - bar.n)

    try:
        res = run_suite(suite, workers=args.workers, policies=policies, progress=progress)
    finally:
        if bar is not None:
            bar.close()
    with writing(out):
        res["runs"].to_csv(out / "runs.csv", index=False)
        res["yardsticks"].to_csv(out / "yardsticks.csv", index=False)
        rows = [(s, p, t, n) for (s, p), tl in res["timelines"].items()
                for t, n in zip(tl.get("t", []), tl.get("n", []), strict=True)]
        import pandas as pd

        pd.DataFrame(rows, columns=["scenario", "policy", "time_s", "workers"]).to_csv(
            out / "timelines.csv.gz", index=False)
        (out / "suite.json").write_text(json.dumps(
            {"suite": suite.name, "seeds": list(suite.seeds), "sweep": suite.sweep,
             "scenarios": [[s.label, s.path, list(s.overrides)] for s in suite.scenarios],
             "policies": list(policies or suite.policies), "notes": list(suite.notes)},
            indent=2) + "\n", encoding="utf-8")
    return _write(out, suite, res, args.quiet)


def _read(out: Path) -> dict[str, Any]:
    """A finished bench's tables, for ``--render``."""
    import pandas as pd

    missing = [n for n in ("runs.csv", "yardsticks.csv") if not (out / n).is_file()]
    if missing:
        raise ConfigError(f"{out} holds no finished bench ({missing[0]} is missing)",
                          source="--render")
    timelines: dict[tuple[str, str], dict[str, list[float]]] = {}
    tl_path = out / "timelines.csv.gz"
    if tl_path.is_file():
        tl = pd.read_csv(tl_path)
        for (s, p), g in tl.groupby(["scenario", "policy"], sort=False):
            timelines[(str(s), str(p))] = {"t": g.time_s.tolist(), "n": g.workers.tolist()}
    return {"runs": pd.read_csv(out / "runs.csv"), "yardsticks": pd.read_csv(out / "yardsticks.csv"),
            "timelines": timelines}


def _write(out: Path, suite: Any, res: dict[str, Any], quiet: bool) -> int:
    """Leaderboard (markdown, CSV) and plots from the runs."""
    from sim.bench.suite import leaderboard, plot, to_markdown

    lb = leaderboard(res["runs"], res["yardsticks"])
    md = to_markdown(lb, res["yardsticks"], suite)
    with writing(out):
        lb.to_csv(out / "leaderboard.csv", index=False)
        (out / "leaderboard.md").write_text(md + "\n", encoding="utf-8")
        plot(lb, res["timelines"], out)
    if not quiet:
        print(md)
        print(f"wrote {out}/ (leaderboard.md, leaderboard.csv, runs.csv, yardsticks.csv, plots)")
    return 0


def register(sub: Any) -> None:
    """Add this command to the ``sim`` subparsers."""
    p = sub.add_parser("bench", help="baseline policies x scenarios: a leaderboard")
    p.add_argument("--suite", default="smoke", help="smoke (CI-sized) or default")
    p.add_argument("--policies", metavar="A,B", help="only these policies (default: all)")
    p.add_argument("--workers", type=int, default=1, metavar="N", help="processes (default 1)")
    p.add_argument("--out", metavar="DIR", help="output folder (default: results/bench/SUITE)")
    p.add_argument("--render", action="store_true",
                   help="only rebuild the leaderboard and plots from the runs in --out")
    p.add_argument("--quiet", "-q", action="store_true", help="do not print the leaderboard")
    p.set_defaults(func=cmd_bench)
