"""The executor layer: serial, process pool and Dask give identical results; failures, dead
workers and signals are handled."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest
from helpers import bursty_llm_scenario

from sim import ConfigError, scenario_from_dict
from sim.executor import (
    MAX_ATTEMPTS,
    Outcome,
    Runner,
    SimTask,
    auto_batch,
    exit_code,
    run_sim_task,
    shared_workload,
)
from sim.replicate import replicate
from sim.run import simulate
from sim.scenario import resolved_dict

ROOT = Path(__file__).resolve().parents[1]


def _data() -> dict[str, object]:
    data = bursty_llm_scenario("ex", autoscaling={
        "time_window_sec": 60, "upper_allowed_latency_sec": 2, "lower_allowed_latency_sec": 0.5,
        "scaling_up_timeout_sec": 60, "scaling_down_timeout_sec": 120})
    data["workload"]["prompt_tokens"]["mean"] = 600  # type: ignore[index]
    data["fleet"] = {"cold_start": {"provision_s": {"median": 60, "sigma": 0.5}}}
    return data


def _tasks() -> list[SimTask]:
    data = resolved_dict(scenario_from_dict(_data()))
    return [
        SimTask(data, seed, (("deployment.autoscaling_config.scaling_up_timeout_sec", up),))
        for seed in (1, 2) for up in (30, 300)
    ]


def _without_wall(summary: dict[str, object]) -> dict[str, object]:
    out = dict(summary)
    out["sim"] = {k: v for k, v in summary["sim"].items()  # type: ignore[attr-defined]
                  if k not in ("wall_s", "requests_per_wall_s")}
    return out


def test_auto_batch_sizes() -> None:
    """About four batches per worker, at least one item, at most sixteen."""
    assert auto_batch(0, 2) == 1
    assert auto_batch(8, 2) == 1
    assert auto_batch(80, 2) == 10
    assert auto_batch(10_000, 2) == 16


def test_serial_pool_and_dask_give_identical_summaries() -> None:
    """The same tasks give bit-identical summaries in this process, a 2-process pool and a Dask LocalCluster."""
    distributed = pytest.importorskip("distributed")
    tasks = _tasks()
    with Runner() as r:
        serial = r.map(run_sim_task, tasks)
    with Runner(workers=2) as r:
        pooled = r.map(run_sim_task, tasks, batch=3)
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
        silence_logs=40,
    ) as cluster, distributed.Client(cluster) as client, Runner(
        executor=client.get_executor()
    ) as r:
        dasked = r.map(run_sim_task, tasks, batch=1)
    assert all(o.ok for o in serial + pooled + dasked)
    for a, b, c in zip(serial, pooled, dasked, strict=True):
        assert _without_wall(a.value) == _without_wall(b.value) == _without_wall(c.value)  # type: ignore[arg-type]
    # The knob and the seed matter: the four tasks are not all the same.
    assert len({a.value["cost"]["total_usd"] for a in serial}) > 1  # type: ignore[index]


def test_runner_local_scheduler_matches_serial() -> None:
    """--scheduler local (a LocalCluster the runner starts itself) equals the serial results."""
    pytest.importorskip("distributed")
    tasks = _tasks()[:2]
    with Runner() as r:
        serial = r.map(run_sim_task, tasks)
    with Runner(workers=1, scheduler="local") as r:
        dasked = r.map(run_sim_task, tasks)
    assert [_without_wall(o.value) for o in serial] == [_without_wall(o.value) for o in dasked]  # type: ignore[arg-type]


def test_shared_workload_gives_the_same_run() -> None:
    """A run on the process's cached workload equals a run that builds its own, and the cache is reused."""
    sc = scenario_from_dict(_data())
    first = shared_workload(sc, 3)
    assert shared_workload(sc, 3) is first
    assert shared_workload(sc, 4) is not first
    a = simulate(sc, 3, workload=shared_workload(sc, 3))
    b = simulate(sc, 3, workload=shared_workload(sc, 3))
    c = simulate(sc, 3)
    pd.testing.assert_frame_equal(a.requests, c.requests)
    pd.testing.assert_frame_equal(b.workers, c.workers)


def _fail_on_three(x: int) -> int:
    if x == 3:
        raise ConfigError("three is bad", field="x")
    return x * x


def test_one_failing_item_never_stops_the_others() -> None:
    """An item's exception becomes its outcome's one-line error; the rest complete, in order."""
    for runner in (Runner(), Runner(workers=2)):
        with runner as r:
            outs = r.map(_fail_on_three, list(range(6)), batch=2)
        assert [o.value for o in outs] == [0, 1, 4, None, 16, 25]
        assert outs[3].error == "ConfigError: x: three is bad"
        assert isinstance(outs[3].exception, ConfigError)


def _die_once(item: tuple[int, str]) -> int:
    """Kill this pool process the first time item 5 runs (a marker file remembers)."""
    x, marker = item
    if x == 5 and not os.path.exists(marker):
        Path(marker).write_text("died")
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(0.01)
    return x


def _always_die(x: int) -> int:
    os.kill(os.getpid(), signal.SIGKILL)
    return x


def test_killed_pool_process_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    """A pool process killed mid-map is replaced; every item reports exactly once, with its value."""
    items = [(i, str(tmp_path / "marker")) for i in range(20)]
    seen: list[int] = []
    with Runner(workers=2) as r:
        outs = r.map(_die_once, items, batch=2, on_result=lambda i, o: seen.append(i))
    assert (tmp_path / "marker").exists()
    assert [o.value for o in outs] == list(range(20))
    assert sorted(seen) == list(range(20))


def test_item_that_always_kills_its_process_fails_alone() -> None:
    """An item whose process dies on every attempt is recorded as failed after the last attempt."""
    with Runner(workers=2) as r:
        outs = r.map(_always_die, [1, 2], batch=1)
    assert all(not o.ok and "worker process died" in (o.error or "") for o in outs)


def _kill_on_five(x: int) -> int:
    if x == 5:
        os.kill(os.getpid(), signal.SIGKILL)
    return x * 10


def test_only_the_item_that_kills_its_process_is_charged() -> None:
    """Items queued beside a killer are run again uncharged; once isolated, the killer alone
    fails after its attempts."""
    with Runner(workers=2) as r:
        outs = r.map(_kill_on_five, list(range(12)), batch=4)
    assert [o.value for i, o in enumerate(outs) if i != 5] == [i * 10 for i in range(12) if i != 5]
    assert outs[5].error == f"worker process died ({MAX_ATTEMPTS} attempts)"


def test_bad_runner_options_are_config_errors() -> None:
    """A worker count below one or a malformed scheduler address is a ConfigError naming the option."""
    with pytest.raises(ConfigError, match="--workers"):
        Runner(workers=0)
    pytest.importorskip("distributed")
    with pytest.raises(ConfigError, match="--scheduler"), Runner(scheduler="host:1") as r:
        r.map(_fail_on_three, [1])


def test_replicate_through_the_runner_matches_alone() -> None:
    """replicate() on a 2-process runner equals simulate() per seed, table for table."""
    sc = scenario_from_dict(_data())
    with Runner(workers=2) as r:
        results = replicate(sc, [5, 6], runner=r)
    for seed, res in zip([5, 6], results, strict=True):
        alone = simulate(sc, seed)
        pd.testing.assert_frame_equal(res.requests, alone.requests)


SLOW_POOL = textwrap.dedent(
    """
    import sys, time
    from sim.executor import Runner, exit_code

    def slow(x):
        time.sleep(120)
        return x

    if __name__ == "__main__":
        try:
            with Runner(workers=2, scheduler=sys.argv[1] or None) as r:
                r.executor.submit(int, 0).result()   # start the pool or cluster
                print("ready", flush=True)
                r.map(slow, [1, 2, 3, 4], batch=1)
        except KeyboardInterrupt as exc:
            sys.exit(exit_code(exc))
    """
)


def _descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        kids = _children(todo.pop())
        out += kids
        todo += kids
    return out


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize(
    ("signum", "code", "scheduler"),
    [(signal.SIGTERM, 143, ""), (signal.SIGINT, 130, ""), (signal.SIGTERM, 143, "local")],
    ids=["pool-sigterm", "pool-sigint", "dask-sigterm"],
)
def test_signal_stops_the_pool_within_seconds(signum: int, code: int, scheduler: str,
                                              tmp_path: Path) -> None:
    """SIGTERM/SIGINT to the parent alone: exit 143/130 within seconds, and no pool or Dask worker process survives."""
    if scheduler:
        pytest.importorskip("distributed")
    script = tmp_path / "slow_pool.py"
    script.write_text(SLOW_POOL)
    proc = subprocess.Popen(
        [sys.executable, str(script), scheduler], cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(1.0)  # the slow tasks are running
    children = _descendants(proc.pid)
    assert len(children) >= 2
    start = time.monotonic()
    proc.send_signal(signum)
    assert proc.wait(timeout=20) == code
    elapsed = time.monotonic() - start
    deadline = time.monotonic() + 5
    while any(_alive(p) for p in children) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(p) for p in children)
    assert elapsed < 10


def test_exit_code_of_plain_keyboard_interrupt() -> None:
    """A plain Ctrl-C (KeyboardInterrupt) maps to 130."""
    assert exit_code(KeyboardInterrupt()) == 130
    assert Outcome(value=1).ok


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_sigterm_to_sim_run_seeds_exits_143_and_leaves_the_output_folder(tmp_path: Path) -> None:
    """SIGTERM to `sim run --seeds --workers 2` mid-run: exit 143 within seconds, pool gone, --out untouched."""
    scen = tmp_path / "long.yaml"
    scen.write_text(
        "name: long\n"
        "deployment: {name: long, model: meta-llama/Meta-Llama-3-8B,\n"
        "  initial_worker_config: {min_workers: 2, initial_workers_gpu: A100, initial_workers_gpu_num: 1}}\n"
        "workload: {kind: poisson, rate_per_s: 50, duration_s: 40000, prompt_tokens: 10, output_tokens: 10}\n"
        "serving: {kind: exponential, mean_s: 0.02, max_batch: 1}\n"
        "autoscaler: {policy: fixed}\n"
    )
    out = tmp_path / "out"
    out.mkdir()
    (out / "summary.json").write_text('{"old": true}')
    before = sorted((p.name, p.read_bytes()) for p in out.iterdir())
    proc = subprocess.Popen(
        [sys.executable, "-m", "sim", "run", str(scen), "--seeds", "1-4", "--workers", "2",
         "--out", str(out), "-q"], cwd=ROOT, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 60
    children: list[int] = []
    while len(children) < 2 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
        children = _children(proc.pid)
    assert len(children) >= 2, "the pool did not start"
    time.sleep(1.0)  # the simulations are running
    start = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 143
    assert time.monotonic() - start < 10
    deadline = time.monotonic() + 5
    while any(_alive(p) for p in children) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(p) for p in children)
    assert sorted((p.name, p.read_bytes()) for p in out.iterdir()) == before
    assert proc.stderr is not None and "Traceback" not in proc.stderr.read()


def test_sigterm_in_a_fork_before_its_initializer_kills_only_the_child() -> None:
    """A process forked inside raise_on_sigterm (as pool workers are) that gets SIGTERM before
    its initializer runs dies of SIGTERM instead of raising Interrupted into the parent's code."""
    import os
    import signal

    from sim.executor import raise_on_sigterm

    with raise_on_sigterm():
        pid = os.fork()
        if pid == 0:  # the child: the inherited handler is still installed
            try:
                os.kill(os.getpid(), signal.SIGTERM)
                signal.pause()
            finally:
                os._exit(3)  # reached only if the handler raised or returned
        _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGTERM
