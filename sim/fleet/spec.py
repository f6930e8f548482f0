"""The scenario's ``fleet`` section: catalog, cold starts, spot market and on-prem nodes."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, field_validator, model_validator

from sim.api.schema import GpuName, Int
from sim.section import Section

# Spot notice periods per cloud (DESIGN.md §5); other clouds get the shortest, the cautious choice.
SPOT_NOTICE_S: dict[str, float] = {"aws": 120.0, "gcp": 30.0, "azure": 30.0}
DEFAULT_SPOT_NOTICE_S = 30.0




def _stage_shorthand(value: object) -> object:
    """Let users write a constant stage time as a bare number (``provision_s: 90``)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return {"median": value, "sigma": 0}
    return value


class StageDist(Section):
    """A lognormal stage duration given by its median and log-standard deviation (sigma 0 = constant)."""

    median: float = Field(ge=0, allow_inf_nan=False, description="Median duration in seconds.")
    sigma: float = Field(
        default=0.0,
        ge=0,
        allow_inf_nan=False,
        description="Standard deviation of log(duration); 0 = always the median.",
    )


# In scenario files a stage may also be a bare number (a constant).
StageField = Annotated[StageDist, BeforeValidator(_stage_shorthand)]


class WarmPoolSpec(Section):
    """Cold-start stages of a scale-up from ScaleGenAI's shared warm pool (``enable_speedup_shared``)."""

    provision_s: StageField = Field(
        default_factory=lambda: StageDist(median=0, sigma=0),
        description="VM allocation (none: the VM is warm).",
    )
    image_pull_s: StageField = Field(
        default_factory=lambda: StageDist(median=0, sigma=0),
        description="Container image pull (cached).",
    )
    weight_download_gb_per_s: float = Field(
        default=5.0,
        gt=0,
        description="Bandwidth for loading the weights (GB/s), from a local cache.",
    )
    engine_start_s: StageField = Field(
        default_factory=lambda: StageDist(median=30, sigma=0.3),
        description="Inference engine start.",
    )


class ColdStartSpec(Section):
    """Cold-start stages of a fresh worker: provisioning, image pull, weight download, engine start."""

    provision_s: StageField = Field(
        default_factory=lambda: StageDist(median=90, sigma=0.6),
        description="VM allocation time (s, lognormal).",
    )
    image_pull_s: StageField = Field(
        default_factory=lambda: StageDist(median=120, sigma=0.4),
        description="Container image pull time (s, lognormal).",
    )
    weight_download_gb_per_s: float = Field(
        default=0.5,
        gt=0,
        description="Bandwidth for downloading the model weights (GB/s); time = weights_gb / this.",
    )
    engine_start_s: StageField = Field(
        default_factory=lambda: StageDist(median=60, sigma=0.3),
        description="Inference engine start time (s, lognormal).",
    )
    adapter_load_s: StageField = Field(
        default_factory=lambda: StageDist(median=15, sigma=0.3),
        description="Loading a fine-tune on top of its base model (deployments with base_model), "
        "s, lognormal; also paid from the warm pool.",
    )
    warm_pool: WarmPoolSpec = Field(
        default_factory=WarmPoolSpec, description="Stages when starting from the shared warm pool."
    )


class PreemptionSpec(Section):
    """How spot workers get preempted."""

    kind: Literal["none", "hazard", "trace"] = Field(
        default="hazard",
        description="none; hazard (exponential time to preemption per worker); trace (per-zone capacity series).",
    )
    mean_time_to_preemption_s: float = Field(
        default=10800.0,
        gt=0,
        description="Mean time to preemption of a spot worker (hazard model), seconds.",
    )
    trace_path: str | list[str] | None = Field(
        default=None,
        description="Spot capacity trace (kind: trace): a JSON file, a list of them or a folder, "
        "one zone per file named <zone>_...json; relative to the scenario file.",
    )
    polarity: Literal["available", "preempted"] = Field(
        default="available",
        description="How a 0/1 trace reads: 1 = capacity available (default) or 1 = preempted.",
    )
    repeat: bool = Field(
        default=True, description="Tile the trace when the run is longer than it (else hold the last value)."
    )
    time_scale: float = Field(
        default=1.0, gt=0, description="Stretch (>1) or compress (<1) the trace's time axis."
    )
    binary_capacity: int = Field(
        default=1,
        ge=1,
        description="Instances one 'available' tick of a 0/1 trace stands for.",
    )

    @model_validator(mode="after")
    def _trace_needs_path(self) -> PreemptionSpec:
        """A trace-driven model needs its trace."""
        if self.kind == "trace" and not self.trace_path:
            raise ValueError("kind 'trace' needs trace_path (a spot capacity trace file)")
        return self


class SpotSpec(Section):
    """The spot market: preemptions, notice period, what happens to preempted requests."""

    preemption: PreemptionSpec = Field(
        default_factory=PreemptionSpec, description="Preemption model."
    )
    notice_s: float | None = Field(
        default=None,
        ge=0,
        description="Preemption notice in seconds; null = the cloud's (aws 120, gcp 30, azure 30).",
    )
    on_preempt: Literal["retry", "fail"] = Field(
        default="retry",
        description="Unfinished requests of a preempted worker: retry (back to the queue head) or fail.",
    )
    spot_acquire_timeout_s: float = Field(
        default=300.0,
        ge=0,
        description="Wait this long for spot capacity before falling back to on-demand.",
    )
    on_demand_base: int = Field(
        default=0,
        ge=0,
        description="Keep this many workers on-demand even when spot is allowed (SkyServe's "
        "base on-demand fallback); spot only above it.",
    )
    zone_price: str = Field(
        default="cheapest",
        min_length=1,
        description="Which zone's spot price a spot worker pays: cheapest (the cheapest zone's "
        "catalog sample), median (the zone at the median spot price of that instance type, so "
        "one outlier zone does not decide) or a zone id (e.g. us-central1-a).",
    )
    counterfactual: bool = Field(
        default=True,
        description="With allow_spot_instances: also run the scenario with spot off on the same "
        "seed, and report spot savings and the latency change against it (doubles the run time).",
    )
    return_to_spot: bool = Field(
        default=True,
        description="When spot capacity comes back, replace on-demand fallback workers by spot "
        "ones: start the spot worker, drain the on-demand one once it is ready (SkyServe's "
        "dynamic fallback).",
    )

    def resolved_notice_s(self, cloud: str) -> float:
        """The notice period for ``cloud``: the explicit value, else the cloud's default."""
        if self.notice_s is not None:
            return self.notice_s
        return SPOT_NOTICE_S.get(cloud.lower(), DEFAULT_SPOT_NOTICE_S)


class OnPremNode(Section):
    """An on-prem node: its id (as in ``on_prem_node_ids``), GPU type and GPU count."""

    id: str = Field(
        min_length=1, description="Node id, referenced by initial_worker_config.on_prem_node_ids."
    )
    gpu: GpuName = Field(description="GPU type of the node.")
    gpus: Int = Field(ge=1, description="Number of GPUs on the node.")


class FleetSpec(Section):
    """Assumptions about the world that the API does not carry: catalog, cold starts, spot, on-prem."""

    catalog: str = Field(
        default="builtin", description="GPU/instance/price catalog: builtin or a path."
    )
    price_overrides: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Catalog rows to replace or add, applied in order, e.g. {cloud: AWS, "
        "instance_type: p4d.24xlarge, on_demand_usd_per_h: 18.0} (all zones unless region/zone "
        "is given; spot_usd_per_h: null removes spot); columns as in docs/catalog.md.",
    )
    cold_start: ColdStartSpec = Field(
        default_factory=ColdStartSpec, description="Cold-start stage model."
    )
    billing_granularity_s: float = Field(
        default=1.0,
        gt=0,
        description="Billing rounds each worker's billed time up to a multiple of this (s).",
    )
    on_prem_gpu_hour_usd: float = Field(
        default=0.0, ge=0, description="Cost of one on-prem GPU-hour (USD)."
    )
    on_prem_nodes: list[OnPremNode] = Field(
        default_factory=list, description="On-prem nodes available to the deployment."
    )
    spot: SpotSpec = Field(default_factory=SpotSpec, description="Spot market model.")

    @field_validator("on_prem_nodes")
    @classmethod
    def _unique_ids(cls, nodes: list[OnPremNode]) -> list[OnPremNode]:
        """Node ids must be unique, since the deployment refers to them by id."""
        ids = [n.id for n in nodes]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"duplicate node ids: {', '.join(dupes)}")
        return nodes
