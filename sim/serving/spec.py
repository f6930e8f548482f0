"""The scenario's ``serving`` section: the performance model of a worker."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

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
        description="Performance profiles: builtin (composed from measured operators for "
        "serving.engine), vidur (the Vidur-fitted profiles of earlier versions) or a path to a "
        "CSV/YAML profile (e.g. written by sim calibrate).",
    )
    engine: Literal["vllm-0.14", "vllm-0.24", "eager-2024"] = Field(
        default="vllm-0.14",
        description="Serving engine preset of the builtin profiles: vllm-0.14 (CUDA graphs), "
        "vllm-0.24 (H100 tables), eager-2024 (no CUDA graphs, 2024 host overheads); "
        "docs/profiles.md.",
    )
    model_config_json: str | None = Field(
        default=None,
        description="Path to a Hugging Face config.json describing the model (any dense or "
        "MoE transformer); overrides the built-in architecture table. Scenario files may "
        "spell it model_config (pydantic reserves that attribute name).",
    )
    max_batch: Int = Field(
        default=256, ge=1,
        description="Most requests a worker runs at once (vLLM's max_num_seqs, default 256).",
    )
    kv_admission: Literal["paged", "reserve"] = Field(
        default="paged",
        description="llm model: paged (vLLM: KV grows token by token, chunked prefill within "
        "max_num_batched_tokens, recompute preemption when blocks run out) or reserve "
        "(prompt + full output reserved at admission, all joiners prefilled at once).",
    )
    max_num_batched_tokens: Int | None = Field(
        default=None, ge=1,
        description="Token budget of one iteration with paged admission (vLLM's "
        "max_num_batched_tokens); null = vLLM's OpenAI-server default: 8192 on GPUs with "
        ">= 70 GiB other than the A100, else 2048.",
    )
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

    @model_validator(mode="before")
    @classmethod
    def _model_config_spelling(cls, data: Any) -> Any:
        """Accept the issue-style key ``model_config`` for ``model_config_json`` in files."""
        if isinstance(data, dict) and "model_config" in data:
            data = dict(data)
            if "model_config_json" in data:
                raise ValueError("give model_config or model_config_json, not both")
            data["model_config_json"] = data.pop("model_config")
        return data

    def resolved_kind(self, inf_type: str) -> str:
        """The service model to use: ``kind``, or llm/embedding from ``inf_type`` when auto."""
        if self.kind != "auto":
            return self.kind
        return "embedding" if inf_type == "embedding" else "llm"
