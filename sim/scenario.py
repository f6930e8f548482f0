"""The scenario: one frozen, validated description of a simulation run, and its loaders.

A scenario is a YAML file (or a create-request JSON plus a trace) with the sections of
DESIGN.md §3.1. Loading is ``read -> apply --set overrides -> pydantic validation`` and every
problem becomes one :class:`~sim.errors.ConfigError` naming the file, the dotted field path,
what was given and what was expected. Checks that need the model and GPU catalogs (does the
worker shape hold the model?) are a separate step, :func:`validate_scenario`, which the CLI and
``simulate`` call before running.

Relative paths inside a scenario (trace files, catalogs, profiles, spot traces) resolve against
the scenario file's folder; when nothing exists there, against the repository root (the
nearest folder above the scenario file that holds ``pyproject.toml`` or ``.git``), so that the
design's ``../shared/...`` paths work from ``scenarios/`` as well as from the root.
"""

from __future__ import annotations

import copy
import difflib
import importlib
import json
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from sim.api.schema import (
    MASK,
    CreateBody,
    GpuName,
    Int,
    UpdateBody,
    apply_update,
    config_error_from_validation,
    expand_types,
    is_model,
    model_keys,
    parse_create,
)
from sim.errors import ConfigError, SimError
from sim.paths import resolve_path
from sim.workload.spec import WorkloadSpec

__all__ = [
    "AutoscalerSpec",
    "ColdStartSpec",
    "FleetSpec",
    "GatewaySpec",
    "OnPremNode",
    "PreemptionSpec",
    "Scenario",
    "ScheduledUpdate",
    "ServingSpec",
    "SimSpec",
    "SloSpec",
    "SpotSpec",
    "StageDist",
    "WarmPoolSpec",
    "apply_overrides",
    "check_updates",
    "load_create_body",
    "load_scenario",
    "resolve_path",
    "resolved_dict",
    "scenario_from_create_body",
    "scenario_from_dict",
    "validate_scenario",
]

# Spot notice periods per cloud (DESIGN.md §5); other clouds get the shortest, the cautious choice.
SPOT_NOTICE_S: dict[str, float] = {"aws": 120.0, "gcp": 30.0, "azure": 30.0}
DEFAULT_SPOT_NOTICE_S = 30.0

Metric = Literal["auto", "ttft", "e2e", "queue"]


class _Section(BaseModel):
    """Shared config of scenario sections: immutable, unknown keys are errors."""

    model_config = ConfigDict(frozen=True, extra="forbid")


# --- fleet ----------------------------------------------------------------------------------------


def _stage_shorthand(value: object) -> object:
    """Let users write a constant stage time as a bare number (``provision_s: 90``)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return {"median": value, "sigma": 0}
    return value


class StageDist(_Section):
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


class WarmPoolSpec(_Section):
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


class ColdStartSpec(_Section):
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


class PreemptionSpec(_Section):
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


class SpotSpec(_Section):
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

    def resolved_notice_s(self, cloud: str) -> float:
        """The notice period for ``cloud``: the explicit value, else the cloud's default."""
        if self.notice_s is not None:
            return self.notice_s
        return SPOT_NOTICE_S.get(cloud.lower(), DEFAULT_SPOT_NOTICE_S)


class OnPremNode(_Section):
    """An on-prem node: its id (as in ``on_prem_node_ids``), GPU type and GPU count."""

    id: str = Field(
        min_length=1, description="Node id, referenced by initial_worker_config.on_prem_node_ids."
    )
    gpu: GpuName = Field(description="GPU type of the node.")
    gpus: Int = Field(ge=1, description="Number of GPUs on the node.")


class FleetSpec(_Section):
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


# --- serving, gateway, autoscaler -----------------------------------------------------------------


class ServingSpec(_Section):
    """The performance model of a worker."""

    kind: Literal["auto", "llm", "embedding", "fixed", "exponential", "lognormal"] = Field(
        default="auto",
        description="Service model; auto = llm or embedding from deployment.inf_type; fixed/exponential/lognormal are queueing models.",
    )
    mode: Literal["fast", "exact"] = Field(
        default="fast",
        description="llm model: fast (event skipping) or exact (an event per iteration).",
    )
    profile: str = Field(
        default="builtin",
        description="Performance profiles: builtin or a path to a CSV/YAML profile.",
    )
    max_batch: Int = Field(default=256, ge=1, description="Most requests a worker runs at once.")
    max_model_len: Int | None = Field(
        default=None,
        ge=0,
        description="Longest prompt + output a request may have (vLLM's --max-model-len); "
        "longer ones are rejected on arrival (failed, too_large). null = the model's context "
        "length (e.g. 8192 for Llama-3-8B, 131072 for Llama-3.1), 0 = no limit.",
    )
    gpu_memory_utilization: float = Field(
        default=0.9,
        gt=0,
        le=1,
        description="Share of GPU memory the engine may use (weights + KV cache), in (0, 1].",
    )
    embedding_batch_tokens: Int = Field(
        default=16384, ge=1, description="Token budget of one embedding batch."
    )
    mean_s: float = Field(
        default=1.0, gt=0, description="Mean service time of the queueing models (s)."
    )
    cv: float = Field(
        default=1.0, ge=0, description="Coefficient of variation of the lognormal service time."
    )

    def resolved_kind(self, inf_type: str) -> str:
        """The service model to use: ``kind``, or llm/embedding from ``inf_type`` when auto."""
        if self.kind != "auto":
            return self.kind
        return "embedding" if inf_type == "embedding" else "llm"


class GatewaySpec(_Section):
    """The gateway in front of the workers."""

    request_timeout_s: float = Field(
        default=600.0,
        gt=0,
        description="A request waiting longer than this fails with reason timeout (s).",
    )
    network_rtt_s: float = Field(
        default=0.0,
        ge=0,
        description="Round trip added to requests served outside the gateway's cloud/region (s).",
    )
    admission_burst_s: float = Field(
        default=10.0,
        gt=0,
        description="With autoscaler.throughput_cap: admission, the token bucket holds this many "
        "seconds of max_throughput_rate (output tokens) as burst.",
    )


class AutoscalerSpec(_Section):
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
        default=False,
        description="Also count the current age of waiting requests in the statistic.",
    )
    timeout_semantics: Literal["cooldown", "sustained", "stabilization"] = Field(
        default="cooldown",
        description="cooldown (time since last action) | sustained (condition held for the timeout) | stabilization (HPA).",
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


class ScheduledUpdate(_Section):
    """A ``PUT /sg_inf/{id}`` call applied at a time of the run."""

    at_s: float = Field(ge=0, allow_inf_nan=False, description="Simulated time of the update (s).")
    body: UpdateBody = Field(description="The update body, exactly as sent to the API.")


class SloSpec(_Section):
    """The latency objective reported as SLO attainment."""

    metric: Metric = Field(
        default="auto", description="Latency the SLO is on; auto = the autoscaler's metric."
    )
    threshold_s: float | None = Field(
        default=None,
        gt=0,
        description="SLO threshold (s); null = deployment.autoscaling_config.upper_allowed_latency_sec.",
    )


class SimSpec(_Section):
    """Run control: horizon, warm-up, seed, initial state, SLO."""

    horizon_s: float | None = Field(
        default=None,
        gt=0,
        description="End of the run (s); null = last arrival plus the drain (max_drain_s).",
    )
    warmup_s: float = Field(
        default=0.0,
        ge=0,
        description="Requests arriving before this are left out of the metrics (s).",
    )
    seed: Int = Field(default=1, ge=0, description="Seed of the run's random streams.")
    start: Literal["warm", "cold"] = Field(
        default="warm",
        description="warm: min_workers are ready at t = 0; cold: they start provisioning at t = 0.",
    )
    max_drain_s: float = Field(
        default=3600.0,
        ge=0,
        description="With no horizon: how long after the last arrival requests may finish (s).",
    )
    slo: SloSpec = Field(default_factory=SloSpec, description="The latency objective.")

    @field_validator("warmup_s")
    @classmethod
    def _warmup_inside_horizon(cls, warmup: float, info: ValidationInfo) -> float:
        """A warm-up as long as the run would leave nothing to measure."""
        horizon = info.data.get("horizon_s")
        if horizon is not None and warmup >= horizon:
            raise ValueError(f"warmup_s ({warmup}) must be less than horizon_s ({horizon})")
        return warmup


# --- the scenario ---------------------------------------------------------------------------------


class Scenario(_Section):
    """A complete, validated simulation scenario (DESIGN.md §3.1)."""

    name: str = Field(min_length=1, description="Scenario name (defaults to deployment.name).")
    deployment: CreateBody = Field(description="Exactly the JSON body of POST /sg_inf/create.")
    workload: WorkloadSpec = Field(description="What arrives: a trace file or a generator.")
    fleet: FleetSpec = Field(
        default_factory=FleetSpec, description="Catalog, cold starts, spot and on-prem assumptions."
    )
    serving: ServingSpec = Field(
        default_factory=ServingSpec, description="Performance model of the workers."
    )
    gateway: GatewaySpec = Field(
        default_factory=GatewaySpec, description="Gateway queue and network."
    )
    autoscaler: AutoscalerSpec = Field(
        default_factory=AutoscalerSpec, description="Autoscaler policy and semantics switches."
    )
    updates: list[ScheduledUpdate] = Field(
        default_factory=list, description="PUT /sg_inf/{id} calls applied mid-run, in time order."
    )
    sim: SimSpec = Field(
        default_factory=SimSpec, description="Horizon, warm-up, seed, start state and SLO."
    )

    # The scenario file's folder; not part of the scenario's content (excluded from dumps).
    _base_dir: Path = PrivateAttr(default_factory=Path.cwd)
    # Where the scenario came from (a file name, or None), for error messages of later checks.
    _source: str | None = PrivateAttr(default=None)

    @model_validator(mode="before")
    @classmethod
    def _default_name(cls, data: Any) -> Any:
        """A scenario without a name takes its deployment's name."""
        if isinstance(data, Mapping) and "name" not in data:
            deployment = data.get("deployment")
            if isinstance(deployment, Mapping) and isinstance(deployment.get("name"), str):
                return {"name": deployment["name"], **data}
        return data

    @field_validator("updates")
    @classmethod
    def _updates_in_order(cls, updates: list[ScheduledUpdate]) -> list[ScheduledUpdate]:
        """Updates must be in time order (the engine applies them as a timeline)."""
        times = [u.at_s for u in updates]
        for i in range(1, len(times)):
            if times[i] < times[i - 1]:
                raise ValueError(
                    f"updates must be sorted by at_s: update {i} (at_s={times[i]}) comes after "
                    f"update {i - 1} (at_s={times[i - 1]})"
                )
        return updates

    @property
    def base_dir(self) -> Path:
        """The folder relative paths of this scenario resolve against."""
        return self._base_dir

    @property
    def source(self) -> str | None:
        """The file (or other source) the scenario was loaded from, if any."""
        return self._source

    def with_base_dir(self, base_dir: str | Path, source: str | None = None) -> Scenario:
        """A copy of this scenario whose relative paths resolve against ``base_dir``."""
        other = self.model_copy()
        other._base_dir = Path(base_dir)
        if source is not None:
            other._source = source
        return other

    def resolve_path(self, path: str | Path) -> Path:
        """Resolve a path written in this scenario (see the module docstring for the rule)."""
        return resolve_path(path, self._base_dir)

    @property
    def inf_type(self) -> str:
        """The deployment's inference type (llm or embedding)."""
        return self.deployment.inf_type

    def metric(self) -> str:
        """The autoscaler's metric with auto resolved (ttft for llm, e2e for embedding)."""
        return self.autoscaler.resolved_metric(self.deployment.inf_type)

    def serving_kind(self) -> str:
        """The service model with auto resolved from the deployment's inf_type."""
        return self.serving.resolved_kind(self.deployment.inf_type)

    def slo_metric(self) -> str:
        """The SLO metric with auto resolved to the autoscaler's metric."""
        return self.sim.slo.metric if self.sim.slo.metric != "auto" else self.metric()

    def slo_threshold_s(self) -> float:
        """The SLO threshold with null resolved to ``upper_allowed_latency_sec``."""
        if self.sim.slo.threshold_s is not None:
            return self.sim.slo.threshold_s
        return float(self.deployment.autoscaling_config.upper_allowed_latency_sec)



# --- paths ----------------------------------------------------------------------------------------


# --- overrides ------------------------------------------------------------------------------------


#: Where override errors point by default (the Python API); the CLI passes "--set".
OVERRIDES_SOURCE = "overrides"


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """The first line of a PyYAML error (its problem), without the multi-line source dump."""
    problem = getattr(exc, "problem", None)
    text = str(problem) if problem else str(exc)
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__


def _parse_override(text: str, source: str = OVERRIDES_SOURCE) -> tuple[str, Any]:
    """Split ``dotted.path=VALUE`` and parse VALUE as a YAML scalar or flow collection."""
    if not isinstance(text, str):
        raise ConfigError(f"expected dotted.path=VALUE, got {text!r}", source=source)
    if "=" not in text:
        raise ConfigError(f"expected dotted.path=VALUE, got {text!r}", source=source)
    path, _, raw = text.partition("=")
    path = path.strip()
    if not path:
        raise ConfigError(f"empty path in {text!r}", source=source)
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        raise ConfigError(
            f"cannot parse {raw!r} as YAML ({_yaml_problem(exc)})", source=source, field=path
        ) from None
    return path, value


def _override_items(
    overrides: Sequence[str] | Mapping[str, Any], source: str = OVERRIDES_SOURCE
) -> list[tuple[str, Any]]:
    """Overrides as (dotted path, value) pairs; strings are parsed, mapping values are taken as is."""
    if isinstance(overrides, Mapping):
        return [(str(k), v) for k, v in overrides.items()]
    if isinstance(overrides, str):
        overrides = [overrides]
    return [_parse_override(item, source) for item in overrides]


def _check_override_path(
    parts: list[str], data: Mapping[str, Any], source: str = OVERRIDES_SOURCE
) -> list[list[Any]]:
    """Raise if ``parts`` names no setting of the Scenario schema (suggesting the nearest one).

    Returns the schema types of each prefix of the path (``types[d]`` for ``parts[: d + 1]``).
    """
    current: list[Any] = [Scenario]
    node: Any = data
    found: list[list[Any]] = []
    for depth, part in enumerate(parts):
        elem: str | int = int(part) if part.isdigit() else part
        path, types_, _ = _override_step(current, elem, node)
        if path is None:
            keys = _keys_for(current, node)
            prefix = ".".join(parts[:depth])
            close = difflib.get_close_matches(part, keys, n=1, cutoff=0.6)
            if close:
                hint = f"; did you mean {'.'.join(filter(None, [prefix, close[0]]))!r}?"
            elif keys:
                hint = f"; valid keys here: {', '.join(keys)}"
            else:
                hint = f"; {prefix or 'the scenario'} has no sub-settings"
            raise ConfigError(f"no such setting{hint}", source=source, field=".".join(parts))
        current = types_
        found.append(types_)
        node = (
            node.get(part)
            if isinstance(node, Mapping)
            else (
                node[elem]
                if isinstance(node, list) and isinstance(elem, int) and elem < len(node)
                else None
            )
        )
    return found


def _is_list_only(types_: list[Any]) -> bool:
    """Whether a setting's schema types are sequences only (so ``path.N`` indexes a list)."""
    expanded = [tp for tp in expand_types(types_) if tp is not type(None)]
    return bool(expanded) and all(
        typing.get_origin(tp) in (list, tuple) for tp in expanded
    )


def _keys_for(types_: list[Any], node: Any) -> list[str]:
    """Valid keys at a level: the fields of the model the data selects (by ``kind``), else of all."""
    models = _expand_models(types_)
    if isinstance(node, Mapping) and len(models) > 1:
        for tag_field in ("kind", "dist"):
            tag = node.get(tag_field)
            chosen = [
                m
                for m in models
                if _literal_values(m, tag_field) and tag in _literal_values(m, tag_field)
            ]
            if chosen:
                return model_keys(chosen)
    return model_keys(models)


def _expand_models(types_: list[Any]) -> list[type[BaseModel]]:
    """The pydantic models among ``types_`` after unwrapping Annotated and unions."""
    return [tp for tp in expand_types(types_) if is_model(tp)]


def _literal_values(model: type[BaseModel], field: str) -> tuple[Any, ...]:
    """The allowed values of a Literal field (empty when the field is not a Literal)."""
    info = model.model_fields.get(field)
    if info is None:
        return ()
    args = typing.get_args(info.annotation)
    return args if typing.get_origin(info.annotation) is Literal else ()


def _override_step(
    types_: list[Any], elem: str | int, node: Any
) -> tuple[str | int | None, list[Any], bool]:
    """One step of an override path: (the element if valid else None, the types below it, free)."""
    expanded = expand_types(types_)
    if any(tp is Any for tp in expanded):
        return elem, [Any], True
    models = [tp for tp in expanded if is_model(tp)]
    if isinstance(elem, str):
        owners = [m for m in models if elem in m.model_fields]
        if owners:
            return elem, [m.model_fields[elem].annotation for m in owners], False
    if isinstance(elem, int):
        seqs = [tp for tp in expanded if typing.get_origin(tp) in (list, tuple)]
        if seqs:
            return elem, [typing.get_args(tp)[0] for tp in seqs], False
    maps = [tp for tp in expanded if typing.get_origin(tp) in (dict, Mapping)]
    if maps:
        return elem, [typing.get_args(tp)[1] for tp in maps], False
    return None, [], False


def apply_overrides(
    data: Mapping[str, Any],
    overrides: Sequence[str] | Mapping[str, Any],
    *,
    source: str = OVERRIDES_SOURCE,
) -> dict[str, Any]:
    """A copy of ``data`` with each ``dotted.path=VALUE`` override set (VALUE parsed as YAML).

    Paths are checked against the Scenario schema, so a typo is an error naming the nearest
    valid key; missing intermediate sections are created; list items are addressed by index
    (``updates.0.at_s=60``). ``source`` is what errors blame: ``--set`` on the command line,
    ``overrides`` (the default) from Python.
    """
    out: dict[str, Any] = copy.deepcopy(dict(data))
    for path, value in _override_items(overrides, source):
        parts = path.split(".")
        if any(not p for p in parts):
            raise ConfigError(f"malformed path {path!r}", source=source, field=path)
        types_at = _check_override_path(parts, out, source)
        node: Any = out
        for depth, part in enumerate(parts[:-1]):
            here = ".".join(parts[: depth + 1])
            if isinstance(node, list):
                index = int(part) if part.isdigit() else -1
                if not 0 <= index < len(node):
                    raise ConfigError(
                        f"no item {part} in {here.rsplit('.', 1)[0]} (it has {len(node)})",
                        source=source,
                        field=path,
                    )
                if not isinstance(node[index], dict):
                    node[index] = {}
                node = node[index]
            elif isinstance(node, dict):
                child = node.get(part)
                if child is None and _is_list_only(types_at[depth]):
                    # A missing list cannot be indexed: do not invent a mapping {"0": ...}.
                    raise ConfigError(
                        f"no item {parts[depth + 1]} in {here}: the scenario has no {here} "
                        f"(set the whole list, e.g. {here}=[...])",
                        source=source,
                        field=path,
                    )
                if child is None:
                    child = node[part] = {}
                elif not isinstance(child, dict | list):
                    raise ConfigError(
                        f"cannot set a sub-setting: {here} is {child!r}, not a mapping",
                        source=source,
                        field=path,
                    )
                node = child
        last = parts[-1]
        if isinstance(node, list):
            index = int(last) if last.isdigit() else -1
            if not 0 <= index < len(node):
                raise ConfigError(
                    f"no item {last} (the list has {len(node)})", source=source, field=path
                )
            node[index] = value
        else:
            node[last] = value
    return out


# --- loading --------------------------------------------------------------------------------------


def _read_mapping(path: Path, source: str) -> dict[str, Any]:
    """Read a YAML or JSON file into a mapping, with file/line errors."""
    if not path.exists():
        raise ConfigError("file not found", source=source)
    if not path.is_file():
        raise ConfigError("not a file", source=source)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read: {exc}", source=source) from None
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}", source=source
            ) from None
    else:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            problem = getattr(exc, "problem", None) or str(exc)
            where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
            raise ConfigError(f"invalid YAML at {where}{problem}", source=source) from None
    if data is None:
        raise ConfigError("the file is empty", source=source)
    if not isinstance(data, dict):
        raise ConfigError(
            f"expected a mapping at the top level, got {type(data).__name__}", source=source
        )
    return data


def _is_create_body(data: Mapping[str, Any]) -> bool:
    """Whether a top-level mapping is a bare create request rather than a scenario."""
    return "deployment" not in data and "model" in data


def scenario_from_dict(
    data: Mapping[str, Any],
    *,
    source: str = "<dict>",
    base_dir: str | Path = ".",
    overrides: Sequence[str] | Mapping[str, Any] = (),
    override_source: str = OVERRIDES_SOURCE,
) -> Scenario:
    """Build a validated :class:`Scenario` from a mapping, applying overrides first.

    Errors in (or caused by) an override blame ``override_source``: ``overrides`` from
    Python, ``--set`` from the command line.
    """
    if not isinstance(data, Mapping):
        raise ConfigError(f"expected a mapping, got {type(data).__name__}", source=source)
    items = _override_items(overrides, override_source)
    merged = apply_overrides(data, dict(items), source=override_source) if items else dict(data)
    try:
        scenario = Scenario.model_validate(merged)
    except ValidationError as exc:
        blame = {path: override_source for path, _ in items}
        raise config_error_from_validation(
            exc, model=Scenario, source=source, source_for=blame
        ) from None
    try:
        check_updates(scenario, source=source)
    except ConfigError as exc:
        # Blame --set when the bad update field was set there.
        set_here = any(
            exc.field == path or (exc.field or "").startswith(path + ".") for path, _ in items
        )
        if not set_here:
            raise
        raise ConfigError(exc.detail, source=override_source, field=exc.field) from None
    return scenario.with_base_dir(Path(base_dir).resolve(), source=source)


def load_scenario(
    path: str | Path,
    overrides: Sequence[str] | Mapping[str, Any] = (),
    *,
    override_source: str = OVERRIDES_SOURCE,
) -> Scenario:
    """Load a scenario YAML/JSON file, or a create-request JSON whose workload comes from overrides.

    ``override_source`` is what errors in ``overrides`` blame (``--set`` from the CLI).
    """
    p = Path(path)
    source = str(path)
    data = _read_mapping(p, source)
    if _is_create_body(data):
        data = {"deployment": data}
        paths = [path for path, _ in _override_items(overrides, override_source)]
        if not any(path == "workload" or path.startswith("workload.") for path in paths):
            raise ConfigError(
                "a create-request body has no workload: add a trace (sim run --deployment FILE "
                "--trace TRACE) or set one (--set 'workload={kind: poisson, ...}')",
                source=source,
                field="workload",
            )
    return scenario_from_dict(
        data, source=source, base_dir=p.parent, overrides=overrides,
        override_source=override_source,
    )


def load_create_body(path: str | Path) -> CreateBody:
    """Load and validate a create-request JSON (or YAML) file."""
    source = str(path)
    data = _read_mapping(Path(path), source)
    if "deployment" in data:
        raise ConfigError("this is a scenario file, not a create-request body", source=source)
    return parse_create(data, source=source)


def scenario_from_create_body(
    create_json_path: str | Path,
    trace_path: str | Path,
    trace_format: str | None = None,
    overrides: Sequence[str] | Mapping[str, Any] = (),
    *,
    override_source: str = OVERRIDES_SOURCE,
) -> Scenario:
    """The scenario of ``sim run --deployment CREATE.json --trace FILE``: defaults everywhere else."""
    p = Path(create_json_path)
    source = str(create_json_path)
    body = _read_mapping(p, source)
    if not _is_create_body(body):
        raise ConfigError(
            "expected a create-request body (with 'model'), not a scenario", source=source
        )
    trace = Path(trace_path).expanduser()
    if not trace.exists():
        raise ConfigError(f"trace file not found: {trace_path}", source="--trace")
    workload: dict[str, Any] = {"kind": "trace", "path": str(trace.resolve())}
    if trace_format is not None:
        workload["format"] = trace_format
    return scenario_from_dict(
        {"deployment": body, "workload": workload},
        source=source,
        base_dir=p.parent,
        overrides=overrides,
        override_source=override_source,
    )


def check_updates(scenario: Scenario, *, source: str | None = None) -> list[CreateBody]:
    """The deployment after each scheduled update; ConfigError naming the update if one is invalid."""
    states: list[CreateBody] = []
    current = scenario.deployment
    for i, update in enumerate(scenario.updates):
        try:
            current = apply_update(current, update.body)
        except ConfigError as exc:
            # apply_update names the field inside the body; place it in the scenario.
            raise ConfigError(
                f"after the update at_s={update.at_s}: {exc.detail}",
                source=source,
                field=f"updates.{i}.body.{exc.field}" if exc.field else f"updates.{i}.body",
            ) from None
        states.append(current)
    return states


def resolved_dict(scenario: Scenario) -> dict[str, Any]:
    """The scenario with every default filled in, JSON-able, with ``hf_token`` masked."""
    data = scenario.model_dump(mode="json")
    # SecretStr already dumps masked in JSON mode; this guards against a future type change.
    if data.get("deployment", {}).get("hf_token") is not None:
        data["deployment"]["hf_token"] = MASK
    return data


# --- cross-field checks that need the catalogs ----------------------------------------------------


def _check_shape(
    spec: Any, gpu: str, gpus: int, utilization: float, field: str, source: str | None
) -> int:
    """Check ``gpus`` x ``gpu`` holds the model (0 = the smallest count that does); the count used."""
    from sim.serving.models import memory_shortfall_gb, min_gpus_to_fit

    try:
        fit: int | None = int(min_gpus_to_fit(spec, gpu, utilization=utilization))
        why = ""
    except SimError as exc:
        fit, why = None, str(exc)
    if gpus == 0:
        if fit is None:
            raise ConfigError(
                f"no count of {gpu} holds the model: {why}", source=source, field=field
            )
        return fit
    short = memory_shortfall_gb(spec, gpu, gpus, utilization=utilization)
    if short > 0:
        hint = f"; {fit} x {gpu} would fit" if fit is not None else f"; no count of {gpu} fits"
        raise ConfigError(
            f"{gpus} x {gpu} cannot hold {spec.name} ({spec.weights_gb:.1f} GB of weights) at "
            f"gpu_memory_utilization {utilization}: {short:.1f} GB missing{hint}",
            source=source,
            field=field,
        )
    return gpus


def _check_model_kind(scenario: Scenario, spec: Any, source: str | None, warnings: list[str]) -> None:
    """An encoder (embedding) model cannot serve ``inf_type: llm``; a decoder LLM as an
    embedding model is plausible (LLM-based embedders) but worth a warning."""
    dep = scenario.deployment
    model_name = dep.base_model or dep.model
    if spec is None:
        # Queueing service models skip the catalog; the body itself may still be inconsistent.
        try:
            from sim.serving.models import resolve_model

            spec = resolve_model(model_name)
        except (ImportError, SimError):
            return
    kind = getattr(spec, "kind", "decoder")
    if kind == "encoder" and dep.inf_type == "llm":
        raise ConfigError(
            f"{model_name} is an encoder (embedding) model: it cannot generate text, so "
            "inf_type 'llm' does not fit it; expected inf_type: embedding",
            source=source,
            field="deployment.inf_type",
        )
    if kind == "decoder" and dep.inf_type == "embedding":
        warnings.append(
            f"deployment.inf_type=embedding with {model_name}, a decoder LLM: simulated as an "
            "embedding model (prompt only, no decode), as LLM-based embedders are; set "
            "inf_type: llm if it should generate text"
        )


def validate_scenario(scenario: Scenario, *, source: str | None = None) -> list[str]:
    """Cross-field checks that need the model/GPU catalogs; returns warnings, raises ConfigError on errors."""
    source = source if source is not None else scenario.source
    warnings: list[str] = []
    dep = scenario.deployment
    util = scenario.serving.gpu_memory_utilization

    # Memory checks apply to the LLM/embedding service models; the queueing models need no model.
    spec: Any = None
    if scenario.serving_kind() in ("llm", "embedding"):
        # A fine-tune is sized and profiled as its base model (DESIGN.md §4).
        model_field = "deployment.base_model" if dep.base_model else "deployment.model"
        model_name = dep.base_model or dep.model
        try:
            from sim.serving.models import resolve_model
        except ImportError:
            warnings.append("sim.serving.models is not available: worker shapes were not checked")
        else:
            try:
                spec = resolve_model(model_name)
            except SimError as exc:
                if scenario.serving.profile == "builtin":
                    raise ConfigError(str(exc), source=source, field=model_field) from None
                # A user profile may describe a model the built-in catalog does not know.
                warnings.append(f"{model_field}: {exc}; worker shapes were not checked")
    models_ok = spec is not None
    _check_model_kind(scenario, spec, source, warnings)

    iwc = dep.initial_worker_config
    if models_ok and not iwc.instance_types:
        _check_shape(
            spec,
            iwc.initial_workers_gpu,
            iwc.initial_workers_gpu_num,
            util,
            "deployment.initial_worker_config.initial_workers_gpu_num",
            source,
        )
        tp = int(iwc.initial_workers_gpu_num)
        if tp > 1 and spec.n_heads % tp:
            warnings.append(
                f"deployment.initial_worker_config.initial_workers_gpu_num: {tp} GPUs per "
                f"worker do not divide {spec.name}'s {spec.n_heads} attention heads; vLLM's "
                "tensor parallelism would refuse this shape (use 1, 2, 4 or 8)"
            )
    for i, (update, current) in enumerate(
        zip(scenario.updates, check_updates(scenario, source=source), strict=True)
    ):
        patch = update.body.initial_worker_config
        shape_changed = patch is not None and (
            patch.initial_workers_gpu is not None or patch.initial_workers_gpu_num is not None
        )
        after = current.initial_worker_config
        if models_ok and shape_changed and not after.instance_types:
            _check_shape(
                spec,
                after.initial_workers_gpu,
                after.initial_workers_gpu_num,
                util,
                f"updates.{i}.body.initial_worker_config",
                source,
            )
        if after.min_workers > scenario.autoscaler.max_workers:
            raise ConfigError(
                f"min_workers ({after.min_workers}) exceeds autoscaler.max_workers "
                f"({scenario.autoscaler.max_workers})",
                source=source,
                field=f"updates.{i}.body.initial_worker_config.min_workers",
            )
        horizon = scenario.sim.horizon_s
        if horizon is not None and update.at_s >= horizon:
            warnings.append(
                f"updates.{i}: at_s={update.at_s} is at or after sim.horizon_s={horizon}; it never applies"
            )

    if iwc.min_workers > scenario.autoscaler.max_workers:
        raise ConfigError(
            f"min_workers ({iwc.min_workers}) exceeds autoscaler.max_workers ({scenario.autoscaler.max_workers})",
            source=source,
            field="deployment.initial_worker_config.min_workers",
        )
    if iwc.initial_workers_gpu_num > 8:
        warnings.append(
            f"deployment.initial_worker_config.initial_workers_gpu_num={iwc.initial_workers_gpu_num}: "
            "more than 8 GPUs per worker spans several machines"
        )

    # On-prem placement refers to fleet.on_prem_nodes by id.
    nodes = {n.id: n for n in scenario.fleet.on_prem_nodes}
    for j, node_id in enumerate(iwc.on_prem_node_ids):
        if node_id not in nodes:
            close = difflib.get_close_matches(node_id, list(nodes), n=1)
            hint = (
                f"; did you mean {close[0]!r}?"
                if close
                else (f"; known: {', '.join(nodes)}" if nodes else "; fleet.on_prem_nodes is empty")
            )
            raise ConfigError(
                f"unknown on-prem node {node_id!r}{hint}",
                source=source,
                field=f"deployment.initial_worker_config.on_prem_node_ids.{j}",
            )
    if iwc.use_on_prem and not iwc.on_prem_node_ids:
        warnings.append(
            "use_on_prem is true but on_prem_node_ids is empty: no on-prem GPUs are used"
        )
    if iwc.use_cloudburst and not iwc.use_on_prem:
        warnings.append("use_cloudburst has no effect without use_on_prem")
    if models_ok:
        from sim.serving.models import memory_shortfall_gb

        for node_id in iwc.on_prem_node_ids:
            node = nodes[node_id]
            try:
                short = memory_shortfall_gb(spec, node.gpu, node.gpus, utilization=util)
            except SimError:
                continue
            if short > 0:
                warnings.append(
                    f"on-prem node {node_id!r} ({node.gpus} x {node.gpu}) cannot hold the model"
                )

    kind = scenario.serving_kind()
    if kind in ("llm", "embedding") and kind != dep.inf_type:
        warnings.append(f"serving.kind={kind} with deployment.inf_type={dep.inf_type}")
    ac = dep.autoscaling_config
    if ac.time_window_sec < scenario.autoscaler.decision_interval_s:
        warnings.append(
            f"time_window_sec ({ac.time_window_sec}) is shorter than autoscaler.decision_interval_s "
            f"({scenario.autoscaler.decision_interval_s}): some requests are never seen by the autoscaler"
        )

    # The policy is built here rather than mid-run: an unknown name, a module:Attr that does
    # not import or is not a policy, and bad autoscaler.params all fail before the run.
    try:
        scalegen = importlib.import_module("sim.policies.scalegen")
    except ImportError:
        scalegen = None
    if scalegen is not None:
        scalegen.build_policy(dep, scenario.autoscaler, source=source)
    return warnings
