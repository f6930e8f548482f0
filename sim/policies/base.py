"""The policy interface: an observation of the deployment in, a scaling decision out.

Policies are small objects built from their parameters, then bound to one run; they keep
their own timers (cooldowns, stabilisation windows) and nothing global. The engine applies a
decision as given; caps that belong to the world (max workers, price, throughput) reach the
policy as ``Observation.addable`` so that the policy can log *why* it did not act.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol

from sim.registry import Registry


@dataclass(frozen=True)
class Observation:
    """What the autoscaler sees at one tick."""

    time_s: float
    workers: int  # N: requested, provisioning, loading or ready (not draining)
    ready: int  # ready and accepting requests
    starting: int  # requested, provisioning or loading
    queue_len: int  # requests waiting at the gateway
    running: int  # requests on workers
    statistic: float  # latency statistic over the window (NaN when nothing finished)
    finished_in_window: int  # requests that finished in (t - window, t]
    arrivals_in_window: int  # requests that arrived in (t - window, t]
    window_s: float
    last_arrival_s: float  # time of the latest arrival (-inf before the first)
    min_workers: int
    addable: int  # workers that may be added now under max_workers, price and throughput caps
    addable_limit: str  # the cap that binds when addable is small ("" when none)
    price_per_hour_usd: float  # summed price of all non-terminated workers
    # Cumulative counts since t = 0, so a policy can form rates over its own look-back window
    # (SkyServe's QPS window, the SLA planner's interval) independent of time_window_sec.
    arrived_total: int = 0  # requests that arrived in [0, t]
    prompt_tokens_arrived: int = 0  # their prompt tokens
    output_tokens_arrived: int = 0  # their output tokens (as the trace gives them)
    # Start of the current idle spell: no request waiting or in flight since then and none
    # arrived (the KEDA HTTP add-on / Knative reading of idle); +inf while busy.
    idle_since_s: float = 0.0

    @property
    def in_flight(self) -> int:
        """Requests waiting at the gateway or running on workers (Knative's concurrency)."""
        return self.queue_len + self.running


@dataclass(frozen=True)
class Decision:
    """What to do: ``delta`` workers to add (+) or drain (-); ``to_zero`` drains everything."""

    action: str  # scale_up | scale_down | floor | from_zero | to_zero | none
    delta: int = 0
    reason: str = ""
    statistic: float = math.nan

    @property
    def logged(self) -> bool:
        """Ticks that acted or were blocked go to decisions.csv; plain no-ops do not."""
        return self.action != "none" or self.reason.startswith("blocked")


NO_OP = Decision("none")


class Policy(Protocol):
    """An autoscaling policy bound to one run."""

    name: str

    def decide(self, obs: Observation) -> Decision:
        """Map one observation to a decision."""

    def on_update(self, deployment: Any, time_s: float, immediate: bool) -> None:
        """A PUT /sg_inf/{id} body changed the deployment at ``time_s``."""


POLICIES: Registry[Any] = Registry("autoscaling policy")
