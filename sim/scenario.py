"""The scenario: one frozen, validated description of a simulation run, and its loaders.

A scenario is a YAML file (or a create-request JSON plus a trace) with the sections of
DESIGN.md §3.1; each section's spec lives beside its family (``sim.fleet.spec``,
``sim.serving.spec``, ``sim.engine.spec``, ``sim.policies.spec``, ``sim.workload.spec``).
Loading is ``read -> apply --set overrides -> pydantic validation`` and every problem becomes
one :class:`~sim.errors.ConfigError` naming the file, the dotted field path, what was given and
what was expected. Checks that need the model and GPU catalogs (does the worker shape hold the
model?) are a separate step, :func:`~sim.scenario_checks.validate_scenario`, which the CLI and
``simulate`` call before running.

Relative paths inside a scenario (trace files, catalogs, profiles, spot traces) resolve against
the scenario file's folder; when nothing exists there, against the repository root (the
nearest folder above the scenario file that holds ``pyproject.toml`` or ``.git``), so that the
design's ``../shared/...`` paths work from ``scenarios/`` as well as from the root.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from sim import overrides as _overrides
from sim.api.schema import (
    MASK,
    CreateBody,
    Int,
    UpdateBody,
    config_error_from_validation,
    parse_create,
)
from sim.engine.spec import GatewaySpec
from sim.errors import ConfigError
from sim.fleet.spec import (
    ColdStartSpec,
    FleetSpec,
    OnPremNode,
    PreemptionSpec,
    SpotSpec,
    StageDist,
    WarmPoolSpec,
)
from sim.overrides import OVERRIDES_SOURCE, override_items
from sim.paths import resolve_path
from sim.policies.spec import AutoscalerSpec
from sim.scenario_checks import check_updates, validate_scenario
from sim.section import Metric, Section
from sim.serving.spec import ServingSpec
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


class ScheduledUpdate(Section):
    """A ``PUT /sg_inf/{id}`` call applied at a time of the run."""

    at_s: float = Field(ge=0, allow_inf_nan=False, description="Simulated time of the update (s).")
    body: UpdateBody = Field(description="The update body, exactly as sent to the API.")


class SloSpec(Section):
    """The latency objective reported as SLO attainment."""

    metric: Metric = Field(
        default="auto", description="Latency the SLO is on; auto = the autoscaler's metric."
    )
    threshold_s: float | None = Field(
        default=None,
        gt=0,
        description="SLO threshold (s); null = deployment.autoscaling_config.upper_allowed_latency_sec.",
    )


class SimSpec(Section):
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
    results: Literal["full", "summary", "stream"] = Field(
        default="full",
        description=(
            "full: one row per request (Result.requests, requests.parquet), exact percentiles; "
            "summary: no per-request table, memory bounded by the requests in the system, "
            "percentiles from a quantile sketch (sim/metrics/sketch.py states its error); "
            "stream: as summary, and requests.parquet written while the run goes, one row "
            "group per 65,536 resolved requests, in the order they resolved (sim run only; "
            "elsewhere it runs as summary)."
        ),
    )

    @field_validator("warmup_s")
    @classmethod
    def _warmup_inside_horizon(cls, warmup: float, info: ValidationInfo) -> float:
        """A warm-up as long as the run would leave nothing to measure."""
        horizon = info.data.get("horizon_s")
        if horizon is not None and warmup >= horizon:
            raise ValueError(f"warmup_s ({warmup}) must be less than horizon_s ({horizon})")
        return warmup


class Scenario(Section):
    """A complete, validated simulation scenario (DESIGN.md §3.1)."""

    name: str = Field(min_length=1, description="Scenario name (defaults to deployment.name).")
    description: str | None = Field(
        default=None, max_length=2000,
        description="What the scenario shows and what to try; printed at the top of its report.",
    )
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


def apply_overrides(
    data: Mapping[str, Any],
    overrides: Sequence[str] | Mapping[str, Any],
    *,
    source: str = OVERRIDES_SOURCE,
) -> dict[str, Any]:
    """A copy of scenario ``data`` with each ``dotted.path=VALUE`` override set.

    Paths are checked against the :class:`Scenario` schema (see :mod:`sim.overrides`);
    ``source`` is what errors blame: ``--set`` on the command line, ``overrides`` from Python.
    """
    return _overrides.apply_overrides(Scenario, data, overrides, source=source)



def _path_arg(path: Any, what: str) -> Path:
    """A path argument of the Python API, or a ConfigError (never a TypeError)."""
    if not isinstance(path, str | Path) or not str(path):
        raise ConfigError(
            f"expected the path of {what} (a str or pathlib.Path), got {type(path).__name__} "
            f"{path!r:.60}"
        )
    return Path(path)


def _read_mapping(path: Path, source: str) -> dict[str, Any]:
    """Read a YAML or JSON file into a mapping: the one strict reading every config file gets
    (:func:`sim.io.read_yaml_or_json`)."""
    from sim.io import read_yaml_or_json

    return read_yaml_or_json(path)


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
    from sim.io import MAX_DEPTH, _too_deep

    if _too_deep(dict(data)):
        raise ConfigError(f"nested more than {MAX_DEPTH} levels deep", source=source)
    items = override_items(overrides, override_source)
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
    p = _path_arg(path, "a scenario file")
    source = str(path)
    data = _read_mapping(p, source)
    if _is_create_body(data):
        data = {"deployment": data}
        paths = [path for path, _ in override_items(overrides, override_source)]
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
    data = _read_mapping(_path_arg(path, "a create-request file"), source)
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
    p = _path_arg(create_json_path, "a create-request JSON file")
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


def resolved_dict(scenario: Scenario) -> dict[str, Any]:
    """The scenario with every default filled in, JSON-able, with ``hf_token`` masked."""
    data = scenario.model_dump(mode="json")
    # SecretStr already dumps masked in JSON mode; this guards against a future type change.
    if data.get("deployment", {}).get("hf_token") is not None:
        data["deployment"]["hf_token"] = MASK
    return data


# --- cross-field checks that need the catalogs ----------------------------------------------------
