"""The scenario's ``autoscaler`` section: the policy and how it reads the API's knobs."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from sim.api.schema import Int
from sim.section import Metric, Section


class AutoscalerSpec(Section):
    """How the simulator reads the API's knobs where the vendor is silent (DESIGN.md §4)."""

    policy: str = Field(
        default="scalegen",
        description="scalegen | ray_serve | knative | hpa | skyserve | fixed | hindsight | module:Class.",
    )
    decision_interval_s: float = Field(
        default=10.0, gt=0, description="Seconds between autoscaler ticks."
    )
    metric: Metric = Field(
        default="auto",
        description="Latency the band is compared with; auto = ttft for llm, e2e for embedding.",
    )
    statistic: Literal["mean", "p50", "p90", "p95", "p99"] = Field(
        default="mean", description="Statistic of the metric over the time window."
    )
    count_waiting: bool = Field(
        default=True,
        description=(
            "Also count the current age of waiting requests in the statistic (a lower bound "
            "on their latency), so a stuck queue is seen before anything finishes."
        ),
    )
    idle_from: Literal["done", "arrival"] = Field(
        default="done",
        description=(
            "Scale to zero after scale_to_zero_timeout_sec idle, timed from the moment nothing "
            "waits or runs (done; KEDA HTTP add-on, Knative) or from the last arrival (arrival)."
        ),
    )
    timeout_semantics: Literal["cooldown", "sustained", "stabilization"] = Field(
        default="cooldown",
        description="cooldown (time since last action) | sustained (condition held for the timeout) | stabilization (HPA).",
    )
    step: Literal["one", "proportional"] = Field(
        default="one",
        description=(
            "What a tick recommends: one (N +/- scale_up_step / scale_down_step) | proportional "
            "(Kubernetes HPA: ceil(N x S / upper) up, ceil(N x S / lower) down)."
        ),
    )
    max_workers: Int = Field(default=100, ge=1, description="Most workers the autoscaler will run.")
    scale_up_step: Int = Field(default=1, ge=1, description="Workers added per scale-up.")
    scale_down_step: Int = Field(default=1, ge=1, description="Workers drained per scale-down.")
    throughput_cap: Literal["scale", "admission"] = Field(
        default="scale",
        description="max_throughput_rate stops scale-ups (scale) or rejects requests at the gateway (admission).",
    )
    params: dict[str, Any] = Field(
        default_factory=dict, description="Parameters of non-scalegen policies."
    )

    def resolved_metric(self, inf_type: str) -> str:
        """The metric to use: ``metric``, or ttft for llm and e2e for embedding when auto."""
        if self.metric != "auto":
            return self.metric
        return "e2e" if inf_type == "embedding" else "ttft"
