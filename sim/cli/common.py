"""Helpers every ``sim`` subcommand shares: progress bars, the headline, warnings, output folders."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sim.errors import ConfigError

#: What CLI override errors blame.
SET_SOURCE = "--set"


def progress_bar(total_s: float, enabled: bool) -> tuple[Callable[[float], None] | None, Any]:
    """A tqdm bar over simulated time on a terminal; nothing when piped or quiet."""
    if not enabled or not sys.stderr.isatty() or total_s <= 0:
        return None, None
    from tqdm import tqdm

    bar = tqdm(total=round(total_s), unit="sim-s", desc="simulating", leave=False)

    def update(t: float) -> None:
        bar.update(max(0, round(min(t, total_s)) - bar.n))

    return update, bar


def headline(summary: dict[str, Any]) -> str:
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
    lines = []
    shapes = wk.get("scale_up_shapes") or {}
    if isinstance(shapes, dict) and shapes:
        lines.append("shapes     after the initial fleet: " + ", ".join(
            f"{num(n) if isinstance(n, int) else f(n, '')} x {k}" for k, n in shapes.items()
        ))
    lines += [f"placement  {p}" for p in summary.get("placement") or []]
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
            *lines,
        ]
    )


def print_warnings(*groups: Iterable[Any]) -> None:
    """Print each distinct warning once, in order, as ``warning: ...`` on stderr."""
    seen: set[str] = set()
    for group in groups:
        for w in group:
            text = str(w)
            if text not in seen:
                seen.add(text)
                print(f"warning: {text}", file=sys.stderr)


def check_trace_format(fmt: str | None) -> None:
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


@contextmanager
def writing(out: Path, option: str = "--out") -> Iterator[None]:
    """Turn an OSError while writing results into one line naming the path."""
    try:
        yield
    except OSError as exc:
        where = exc.filename if exc.filename is not None else out
        why = exc.strerror or str(exc)
        raise ConfigError(f"cannot write {where}: {why}", source=option) from None


def prepare_out(out: Path, option: str = "--out") -> None:
    """Create the output folder up front, so a bad ``--out`` fails before the simulation."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out} exists and is not a folder", source=option)
    with writing(out, option):
        out.mkdir(parents=True, exist_ok=True)
