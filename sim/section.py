"""The base of every scenario section: frozen, typed, unknown keys are errors."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

#: Latencies a band or an SLO can be on; auto = ttft for llm, e2e for embedding.
Metric = Literal["auto", "ttft", "e2e", "queue"]


class Section(BaseModel):
    """Shared config of scenario sections: immutable, unknown keys are errors."""

    model_config = ConfigDict(frozen=True, extra="forbid")
