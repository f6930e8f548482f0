"""Policies that read the whole trace in advance: fixed fleets sized at the peak or the mean
load, and the replay of the hindsight-optimal schedule (:mod:`sim.bench.hindsight`).

They are yardsticks, not autoscalers: no real system knows its future load. Sizes come from the
SLO-feasible demand per bucket (:mod:`sim.bench.demand`): ``fixed_peak`` holds
ceil(max need), ``fixed_mean`` ceil(mean need) workers for the whole run; ``hindsight`` sets
the worker count of each bucket to the MILP's schedule (which already requests workers one
cold start ahead).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sim.policies.base import NO_OP, POLICIES, Decision, Observation
from sim.policies.common import knob, params_of, parse_params, to_target


@dataclass(frozen=True)
class OracleParams:
    """How the trace is turned into worker counts."""

    bucket_s: float = knob(60.0, "time bucket of the demand and of the schedule (s)", gt=0)
    utilisation: float | None = knob(
        None, "SLO-feasible share of full-batch throughput (null = measured by bisection)", gt=0)
    utilisation_by_shape: str = knob(
        "", "u* per worker shape, as '<gpus>x<gpu>=u,...' (overrides utilisation for those "
        "shapes; a shape named by neither is measured)")
    time_limit_s: float = knob(30.0, "hindsight: HiGHS time limit (s)", gt=0)


def parse_shape_utilisations(text: str) -> dict[str, float]:
    """``'4xA100-80GB=0.9,8xA100=1.02'`` as a mapping; ConfigError naming the field and the
    bad item."""
    from sim.errors import ConfigError

    out: dict[str, float] = {}
    for item in (x.strip() for x in text.split(",")):
        if not item:
            continue
        label, eq, value = item.partition("=")
        try:
            u = float(value) if eq else math.nan
        except ValueError:
            u = math.nan
        if not label.strip() or not (math.isfinite(u) and u > 0):
            raise ConfigError(f"expected '<gpus>x<gpu>=<number > 0>', got {item!r}",
                              field="autoscaler.params.utilisation_by_shape")
        out[label.strip()] = u
    return out


class _Oracle:
    """Shared construction: knobs from ``autoscaler.params``, the plan from :meth:`bind`."""

    name = "oracle"

    def __init__(self, params: OracleParams) -> None:
        self.p = params
        self.plan: Any = None
        self.facts: dict[str, Any] = {}

    @classmethod
    def check_params(cls, params: Mapping[str, Any], autoscaler: Any = None) -> None:
        """Validate ``autoscaler.params`` against :class:`OracleParams`."""
        parse_shape_utilisations(parse_params(cls.name, OracleParams, params).utilisation_by_shape)

    @classmethod
    def from_scenario(cls, deployment: Any, autoscaler: Any) -> Any:
        """Knobs only; the trace arrives with :meth:`bind`."""
        return cls(parse_params(cls.name, OracleParams, params_of(autoscaler)))

    def demand(self, scenario: Any, workload: Any) -> Any:
        """Per-bucket SLO-feasible need of ready workers."""
        from sim.bench.demand import bucket_demand

        return bucket_demand(scenario, workload, self.p.bucket_s, utilisation=self.p.utilisation,
                             utilisations=parse_shape_utilisations(self.p.utilisation_by_shape))

    def on_update(self, deployment: Any, time_s: float, immediate: bool) -> None:
        """The plan was made for the whole run: updates do not change it."""

    def target(self, t: float) -> int:
        """Workers wanted at ``t``."""
        raise NotImplementedError

    def decide(self, obs: Observation) -> Decision:
        """Move N to the plan's count."""
        if self.plan is None:
            raise RuntimeError(f"{self.name}: bind(scenario, workload) was not called")
        d = to_target(obs, self.target(obs.time_s), "plan")
        return d if d.action != "none" or d.reason else NO_OP


@POLICIES.register("fixed_peak")
class FixedPeakPolicy(_Oracle):
    """A fixed fleet sized for the peak bucket's SLO-feasible demand."""

    name = "fixed_peak"

    def bind(self, scenario: Any, workload: Any) -> None:
        """Size the fleet from the trace."""
        dem = self.demand(scenario, workload)
        self.plan = max(math.ceil(float(dem.need.max()) - 1e-9), 1) if len(dem.need) else 1
        self.facts = {"workers": self.plan, "utilisation": dem.utilisation}

    def target(self, t: float) -> int:
        """The peak size, all run long."""
        return int(self.plan)


@POLICIES.register("fixed_mean")
class FixedMeanPolicy(FixedPeakPolicy):
    """A fixed fleet sized for the mean SLO-feasible demand (under-provisioned at peaks)."""

    name = "fixed_mean"

    def bind(self, scenario: Any, workload: Any) -> None:
        """Size the fleet from the trace."""
        dem = self.demand(scenario, workload)
        self.plan = max(math.ceil(float(dem.need.mean()) - 1e-9), 1) if len(dem.need) else 1
        self.facts = {"workers": self.plan, "utilisation": dem.utilisation}


@POLICIES.register("hindsight")
class HindsightPolicy(_Oracle):
    """Replays the hindsight-optimal schedule of worker counts per bucket."""

    name = "hindsight"

    def bind(self, scenario: Any, workload: Any) -> None:
        """Solve the MILP for this trace."""
        from sim.bench.hindsight import solve

        self.plan = solve(scenario, workload, bucket_s=self.p.bucket_s,
                          time_limit_s=self.p.time_limit_s,
                          demand=self.demand(scenario, workload))
        self.facts = self.plan.summary()

    def target(self, t: float) -> int:
        """The schedule's count for the bucket holding ``t``."""
        return int(self.plan.workers_at(t))
