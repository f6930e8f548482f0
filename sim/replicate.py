"""Replications: the same scenario under several seeds, run alone or in a process pool.

Each seed spawns its own named streams (:mod:`sim.rng`), so a replication's numbers do not
depend on how many others run, in which order, or in which process: the same seed gives a
bit-identical result in a pool as when run alone.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from contextlib import contextmanager
from typing import Any

from sim.errors import ConfigError
from sim.metrics import Result, summarize_replications
from sim.run import simulate

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


def _run_one(scenario: Any, seed: int) -> Result:
    return simulate(scenario, seed)


def replicate(
    scenario: Any,
    seeds: Sequence[int],
    *,
    workers: int = 1,
    executor: Executor | None = None,
    on_done: Callable[[int, Result], None] | None = None,
) -> list[Result]:
    """Results of ``scenario`` for each seed, in seed order.

    ``workers > 1`` runs them in a local process pool; ``executor`` takes any
    :class:`concurrent.futures.Executor` instead (e.g. a Dask client's).
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"expected an integer >= 1, got {workers!r}", field="workers")
    if executor is None and workers == 1:
        out = []
        for seed in seeds:
            res = _run_one(scenario, seed)
            if on_done is not None:
                on_done(seed, res)
            out.append(res)
        return out
    own = executor is None
    pool = executor if executor is not None else ProcessPoolExecutor(max_workers=workers)
    try:
        futures = [pool.submit(_run_one, scenario, seed) for seed in seeds]
        results = []
        for seed, fut in zip(seeds, futures, strict=True):
            res = fut.result()
            if on_done is not None:
                on_done(seed, res)
            results.append(res)
        return results
    finally:
        if own:
            pool.shutdown()


CONNECT_TIMEOUT_S = 10.0  # how long to wait for a Dask scheduler before giving up


@contextmanager
def dask_executor(address: str) -> Iterator[Executor]:
    """A :class:`concurrent.futures.Executor` on the Dask cluster at ``address``
    (``tcp://host:8786``); needs the ``dask`` extra (``pip install -e '.[dask]'``)."""
    try:
        from distributed import Client
    except ImportError:
        raise ConfigError(
            "running on a Dask cluster needs dask.distributed: pip install -e '.[dask]'",
            source="--scheduler",
        ) from None
    try:
        client = Client(address, timeout=f"{CONNECT_TIMEOUT_S}s")
    except (OSError, TimeoutError, ValueError) as exc:
        raise ConfigError(f"cannot connect to {address}: {exc}", source="--scheduler") from None
    try:
        yield client.get_executor()
    finally:
        client.close()


def replication_summary(results: Sequence[Result]) -> dict[str, Any]:
    """Mean and 95% confidence interval of every summary figure across the replications."""
    return summarize_replications([r.summary for r in results])
