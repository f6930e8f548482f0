"""SkyServe's request-rate autoscaler (SkyPilot's serving layer).

Source: SkyPilot v0.7 docs "SkyServe > Autoscaling" and "Service YAML spec"
(``replica_policy``: ``min_replicas``, ``max_replicas``, ``target_qps_per_replica``,
``upscale_delay_seconds`` 300, ``downscale_delay_seconds`` 1200,
``base_ondemand_fallback_replicas``, ``dynamic_ondemand_fallback``) and
``sky/serve/autoscalers.py`` (``RequestRateAutoscaler``: a 60 s QPS window, decisions every
20 s, upscale/downscale counters).

Per tick (SkyServe decides every 20 s; here ``autoscaler.decision_interval_s``):

1. QPS = arrivals in the last ``qps_window_s`` (60 s) / 60 s.
2. Target = ceil(QPS / ``target_qps_per_replica``) clamped to [min_replicas, max_replicas].
3. If the target is above the autoscaler's current target, the upscale counter grows (the
   downscale counter resets) and the target is adopted once the counter reaches
   ``upscale_delay_s`` / tick; likewise down with ``downscale_delay_s``; equal resets both.
4. The number of workers follows the adopted target (workers lost to preemption are replaced
   by the engine at notice time, outside the counters).
5. At zero with requests waiting, one replica is requested at once (``from_zero_immediate``;
   the load balancer holds the requests meanwhile).

Spot: SkyServe's ``base_ondemand_fallback_replicas`` is the world's ``fleet.spot.on_demand_base``
(that many workers are always on-demand, spot above it) and ``dynamic_ondemand_fallback`` is the
engine's spot fallback (``fleet.spot.spot_acquire_timeout_s``, then on-demand, moved back to
spot when capacity returns); workers spread over the zones that have spot capacity. `sim
bench` sets those fleet fields for its SkyServe runs; they are not policy parameters because
the engine, not the policy, chooses where each worker runs.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sim.policies.base import NO_OP, POLICIES, Decision, Observation
from sim.policies.common import knob, params_of, parse_params, tick_of, to_target


@dataclass(frozen=True)
class SkyServeParams:
    """``replica_policy`` knobs (SkyPilot v0.7 defaults)."""

    target_qps_per_replica: float = knob(
        2.5, "requests/s one replica should take (no SkyServe default; the docs' example)", gt=0)
    upscale_delay_s: float = knob(300.0, "upscale_delay_seconds", ge=0)
    downscale_delay_s: float = knob(1200.0, "downscale_delay_seconds", ge=0)
    qps_window_s: float = knob(60.0, "window of the request-rate estimate", gt=0)
    from_zero_immediate: bool = knob(True, "at zero, a waiting request brings one replica at once")


@POLICIES.register("skyserve")
class SkyServePolicy:
    """SkyServe: replicas = ceil(QPS / target), adopted after consecutive decisions."""

    name = "skyserve"

    def __init__(self, params: SkyServeParams, tick_s: float, min_workers: int = 1,
                 max_workers: int = 100) -> None:
        self.p = params
        self.min_workers = min_workers
        self.max_workers = max_workers
        self.target = min_workers
        self.up_count = self.down_count = 0
        self.up_threshold = int(params.upscale_delay_s / tick_s + 1e-9)
        self.down_threshold = int(params.downscale_delay_s / tick_s + 1e-9)
        self.marks: deque[tuple[float, int]] = deque()  # (t, cumulative arrivals)

    @classmethod
    def check_params(cls, params: Mapping[str, Any], autoscaler: Any = None) -> None:
        """Validate ``autoscaler.params`` against :class:`SkyServeParams`."""
        parse_params("skyserve", SkyServeParams, params)

    @classmethod
    def from_scenario(cls, deployment: Any, autoscaler: Any) -> SkyServePolicy:
        """Knobs from ``autoscaler.params``; min_replicas from ``min_workers``."""
        p = parse_params("skyserve", SkyServeParams, params_of(autoscaler))
        return cls(p, tick_of(autoscaler), int(deployment.initial_worker_config.min_workers),
                   int(getattr(autoscaler, "max_workers", 100)))

    def on_update(self, deployment: Any, time_s: float, immediate: bool) -> None:
        """min_replicas follows ``min_workers`` of an update."""
        self.min_workers = int(deployment.initial_worker_config.min_workers)
        self.target = max(self.target, self.min_workers)

    def qps(self, obs: Observation) -> float:
        """Arrivals in (t - qps_window_s, t] divided by the window (SkyServe divides by the full
        window also at the start of the run). Counts are read at ticks: with a window that is not
        a multiple of the tick, the window starts at the latest tick before t - qps_window_s."""
        t, w = obs.time_s, self.p.qps_window_s
        self.marks.append((t, obs.arrived_total))
        while len(self.marks) > 1 and self.marks[1][0] <= t - w:
            self.marks.popleft()
        t0, a0 = self.marks[0]
        base = a0 if t0 <= t - w else 0
        return (obs.arrived_total - base) / w

    def decide(self, obs: Observation) -> Decision:
        """One autoscaler decision (``_generate_scaling_decisions``)."""
        p, n = self.p, obs.workers
        qps = self.qps(obs)
        want = min(max(math.ceil(qps / p.target_qps_per_replica - 1e-9), self.min_workers),
                   self.max_workers)
        why = f"qps={qps:.3g}, target={p.target_qps_per_replica:g}/replica"
        if want > self.target:
            self.up_count += 1
            self.down_count = 0
            if self.up_count >= self.up_threshold:
                self.up_count = 0
                self.target = want
        elif want < self.target:
            self.down_count += 1
            self.up_count = 0
            if self.down_count >= self.down_threshold:
                self.down_count = 0
                self.target = want
        else:
            self.up_count = self.down_count = 0
        desired = self.target
        if desired == 0 and n == 0 and obs.queue_len > 0 and p.from_zero_immediate:
            self.target = desired = 1
            why = f"{obs.queue_len} waiting at zero replicas"
        d = to_target(obs, desired, why, qps)
        if d.action != "none" or d.reason:
            return d
        if want != self.target:
            return Decision("none", 0, "blocked: " + ("upscale" if want > self.target else "downscale")
                            + " delay", qps)
        return NO_OP
