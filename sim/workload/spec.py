"""The ``workload:`` section of a scenario as frozen pydantic models (validated, never mutated)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationInfo,
    field_validator,
    model_validator,
)

from sim.bounds import check_field

TraceFormatName = Literal[
    "auto", "azure", "mooncake", "burstgpt", "vidur", "splitwise", "lengths", "vllm_bench",
    "csv", "jsonl", "parquet"
]
TimeUnit = Literal["s", "ms", "us", "ns", "datetime"]


class _Spec(BaseModel):
    """Shared config: immutable, unknown keys are errors."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    @field_validator("*", mode="after")
    @classmethod
    def _bounded(cls, value: Any, info: ValidationInfo) -> Any:
        """Every number within its field's bound (sim.bounds: by unit, from the name)."""
        return check_field(info.field_name or "", value)


# --- token-length distributions -------------------------------------------------------------


class ConstantTokens(_Spec):
    """Every request has the same token count."""

    dist: Literal["constant"] = Field(description="Distribution name: constant.")
    value: int = Field(ge=0, description="The token count of every request.")


class LognormalTokens(_Spec):
    """Lognormal token counts with a given mean and coefficient of variation, rounded, at least 1."""

    dist: Literal["lognormal"] = Field(description="Distribution name: lognormal.")
    mean: float = Field(
        gt=0, description="Mean token count (before rounding and clipping to >= 1)."
    )
    cv: float = Field(
        ge=0, description="Coefficient of variation (std / mean); 0 gives a constant."
    )
    max: int | None = Field(
        default=None, ge=1, le=1_000_000_000,
        description="Cap: draws above it are clipped to it (e.g. to fit the model's context); "
        "null = no cap. The mean is then below `mean`.",
    )


class TraceTokens(_Spec):
    """Token counts resampled with replacement from one column of a trace file."""

    dist: Literal["trace"] = Field(description="Distribution name: trace (empirical resampling).")
    path: str = Field(
        description="Trace file; a relative path resolves against the scenario's folder."
    )
    column: str = Field(
        description='"prompt" or "output" (the loader\'s token columns) or a raw column name of the file.'
    )
    format: TraceFormatName = Field(default="auto", description="Trace format of the file.")


TokenDist = Annotated[
    Annotated[int, Field(ge=0)]
    | Annotated[ConstantTokens | LognormalTokens | TraceTokens, Field(discriminator="dist")],
    Field(description="An int constant, or {dist: constant|lognormal|trace, ...}."),
]


def _min_tokens(dist: int | ConstantTokens | LognormalTokens | TraceTokens) -> int | None:
    """The smallest count a constant distribution can produce; None for non-constant ones."""
    if isinstance(dist, int):
        return dist
    if isinstance(dist, ConstantTokens):
        return dist.value
    return None


class ColumnMap(_Spec):
    """Names of the arrival and token columns in a generic CSV/JSONL/Parquet file."""

    arrival: str | None = Field(
        default=None, description="Arrival-time column (default: arrival, arrival_s or timestamp)."
    )
    prompt: str | None = Field(
        default=None,
        description="Prompt-token column (default: prompt, prompt_tokens or input_length).",
    )
    output: str | None = Field(
        default=None,
        description="Output-token column (default: output, output_tokens or output_length).",
    )


class JointTokens(_Spec):
    """(prompt, output) pairs resampled together from a trace file, so their correlation survives."""

    path: str = Field(
        description="Trace file; a relative path resolves against the scenario's folder."
    )
    format: TraceFormatName = Field(default="auto", description="Trace format of the file.")
    columns: ColumnMap | None = Field(
        default=None, description="Prompt/output column names for generic formats."
    )


class _Generated(_Spec):
    """Token lengths of generated requests: two distributions, or joint resampling from a file."""

    prompt_tokens: TokenDist | None = Field(
        default=None, description="Prompt length distribution (tokens, >= 1)."
    )
    output_tokens: TokenDist | None = Field(
        default=None, description="Output length distribution (tokens, >= 0; 0 for embeddings)."
    )
    joint_tokens: JointTokens | None = Field(
        default=None,
        description="Resample (prompt, output) pairs from one file instead of two distributions.",
    )

    @model_validator(mode="after")
    def _token_source(self) -> _Generated:
        separate = self.prompt_tokens is not None or self.output_tokens is not None
        if self.joint_tokens is not None and separate:
            raise ValueError("give either joint_tokens or prompt_tokens/output_tokens, not both")
        if self.joint_tokens is None and (self.prompt_tokens is None or self.output_tokens is None):
            raise ValueError("give prompt_tokens and output_tokens (or joint_tokens)")
        low = _min_tokens(self.prompt_tokens) if self.prompt_tokens is not None else None
        if low is not None and low < 1:
            raise ValueError("prompt_tokens must be >= 1 (a request has at least one prompt token)")
        return self


# --- transforms -------------------------------------------------------------------------------


class TimeScaleOp(_Spec):
    """Multiply arrival times (and gaps) by a factor."""

    op: Literal["time_scale"] = Field(description="Transform name: time_scale.")
    factor: float = Field(gt=0, description="Multiplier of arrival times (2 = half the rate).")


class RateScaleOp(_Spec):
    """Scale the arrival rate keeping burstiness: thinning below 1, shifted copies above 1."""

    op: Literal["rate_scale"] = Field(description="Transform name: rate_scale.")
    factor: float = Field(gt=0, description="Multiplier of the arrival rate.")
    shift_s: float = Field(
        default=60.0,
        ge=0,
        description="Extra copies are shifted by a uniform offset in [0, shift_s).",
    )


def _check_window(start_s: float | None, end_s: float | None) -> None:
    """A time window [start_s, end_s) must not be empty."""
    if start_s is not None and end_s is not None and end_s <= start_s:
        raise ValueError(f"end_s ({end_s}) must be greater than start_s ({start_s})")


class SliceOp(_Spec):
    """Keep a time window; its start becomes t = 0."""

    op: Literal["slice"] = Field(description="Transform name: slice.")
    start_s: float | None = Field(
        default=None, ge=0, description="Window start (inclusive), seconds."
    )
    end_s: float | None = Field(default=None, gt=0, description="Window end (exclusive), seconds.")

    @model_validator(mode="after")
    def _order(self) -> SliceOp:
        _check_window(self.start_s, self.end_s)
        return self


class RepeatOp(_Spec):
    """Tile the workload: a number of copies, or up to a horizon."""

    op: Literal["repeat"] = Field(description="Transform name: repeat.")
    times: int | None = Field(
        default=None, ge=1, description="Number of copies; exclusive with until_s."
    )
    until_s: float | None = Field(
        default=None, gt=0, description="Tile up to this time; exclusive with times."
    )
    period_s: float | None = Field(
        default=None,
        gt=0,
        description="Tile period (default: span plus one mean inter-arrival gap).",
    )

    @model_validator(mode="after")
    def _one(self) -> RepeatOp:
        if (self.times is None) == (self.until_s is None):
            raise ValueError("give exactly one of times and until_s")
        return self


class ShiftOp(_Spec):
    """Add an offset to every arrival (negative offsets drop what falls before 0)."""

    op: Literal["shift"] = Field(description="Transform name: shift.")
    offset_s: float = Field(description="Seconds added to every arrival time.")


class MaxRequestsOp(_Spec):
    """Keep the first N requests."""

    op: Literal["max_requests"] = Field(description="Transform name: max_requests.")
    n: int = Field(ge=1, description="Number of requests kept.")


Transform = Annotated[
    TimeScaleOp | RateScaleOp | SliceOp | RepeatOp | ShiftOp | MaxRequestsOp,
    Field(discriminator="op"),
]

_TRANSFORMS_FIELD = "Transforms applied in order after the workload is built."


# --- workload kinds -----------------------------------------------------------------------------


class TraceWorkload(_Spec):
    """Replay a request trace file (arrival times and token counts come from the file)."""

    kind: Literal["trace"] = Field(description="Workload kind: trace.")
    path: str = Field(
        description="Trace file; a relative path resolves against the scenario's folder."
    )
    format: TraceFormatName = Field(
        default="auto", description="File format; auto detects it from the extension and header."
    )
    columns: ColumnMap | None = Field(
        default=None, description="Column names for the generic csv/jsonl/parquet formats."
    )
    time_unit: TimeUnit | None = Field(
        default=None,
        description="Unit of the arrival column for generic formats (s, ms, us, ns or datetime); "
        "unset = seconds, and values that look like epoch ms/us/ns are an error naming the unit.",
    )
    time_scale: float = Field(
        default=1.0, gt=0, description="Multiplies inter-arrival times (2 = half the rate)."
    )
    max_requests: int | None = Field(
        default=None, ge=1, description="Keep only the first N requests (after slicing)."
    )
    start_s: float | None = Field(
        default=None,
        ge=0,
        description="Keep requests arriving at or after this trace time (s from the first arrival); it becomes t = 0.",
    )
    end_s: float | None = Field(
        default=None,
        gt=0,
        description="Keep requests arriving before this trace time (s from the first arrival).",
    )
    filters: dict[str, str | list[str]] | None = Field(
        default=None,
        description='Keep rows whose raw column equals a value or one of a list, e.g. {Model: ChatGPT, "Log Type": "Conversation log"} for BurstGPT.',
    )
    zero_output: Literal["keep", "drop"] = Field(
        default="keep",
        description="Requests with 0 output tokens (BurstGPT's failed responses): keep as prompt-only, or drop.",
    )
    prompt_only: bool = Field(
        default=False,
        description="Embedding workloads: read no output column; every request has 0 output tokens.",
    )
    transforms: tuple[Transform, ...] = Field(default=(), description=_TRANSFORMS_FIELD)

    @model_validator(mode="after")
    def _slice_order(self) -> TraceWorkload:
        _check_window(self.start_s, self.end_s)
        return self


class _FixedRate(_Generated):
    """Fields shared by the constant-rate generators: a rate and a duration or a request count."""

    rate_per_s: float = Field(gt=0, description="Mean arrival rate (requests per second).")
    duration_s: float | None = Field(
        default=None,
        gt=0,
        description="Generate arrivals in [0, duration_s); exclusive with requests.",
    )
    requests: int | None = Field(
        default=None,
        ge=1,
        description="Generate exactly this many requests; exclusive with duration_s.",
    )
    transforms: tuple[Transform, ...] = Field(default=(), description=_TRANSFORMS_FIELD)

    @model_validator(mode="after")
    def _one_length(self) -> _FixedRate:
        if (self.duration_s is None) == (self.requests is None):
            raise ValueError("give exactly one of duration_s and requests")
        return self


class PoissonWorkload(_FixedRate):
    """Homogeneous Poisson arrivals at a fixed rate, for a duration or a request count."""

    kind: Literal["poisson"] = Field(description="Workload kind: poisson.")
    time_scale: float = Field(
        default=1.0, gt=0, description="Multiplies inter-arrival times (2 = half the rate)."
    )


class GammaWorkload(_FixedRate):
    """A renewal process with Gamma inter-arrival times of a given mean rate and CV (CV 1 = Poisson)."""

    kind: Literal["gamma"] = Field(description="Workload kind: gamma.")
    cv: float = Field(
        gt=0, description="Coefficient of variation of inter-arrival times (>1 = bursty)."
    )


class MMPPWorkload(_Generated):
    """A 2-state Markov-modulated Poisson process: Poisson at the rate of the current state."""

    kind: Literal["mmpp"] = Field(description="Workload kind: mmpp.")
    rates_per_s: tuple[float, float] = Field(
        description="Arrival rate in state 0 (calm) and state 1 (burst), requests/s."
    )
    mean_sojourn_s: tuple[float, float] = Field(
        description="Mean time spent in state 0 and in state 1 (exponential), seconds."
    )
    duration_s: float = Field(gt=0, description="Generate arrivals in [0, duration_s).")
    transforms: tuple[Transform, ...] = Field(default=(), description=_TRANSFORMS_FIELD)

    @model_validator(mode="after")
    def _positive(self) -> MMPPWorkload:
        if min(self.rates_per_s) < 0 or max(self.rates_per_s) <= 0:
            raise ValueError("rates_per_s must be >= 0 with at least one > 0")
        if min(self.mean_sojourn_s) <= 0:
            raise ValueError("mean_sojourn_s must be > 0")
        return self

    @property
    def mean_rate_per_s(self) -> float:
        """Long-run mean rate: the sojourn-weighted average of the two rates."""
        (r0, r1), (s0, s1) = self.rates_per_s, self.mean_sojourn_s
        return (r0 * s0 + r1 * s1) / (s0 + s1)


class RateStep(_Spec):
    """From ``at_s`` on (until the next step), arrivals are Poisson at ``rate_per_s``."""

    at_s: float = Field(ge=0, description="Time the step starts, seconds.")
    rate_per_s: float = Field(ge=0, description="Arrival rate from this step on, requests/s.")


class StepWorkload(_Generated):
    """Poisson arrivals with a piecewise-constant rate (0 before the first step)."""

    kind: Literal["step"] = Field(description="Workload kind: step.")
    steps: tuple[RateStep, ...] = Field(
        min_length=1, description="Rate steps in increasing at_s order."
    )
    duration_s: float = Field(gt=0, description="Generate arrivals in [0, duration_s).")
    transforms: tuple[Transform, ...] = Field(default=(), description=_TRANSFORMS_FIELD)

    @model_validator(mode="after")
    def _increasing(self) -> StepWorkload:
        at = [st.at_s for st in self.steps]
        if any(b <= a for a, b in zip(at, at[1:], strict=False)):
            raise ValueError(f"steps must have strictly increasing at_s, got {at}")
        return self


class Spike(_Spec):
    """Extra Poisson traffic during a window, optionally repeated every ``every_s``."""

    at_s: float = Field(ge=0, description="Start of the (first) spike, seconds.")
    duration_s: float = Field(gt=0, description="Length of each spike, seconds.")
    rate_per_s: float = Field(gt=0, description="Extra arrival rate during the spike, requests/s.")
    every_s: float | None = Field(
        default=None, gt=0, description="Repeat the spike with this period (None: once)."
    )


class SpikeWorkload(_Generated):
    """A Poisson base rate plus spikes of extra Poisson traffic (spikes may overlap and add up)."""

    kind: Literal["spike"] = Field(description="Workload kind: spike.")
    base_rate_per_s: float = Field(ge=0, description="Background arrival rate, requests/s.")
    spikes: tuple[Spike, ...] = Field(
        default=(), description="Spikes added on top of the base rate."
    )
    duration_s: float = Field(gt=0, description="Generate arrivals in [0, duration_s).")
    transforms: tuple[Transform, ...] = Field(default=(), description=_TRANSFORMS_FIELD)


class DiurnalWorkload(_Generated):
    """Non-homogeneous Poisson arrivals whose rate follows a daily cosine cycle."""

    kind: Literal["diurnal"] = Field(description="Workload kind: diurnal.")
    mean_rate_per_s: float = Field(
        gt=0, description="Rate averaged over a whole period (requests/s)."
    )
    peak_to_trough: float = Field(
        ge=1, description="Ratio of the peak rate to the trough rate (1 = constant rate)."
    )
    period_s: float = Field(default=86400.0, gt=0, description="Length of one cycle in seconds.")
    peak_at_s: float = Field(
        default=14 * 3600.0, ge=0, description="Time of the peak within a cycle (default 14:00)."
    )
    weekly_peak_to_trough: float = Field(
        default=1.0, ge=1, description="Peak/trough ratio of an extra weekly cycle (1 = none)."
    )
    weekly_peak_at_s: float = Field(
        default=2.5 * 86400.0,
        ge=0,
        description="Time of the weekly peak within the week (default: day 2.5, Wednesday noon if t = 0 is Monday 00:00).",
    )
    duration_s: float = Field(gt=0, description="Generate arrivals in [0, duration_s).")
    transforms: tuple[Transform, ...] = Field(default=(), description=_TRANSFORMS_FIELD)


class ServeGenWorkload(_Generated):
    """Arrivals replaying ServeGen client rate series window by window, scaled to a mean rate."""

    kind: Literal["servegen"] = Field(description="Workload kind: servegen.")
    path: str = Field(
        default="../shared/data/servegen/m-large",
        description="Folder of ServeGen chunk-<id>-trace.csv files (one per client).",
    )
    clients: Literal["all"] | int | tuple[int, ...] = Field(
        default="all",
        description='Client ids (chunk numbers): one, a list, or "all" (their aggregate).',
    )
    mean_rate_per_s: float = Field(
        gt=0,
        description="Target mean arrival rate over the generated span (rates are scaled to it).",
    )
    start_s: float = Field(
        default=0.0, ge=0, description="Offset into the series (s); it becomes t = 0."
    )
    duration_s: float | None = Field(
        default=None, gt=0, description="Length to generate (default: to the end of the series)."
    )
    transforms: tuple[Transform, ...] = Field(default=(), description=_TRANSFORMS_FIELD)


class CompositeWorkload(_Spec):
    """The superposition of several workloads (e.g. a diurnal background plus spikes)."""

    kind: Literal["composite"] = Field(description="Workload kind: composite.")
    parts: tuple[WorkloadSpec, ...] = Field(
        min_length=1,
        description="Workloads merged by arrival time; each draws from its own streams.",
    )
    transforms: tuple[Transform, ...] = Field(default=(), description=_TRANSFORMS_FIELD)


AnyWorkload = (
    TraceWorkload
    | PoissonWorkload
    | GammaWorkload
    | DiurnalWorkload
    | MMPPWorkload
    | StepWorkload
    | SpikeWorkload
    | ServeGenWorkload
    | CompositeWorkload
)

WorkloadSpec = Annotated[
    AnyWorkload,
    Field(discriminator="kind", description="What arrives: a trace file or a generator."),
]

CompositeWorkload.model_rebuild()
_ADAPTER: TypeAdapter[AnyWorkload] = TypeAdapter(WorkloadSpec)


def parse_workload_spec(data: object) -> AnyWorkload:
    """Validate a ``workload:`` mapping into its spec model (raises pydantic's ValidationError)."""
    return _ADAPTER.validate_python(data)
