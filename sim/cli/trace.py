"""``sim trace``: inspect request traces (count, span, rates, burstiness, token quantiles)."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

from sim.cli.common import check_trace_format, writing
from sim.errors import ConfigError

#: Most rate windows `sim trace stats --bin-s` may make (each is a counter in memory).
MAX_BINS = 10_000_000


TIME_UNITS = ("s", "ms", "us", "ns", "datetime")


def parse_columns(text: str | None, source: str = "--columns") -> dict[str, str] | None:
    """``arrival=ts,prompt=in_tok,output=out_tok`` as a role -> column mapping (any subset)."""
    if text is None:
        return None
    out: dict[str, str] = {}
    for part in text.split(","):
        role, sep, column = part.partition("=")
        role, column = role.strip(), column.strip()
        if not sep or role not in ("arrival", "prompt", "output") or not column:
            raise ConfigError(
                f"expected ROLE=COLUMN pairs with ROLE arrival, prompt or output, got {part!r}",
                source=source,
            )
        out[role] = column
    return out


def trace_options(args: argparse.Namespace) -> list[str]:
    """``--columns`` / ``--time-unit`` of ``sim run`` as scenario overrides of the workload."""
    sets = []
    for role, column in (parse_columns(args.columns) or {}).items():
        sets.append(f"workload.columns.{role}={column}")
    if args.time_unit is not None:
        sets.append(f"workload.time_unit={args.time_unit}")
    return sets


def add_trace_options(parser: Any) -> None:
    """Add ``--columns`` and ``--time-unit`` to a command that reads a trace."""
    parser.add_argument(
        "--columns", metavar="arrival=COL,prompt=COL,output=COL",
        help="column mapping of a generic csv/jsonl/parquet trace",
    )
    parser.add_argument(
        "--time-unit", choices=TIME_UNITS,
        help="unit of the arrival column (default: s; epoch-looking ms/us/ns values are an error)",
    )


def cmd_trace_stats(args: argparse.Namespace) -> int:
    """``sim trace stats``: request count, span, rates, burstiness and token quantiles of a trace."""
    from sim.report.trace_plot import plot_trace
    from sim.workload import load_trace, trace_stats

    bin_s = args.bin_s
    if not (math.isfinite(bin_s) and bin_s > 0):
        raise ConfigError(f"expected a window > 0 seconds, got {bin_s:g}", source="--bin-s")
    check_trace_format(args.trace_format)
    wl = load_trace(
        args.file, args.trace_format or "auto", parse_columns(args.columns), args.time_unit
    )
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
        with writing(Path(args.plot), "--plot"):
            written = plot_trace(wl, args.plot, bin_s=bin_s)
        print(f"wrote {written}", file=sys.stderr)
    return 0


def register(sub: Any) -> None:
    """Add this command to the ``sim`` subparsers."""
    trace = sub.add_parser("trace", help="inspect request traces")
    trace_sub = trace.add_subparsers(dest="trace_command", required=True)
    stats = trace_sub.add_parser("stats", help="count, span, rates, burstiness, token quantiles")
    stats.add_argument("file", help="trace file (azure, mooncake, burstgpt, vidur, csv, jsonl, parquet)")
    stats.add_argument("--trace-format", metavar="FMT", help="format (default: detected)")
    stats.add_argument("--bin-s", type=float, default=60.0, help="rate window in seconds (default 60)")
    stats.add_argument("--plot", metavar="PNG", help="also write rate-over-time and token histograms")
    stats.add_argument("--json", action="store_true", help="print the statistics as JSON")
    add_trace_options(stats)
    stats.set_defaults(func=cmd_trace_stats)
