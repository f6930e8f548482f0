"""Ray Serve's default autoscaling policy: target ongoing requests per replica.

Source: Ray 2.40 docs "Ray Serve Autoscaling" and "Advanced Ray Serve Autoscaling"
(``autoscaling_config`` fields and defaults) and ``python/ray/serve/autoscaling_policy.py``
(``replica_queue_length_autoscaling_policy``, ``_calculate_desired_num_replicas``).

Per tick (Ray's control loop runs every 0.1 s; here ``autoscaler.decision_interval_s``):

1. Total ongoing requests R = mean over ``look_back_period_s`` (30 s) of the requests in flight
   (running on replicas plus queued at the handles; here the gateway queue).
2. error = R / (``target_ongoing_requests`` × running replicas); the factor is
   ``upscaling_factor`` when error ≥ 1 else ``downscaling_factor`` (both 1 by default);
   desired = ceil(running × (1 + (error − 1) × factor)), clamped to [min, max] replicas.
3. A change is made only after it has been the decision for more than
   ``upscale_delay_s`` / tick consecutive ticks up (30 s) or ``downscale_delay_s`` / tick down
   (600 s); to zero uses ``downscale_to_zero_delay_s`` (default: the downscale delay). Any tick
   with the other direction or no change resets the counter.
4. With no running replica and requests waiting, one replica is requested at once (Ray's cold
   start path bypasses the delays).

``min_replicas`` is ``min_workers``; ``max_replicas`` is ``autoscaler.max_workers`` (Ray's default
of 1 would make autoscaling moot). ``max_ongoing_requests`` is not modelled: the gateway queue
holds what the replicas' batches cannot take.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sim.policies.base import NO_OP, POLICIES, Decision, Observation
from sim.policies.common import TimeAverage, knob, params_of, parse_params, tick_of, to_target


@dataclass(frozen=True)
class RayServeParams:
    """``autoscaling_config`` knobs (Ray 2.40 defaults)."""

    target_ongoing_requests: float = knob(2.0, "target in-flight requests per replica", gt=0)
    look_back_period_s: float = knob(30.0, "window the ongoing-request count is averaged over", gt=0)
    upscale_delay_s: float = knob(30.0, "an upscale decision must hold this long", ge=0)
    downscale_delay_s: float = knob(600.0, "a downscale decision must hold this long", ge=0)
    downscale_to_zero_delay_s: float | None = knob(
        None, "delay for the 1 -> 0 step (null = downscale_delay_s)", ge=0)
    upscaling_factor: float = knob(1.0, "multiplies the upscale error (smoothing)", gt=0)
    downscaling_factor: float = knob(1.0, "multiplies the downscale error (smoothing)", gt=0)


@POLICIES.register("ray_serve")
class RayServePolicy:
    """Ray Serve: desired replicas from ongoing requests, with decision-count delays."""

    name = "ray_serve"

    def __init__(self, params: RayServeParams, tick_s: float, min_workers: int = 1,
                 max_workers: int = 100) -> None:
        self.p = params
        self.min_workers = min_workers
        self.max_workers = max_workers
        self.ongoing = TimeAverage(params.look_back_period_s)
        self.counter = 0  # > 0: consecutive upscale decisions, < 0: downscale
        self.up_wait = int(params.upscale_delay_s / tick_s + 1e-9)
        self.down_wait = int(params.downscale_delay_s / tick_s + 1e-9)
        zero = params.downscale_to_zero_delay_s
        self.zero_wait = self.down_wait if zero is None else int(zero / tick_s + 1e-9)

    @classmethod
    def check_params(cls, params: Mapping[str, Any], autoscaler: Any = None) -> None:
        """Validate ``autoscaler.params`` against :class:`RayServeParams`."""
        parse_params("ray_serve", RayServeParams, params)

    @classmethod
    def from_scenario(cls, deployment: Any, autoscaler: Any) -> RayServePolicy:
        """Knobs from ``autoscaler.params``; the delays are counted in ticks of the loop."""
        p = parse_params("ray_serve", RayServeParams, params_of(autoscaler))
        return cls(p, tick_of(autoscaler), int(deployment.initial_worker_config.min_workers),
                   int(getattr(autoscaler, "max_workers", 100)))

    def on_update(self, deployment: Any, time_s: float, immediate: bool) -> None:
        """min_replicas follows ``min_workers`` of an update."""
        self.min_workers = int(deployment.initial_worker_config.min_workers)

    def desired(self, total: float, running: int) -> int:
        """``_calculate_desired_num_replicas``: the smoothed proportional count."""
        p = self.p
        error = total / (p.target_ongoing_requests * running)
        factor = p.upscaling_factor if error >= 1 else p.downscaling_factor
        want = math.ceil(running * (1 + (error - 1) * factor) - 1e-9)
        return min(max(want, self.min_workers), self.max_workers)

    def decide(self, obs: Observation) -> Decision:
        """One control-loop iteration."""
        t, n = obs.time_s, obs.workers
        self.ongoing.add(t, float(obs.in_flight))
        total = self.ongoing.mean()
        if n < self.min_workers:
            return to_target(obs, self.min_workers, f"N<min_replicas={self.min_workers}", total)
        if obs.ready == 0:
            self.counter = 0
            if n == 0 and obs.in_flight > 0:
                return to_target(obs, 1, "cold start: requests wait at zero replicas", total)
            return NO_OP
        want = self.desired(total, obs.ready)
        why = f"ongoing={total:.3g}, target={self.p.target_ongoing_requests:g}/replica"
        if want > n:
            self.counter = max(self.counter, 0) + 1
            if self.counter > self.up_wait:
                self.counter = 0
                return to_target(obs, want, why, total)
            return Decision("none", 0, "blocked: upscale delay", total)
        if want < n:
            self.counter = min(self.counter, 0) - 1
            wait = self.zero_wait if want == 0 else self.down_wait
            if self.counter < -wait:
                self.counter = 0
                return to_target(obs, want, why, total)
            return Decision("none", 0, "blocked: downscale delay", total)
        self.counter = 0
        return NO_OP
