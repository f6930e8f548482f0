"""Options every parallel command shares (``--workers``, ``--scheduler``, ``--seeds``) and a
count progress bar with ETA."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sim.errors import ConfigError


def add_parallel_args(p: argparse.ArgumentParser, *, seeds: str | None, default_note: str = "") -> None:
    """Add ``--seeds``, ``--workers``, ``--scheduler``, ``--set``, ``--out`` and ``-q``."""
    p.add_argument("--seeds", default=seeds, metavar="SPEC",
                   help="seeds every configuration runs on (common random numbers; default "
                   f"{default_note or seeds})")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="local processes (default 1), or Dask workers with --scheduler local")
    p.add_argument("--scheduler", metavar="ADDR",
                   help="run on the Dask cluster at ADDR (tcp://host:8786), or 'local' for a "
                   "local Dask cluster of --workers processes")
    p.add_argument("--set", action="append", metavar="PATH=VALUE",
                   help="override a scenario field before anything runs")
    p.add_argument("--out", metavar="DIR", help="output folder")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar, no table")


def make_runner(args: argparse.Namespace) -> Any:
    """The :class:`~sim.executor.Runner` the options ask for."""
    import os

    from sim.executor import Runner

    if args.workers is not None and args.workers < 1:
        raise ConfigError(f"expected a number of processes >= 1, got {args.workers}",
                          source="--workers")
    if args.scheduler is not None and args.workers is not None and args.scheduler != "local":
        raise ConfigError("--workers and --scheduler are exclusive: local processes or a Dask "
                          "cluster (with --scheduler local, --workers sizes the local cluster)",
                          source="--workers")
    workers = args.workers or (max(1, os.cpu_count() or 1) if args.scheduler == "local" else 1)
    return Runner(workers, args.scheduler)


@contextmanager
def count_bar(desc: str, unit: str, quiet: bool) -> Iterator[Callable[[int, int], None]]:
    """A tqdm bar with ETA fed by ``progress(done, total)``; silent when piped or quiet."""
    bar: Any = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if quiet or not sys.stderr.isatty():
            return
        if bar is None:
            from tqdm import tqdm

            bar = tqdm(total=total, initial=done, unit=unit, desc=desc, leave=False)
        bar.total = total
        bar.update(done - bar.n)

    try:
        yield progress
    finally:
        if bar is not None:
            bar.close()
