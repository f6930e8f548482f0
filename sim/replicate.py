"""Replications: the same scenario under several seeds, run alone, in a process pool or on Dask.

Each seed spawns its own named streams (:mod:`sim.rng`), so a replication's numbers do not
depend on how many others run, in which order, or in which process: the same seed gives a
bit-identical result in a pool or on Dask as when run alone. The parallel part is
:class:`sim.executor.Runner`, shared by every parallel job.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor
from contextlib import contextmanager
from typing import Any

from sim.errors import ConfigError, SimError
from sim.executor import Outcome, Runner, run_scenario_seed
from sim.metrics import Result, summarize_replications

#: Most replications one command runs (each is a full simulation).
MAX_SEEDS = 100_000


def parse_seeds(text: str, *, min_count: int = 1, source: str = "--seeds") -> list[int]:
    """Seeds from ``"1-10"``, ``"1,2,7"``, ``"3"`` or a mix (``"1-3,9"``), in order, no repeats.

    Fewer than ``min_count`` distinct seeds is an error (a confidence interval needs two runs).
    """
    seeds: list[int] = []
    seen: set[int] = set()
    for part in str(text).split(","):
        part = part.strip()
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not m:
            raise ConfigError(
                f"expected seeds like 1-10, 1,2,7 or 3, got {text!r}", source=source
            )
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) else lo
        if hi < lo:
            raise ConfigError(f"seed range {part!r} runs backwards", source=source)
        if hi - lo + 1 + len(seeds) > MAX_SEEDS:  # checked before the range is expanded
            raise ConfigError(
                f"{text!r} asks for more than {MAX_SEEDS:,} replications; a 95% CI narrows "
                "with the square root of the count, so 10-100 seeds are usually enough",
                source=source,
            )
        for s in range(lo, hi + 1):
            if s not in seen:
                seen.add(s)
                seeds.append(s)
    if len(seeds) < min_count:
        raise ConfigError(
            f"{text!r} gives {len(seeds)} distinct seed{'s' if len(seeds) != 1 else ''}; "
            f"expected at least {min_count} (a 95% CI needs two or more runs, e.g. 1-10)",
            source=source,
        )
    return seeds


def raise_failure(outcome: Outcome[Any]) -> None:
    """Re-raise the error of a failed outcome (its original exception when it has one)."""
    if outcome.ok:
        return
    if outcome.exception is not None:
        raise outcome.exception
    raise SimError(outcome.error or "failed")


def replicate(
    scenario: Any,
    seeds: Sequence[int],
    *,
    workers: int = 1,
    executor: Executor | None = None,
    scheduler: str | None = None,
    runner: Runner | None = None,
    on_done: Callable[[int, Result], None] | None = None,
) -> list[Result]:
    """Results of ``scenario`` for each seed, in seed order.

    Runs in this process by default; ``workers > 1`` in a local process pool, ``scheduler``
    on Dask (``tcp://host:port`` or ``"local"``), ``executor`` on any
    :class:`concurrent.futures.Executor` (e.g. a Dask client's), ``runner`` on an open
    :class:`~sim.executor.Runner`. ``on_done(seed, result)`` is called as each run finishes.
    The first failing seed's error is raised once all seeds have run.
    """
    seeds = list(seeds)
    items = [(scenario, seed) for seed in seeds]

    def done(i: int, out: Outcome[Result]) -> None:
        if on_done is not None and out.ok and out.value is not None:
            on_done(seeds[i], out.value)

    if runner is not None:
        outs = runner.map(run_scenario_seed, items, on_result=done)
    else:
        with Runner(workers, scheduler, executor=executor) as own:
            outs = own.map(run_scenario_seed, items, on_result=done)
    for out in outs:
        raise_failure(out)
    return [out.value for out in outs]  # type: ignore[misc]


@contextmanager
def dask_executor(address: str) -> Iterator[Executor]:
    """A :class:`concurrent.futures.Executor` on the Dask cluster at ``address``
    (``tcp://host:8786`` or ``local``); needs the ``dask`` extra (``pip install -e '.[dask]'``)."""
    with Runner(scheduler=address) as runner:
        yield runner.executor


def replication_summary(results: Sequence[Result]) -> dict[str, Any]:
    """Mean and 95% confidence interval of every summary figure across the replications."""
    return summarize_replications([r.summary for r in results])
