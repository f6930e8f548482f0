"""A synthetic, self-consistent RunRecord for demos, notebooks and tests of the output layer.

It is not a simulation: latencies are drawn from simple distributions and the worker pool
follows a scripted scale-up and scale-down, so report and IO code can be exercised (and its
plots looked at) without running the engine.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from sim.engine.record import (
    COMPLETED,
    FAIL_TIMEOUT,
    FAILED,
    DecisionRecord,
    QueueSamples,
    RequestColumns,
    RunRecord,
    Timeline,
    WorkerRecord,
)


def example_record(n_requests: int = 3000, horizon_s: float = 3600.0, seed: int = 0) -> RunRecord:
    """A one-hour run with a traffic burst, a scale-up to three workers, one preemption and a scale-down."""
    rng = np.random.default_rng(seed)
    # Arrivals: a rate that doubles in the middle third of the hour.
    t = np.sort(rng.uniform(0, horizon_s * 0.95, n_requests))
    burst = (t > horizon_s / 3) & (t < 2 * horizon_s / 3)
    t = np.sort(
        np.concatenate(
            [t[~burst], t[burst], rng.uniform(horizon_s / 3, 2 * horizon_s / 3, burst.sum())]
        )
    )
    n = t.size
    req = RequestColumns.empty(t, rng.integers(50, 2000, n), rng.integers(1, 600, n))
    queue = rng.exponential(np.where((t > horizon_s / 3) & (t < horizon_s / 2), 3.0, 0.2))
    prefill = rng.lognormal(np.log(0.15), 0.4, n)
    decode = req.output_tokens * rng.lognormal(np.log(0.02), 0.2, n)
    req.dispatch_s[:] = t + queue
    req.first_token_s[:] = req.dispatch_s + prefill
    req.completion_s[:] = req.first_token_s + decode
    req.status[:] = COMPLETED
    req.worker[:] = rng.integers(0, 3, n)
    # A few timeouts in the burst, and the tail still running at the horizon.
    fail = np.flatnonzero(queue > 12.0)
    req.status[fail] = FAILED
    req.fail_reason[fail] = FAIL_TIMEOUT
    req.first_token_s[fail] = np.nan
    req.dispatch_s[fail] = np.nan
    req.completion_s[fail] = t[fail] + 600.0
    running = req.completion_s > horizon_s
    req.status[running] = 0
    req.completion_s[running] = np.nan
    req.first_token_s[running & (req.first_token_s > horizon_s)] = np.nan
    req.retries[rng.choice(n, 5, replace=False)] = 1

    a100 = partial(
        WorkerRecord, gpu="A100", gpus=1, cloud="aws", region="us-east-1", zone="us-east-1a"
    )
    workers = [
        a100(0, spot=False, on_prem=False, initial=True, price_per_hour_usd=4.1,
                     requested_s=0.0, provisioned_s=0.0, ready_s=0.0, end_reason="horizon",
                     requests_served=int((req.worker == 0).sum())),
        a100(1, spot=True, on_prem=False, initial=False, price_per_hour_usd=1.6,
                     requested_s=1250.0, provisioned_s=1340.0, ready_s=1610.0, drain_s=2400.0,
                     terminated_s=2520.0, end_reason="preempted", requests_served=int((req.worker == 1).sum())),
        a100(2, spot=False, on_prem=False, initial=False, price_per_hour_usd=4.1,
                     requested_s=1500.0, provisioned_s=1580.0, ready_s=1850.0, drain_s=3000.0,
                     terminated_s=3012.5, end_reason="scale_down", requests_served=int((req.worker == 2).sum())),
        a100(3, spot=True, on_prem=False, initial=False, price_per_hour_usd=1.6,
                     requested_s=2400.0, provisioned_s=2470.0, ready_s=2700.0, end_reason="horizon"),
    ]  # fmt: skip
    # Timeline: (time, total, ready, billed, cost rate) at each change.
    steps = [
        (0.0, 1, 1, 1, 4.1), (1250.0, 2, 1, 1, 4.1), (1340.0, 2, 1, 2, 5.7), (1500.0, 3, 1, 2, 5.7),
        (1580.0, 3, 1, 3, 9.8), (1610.0, 3, 2, 3, 9.8), (1850.0, 3, 3, 3, 9.8), (2400.0, 3, 2, 3, 9.8),
        (2470.0, 3, 2, 3, 11.4), (2520.0, 3, 2, 2, 9.8), (2700.0, 3, 3, 2, 9.8), (3000.0, 2, 2, 2, 9.8),
        (3012.5, 2, 2, 2, 5.7),
    ]  # fmt: skip
    tl = Timeline(
        time_s=[s[0] for s in steps],
        workers_total=[int(s[1]) for s in steps],
        workers_ready=[int(s[2]) for s in steps],
        workers_billed=[int(s[3]) for s in steps],
        cost_rate_usd_per_h=[s[4] for s in steps],
    )
    decisions = [
        DecisionRecord(1250.0, "scalegen", 5.3, 1, "scale_up", 1, "S=5.3>upper=4"),
        DecisionRecord(1300.0, "scalegen", 6.1, 2, "none", 0, "blocked: cooldown"),
        DecisionRecord(1500.0, "scalegen", 7.9, 2, "scale_up", 1, "S=7.9>upper=4"),
        DecisionRecord(1700.0, "scalegen", 4.4, 3, "none", 0, "blocked: cooldown"),
        DecisionRecord(2400.0, "scalegen", float("nan"), 2, "replace", 1, "preemption notice"),
        DecisionRecord(3000.0, "scalegen", 0.4, 3, "scale_down", -1, "S=0.4<lower=1"),
    ]
    grid = np.arange(0.0, horizon_s, 10.0)
    arrivals = np.histogram(t, bins=np.append(grid, horizon_s))[0]
    waiting = np.array([int(((t <= g) & (req.dispatch_s > g)).sum()) for g in grid])
    busy = np.array([int(((req.dispatch_s <= g) & (req.completion_s > g)).sum()) for g in grid])
    qs = QueueSamples(grid.tolist(), waiting.tolist(), busy.tolist(), arrivals.tolist())
    return RunRecord(
        requests=req, workers=workers, decisions=decisions, timeline=tl, queue=qs,
        horizon_s=horizon_s, seed=seed, events=n * 6, wall_s=0.8,
        queue_area=float(waiting.mean() * horizon_s), queue_max=int(waiting.max()), warnings=[],
    )  # fmt: skip
