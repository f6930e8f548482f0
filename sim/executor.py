"""One :class:`concurrent.futures.Executor` interface for every parallel job (DESIGN §8).

Replications, ``compare``, ``sweep``, ``tune`` and ``bench`` all run their simulations
through :class:`Runner`:

- ``Runner()`` runs in this process (no pool: errors surface directly, nothing to start);
- ``Runner(workers=N)`` runs in a local process pool of N processes;
- ``Runner(scheduler="tcp://host:8786")`` runs on a Dask cluster, ``scheduler="local"`` on a
  Dask ``LocalCluster`` of ``workers`` processes (needs the ``dask`` extra).

:meth:`Runner.map` sends the items in batches (several short runs per task, so the
per-task overhead of a pool or of Dask is paid once per batch) and returns one
:class:`Outcome` per item, in item order: a failing item records its error and never stops
the others. A local pool whose process dies (killed, out of memory) is restarted and the
unfinished items are run again; after a second death they run one at a time, so that only
the item whose own process died is charged an attempt, and an item whose attempts all died
is recorded as failed. On Dask, a task that fails as a whole (its worker killed under it,
after Dask's own retries) fails every item of its batch.

Determinism: a task's result depends only on its arguments (every seed drives its own named
streams, :mod:`sim.rng`), so the same item gives bit-identical results in this process, in a
pool or on Dask, whatever the batch size or completion order.

Signals: while a runner is open, SIGTERM raises :class:`Interrupted` in the main thread, as
SIGINT raises :class:`KeyboardInterrupt`; leaving the runner on either cancels the pending
futures, terminates the pool's processes (they ignore SIGINT themselves and die with their
parent) and closes the Dask client, so the command exits within seconds with status 130
(SIGINT) or 143 (SIGTERM) — :func:`exit_code`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import multiprocessing
import os
import signal
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor, as_completed, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, Generic, TypeVar

from sim.errors import ConfigError

T = TypeVar("T")
R = TypeVar("R")

#: How long to wait for a Dask scheduler before giving up.
CONNECT_TIMEOUT_S = 10.0
#: Attempts per item when its pool process dies under it (killed, out of memory).
MAX_ATTEMPTS = 3
#: Batches per process that :func:`auto_batch` aims for: several, so that one slow batch at
#: the end does not leave the other processes idle, and few, so per-task overhead stays small.
BATCHES_PER_WORKER = 4
#: Largest automatic batch.
MAX_AUTO_BATCH = 16


class Interrupted(KeyboardInterrupt):
    """The run was stopped by a signal (SIGINT or SIGTERM); ``exit_code`` is 128 + signal."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.exit_code = 128 + signum


def exit_code(exc: BaseException) -> int:
    """The shell's exit status for an interruption: 143 for SIGTERM, 130 for SIGINT/Ctrl-C."""
    return int(getattr(exc, "exit_code", 128 + signal.SIGINT))


@contextlib.contextmanager
def raise_on_sigterm() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Interrupted` in the main thread (as Ctrl-C does).

    Outside the main thread (signals cannot be caught there) this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    owner = os.getpid()

    def handler(signum: int, frame: FrameType | None) -> None:
        if os.getpid() != owner:
            # A forked pool process killed before its initializer reset this handler: die as
            # SIGTERM means, never carry on through the parent's code (its cleanup included).
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        raise Interrupted(signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _child_init() -> None:
    """Pool processes: Ctrl-C is the parent's to handle, and a dead parent takes them along."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if sys.platform.startswith("linux"):
        # PR_SET_PDEATHSIG: SIGKILL this process when its parent dies (kill -9 of the CLI
        # must not leave workers computing for minutes).
        with contextlib.suppress(Exception):
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL)
            if os.getppid() == 1:  # the parent died before prctl took effect
                os._exit(1)


class SerialExecutor(Executor):
    """An :class:`~concurrent.futures.Executor` that runs each task at once, in this process."""

    def submit(self, fn: Callable[..., R], /, *args: Any, **kwargs: Any) -> Future[R]:
        fut: Future[R] = Future()
        try:
            fut.set_result(fn(*args, **kwargs))
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt | SystemExit):
                raise
            fut.set_exception(exc)
        return fut


@dataclass(frozen=True)
class Outcome(Generic[R]):
    """What one item gave: its ``value``, or ``error`` (one line) when it failed."""

    value: R | None = None
    error: str | None = None
    exception: BaseException | None = field(default=None, compare=False, repr=False)

    @property
    def ok(self) -> bool:
        return self.error is None


def _error_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def run_batch(fn: Callable[[T], R], items: Sequence[T]) -> list[Outcome[R]]:
    """Apply ``fn`` to each item, catching each item's exception as its outcome."""
    out: list[Outcome[R]] = []
    for item in items:
        try:
            out.append(Outcome(value=fn(item)))
        except Exception as exc:  # one failing item never stops its batch
            out.append(Outcome(error=_error_line(exc), exception=exc))
    return out


def auto_batch(n_items: int, workers: int) -> int:
    """Items per task: about :data:`BATCHES_PER_WORKER` tasks per worker, at most :data:`MAX_AUTO_BATCH`."""
    if n_items <= 0:
        return 1
    return max(1, min(MAX_AUTO_BATCH, math.ceil(n_items / (max(1, workers) * BATCHES_PER_WORKER))))


class Runner:
    """Runs batches of tasks serially, in a local process pool, or on Dask; a context manager.

    ``workers`` is the number of local processes (1 = this process), or of Dask workers for
    ``scheduler="local"``; ``scheduler`` is a Dask address ``tcp://host:port`` or ``"local"``.
    Errors: :class:`~sim.errors.ConfigError` (blaming ``--workers``/``--scheduler``) for a bad
    count, a missing ``distributed`` package or an unreachable scheduler.
    """

    def __init__(
        self, workers: int = 1, scheduler: str | None = None, *, executor: Executor | None = None
    ) -> None:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ConfigError(f"expected a number of processes >= 1, got {workers!r}",
                              source="--workers")
        if scheduler is not None and not isinstance(scheduler, str):
            raise ConfigError(f"expected a Dask address or 'local', got {scheduler!r}",
                              source="--scheduler")
        self.workers = workers
        self.scheduler = scheduler
        self._executor: Executor | None = executor
        #: An executor given by the caller is used as is, never shut down or restarted here.
        self._borrowed = executor is not None
        self._client: Any = None
        self._cluster: Any = None
        self._stack: contextlib.ExitStack | None = None

    # --- lifecycle ---------------------------------------------------------------------------

    @property
    def parallelism(self) -> int:
        """How many tasks run at once (Dask: the cluster's worker threads when known)."""
        if self._client is not None:
            with contextlib.suppress(Exception):
                n = sum(self._client.nthreads().values())
                if n > 0:
                    return int(n)
        return self.workers

    @property
    def executor(self) -> Executor:
        """The :class:`~concurrent.futures.Executor` tasks go to (opened on first use)."""
        if self._executor is None:
            self._executor = self._open()
        return self._executor

    def _open(self) -> Executor:
        if self.scheduler is None:
            if self.workers == 1:
                return SerialExecutor()
            return ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=multiprocessing.get_context("fork")
                if sys.platform.startswith("linux") else None,
                initializer=_child_init,
            )
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise ConfigError(
                "running on Dask needs dask.distributed: pip install -e '.[dask]'",
                source="--scheduler",
            ) from None
        if self.scheduler == "local":
            self._cluster = LocalCluster(
                n_workers=self.workers, threads_per_worker=1, processes=True,
                dashboard_address=None, silence_logs=40,
            )
            self._client = Client(self._cluster)
        else:
            if not self.scheduler.startswith(("tcp://", "tls://", "ws://", "wss://", "inproc://")):
                raise ConfigError(
                    f"expected tcp://HOST:PORT or 'local', got {self.scheduler!r}",
                    source="--scheduler",
                )
            try:
                self._client = Client(self.scheduler, timeout=f"{CONNECT_TIMEOUT_S}s")
            except (OSError, TimeoutError, ValueError) as exc:
                raise ConfigError(f"cannot connect to {self.scheduler}: {exc}",
                                  source="--scheduler") from None
        return self._client.get_executor()

    def __enter__(self) -> Runner:
        self._stack = contextlib.ExitStack()
        self._stack.enter_context(raise_on_sigterm())
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        try:
            self.close(cancel=exc is not None)
        finally:
            if self._stack is not None:
                self._stack.close()
                self._stack = None

    def close(self, cancel: bool = False) -> None:
        """Shut the pool or Dask client down; ``cancel`` drops pending tasks and stops workers now."""
        ex, self._executor = self._executor, None
        if self._borrowed:
            if cancel and ex is not None:
                ex.shutdown(wait=False, cancel_futures=True)
            return
        if isinstance(ex, ProcessPoolExecutor):
            if cancel:
                _kill_pool(ex)
            else:
                ex.shutdown(wait=True)
        elif ex is not None and not isinstance(ex, SerialExecutor):
            ex.shutdown(wait=not cancel)  # a Dask ClientExecutor cancels its futures
        if self._client is not None:
            with contextlib.suppress(Exception):
                self._client.close(timeout=5 if cancel else None)
            self._client = None
        if self._cluster is not None:
            with contextlib.suppress(Exception):
                self._cluster.close(timeout=5 if cancel else None)
            self._cluster = None

    def _restart(self) -> None:
        """Replace a broken local pool by a fresh one."""
        ex = self._executor
        if self._borrowed:
            raise BrokenProcessPool("a process of the given pool died")
        if isinstance(ex, ProcessPoolExecutor):
            _kill_pool(ex)
        self._executor = None

    # --- running -----------------------------------------------------------------------------

    def _run_chunks(
        self,
        fn: Callable[[T], R],
        items: Sequence[T],
        chunks: list[list[int]],
        one_at_a_time: bool,
        record: Callable[[int, Outcome[R]], None],
    ) -> bool:
        """Run ``chunks`` (lists of item indices) as tasks and ``record`` each item's outcome;
        True when a pool process died. ``one_at_a_time`` sends each task once the one before
        has finished."""
        try:
            futures: dict[Future[list[Outcome[R]]], list[int]] = {}
            for chunk in chunks:
                fut = self.executor.submit(run_batch, fn, [items[i] for i in chunk])
                if one_at_a_time:
                    wait([fut])
                    if not _collect(fut, chunk, record):
                        return True
                else:
                    futures[fut] = chunk
            for fut in as_completed(futures):
                if not _collect(fut, futures[fut], record):
                    return True
        except BrokenProcessPool:
            return True
        return False

    def map(
        self,
        fn: Callable[[T], R],
        items: Sequence[T],
        *,
        batch: int | None = None,
        on_result: Callable[[int, Outcome[R]], None] | None = None,
    ) -> list[Outcome[R]]:
        """One :class:`Outcome` per item of ``items``, in order, computed as ``fn(item)``.

        ``fn`` must be a module-level function (it is pickled). Items go ``batch`` per task
        (default :func:`auto_batch`). ``on_result(index, outcome)`` is called in this process
        as each item finishes (completion order), e.g. to journal it or advance a progress bar.
        """
        n = len(items)
        size = batch if batch is not None else auto_batch(n, self.parallelism)
        if size < 1:
            raise ConfigError(f"expected a batch size >= 1, got {size}", field="batch")
        results: list[Outcome[R] | None] = [None] * n
        attempts = [0] * n
        pending = list(range(n))
        # Who killed a process is unknown while several items run at once: a pool death
        # charges nobody but sends the unfinished items round again; after a second death
        # they run one at a time ("isolated"), where a death can only be the item's own.
        isolated = False
        deaths = 0

        def record(i: int, out: Outcome[R]) -> None:
            results[i] = out
            if on_result is not None:
                on_result(i, out)

        while pending:
            chunks = [[i] for i in pending] if isolated else [
                pending[i:i + size] for i in range(0, len(pending), size)
            ]
            if self._run_chunks(fn, items, chunks, isolated, record):
                deaths += 1
                self._restart()
                if isolated:  # exactly one item was in flight: the one that died
                    i = next(i for i in pending if results[i] is None)
                    attempts[i] += 1
                    if attempts[i] >= MAX_ATTEMPTS:
                        record(i, Outcome(error=f"worker process died ({attempts[i]} attempts)"))
                isolated = isolated or deaths >= 2
            pending = [i for i in range(n) if results[i] is None]
        return [r if r is not None else Outcome(error="not run") for r in results]


def _collect(
    fut: Future[list[Outcome[R]]], chunk: list[int], record: Callable[[int, Outcome[R]], None]
) -> bool:
    """Record the outcomes of a finished task; False when its pool process died."""
    try:
        outs = fut.result()
    except BrokenProcessPool:
        return False
    except Exception as exc:  # e.g. Dask's KilledWorker, a pickling error
        # The whole task failed: on Dask a killed worker fails every item of its batch (Dask
        # retries the task on other workers first; retrying item by item here could wait
        # indefinitely on a cluster whose workers keep dying).
        outs = [Outcome(error=_error_line(exc), exception=exc)] * len(chunk)
    for i, out in zip(chunk, outs, strict=True):
        record(i, out)
    return True


def _kill_pool(pool: ProcessPoolExecutor) -> None:
    """Cancel what is queued and stop the pool's processes now (running tasks are abandoned)."""
    procs = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for p in procs:
        with contextlib.suppress(Exception):
            p.terminate()
    for p in procs:
        with contextlib.suppress(Exception):
            p.join(timeout=3)
            if p.is_alive():
                p.kill()
                p.join(timeout=1)


# --- one simulation per task, with the workload shared within a process -----------------------

#: Workloads kept per process (a trace of a few million requests is ~100 MB).
WORKLOAD_CACHE_SIZE = 2
_WORKLOADS: OrderedDict[str, Any] = OrderedDict()


def _workload_key(scenario: Any, seed: int) -> str:
    spec = json.dumps(scenario.workload.model_dump(mode="json"), sort_keys=True, default=str)
    raw = f"{spec}|{scenario.base_dir}|{seed}"
    return hashlib.blake2s(raw.encode(), digest_size=16).hexdigest()


def shared_workload(scenario: Any, seed: int) -> Any:
    """The workload of ``scenario`` under ``seed``, built once per process and reused.

    Configurations of a sweep differ in their deployment, not their traffic, so each process
    builds (or reads) the trace once per seed. The engine never mutates a workload.
    """
    from sim.rng import Streams
    from sim.workload import build_workload

    key = _workload_key(scenario, seed)
    wl = _WORKLOADS.get(key)
    if wl is None:
        wl = build_workload(scenario.workload, Streams(seed), scenario.base_dir)
        _WORKLOADS[key] = wl
        while len(_WORKLOADS) > WORKLOAD_CACHE_SIZE:
            _WORKLOADS.popitem(last=False)
    else:
        _WORKLOADS.move_to_end(key)
    return wl


@dataclass(frozen=True)
class SimTask:
    """One simulation: a scenario (a resolved mapping plus dotted overrides) under one seed.

    ``keep="summary"`` returns the summary dict only (without the resolved scenario: cheap to
    send back); ``"result"`` the whole :class:`~sim.metrics.Result`.
    """

    data: dict[str, Any]
    seed: int
    overrides: tuple[tuple[str, Any], ...] = ()
    base_dir: str = "."
    source: str = "<sweep>"
    keep: str = "summary"


def run_sim_task(task: SimTask) -> Any:
    """Build the task's scenario, simulate it on the process's shared workload, return what it keeps."""
    from sim.run import simulate
    from sim.scenario import scenario_from_dict

    scenario = scenario_from_dict(
        task.data, source=task.source, base_dir=Path(task.base_dir),
        overrides=dict(task.overrides),
    )
    result = simulate(scenario, task.seed, workload=shared_workload(scenario, task.seed))
    if task.keep == "result":
        return result
    return {k: v for k, v in result.summary.items() if k != "scenario"}


def run_scenario_seed(item: tuple[Any, int]) -> Any:
    """Simulate a built :class:`~sim.scenario.Scenario` under one seed (for replications)."""
    from sim.run import simulate

    scenario, seed = item
    return simulate(scenario, seed, workload=shared_workload(scenario, seed))
