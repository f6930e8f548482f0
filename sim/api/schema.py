"""The ScaleGenAI inference API request bodies (``POST /sg_inf/create``, ``PUT /sg_inf/{id}``) as pydantic models.

Field names, types and defaults follow the 'Parameter Description' lists of the vendor page
(``../shared/reference/scalegen-inference-api.md``), including its spelling
``imidiate_scale_down``. The same objects are validated, simulated, tuned and exported.

Decisions where the vendor page is silent (also in the field help texts):

- Latency bounds, ``max_price_per_hour`` and ``max_throughput_rate`` accept floats as well as
  ints and are exported exactly as given (``4`` stays ``4``, ``0.5`` stays ``0.5``).
- Timeouts and the time window are whole seconds ``>= 1``. ``scale_to_zero_timeout_sec: 0`` is
  rejected: the page does not say whether it means "never" or "at once", and "at once" would
  drain the fleet on every tick. Scale to zero is switched off with ``min_workers >= 1``.
- ``lower_allowed_latency_sec`` must be strictly below ``upper_allowed_latency_sec``.
- GPU names are stored in the catalog spelling (``a100-80g`` -> ``A100-80GB``).
- ``hf_token`` is a ``SecretStr``: ``repr`` and JSON dumps show ``**********``; only
  :meth:`CreateBody.to_request` with ``mask_token=False`` reveals it.
- :meth:`CreateBody.to_request` writes every documented field with its value (defaults
  included, so a later change of the vendor's defaults cannot change the deployment) and omits
  optional fields that are unset (``None``), which the vendor marks optional.
- An update is a partial patch: :func:`apply_update` changes only the fields it names.
"""

from __future__ import annotations

import json
import math
import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    Strict,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from sim.bounds import check_field
from sim.errors import ConfigError
from sim.hardware import canonical_gpu
from sim.schema_errors import MASK, config_error_from_validation

__all__ = [
    "AutoscalingConfig",
    "AutoscalingConfigUpdate",
    "CreateBody",
    "GatewayConfig",
    "InitialWorkerConfig",
    "InitialWorkerConfigUpdate",
    "UpdateBody",
    "apply_update",
    "config_error_from_validation",
    "parse_create",
    "parse_update",
    "update_from_create",
]



# --- value types ---------------------------------------------------------------------------------


# An exponent YAML 1.1 does not resolve as a float (it wants a "." and a signed exponent).
_YAML11_TEXT_EXPONENT = re.compile(r"[-+]?[0-9_]+[eE][-+]?[0-9]+|[-+]?[0-9_]*\.[0-9_]*[eE][0-9]+")


def _string_problem(value: str, expected: str) -> str:
    """Why a string is not a number here. A YAML 1.1 reader (ours, like most) reads ``1e300``,
    ``nan`` and ``inf`` as text, so "write it without quotes" would mislead for those."""
    try:
        number = float(value)
    except ValueError:
        return f"expected {expected}, got the string {value!r}: write it without quotes"
    if not math.isfinite(number):
        return f"expected a finite number, got {value!r} (NaN and infinity are not allowed)"
    if not _YAML11_TEXT_EXPONENT.fullmatch(value.strip()):
        return f"expected {expected}, got the string {value!r}: write it without quotes"
    return (
        f"expected {expected}, got {value!r}, which YAML reads as text: write an exponent "
        "with a decimal point and a sign (e.g. 1.0e+3), or the digits in full"
    )


def _reject_bool(value: object) -> object:
    """Refuse booleans and strings for whole-number fields: pydantic would read ``true`` as 1
    and ``"1"`` as 1, but the API's behaviour on them is undocumented, so strict is the safe
    reading (a JSON number, not a quoted one)."""
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got the boolean {value!r}")
    if isinstance(value, str):
        raise ValueError(_string_problem(value, "a whole number"))
    return value


def _to_number(value: object) -> int | float:
    """Coerce to int or float, keeping the kind the user wrote, so that exports are as given."""
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got the boolean {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"expected a finite number, got {value!r}")
        return value
    if isinstance(value, str):
        raise ValueError(_string_problem(value, "a number"))
    raise ValueError(f"expected a number, got {type(value).__name__} {value!r}")


# A whole number (booleans refused).
Int = Annotated[int, BeforeValidator(_reject_bool)]
# The API takes JSON true/false: "yes" or 1 is more likely a mistake than a flag.
Bool = Annotated[bool, Strict()]
# An int or a float, kept as written (the union is never reached with bad input, so errors stay single).
Number = Annotated[int | float, BeforeValidator(_to_number)]


def _gpu_name(value: object) -> object:
    """Normalise a GPU name to the catalog spelling; unknown names become a field error."""
    if not isinstance(value, str):
        return value  # pydantic reports the type error
    try:
        return canonical_gpu(value)
    except ConfigError as exc:
        raise ValueError(exc.detail) from None


GpuName = Annotated[str, BeforeValidator(_gpu_name)]


class _Body(BaseModel):
    """Shared config of the API models: immutable, unknown keys are errors."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    @field_validator("*", mode="after")
    @classmethod
    def _bounded(cls, value: Any, info: ValidationInfo) -> Any:
        """Every number within its field's bound (sim.bounds: by unit, from the name)."""
        return check_field(info.field_name or "", value)


# --- help texts shared by the full and the partial (update) models -------------------------------

_H = {
    "min_workers": "Minimum number of workers: started at t = 0 and kept as the floor of the fleet.",
    "initial_workers_gpu": "GPU type of a worker (A100, A100-80GB, H100, H200, L4, L40S, A10G, T4, V100, ...).",
    "initial_workers_gpu_num": "GPUs per worker; 0 = the smallest count of that GPU that holds the model.",
    "use_same_gpus_when_scaling": "True: every new worker has the initial shape; false: each takes the cheapest feasible offer.",
    "instance_types": "Cloud instance types from the catalog used instead of initial_workers_gpu x initial_workers_gpu_num.",
    "use_on_prem": "Place new workers on free GPUs of the on-prem nodes first.",
    "use_cloudburst": "When on-prem GPUs are full, scale out to the cloud (otherwise the scale-up is refused).",
    "on_prem_node_ids": "Ids of the on-prem nodes (fleet.on_prem_nodes) the deployment may use.",
    "enable_speedup_shared": "Scale-ups start from ScaleGenAI's shared warm pool (faster cold starts).",
    "lower_allowed_latency_sec": "Scale down while the latency statistic is below this many seconds (int or float, must be < upper).",
    "scale_to_zero_timeout_sec": "With min_workers 0, drain all workers after this many seconds without an arriving request (>= 1).",
    "scaling_down_timeout_sec": "Cooldown in seconds after any scaling action before the next scale-down (>= 1).",
    "scaling_up_timeout_sec": "Cooldown in seconds between scale-ups (>= 1).",
    "time_window_sec": "Length in seconds of the window over which the latency statistic is computed (>= 1).",
    "upper_allowed_latency_sec": "Scale up while the latency statistic is above this many seconds (int or float, must be > lower).",
}


# --- create-body parts ---------------------------------------------------------------------------


class GatewayConfig(_Body):
    """Where the deployment's API gateway runs."""

    name: str = Field(
        min_length=1,
        description="Cloud provider where the API gateway is configured (e.g. DATACRUNCH, AWS).",
    )
    region: str = Field(min_length=1, description="Region where the API gateway is configured.")


class InitialWorkerConfig(_Body):
    """Shape and placement of the deployment's workers (vendor defaults)."""

    min_workers: Int = Field(default=0, ge=0, description=_H["min_workers"])
    initial_workers_gpu: GpuName = Field(default="A100", description=_H["initial_workers_gpu"])
    initial_workers_gpu_num: Int = Field(default=0, ge=0, description=_H["initial_workers_gpu_num"])
    use_same_gpus_when_scaling: Bool = Field(
        default=False, description=_H["use_same_gpus_when_scaling"]
    )
    instance_types: list[str] = Field(default_factory=list, description=_H["instance_types"])
    use_on_prem: Bool = Field(default=False, description=_H["use_on_prem"])
    use_cloudburst: Bool = Field(default=False, description=_H["use_cloudburst"])
    on_prem_node_ids: list[str] = Field(default_factory=list, description=_H["on_prem_node_ids"])


def _no_zero_scale_to_zero(value: object) -> object:
    """Reject 0 with a hint: its meaning ("never" or "at once") is not documented by the vendor."""
    if isinstance(value, int | float) and not isinstance(value, bool) and value == 0:
        raise ValueError(
            "got 0, which the vendor does not define; use a timeout >= 1 s, "
            "or set initial_worker_config.min_workers >= 1 to never scale to zero"
        )
    return value


ScaleToZeroSec = Annotated[Int, BeforeValidator(_no_zero_scale_to_zero)]


def _check_bounds(upper: Any, info: ValidationInfo) -> Any:
    """Upper latency bound must exceed the lower one (declared earlier, so already in ``info.data``)."""
    lower = info.data.get("lower_allowed_latency_sec")
    if upper is not None and lower is not None and lower >= upper:
        raise ValueError(
            f"upper_allowed_latency_sec ({upper}) must be greater than "
            f"lower_allowed_latency_sec ({lower})"
        )
    return upper


class AutoscalingConfig(_Body):
    """Latency band and timers of the autoscaler (vendor defaults; field order as on the vendor page)."""

    enable_speedup_shared: Bool = Field(default=False, description=_H["enable_speedup_shared"])
    lower_allowed_latency_sec: Number = Field(
        default=1, ge=0, description=_H["lower_allowed_latency_sec"]
    )
    scale_to_zero_timeout_sec: ScaleToZeroSec = Field(
        default=1800, ge=1, description=_H["scale_to_zero_timeout_sec"]
    )
    scaling_down_timeout_sec: Int = Field(
        default=1200, ge=1, description=_H["scaling_down_timeout_sec"]
    )
    scaling_up_timeout_sec: Int = Field(
        default=1200, ge=1, description=_H["scaling_up_timeout_sec"]
    )
    time_window_sec: Int = Field(default=300, ge=1, description=_H["time_window_sec"])
    # validate_default: the band check must also run when only the lower bound is given.
    upper_allowed_latency_sec: Number = Field(
        default=4, gt=0, validate_default=True, description=_H["upper_allowed_latency_sec"]
    )

    @field_validator("upper_allowed_latency_sec")
    @classmethod
    def _upper_above_lower(cls, upper: int | float, info: ValidationInfo) -> int | float:
        """The band must be non-empty: lower < upper."""
        return _check_bounds(upper, info)


class CreateBody(_Body):
    """The body of ``POST /sg_inf/create``; a scenario's ``deployment:`` block is exactly this."""

    name: str = Field(min_length=1, description="Name of the inference deployment.")
    model: str = Field(
        min_length=1, description="Model to serve (HuggingFace id, e.g. meta-llama/Llama-2-70b)."
    )
    base_model: str | None = Field(
        default=None,
        description="Base model of a fine-tune; selects the memory footprint and performance profile.",
    )
    data_path: str | None = Field(
        default=None,
        description="HuggingFace dataset used for fine-tuning (carried through to exports).",
    )
    inf_type: Literal["llm", "embedding"] = Field(
        default="llm",
        description="llm (completions, continuous batching) or embedding (batched, no decode).",
    )
    hf_token: SecretStr | None = Field(
        default=None,
        description="HuggingFace token; masked in every dump except the exported request.",
    )
    allow_spot_instances: Bool = Field(
        default=False, description="New workers may be spot instances."
    )
    logs_store: str | None = Field(
        default=None, description="Artifacts storage for logs (carried through to exports)."
    )
    cloud_providers: list[str] = Field(
        default_factory=list,
        description="Clouds new workers may use; empty = every cloud in the catalog.",
    )
    gateway_config: GatewayConfig | None = Field(
        default=None,
        description="Where the API gateway runs; workers elsewhere add a network round trip.",
    )
    initial_worker_config: InitialWorkerConfig = Field(
        default_factory=InitialWorkerConfig, description="Worker shape, floor and placement."
    )
    autoscaling_config: AutoscalingConfig = Field(
        default_factory=AutoscalingConfig, description="Latency band and timers of the autoscaler."
    )
    max_price_per_hour: Number = Field(
        default=0,
        ge=0,
        description="Cap on the summed hourly price of the fleet in USD; 0 = no cap.",
    )
    max_throughput_rate: Number = Field(
        default=0,
        ge=0,
        description="Cap on the fleet's rated throughput (output tokens/s); 0 = no cap.",
    )

    def to_request(self, mask_token: bool = False) -> dict[str, Any]:
        """The exact JSON-able request body: every documented field, unset optional ones omitted."""
        body = self.model_dump(mode="json", exclude_none=True)
        if self.hf_token is not None:
            body["hf_token"] = MASK if mask_token else self.hf_token.get_secret_value()
        return body

    def to_request_json(self, mask_token: bool = False, indent: int | None = 2) -> str:
        """The request body as JSON text (see :meth:`to_request`)."""
        return json.dumps(self.to_request(mask_token=mask_token), indent=indent)


# --- update body (partial) -----------------------------------------------------------------------


class InitialWorkerConfigUpdate(_Body):
    """The fields of ``initial_worker_config`` an update changes; absent (None) fields stay as they are."""

    min_workers: Int | None = Field(default=None, ge=0, description=_H["min_workers"])
    initial_workers_gpu: GpuName | None = Field(default=None, description=_H["initial_workers_gpu"])
    initial_workers_gpu_num: Int | None = Field(
        default=None, ge=0, description=_H["initial_workers_gpu_num"]
    )
    use_same_gpus_when_scaling: Bool | None = Field(
        default=None, description=_H["use_same_gpus_when_scaling"]
    )
    instance_types: list[str] | None = Field(default=None, description=_H["instance_types"])
    use_on_prem: Bool | None = Field(default=None, description=_H["use_on_prem"])
    use_cloudburst: Bool | None = Field(default=None, description=_H["use_cloudburst"])
    on_prem_node_ids: list[str] | None = Field(default=None, description=_H["on_prem_node_ids"])


class AutoscalingConfigUpdate(_Body):
    """The fields of ``autoscaling_config`` an update changes; absent (None) fields stay as they are."""

    enable_speedup_shared: Bool | None = Field(
        default=None, description=_H["enable_speedup_shared"]
    )
    lower_allowed_latency_sec: Number | None = Field(
        default=None, ge=0, description=_H["lower_allowed_latency_sec"]
    )
    scale_to_zero_timeout_sec: ScaleToZeroSec | None = Field(
        default=None, ge=1, description=_H["scale_to_zero_timeout_sec"]
    )
    scaling_down_timeout_sec: Int | None = Field(
        default=None, ge=1, description=_H["scaling_down_timeout_sec"]
    )
    scaling_up_timeout_sec: Int | None = Field(
        default=None, ge=1, description=_H["scaling_up_timeout_sec"]
    )
    time_window_sec: Int | None = Field(default=None, ge=1, description=_H["time_window_sec"])
    upper_allowed_latency_sec: Number | None = Field(
        default=None, gt=0, description=_H["upper_allowed_latency_sec"]
    )

    @field_validator("upper_allowed_latency_sec")
    @classmethod
    def _upper_above_lower(
        cls, upper: int | float | None, info: ValidationInfo
    ) -> int | float | None:
        """A band given whole must be non-empty; a half band is checked after merging (apply_update)."""
        return _check_bounds(upper, info)


class UpdateBody(_Body):
    """The body of ``PUT /sg_inf/{id}``: a partial patch of the worker and autoscaling configs."""

    initial_worker_config: InitialWorkerConfigUpdate | None = Field(
        default=None, description="Worker-config fields to change (others keep their value)."
    )
    autoscaling_config: AutoscalingConfigUpdate | None = Field(
        default=None, description="Autoscaling fields to change (others keep their value)."
    )
    imidiate_scale_down: Bool = Field(
        default=False,
        description="Vendor spelling. Apply the resulting scale-down at once: drain the surplus and reset the cooldowns.",
    )

    def to_request(self) -> dict[str, Any]:
        """The exact JSON-able request body: the fields that change, plus ``imidiate_scale_down``."""
        return self.model_dump(mode="json", exclude_none=True)

    def to_request_json(self, indent: int | None = 2) -> str:
        """The request body as JSON text (see :meth:`to_request`)."""
        return json.dumps(self.to_request(), indent=indent)


def apply_update(create: CreateBody, update: UpdateBody) -> CreateBody:
    """The create body as it stands after ``update``: only the fields the update names change."""
    changes: dict[str, Any] = {}
    parts: tuple[tuple[str, BaseModel | None, type[BaseModel]], ...] = (
        ("initial_worker_config", update.initial_worker_config, InitialWorkerConfig),
        ("autoscaling_config", update.autoscaling_config, AutoscalingConfig),
    )
    for name, patch, full in parts:
        if patch is None:
            continue
        given = patch.model_dump(exclude_none=True)
        if not given:
            continue
        merged = {**getattr(create, name).model_dump(), **given}
        try:
            changes[name] = full.model_validate(merged)
        except ValidationError as exc:
            raise config_error_from_validation(exc, model=full, prefix=(name,)) from None
    return create.model_copy(update=changes) if changes else create


def update_from_create(create: CreateBody, imidiate_scale_down: bool = False) -> UpdateBody:
    """A full update body that sets every worker and autoscaling field to the values of ``create``."""
    return UpdateBody(
        initial_worker_config=InitialWorkerConfigUpdate.model_validate(
            create.initial_worker_config.model_dump()
        ),
        autoscaling_config=AutoscalingConfigUpdate.model_validate(
            create.autoscaling_config.model_dump()
        ),
        imidiate_scale_down=imidiate_scale_down,
    )


def parse_create(data: object, *, source: str | None = None) -> CreateBody:
    """Validate a create body (a mapping), turning any error into one :class:`ConfigError`."""
    try:
        return CreateBody.model_validate(data)
    except ValidationError as exc:
        raise config_error_from_validation(exc, model=CreateBody, source=source) from None


def parse_update(data: object, *, source: str | None = None) -> UpdateBody:
    """Validate an update body (a mapping), turning any error into one :class:`ConfigError`."""
    try:
        return UpdateBody.model_validate(data)
    except ValidationError as exc:
        raise config_error_from_validation(exc, model=UpdateBody, source=source) from None
