"""The base of every scenario section: frozen, typed, unknown keys are errors."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator

from sim.bounds import check_field

#: Latencies a band or an SLO can be on; auto = ttft for llm, e2e for embedding.
Metric = Literal["auto", "ttft", "e2e", "queue"]


class Section(BaseModel):
    """Shared config of scenario sections: immutable, unknown keys are errors, every number
    finite and within its bound (:mod:`sim.bounds`)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    @field_validator("*", mode="after")
    @classmethod
    def _bounded(cls, value: Any, info: ValidationInfo) -> Any:
        """Every number within its field's bound (sim.bounds: by unit, from the name)."""
        return check_field(info.field_name or "", value)
