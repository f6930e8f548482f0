"""Knative Pod Autoscaler (KPA): stable and panic windows over observed concurrency.

Source: Knative Serving v1.14, docs "Autoscaling > Configuring the autoscaler", "Scale
bounds", "Configuring scale to zero", "Concurrency" and "Modes: stable and panic", and the
decider in ``pkg/autoscaler/scaling/autoscaler.go`` (``Scale``). Defaults are the
``config-autoscaler`` ConfigMap's.

Per tick (``tick-interval`` 2 s in Knative; here ``autoscaler.decision_interval_s``):

1. Sample the deployment's concurrency c = requests in flight (running on workers plus
   waiting at the gateway: at zero workers the activator buffers them and reports them as
   concurrency, which is what wakes the revision up).
2. Stable value = mean of the samples in the last ``stable_window_s`` (60 s); panic value =
   mean over ``panic_window_percentage`` % of it (10 % → 6 s).
3. Target per worker T = ``container_concurrency_target`` × ``target_utilization_percentage``
   / 100 (100 × 70 % = 70 requests), or ``requests_per_second_target`` with ``metric: rps``.
4. Desired (stable) = ceil(stable / T), desired (panic) = ceil(panic / T), each clamped to
   [floor(ready / max_scale_down_rate), ceil(ready × max_scale_up_rate)] with ready ≥ 1.
5. Panic starts when desired (panic) / max(ready, 1) ≥ ``panic_threshold_percentage`` / 100
   (200 %); it lasts until one stable window has passed without crossing the threshold. In
   panic the count is desired (panic) and never goes down: the peak of the panic holds. This
   is KPA's documented over-provisioning on bursts: the backlog that queued during the burst
   counts as concurrency, so the panic count overshoots what the steady burst rate needs and
   stays there for a stable window after the burst.
6. Outside panic the count is desired (stable). Scale to zero (``min_workers == 0``): when the
   desired count is 0 (no request in flight for a whole stable window), the revision is
   removed after ``scale_to_zero_grace_period_s`` (30 s) more.

Counts are in workers N (requested, starting or ready), as Knative's desired scale counts pods
whether ready or not. Readiness enters only through the rate clamps and the panic ratio.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sim.policies.base import NO_OP, POLICIES, Decision, Observation
from sim.policies.common import TimeAverage, knob, params_of, parse_params, to_target


@dataclass(frozen=True)
class KnativeParams:
    """The ``config-autoscaler`` knobs (Knative Serving v1.14 defaults)."""

    metric: str = knob("concurrency", "concurrency (in-flight requests) or rps (arrivals/s)",
                       choices=("concurrency", "rps"))
    container_concurrency_target: float = knob(
        100.0, "target in-flight requests per worker (container-concurrency-target-default)", gt=0)
    requests_per_second_target: float = knob(
        200.0, "target arrivals/s per worker with metric: rps (requests-per-second-target-default)",
        gt=0)
    target_utilization_percentage: float = knob(
        70.0, "share of the target to aim at (container-concurrency-target-percentage)", gt=0)
    stable_window_s: float = knob(60.0, "stable window (stable-window)", gt=0)
    panic_window_percentage: float = knob(
        10.0, "panic window as a % of the stable window (panic-window-percentage)", gt=0)
    panic_threshold_percentage: float = knob(
        200.0, "panic when desired/ready reaches this % (panic-threshold-percentage)", gt=0)
    max_scale_up_rate: float = knob(1000.0, "most growth factor per tick (max-scale-up-rate)", gt=0)
    max_scale_down_rate: float = knob(2.0, "most shrink divisor per tick (max-scale-down-rate)", gt=0)
    scale_to_zero_grace_period_s: float = knob(
        30.0, "wait after desired reaches 0 before removing the last workers", ge=0)


@POLICIES.register("knative")
class KnativePolicy:
    """Knative's KPA: stable/panic windows over concurrency or request rate."""

    name = "knative"

    def __init__(self, params: KnativeParams, min_workers: int = 0) -> None:
        self.p = params
        self.min_workers = min_workers
        self.stable = TimeAverage(params.stable_window_s)
        self.panic = TimeAverage(params.stable_window_s * params.panic_window_percentage / 100)
        self.panic_since: float | None = None  # last tick over the panic threshold
        self.max_panic_pods = 0
        self.zero_since: float | None = None  # first tick of the current desired == 0 streak
        self._last_arrived: int | None = None
        self._last_t = 0.0

    @classmethod
    def check_params(cls, params: Mapping[str, Any], autoscaler: Any = None) -> None:
        """Validate ``autoscaler.params`` against :class:`KnativeParams`."""
        parse_params("knative", KnativeParams, params)

    @classmethod
    def from_scenario(cls, deployment: Any, autoscaler: Any) -> KnativePolicy:
        """Knobs from ``autoscaler.params``; the floor from ``min_workers`` (min-scale)."""
        p = parse_params("knative", KnativeParams, params_of(autoscaler))
        return cls(p, int(deployment.initial_worker_config.min_workers))

    def on_update(self, deployment: Any, time_s: float, immediate: bool) -> None:
        """min-scale follows ``min_workers`` of an update."""
        self.min_workers = int(deployment.initial_worker_config.min_workers)

    def _sample(self, obs: Observation) -> float:
        if self.p.metric == "concurrency":
            return float(obs.in_flight)
        last = self._last_arrived
        dt = obs.time_s - self._last_t
        self._last_arrived, self._last_t = obs.arrived_total, obs.time_s
        if last is None or dt <= 0:
            return 0.0
        return (obs.arrived_total - last) / dt

    def decide(self, obs: Observation) -> Decision:
        """One KPA decision (``autoscaler.go`` ``Scale``), then the floor and the zero grace."""
        p, t = self.p, obs.time_s
        v = self._sample(obs)
        self.stable.add(t, v)
        self.panic.add(t, v)
        stable, panic = self.stable.mean(), self.panic.mean()
        per_worker = (
            p.container_concurrency_target if p.metric == "concurrency"
            else p.requests_per_second_target
        ) * p.target_utilization_percentage / 100
        ready = max(obs.ready, 1)
        up_cap = math.ceil(p.max_scale_up_rate * ready)
        down_cap = math.floor(ready / p.max_scale_down_rate)
        dspc = min(max(math.ceil(stable / per_worker - 1e-9), down_cap), up_cap)
        dppc = min(max(math.ceil(panic / per_worker - 1e-9), down_cap), up_cap)
        over = dppc / ready >= p.panic_threshold_percentage / 100
        if over:
            self.panic_since = t
        elif self.panic_since is not None and t - self.panic_since >= p.stable_window_s:
            self.panic_since = None
            self.max_panic_pods = 0
        if self.panic_since is not None:
            desired = max(dppc, self.max_panic_pods)  # in panic the count never goes down
            self.max_panic_pods = desired
            why = f"panic: c={panic:.3g} over {self.panic.window_s:g}s, T={per_worker:g}"
        else:
            desired = dspc
            why = f"stable: c={stable:.3g} over {p.stable_window_s:g}s, T={per_worker:g}"
        if desired == 0 and obs.in_flight > 0:
            desired = 1  # the activator holds a request: never drop to zero under it
        desired = max(desired, self.min_workers)
        if desired == 0:
            if self.zero_since is None:
                self.zero_since = t
            if t - self.zero_since < p.scale_to_zero_grace_period_s:
                if obs.workers > 0:
                    return Decision("none", 0, "blocked: scale-to-zero grace", stable)
                return NO_OP
        else:
            self.zero_since = None
        d = to_target(obs, desired, why, panic if self.panic_since is not None else stable)
        return d if d.action != "none" or d.reason else NO_OP
