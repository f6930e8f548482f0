"""The ScaleGenAI autoscaler as DESIGN §4 reads the API's ``autoscaling_config`` knobs.

Per tick, in order (at most one action per tick): floor, scale from zero, scale to zero,
scale up, scale down. How a ``*_timeout_sec`` gates an action is a switch
(``timeout_semantics``), because the vendor documents names and defaults but not the algorithm:

- ``cooldown`` (default; AWS step scaling): act when the condition holds now and the last
  scale-up (for up) or the last action either way (for down) is at least the timeout ago.
- ``sustained`` (Ray Serve, SkyServe): act when the condition has held at every tick for the
  whole timeout; the clock restarts after acting.
- ``stabilization`` (Kubernetes HPA): every tick recommends a *desired count*; the policy
  moves to min(max(N, lowest recommendation over the last U s), highest over the last D s),
  as HPA's ``stabilizeRecommendationWithBehaviors`` does with its scale-up and scale-down
  stabilization windows (Kubernetes docs, "Horizontal Pod Autoscaling", section
  "Stabilization window", autoscaling/v2).

What a tick recommends is ``step``: ``one`` (N ± the step size, the vendor's one-worker
reading) or ``proportional`` (HPA's algorithm: desired = ceil(N × S / target), Kubernetes
docs, "Algorithm details"; the target is the upper bound when S is above it and the lower
bound when S is below it, so a scale-down aims back inside the band rather than at its edge).
"""

from __future__ import annotations

import difflib
import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sim.errors import ConfigError
from sim.policies.base import NO_OP, POLICIES, Decision, Observation


@dataclass(frozen=True)
class ScalegenParams:
    """The knobs of one deployment plus the simulator's reading switches."""

    upper_s: float
    lower_s: float
    up_timeout_s: float
    down_timeout_s: float
    to_zero_timeout_s: float
    min_workers: int
    timeout_semantics: str = "cooldown"
    scale_up_step: int = 1
    scale_down_step: int = 1
    idle_from: str = "done"
    step: str = "one"

    @classmethod
    def from_deployment(cls, deployment: Any, autoscaler: Any) -> ScalegenParams:
        """Read the create body's knobs and the scenario's ``autoscaler`` switches."""
        ac = deployment.autoscaling_config
        return cls(
            upper_s=float(ac.upper_allowed_latency_sec),
            lower_s=float(ac.lower_allowed_latency_sec),
            up_timeout_s=float(ac.scaling_up_timeout_sec),
            down_timeout_s=float(ac.scaling_down_timeout_sec),
            to_zero_timeout_s=float(ac.scale_to_zero_timeout_sec),
            min_workers=int(deployment.initial_worker_config.min_workers),
            timeout_semantics=autoscaler.timeout_semantics,
            scale_up_step=int(autoscaler.scale_up_step),
            scale_down_step=int(autoscaler.scale_down_step),
            idle_from=str(getattr(autoscaler, "idle_from", "done")),
            step=str(getattr(autoscaler, "step", "one")),
        )


@POLICIES.register("scalegen")
class ScalegenPolicy:
    """Latency-band autoscaler with cooldown / sustained / stabilisation timeouts."""

    name = "scalegen"

    def __init__(self, params: ScalegenParams, autoscaler: Any = None) -> None:
        self.p = params
        self._autoscaler = autoscaler
        self.last_up = -math.inf  # no scale-up has happened: the first may come at once
        self.last_action = 0.0  # creating the deployment counts as the first action
        self.up_since: float | None = None  # sustained: first tick of the current streak
        self.down_since: float | None = None
        self.history: deque[tuple[float, int]] = deque()  # stabilization: (t, recommendation)
        self.first_tick: float | None = None  # stabilization: windows fill from here

    @classmethod
    def check_params(cls, params: Mapping[str, Any], autoscaler: Any = None) -> None:
        """The scalegen policy takes no ``autoscaler.params``: any key is an error."""
        for key in params:
            # Its knobs live in the autoscaler section and the create body: point there.
            near = difflib.get_close_matches(str(key), _knob_names(autoscaler), n=1)
            hint = f"; did you mean autoscaler.{near[0]}?" if near else ""
            raise ConfigError(
                f"unknown parameter {key!r}: the scalegen policy takes no params (no key is "
                "valid here; its knobs are deployment.autoscaling_config and the autoscaler "
                f"section){hint}",
                field=f"autoscaler.params.{key}",
            )

    @classmethod
    def from_scenario(cls, deployment: Any, autoscaler: Any) -> ScalegenPolicy:
        """Build from the scenario's deployment body and ``autoscaler`` section."""
        cls.check_params(_params_of(autoscaler), autoscaler)
        return cls(ScalegenParams.from_deployment(deployment, autoscaler), autoscaler)

    def on_update(self, deployment: Any, time_s: float, immediate: bool) -> None:
        """Take the new knobs; an immediate scale-down also resets the cooldown timers."""
        if self._autoscaler is not None:
            self.p = ScalegenParams.from_deployment(deployment, self._autoscaler)
        if immediate:
            self.last_up = self.last_action = time_s
            self.up_since = self.down_since = None
            self.history.clear()
            self.first_tick = None

    def decide(self, obs: Observation) -> Decision:
        """One control-loop tick (DESIGN §4 steps 1-6)."""
        p, t, n = self.p, obs.time_s, obs.workers
        s = obs.statistic
        if n < p.min_workers:
            add = min(p.min_workers - n, obs.addable)
            if add <= 0:
                return Decision("none", 0, f"blocked: {obs.addable_limit}", s)
            return self._acted(Decision("floor", add, f"N={n}<min_workers={p.min_workers}", s), t)
        if n == 0 and obs.queue_len > 0:
            if obs.addable <= 0:
                return Decision("none", 0, f"blocked: {obs.addable_limit}", s)
            return self._acted(Decision("from_zero", 1, f"{obs.queue_len} waiting at N=0", s), t)
        if p.min_workers == 0 and n > 0 and obs.queue_len == 0:
            # Idle means nothing waiting or in flight (KEDA HTTP add-on counts pending
            # requests, Knative in-flight ones); idle_from: arrival times from the last arrival.
            if p.idle_from == "arrival":
                since, what = max(obs.last_arrival_s, 0.0), "no arrival"
            else:
                since, what = obs.idle_since_s, "idle"
            if t - since >= p.to_zero_timeout_s:
                return self._acted(
                    Decision("to_zero", -n, f"{what} for {t - since:.0f}s"
                             f">={p.to_zero_timeout_s:.0f}s", s),
                    t,
                )

        if n == 0:
            return NO_OP  # at zero with nothing waiting: only an arrival brings a worker back
        # S is NaN when the window holds no sample: nothing finished and (with count_waiting)
        # nothing waits. An empty window is no signal: never "above upper", and "below lower"
        # (idle) only when nothing waits at the gateway either.
        no_sample = math.isnan(s)
        want_up = not no_sample and s > p.upper_s
        want_down = (no_sample or s < p.lower_s) and obs.ready > max(p.min_workers, 1)
        # Capacity is never removed while requests queue (DESIGN §4 step 6), whatever the
        # window holds: during overload the window may be empty or stale.
        held = want_down and obs.queue_len > 0
        if held:
            want_down = False
        if p.timeout_semantics == "cooldown":
            d = self._cooldown(obs, want_up, want_down)
        elif p.timeout_semantics == "sustained":
            d = self._sustained(obs, want_up, want_down)
        else:
            d = self._stabilization(obs, want_up, want_down)
        if held and d is NO_OP:
            return Decision("none", 0, "blocked: requests waiting", s)
        return d

    # -- timeout semantics -------------------------------------------------------------------
    def _desired(self, obs: Observation, want_up: bool, want_down: bool) -> int:
        """The count this tick recommends (``step``): N ± step, or HPA's ceil(N × S / target)."""
        p, n, s = self.p, obs.workers, obs.statistic
        floor = max(p.min_workers, 1)
        if want_up:
            if p.step == "proportional":
                return max(n + 1, math.ceil(n * s / p.upper_s - 1e-9))
            return n + p.scale_up_step
        if want_down:
            drop = n - p.scale_down_step
            if p.step == "proportional" and not math.isnan(s) and p.lower_s > 0:
                drop = min(n - 1, math.ceil(n * s / p.lower_s - 1e-9))
            return max(floor, drop, n - (obs.ready - floor))
        return n

    def _up(self, obs: Observation, desired: int) -> Decision:
        if obs.addable <= 0:
            return Decision("none", 0, f"blocked: {obs.addable_limit}", obs.statistic)
        add = min(desired - obs.workers, obs.addable)
        why = f"S={obs.statistic:.3g}s>upper={self.p.upper_s:g}s"
        if self.p.step == "proportional":
            why += f", desired {desired}"
        return self._acted(Decision("scale_up", add, why, obs.statistic), obs.time_s)

    def _down(self, obs: Observation, desired: int) -> Decision:
        drop = min(obs.workers - desired, obs.ready - max(self.p.min_workers, 1))
        if math.isnan(obs.statistic):
            why = "window empty, nothing waiting"
        else:
            why = f"S={obs.statistic:.3g}s<lower={self.p.lower_s:g}s"
        if self.p.step == "proportional":
            why += f", desired {desired}"
        return self._acted(Decision("scale_down", -drop, why, obs.statistic), obs.time_s)

    def _acted(self, d: Decision, t: float) -> Decision:
        if d.delta > 0:
            self.last_up = t
        self.last_action = t
        return d

    def _cooldown(self, obs: Observation, want_up: bool, want_down: bool) -> Decision:
        t, p = obs.time_s, self.p
        if want_up:
            if t - self.last_up >= p.up_timeout_s:
                return self._up(obs, self._desired(obs, want_up, want_down))
            return Decision("none", 0, "blocked: scale-up cooldown", obs.statistic)
        if want_down:
            if t - self.last_action >= p.down_timeout_s:
                return self._down(obs, self._desired(obs, want_up, want_down))
            return Decision("none", 0, "blocked: scale-down cooldown", obs.statistic)
        return NO_OP

    def _sustained(self, obs: Observation, want_up: bool, want_down: bool) -> Decision:
        t, p = obs.time_s, self.p
        self.up_since = (self.up_since if self.up_since is not None else t) if want_up else None
        self.down_since = (
            (self.down_since if self.down_since is not None else t) if want_down else None
        )
        if want_up and self.up_since is not None:
            if t - self.up_since >= p.up_timeout_s:
                d = self._up(obs, self._desired(obs, want_up, want_down))
                if d.delta:
                    self.up_since = t
                return d
            return Decision("none", 0, "blocked: not sustained (up)", obs.statistic)
        if want_down and self.down_since is not None:
            if t - self.down_since >= p.down_timeout_s:
                self.down_since = t
                return self._down(obs, self._desired(obs, want_up, want_down))
            return Decision("none", 0, "blocked: not sustained (down)", obs.statistic)
        return NO_OP

    def _stabilization(self, obs: Observation, want_up: bool, want_down: bool) -> Decision:
        """Kubernetes HPA: desired = min(max(N, min of recent recommendations over U),
        max of recent recommendations over D).

        Until the policy has observed for a whole window, the missing part of it counts as a
        recommendation to stay at N (the deployment was created at its size), so neither
        direction acts before its window has filled.
        """
        t, p, n = obs.time_s, self.p, obs.workers
        rec = self._desired(obs, want_up, want_down)
        hist = self.history
        hist.append((t, rec))
        if self.first_tick is None:
            self.first_tick = t
        horizon = max(p.up_timeout_s, p.down_timeout_s)
        while hist and hist[0][0] <= t - horizon:
            hist.popleft()
        up_rec = min(r for s, r in hist if s > t - p.up_timeout_s or s == t)
        down_rec = max(r for s, r in hist if s > t - p.down_timeout_s or s == t)
        if t - self.first_tick < p.up_timeout_s:
            up_rec = min(up_rec, n)
        if t - self.first_tick < p.down_timeout_s:
            down_rec = max(down_rec, n)
        desired = min(max(n, up_rec), down_rec)
        if desired > n:
            return self._up(obs, desired)
        if desired < n and obs.ready > max(p.min_workers, 1) and not obs.queue_len:
            return self._down(obs, desired)
        if want_up:
            return Decision("none", 0, "blocked: stabilization window (up)", obs.statistic)
        if want_down:
            return Decision("none", 0, "blocked: stabilization window (down)", obs.statistic)
        return NO_OP


@POLICIES.register("fixed")
class FixedPolicy:
    """A fixed fleet of ``min_workers`` (or ``params.workers``): replaces lost workers, never scales."""

    name = "fixed"

    def __init__(self, workers: int) -> None:
        self.workers = workers

    @classmethod
    def check_params(cls, params: Mapping[str, Any], autoscaler: Any = None) -> None:
        """Only ``workers``, an integer >= 0, is allowed."""
        for key in params:
            if key != "workers":
                near = difflib.get_close_matches(str(key), ["workers"], n=1)
                hint = "; did you mean 'workers'?" if near else "; the only valid key is 'workers'"
                raise ConfigError(
                    f"unknown parameter {key!r} of the fixed policy{hint}",
                    field=f"autoscaler.params.{key}",
                )
        if "workers" in params:
            n = params["workers"]
            if isinstance(n, bool) or not isinstance(n, int) or n < 0:
                raise ConfigError(
                    f"expected an integer >= 0 (the fixed fleet size), got {n!r}",
                    field="autoscaler.params.workers",
                )

    @classmethod
    def from_scenario(cls, deployment: Any, autoscaler: Any) -> FixedPolicy:
        """``autoscaler.params.workers`` if given, else the deployment's ``min_workers``."""
        params = _params_of(autoscaler)
        cls.check_params(params, autoscaler)
        n = params.get("workers", deployment.initial_worker_config.min_workers)
        return cls(int(n))

    def on_update(self, deployment: Any, time_s: float, immediate: bool) -> None:
        """A fixed fleet follows ``min_workers`` of an update."""
        self.workers = int(deployment.initial_worker_config.min_workers)

    def decide(self, obs: Observation) -> Decision:
        """Keep exactly ``workers`` workers."""
        if obs.workers < self.workers:
            add = min(self.workers - obs.workers, obs.addable)
            if add <= 0:
                return Decision("none", 0, f"blocked: {obs.addable_limit}", obs.statistic)
            return Decision("floor", add, f"N={obs.workers}<fixed={self.workers}", obs.statistic)
        if obs.workers > self.workers:
            return Decision("scale_down", self.workers - obs.workers, "above fixed size")
        return NO_OP


def _params_of(autoscaler: Any) -> Mapping[str, Any]:
    """``autoscaler.params`` (an empty mapping when absent); anything else is an error."""
    params = getattr(autoscaler, "params", None)
    if params is None:
        return {}
    if not isinstance(params, Mapping):
        raise ConfigError(
            f"expected a mapping of parameters, got {type(params).__name__}",
            field="autoscaler.params",
        )
    return params


def _knob_names(autoscaler: Any) -> list[str]:
    """The fields of the autoscaler section other than ``policy``/``params``, for hints."""
    fields = getattr(type(autoscaler), "model_fields", None) or {}
    return [k for k in fields if k not in ("policy", "params")]


def resolve_policy(name: str, *, source: str | None = None) -> Any:
    """The policy class (factory) called ``name``: registered, or ``module:Attr`` imported.

    Raises :class:`ConfigError` on ``autoscaler.policy`` when the name is unknown, the module
    cannot be imported, or the attribute is not a policy (it needs ``from_scenario`` and ``decide``).
    """
    field = "autoscaler.policy"
    if ":" in name:
        module, _, attr = name.partition(":")
        if not module.strip() or not attr.strip():
            raise ConfigError(
                f"expected a registered policy name or module:Attr, got {name!r}",
                source=source, field=field,
            )
    try:
        factory = POLICIES.get(name)
    except KeyError as exc:
        raise ConfigError(str(exc.args[0]), source=source, field=field) from None
    except Exception as exc:  # noqa: BLE001 - importing user code can raise anything
        raise ConfigError(
            f"cannot import autoscaling policy {name!r}: {type(exc).__name__}: {exc}",
            source=source, field=field,
        ) from None
    missing = [m for m in ("from_scenario", "decide") if not callable(getattr(factory, m, None))]
    if missing:
        raise ConfigError(
            f"{name!r} is not an autoscaling policy: expected a class with a "
            f"from_scenario(deployment, autoscaler) classmethod and a decide(observation) "
            f"method; it has no {' or '.join(missing)}",
            source=source, field=field,
        )
    return factory


def build_policy(deployment: Any, autoscaler: Any, *, source: str | None = None) -> Any:
    """The policy named by ``autoscaler.policy``, bound to this deployment.

    ``source`` (the scenario file) goes into error messages. A policy class may define
    ``check_params(params, autoscaler)`` to validate ``autoscaler.params``; the built-in ones do.
    """
    factory = resolve_policy(autoscaler.policy, source=source)
    try:
        check = getattr(factory, "check_params", None)
        if callable(check):
            check(_params_of(autoscaler), autoscaler)
        return factory.from_scenario(deployment, autoscaler)
    except ConfigError as exc:
        if exc.source is not None or source is None:
            raise
        raise ConfigError(exc.detail, source=source, field=exc.field) from None
