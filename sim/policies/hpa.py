"""Kubernetes Horizontal Pod Autoscaler (HPA v2), and KEDA's idle scale to zero on top of it.

Source: Kubernetes v1.30 docs "Horizontal Pod Autoscaling" (sections "Algorithm details" and
"Configurable scaling behavior", defaults of ``spec.behavior``), and
``pkg/controller/podautoscaler/horizontal.go`` (``normalizeDesiredReplicasWithBehaviors``,
``calculateScaleUpLimitWithScalingRules``, ``calculateScaleDownLimitWithBehaviors``).
KEDA: KEDA v2.14 docs "Scaling Deployments" / ``ScaledObject`` specification
(``pollingInterval`` 30 s, ``cooldownPeriod`` 300 s, ``minReplicaCount`` 0, activation
thresholds) and the KEDA HTTP add-on v0.8 docs (the scaling metric is pending plus in-flight
requests at the interceptor, ``targetPendingRequests`` 100).

HPA, every sync period (15 s in Kubernetes; here ``autoscaler.decision_interval_s``):

1. Metric per ready worker m = total / ready (``metric: concurrency`` = requests in flight,
   running or waiting; ``rps`` = arrivals per second since the last tick); ratio = m / target.
2. Within tolerance (|ratio − 1| ≤ 0.1) the recommendation is N; otherwise
   ceil(ratio × ready). Workers still starting have no metric: on a scale-up they count as 0
   usage, on a scale-down as exactly at target (the docs' "missing metrics" rule); if that
   flips the direction or falls inside the tolerance, the recommendation is N.
3. Stabilization over *desired counts*: the recommendation is max(N, min of the
   recommendations in the last ``scale_up_stabilization_s``) capped at the max of the
   recommendations in the last ``scale_down_stabilization_s`` (defaults 0 s and 300 s).
4. Rate policies over a period: up, max of (+4 pods, +100 %) per 15 s; down, −100 % per 15 s
   (``select: max`` = the policy allowing the largest change); counts relative to the
   replicas at the start of the period.
5. Clamp to [max(min_workers, 1), max_workers]: HPA's minReplicas is at least 1.

KEDA: when ``min_workers == 0`` the deployment goes to zero once the metric has been at or
below ``activation_threshold`` for ``cooldown_period_s`` since it was last active, and comes
back to one worker as soon as it exceeds it (scale from zero is KEDA's, not the HPA's); in
between, the HPA above runs with KEDA's default target (100 pending + in-flight per worker).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sim.policies.base import NO_OP, POLICIES, Decision, Observation
from sim.policies.common import knob, params_of, parse_params, to_target


@dataclass(frozen=True)
class HpaParams:
    """``spec.metrics`` target and ``spec.behavior`` (Kubernetes v1.30 defaults)."""

    metric: str = knob("concurrency", "concurrency (in-flight per worker) or rps (arrivals/s per worker)",
                       choices=("concurrency", "rps"))
    target_value: float = knob(70.0, "target average value of the metric per worker "
                               "(AverageValue; the simulator's default, HPA has none)", gt=0)
    tolerance: float = knob(0.1, "no change while |ratio - 1| <= tolerance", ge=0)
    scale_up_stabilization_s: float = knob(0.0, "scaleUp.stabilizationWindowSeconds", ge=0)
    scale_down_stabilization_s: float = knob(300.0, "scaleDown.stabilizationWindowSeconds", ge=0)
    scale_up_pods: int = knob(4, "scaleUp Pods policy: pods per period (0 = no such policy)", ge=0)
    scale_up_percent: float = knob(100.0, "scaleUp Percent policy: % per period (0 = none)", ge=0)
    scale_up_period_s: float = knob(15.0, "scaleUp policies' periodSeconds", gt=0)
    scale_up_select: str = knob("max", "scaleUp selectPolicy", choices=("max", "min", "disabled"))
    scale_down_pods: int = knob(0, "scaleDown Pods policy: pods per period (0 = no such policy)", ge=0)
    scale_down_percent: float = knob(100.0, "scaleDown Percent policy: % per period (0 = none)", ge=0)
    scale_down_period_s: float = knob(15.0, "scaleDown policies' periodSeconds", gt=0)
    scale_down_select: str = knob("max", "scaleDown selectPolicy", choices=("max", "min", "disabled"))


@dataclass(frozen=True)
class KedaParams(HpaParams):
    """HPA knobs plus KEDA's ``ScaledObject`` activation and cooldown (KEDA v2.14 defaults)."""

    target_value: float = knob(100.0, "target pending + in-flight requests per worker "
                               "(HTTP add-on targetPendingRequests)", gt=0)
    activation_threshold: float = knob(0.0, "active while the metric exceeds this "
                                       "(activationTargetValue)", ge=0)
    cooldown_period_s: float = knob(300.0, "idle time before scaling to zero (cooldownPeriod)", ge=0)


@POLICIES.register("hpa")
class HpaPolicy:
    """Kubernetes HPA: proportional desired count, tolerance, stabilization, rate policies."""

    name = "hpa"
    params_cls: type[HpaParams] = HpaParams

    def __init__(self, params: HpaParams, min_workers: int = 1, max_workers: int = 100) -> None:
        self.p = params
        self.min_workers = min_workers
        self.max_workers = max_workers
        self.recs: deque[tuple[float, int]] = deque()  # (t, raw recommendation)
        self.events: deque[tuple[float, int]] = deque()  # (t, applied change)
        self._last_arrived: int | None = None
        self._last_t = 0.0

    @classmethod
    def check_params(cls, params: Mapping[str, Any], autoscaler: Any = None) -> None:
        """Validate ``autoscaler.params`` against the policy's knob dataclass."""
        parse_params(cls.name, cls.params_cls, params)

    @classmethod
    def from_scenario(cls, deployment: Any, autoscaler: Any) -> HpaPolicy:
        """Knobs from ``autoscaler.params``; minReplicas from ``min_workers``."""
        p = parse_params(cls.name, cls.params_cls, params_of(autoscaler))
        return cls(p, int(deployment.initial_worker_config.min_workers),
                   int(getattr(autoscaler, "max_workers", 100)))

    def on_update(self, deployment: Any, time_s: float, immediate: bool) -> None:
        """minReplicas follows ``min_workers`` of an update."""
        self.min_workers = int(deployment.initial_worker_config.min_workers)

    # -- the metric ------------------------------------------------------------------------------
    def metric_total(self, obs: Observation) -> float:
        """The metric summed over the deployment (in-flight requests, or arrivals/s)."""
        if self.p.metric == "concurrency":
            return float(obs.in_flight)
        last, dt = self._last_arrived, obs.time_s - self._last_t
        self._last_arrived, self._last_t = obs.arrived_total, obs.time_s
        return 0.0 if last is None or dt <= 0 else (obs.arrived_total - last) / dt

    def recommend(self, obs: Observation, total: float) -> tuple[int, str]:
        """The raw desired count (step 2) and why."""
        p, n, ready = self.p, obs.workers, obs.ready
        if ready == 0:
            return n, "no ready worker reports the metric"
        ratio = total / ready / p.target_value
        if abs(ratio - 1) <= p.tolerance:
            return n, f"ratio={ratio:.3g} within tolerance"
        pods = ready
        if obs.starting:
            # Missing metrics: 0 usage on a scale-up, exactly the target on a scale-down.
            pods = ready + obs.starting
            filled = total if ratio > 1 else total + obs.starting * p.target_value
            new = filled / pods / p.target_value
            if abs(new - 1) <= p.tolerance or (new > 1) != (ratio > 1):
                return n, f"ratio={new:.3g} with starting workers: no change"
            ratio = new
        return math.ceil(ratio * pods - 1e-9), f"{p.metric}={total:.3g}, ratio={ratio:.3g}"

    def stabilize(self, t: float, n: int, raw: int) -> int:
        """Step 3: the most conservative count over the stabilization windows."""
        p = self.p
        up_rec = down_rec = raw
        for ts, r in self.recs:
            if ts > t - p.scale_up_stabilization_s:
                up_rec = min(up_rec, r)
            if ts > t - p.scale_down_stabilization_s:
                down_rec = max(down_rec, r)
        self.recs.append((t, raw))
        keep = max(p.scale_up_stabilization_s, p.scale_down_stabilization_s)
        while self.recs and self.recs[0][0] <= t - keep:
            self.recs.popleft()
        out = n
        if out < up_rec:
            out = up_rec
        if out > down_rec:
            out = down_rec
        return out

    def rate_limit(self, t: float, n: int, desired: int) -> int:
        """Step 4: the scaling policies' limits relative to the start of each period."""
        p = self.p
        if desired > n:
            if p.scale_up_select == "disabled":
                return n
            added = sum(d for ts, d in self.events if d > 0 and ts > t - p.scale_up_period_s)
            start = n - added
            limits = []
            if p.scale_up_pods:
                limits.append(start + p.scale_up_pods)
            if p.scale_up_percent:
                limits.append(math.ceil(start * (1 + p.scale_up_percent / 100)))
            if not limits:
                return desired
            cap = max(limits) if p.scale_up_select == "max" else min(limits)
            return max(min(desired, cap), n)
        if desired < n:
            if p.scale_down_select == "disabled":
                return n
            removed = -sum(d for ts, d in self.events if d < 0 and ts > t - p.scale_down_period_s)
            start = n + removed
            limits = []
            if p.scale_down_pods:
                limits.append(start - p.scale_down_pods)
            if p.scale_down_percent:
                limits.append(int(start * (1 - p.scale_down_percent / 100)))
            if not limits:
                return desired
            floor = min(limits) if p.scale_down_select == "max" else max(limits)
            return min(max(desired, floor), n)
        return desired

    def hpa_step(self, obs: Observation, total: float, floor: int) -> Decision:
        """Steps 2-5 and the decision that applies them."""
        t, n = obs.time_s, obs.workers
        if n < floor:
            d = to_target(obs, floor, f"N<minReplicas={floor}", total)
            self._applied(t, d.delta)
            return d
        raw, why = self.recommend(obs, total)
        stabilized = self.stabilize(t, n, raw)
        desired = min(max(self.rate_limit(t, n, stabilized), floor), self.max_workers)
        if desired == n:
            if raw < n and stabilized == n:
                return Decision("none", 0, "blocked: stabilization window (down)", total)
            if raw > n and stabilized == n:
                return Decision("none", 0, "blocked: stabilization window (up)", total)
            if raw > n:
                return Decision("none", 0, "blocked: max_workers", total)
            return NO_OP
        if desired != raw:
            why += f"; raw={raw} limited by stabilization/rate policies/bounds"
        d = to_target(obs, desired, why, total)
        self._applied(t, d.delta)
        return d

    def _applied(self, t: float, delta: int) -> None:
        if delta:
            self.events.append((t, delta))
        horizon = max(self.p.scale_up_period_s, self.p.scale_down_period_s)
        while self.events and self.events[0][0] <= t - horizon:
            self.events.popleft()

    def decide(self, obs: Observation) -> Decision:
        """One HPA sync: the floor (minReplicas >= 1) first, then steps 1-5."""
        return self.hpa_step(obs, self.metric_total(obs), max(self.min_workers, 1))


@POLICIES.register("keda")
class KedaPolicy(HpaPolicy):
    """KEDA: the HPA plus activation from zero and an idle cooldown to zero."""

    name = "keda"
    params_cls = KedaParams

    def __init__(self, params: HpaParams, min_workers: int = 0, max_workers: int = 100) -> None:
        super().__init__(params, min_workers, max_workers)
        self.last_active = 0.0  # creating the ScaledObject starts the cooldown clock

    def decide(self, obs: Observation) -> Decision:
        """Activation and cooldown while ``min_workers == 0``; the HPA otherwise."""
        p = self.p
        assert isinstance(p, KedaParams)
        total = self.metric_total(obs)
        t, n = obs.time_s, obs.workers
        active = total > p.activation_threshold
        if active:
            self.last_active = t
        if self.min_workers > 0:
            return self.hpa_step(obs, total, self.min_workers)
        if n == 0:
            if active:
                return to_target(obs, 1, f"activated: metric={total:.3g}>{p.activation_threshold:g}", total)
            return NO_OP
        if not active and t - self.last_active >= p.cooldown_period_s:
            self.recs.clear()
            return to_target(obs, 0, f"idle {t - self.last_active:.0f}s>=cooldown "
                             f"{p.cooldown_period_s:g}s", total)
        return self.hpa_step(obs, total, 1)
