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


def progress_bar(
    total_s: float, enabled: bool, *, force: bool = False
) -> tuple[Callable[[float], None] | None, Any]:
    """A tqdm bar over simulated time on stderr: shown when stderr is a terminal (piping
    stdout does not hide it) or ``force`` (``--progress``, e.g. under a CI log); nothing when
    quiet. When forced onto a non-terminal it redraws at most every 5 s, as lines."""
    if not enabled or total_s <= 0 or not (force or sys.stderr.isatty()):
        return None, None
    from tqdm import tqdm

    tty = sys.stderr.isatty()
    bar = tqdm(total=round(total_s), unit="sim-s", desc="simulating", leave=not tty,
               mininterval=0.1 if tty else 5.0, file=sys.stderr)

    def update(t: float) -> None:
        bar.update(max(0, round(min(t, total_s)) - bar.n))

    return update, bar


def headline(summary: dict[str, Any]) -> str:
    """The figures `sim run` prints; a missing figure (None, e.g. no request at all) is n/a.

    Numbers use :mod:`sim.report.fmt`, as the reports and the replication table do.
    """
    from sim.report.fmt import count, pct, seconds, usd

    req, cost, lat, ttft = summary["requests"], summary["cost"], summary["latency_e2e_s"], summary["ttft_s"]
    slo, wk = summary["slo"], summary["workers"]

    def positive(x: Any) -> bool:
        return isinstance(x, int | float) and x > 0

    def trio(d: dict[str, Any]) -> str:
        return "  ".join(f"{k} {seconds(d[k])}" for k in ("p50", "p95", "p99"))

    att = slo["attainment"]
    requests = (
        f"requests   arrived {count(req['arrived'])}  completed {count(req['completed'])}"
        f"  failed {count(req['failed'])}  in flight {count(req['in_flight'])}"
    )
    if positive(req.get("retried")):
        requests += f"  retried {count(req['retried'])}"
    workers = (
        f"workers    max {count(wk['max'])}  mean {count(wk['mean'])}"
        f"  cold starts {count(wk['cold_starts'])}"
        f"  scale-ups {count(wk['scale_ups'])}  scale-downs {count(wk['scale_downs'])}"
    )
    if positive(wk.get("preemptions")):
        workers += f"  preemptions {count(wk['preemptions'])}"
    lines = []
    shapes = wk.get("scale_up_shapes") or {}
    if isinstance(shapes, dict) and shapes:
        lines.append("shapes     after the initial fleet: " + ", ".join(
            f"{count(n)} x {k}" for k, n in shapes.items()
        ))
    lines += [f"placement  {p}" for p in summary.get("placement") or []]
    return "\n".join(
        [
            requests,
            f"cost       {usd(cost['total_usd'], ' total')}  {usd(cost['per_hour_usd'], '/h')}"
            f"  {usd(cost.get('per_1k_requests_usd'), '/1k requests')}",
            f"e2e        {trio(lat)}",
            f"ttft       {trio(ttft)}",
            f"slo        {slo['metric']} <= {seconds(slo['threshold_s'])}: "
            + ("n/a" if att is None else f"{pct(att)} of requests"),
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
