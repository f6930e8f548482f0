"""NVIDIA Dynamo's SLA-driven planner: predict the next interval's load, size for TTFT/ITL.

Source: NVIDIA Dynamo v0.4 docs "Planner > SLA-based Planner" (``--adjustment-interval`` 180 s,
``--ttft`` 0.5 s, ``--itl`` 0.05 s, ``--load-predictor`` constant | arima | prophet) and
``components/planner/src/dynamo/planner/utils/planner_core.py`` / ``load_predictor.py``.

Every ``adjustment_interval_s`` (other ticks only keep the floor):

1. Observe the last interval: requests that arrived, their mean prompt length (ISL) and mean
   output length (OSL) (here the trace's output length at arrival; Dynamo reads completed
   requests' lengths from its metrics).
2. Feed each series to the load predictor named by ``predictor``: ``constant`` (next = last),
   ``moving_average`` (mean of the last ``window`` intervals), ``arima`` (ARIMA(1,1,0): an AR(1)
   on the differences, least squares over the history; Dynamo's default is pmdarima's
   auto-ARIMA) or ``kalman`` (a local-level Kalman filter, process/measurement variances
   ``kalman_q`` / ``kalman_r`` relative to the series' variance).
3. Replicas = ceil(rate × (ISL / P + OSL / D)) where P is the profile's prefill throughput
   for one ISL-token prompt and D its decode throughput at the largest batch whose step
   time stays within ``itl_s`` at context ISL + OSL / 2 (:mod:`sim.policies.capacity`).
   Dynamo sizes prefill and decode pools apart (disaggregated serving); this simulator's
   workers do both, so the two loads add up on one pool. Dynamo's correction factors from
   observed TTFT/ITL are not modelled.
An ITL target below the profile's decode step at batch 1 sizes the pool for one sequence per
worker (the decision's reason says so): on slow GPUs (a scaled L4 or A6000 profile steps in
about 0.065 s) the default 0.05 s target over-provisions several-fold.

Because the count is set from the *predicted* next-interval load, the planner can scale
ahead of a ramp (a trend-following predictor) but lags a step (constant).
The floor is max(min_workers, 1): the planner never scales to zero.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from sim.errors import ConfigError
from sim.policies.base import NO_OP, POLICIES, Decision, Observation
from sim.policies.capacity import WorkerCapacity, at_targets, queueing, worker_profile
from sim.policies.common import knob, params_of, parse_params, to_target
from sim.registry import Registry

PREDICTORS: Registry[Any] = Registry("load predictor")
"""Load predictors of the SLA planner: a history (one value per interval) in, a forecast out."""


@PREDICTORS.register("constant")
def predict_constant(history: list[float], p: SlaPlannerParams) -> float:
    """The last observed value."""
    return history[-1]


@PREDICTORS.register("moving_average")
def predict_moving_average(history: list[float], p: SlaPlannerParams) -> float:
    """Mean of the last ``window`` values."""
    return float(np.mean(history[-p.window:]))


@PREDICTORS.register("arima")
def predict_arima(history: list[float], p: SlaPlannerParams) -> float:
    """ARIMA(1,1,0): x_{t+1} = x_t + phi (x_t - x_{t-1}), phi fitted by least squares on the
    differences of the last ``window`` × 4 values (|phi| < 1); constant below 3 values."""
    h = np.asarray(history[-4 * p.window:], dtype=np.float64)
    if len(h) < 3:
        return float(h[-1])
    d = np.diff(h)
    x, y = d[:-1], d[1:]
    denom = float(x @ x)
    phi = float(x @ y) / denom if denom > 0 else 0.0
    phi = min(max(phi, -0.99), 0.99)
    return max(float(h[-1] + phi * d[-1]), 0.0)


@PREDICTORS.register("kalman")
def predict_kalman(history: list[float], p: SlaPlannerParams) -> float:
    """Local-level Kalman filter over the history; the forecast is the filtered level."""
    h = np.asarray(history, dtype=np.float64)
    scale = float(np.var(h)) if len(h) > 1 and np.var(h) > 0 else max(float(h[-1]) ** 2, 1.0)
    q, r = p.kalman_q * scale, p.kalman_r * scale
    level, var = float(h[0]), r
    for z in h[1:]:
        var += q
        gain = var / (var + r)
        level += gain * (float(z) - level)
        var *= 1 - gain
    return max(level, 0.0)


@dataclass(frozen=True)
class SlaPlannerParams:
    """Planner knobs (Dynamo v0.4 defaults where Dynamo has them)."""

    ttft_s: float = knob(0.5, "TTFT target (s): the prefill of one ISL-token prompt must fit", gt=0)
    itl_s: float = knob(0.05, "ITL target (s): decode step time bound", gt=0)
    adjustment_interval_s: float = knob(180.0, "seconds between planning decisions", gt=0)
    predictor: str = knob("constant", "load predictor: constant | moving_average | arima | kalman")
    window: int = knob(5, "intervals the moving average / ARIMA fit look back over", ge=1)
    kalman_q: float = knob(0.1, "Kalman process variance (share of the series variance)", gt=0)
    kalman_r: float = knob(1.0, "Kalman measurement variance (share of the series variance)", gt=0)


@POLICIES.register("sla_planner")
class SlaPlannerPolicy:
    """Dynamo's SLA planner: predicted load × per-request worker time at the targets."""

    name = "sla_planner"

    def __init__(self, params: SlaPlannerParams, min_workers: int = 1,
                 max_workers: int = 100) -> None:
        self.p = params
        self.predict = PREDICTORS.get(params.predictor)
        self.min_workers = min_workers
        self.max_workers = max_workers
        self.profile: Any = None
        self.max_batch = 256
        self.queue_capacity: WorkerCapacity | None = None
        self.next_plan = params.adjustment_interval_s  # the first interval ends here
        self.mark = (0.0, 0, 0, 0)  # (t, arrived, prompt tokens, output tokens) at last plan
        self.hist: dict[str, list[float]] = {"n": [], "isl": [], "osl": []}
        self.target: int | None = None

    @classmethod
    def check_params(cls, params: Mapping[str, Any], autoscaler: Any = None) -> None:
        """Validate ``autoscaler.params``, including the predictor's name."""
        p = parse_params("sla_planner", SlaPlannerParams, params)
        if p.predictor not in PREDICTORS:
            raise ConfigError(
                f"unknown load predictor {p.predictor!r}; known: {', '.join(PREDICTORS.names())}",
                field="autoscaler.params.predictor",
            )

    @classmethod
    def from_scenario(cls, deployment: Any, autoscaler: Any) -> SlaPlannerPolicy:
        """Knobs from ``autoscaler.params``; the profile comes with :meth:`bind`."""
        params = params_of(autoscaler)
        cls.check_params(params)
        return cls(parse_params("sla_planner", SlaPlannerParams, params),
                   int(deployment.initial_worker_config.min_workers),
                   int(getattr(autoscaler, "max_workers", 100)))

    def bind(self, scenario: Any, workload: Any) -> None:
        """Read the worker's performance profile (Dynamo's pre-deployment profiling); the
        workload is not read (the planner only sees what has arrived)."""
        self.profile = worker_profile(scenario)
        self.max_batch = int(scenario.serving.max_batch)
        if self.profile is None:
            self.queue_capacity = queueing(float(scenario.serving.mean_s), self.max_batch)

    def on_update(self, deployment: Any, time_s: float, immediate: bool) -> None:
        """The floor follows ``min_workers`` of an update."""
        self.min_workers = int(deployment.initial_worker_config.min_workers)

    def capacity(self, isl: float, osl: float) -> WorkerCapacity:
        """Worker capacity at the targets for these mean lengths."""
        if self.queue_capacity is not None:
            return self.queue_capacity
        if self.profile is None:
            raise RuntimeError("sla_planner: bind(scenario, workload) was not called")
        return at_targets(self.profile, max(isl, 1.0), max(osl, 1.0), self.p.itl_s, self.max_batch)

    def plan(self, obs: Observation) -> tuple[int, str]:
        """Close the interval, predict the next one and size the pool for it."""
        t0, a0, pt0, ot0 = self.mark
        t = obs.time_s
        n = obs.arrived_total - a0
        self.mark = (t, obs.arrived_total, obs.prompt_tokens_arrived, obs.output_tokens_arrived)
        h = self.hist
        h["n"].append(float(n))
        if n > 0:
            h["isl"].append((obs.prompt_tokens_arrived - pt0) / n)
            h["osl"].append((obs.output_tokens_arrived - ot0) / n)
        nxt = self.predict(h["n"], self.p)
        if not h["isl"]:
            return 0, "no request seen yet"
        isl, osl = self.predict(h["isl"], self.p), self.predict(h["osl"], self.p)
        rate = nxt / max(t - t0, 1e-9)
        cap = self.capacity(isl, osl)
        load = rate * cap.work_s(isl, osl)
        why = (f"{self.p.predictor}: rate={rate:.3g}/s, ISL={isl:.0f}, OSL={osl:.0f}, "
               f"load={load:.3g} workers")
        if self.profile is not None and self.profile.prefill_s([round(isl)]) > self.p.ttft_s:
            why += "; TTFT target below one prefill"
        if self.profile is not None and self.profile.tpot_s(1, isl + osl / 2) > self.p.itl_s:
            # Dynamo's interpolator has no point under the target either: one sequence per
            # worker is the most it can promise, so the pool is sized for batch 1.
            why += "; ITL target below one decode step: sized for batch 1"
        return math.ceil(load - 1e-9), why

    def decide(self, obs: Observation) -> Decision:
        """Plan at interval ends; between them hold the plan and the floor."""
        floor = max(self.min_workers, 1)
        t, n = obs.time_s, obs.workers
        why = "hold plan"
        if t >= self.next_plan - 1e-9:
            self.next_plan += self.p.adjustment_interval_s
            want, why = self.plan(obs)
            self.target = want
        desired = min(max(self.target if self.target is not None else n, floor), self.max_workers)
        d = to_target(obs, desired, why)
        return d if d.action != "none" or d.reason else NO_OP
