"""The scenario's ``serving`` section: the performance model of a worker."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from sim.api.schema import Int
from sim.section import Section


class ServingSpec(Section):
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
