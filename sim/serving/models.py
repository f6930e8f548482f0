"""Model catalog: architecture shapes, memory footprint and name resolution for served models.

A :class:`ModelSpec` carries what the simulator needs to know about a model: its parameter
count (weights memory), and the attention shape that sets the KV-cache bytes per token. The
catalog holds the models the built-in performance profiles were derived for plus common
relatives; :func:`resolve_model` maps the names users type (Hugging Face ids, with or without
organisation, ``-hf``/``-chat``/``-Instruct`` suffixes, any case) to a spec, and infers a
Llama-like spec from a size in the name ("70b", "8x7B") for models it does not know.

Memory rule used by :func:`min_gpus_to_fit` and :func:`memory_shortfall_gb` (the scenario
validator quotes the latter as "needs X GB more"): a worker of ``gpus`` GPUs has
``gpus * memory_gb * utilization`` GB for the engine (vLLM's ``gpu_memory_utilization``,
default 0.9); it must hold the weights plus KV-cache room for at least one full
``MIN_KV_TOKENS``-token context (vLLM refuses to start when the KV cache cannot hold one
sequence of ``max_model_len`` tokens; 4096 is the context length of the Llama-2 family and a
common ``max_model_len``). Encoder (embedding) models keep no KV cache and need only the weights.
"""

from __future__ import annotations

import math
import re
from dataclasses import replace
from pathlib import Path

from sim.errors import ProfileError
from sim.hardware import gpu_spec
from sim.serving.architectures import ARCHITECTURES, ModelSpec, spec_from_config

__all__ = ["MODELS", "ModelSpec", "max_context_tokens", "memory_shortfall_gb", "min_gpus_to_fit",
           "resolve_model"]

#: KV-cache room, in tokens, that a worker must have besides the weights to count as "fits".
MIN_KV_TOKENS = 4096

#: Worker sizes (GPUs per worker) tried by :func:`min_gpus_to_fit`, as tensor parallelism uses.
GPU_COUNTS = (1, 2, 4, 8)


# The built-in table lives in sim.serving.architectures (facts with their source).
MODELS: dict[str, ModelSpec] = {m.name: m for m in ARCHITECTURES}

# Normalised spellings (see _normalise) -> catalog name. Llama 3.1 has the Llama 3
# architecture (only RoPE scaling and context length differ), so it shares the spec.
_ALIASES: dict[str, str] = {
    "llama-2-7b": "Llama-2-7B",
    "llama-2-13b": "Llama-2-13B",
    "llama-2-70b": "Llama-2-70B",
    "llama-3-8b": "Llama-3-8B",
    "llama-3.1-8b": "Llama-3-8B",
    "llama-3-70b": "Llama-3-70B",
    "llama-3.1-70b": "Llama-3-70B",
    "llama-3.3-70b": "Llama-3-70B",
    "mistral-7b": "Mistral-7B",
    "mixtral-8x7b": "Mixtral-8x7B",
    "mixtral-8x22b": "Mixtral-8x22B",
    "llama-3.1-405b": "Llama-3.1-405B",
    "llama-3-405b": "Llama-3.1-405B",
    "qwen2.5-7b": "Qwen2.5-7B",
    "qwen2-7b": "Qwen2.5-7B",
    "qwen2.5-14b": "Qwen2.5-14B",
    "qwen2.5-32b": "Qwen2.5-32B",
    "qwen2.5-72b": "Qwen2.5-72B",
    "qwen2-72b": "Qwen2.5-72B",
    "gemma-2-9b": "Gemma-2-9B",
    "gemma-2-27b": "Gemma-2-27B",
    "phi-3-mini": "Phi-3-mini",
    "phi-3-mini-4k": "Phi-3-mini",
    "phi-3-medium": "Phi-3-medium",
    "phi-3-medium-4k": "Phi-3-medium",
    "e5-large": "e5-large",
    "e5-large-v2": "e5-large",
    "multilingual-e5-large": "e5-large",
    "e5-mistral-7b": "e5-mistral-7b",
    "gte-large": "gte-large",
    "gte-base": "gte-base",
    "bge-large-en": "bge-large-en",
    "bge-large": "bge-large-en",
    "bge-base-en": "bge-base-en",
    "bge-base": "bge-base-en",
    "bge-small-en": "bge-small-en",
    "bge-small": "bge-small-en",
    "all-minilm-l6-v2": "all-MiniLM-L6-v2",
    "all-minilm-l6": "all-MiniLM-L6-v2",
    "minilm-l6": "all-MiniLM-L6-v2",
}

# Fine-tune / packaging suffixes that do not change the architecture.
_SUFFIXES = ("hf", "chat", "instruct", "it", "base", "fp16", "bf16")


def _normalise(name: str) -> str:
    """Lower-case, drop the organisation, packaging suffixes and version tags."""
    s = name.strip().lower().rsplit("/", 1)[-1]
    s = re.sub(r"[\s_]+", "-", s)
    s = re.sub(r"^meta-(?=llama)", "", s)
    s = re.sub(r"llama-?(\d)", r"llama-\1", s)  # "llama2-7b" -> "llama-2-7b"
    changed = True
    while changed:
        changed = False
        for suffix in _SUFFIXES:
            if s.endswith("-" + suffix):
                s = s[: -len(suffix) - 1]
                changed = True
        v = re.sub(r"-v\d+(\.\d+)*$", "", s)  # "-v0.1", "-v1.5" (Mistral, BGE releases)
        if v != s and v:
            s, changed = v, True
    return s


# Templates for unknown models: modern Llama-like shapes with grouped-query attention.
_SMALL_TEMPLATE = "Llama-3-8B"
_LARGE_TEMPLATE = "Llama-3-70B"
# Shared (non-expert) share of a dense model in a Mixtral-style MoE: Mixtral-8x7B has
# 46.7B total = 1.6B shared + 8 x 5.64B experts, against 7.24B for the dense Mistral-7B.
_MOE_SHARED_FRACTION = 0.22
_MOE_ACTIVE_EXPERTS = 2


def _infer_size(norm: str) -> tuple[float, float | None, float] | None:
    """(total params B, active params B or None, dense size B) from a size tag in the name."""
    moe = re.search(r"(?<![\w.])(\d+)x(\d+(?:\.\d+)?)b(?![a-z])", norm)
    if moe:
        n_exp, dense = int(moe.group(1)), float(moe.group(2))
        total = dense * (_MOE_SHARED_FRACTION + (1 - _MOE_SHARED_FRACTION) * n_exp)
        active = dense * (_MOE_SHARED_FRACTION
                          + (1 - _MOE_SHARED_FRACTION) * min(_MOE_ACTIVE_EXPERTS, n_exp))
        return total, active, dense
    dense_m = re.search(r"(?<![\w.])(\d+(?:\.\d+)?)([bm])(?![a-z])", norm)
    if dense_m:
        size = float(dense_m.group(1)) / (1000.0 if dense_m.group(2) == "m" else 1.0)
        if size > 0:
            return size, None, size
    return None


def _scaled_spec(name: str, total_b: float, active_b: float | None, dense_b: float) -> ModelSpec:
    """A Llama-like spec of ``dense_b`` billion parameters, layers scaled from a template."""
    template = MODELS[_SMALL_TEMPLATE if dense_b < 30 else _LARGE_TEMPLATE]
    # Keep the template's widths and head layout, scale depth with size: weights memory is
    # exact (from the name) and KV bytes per token grow with depth as they do in the family.
    layers = max(1, round(template.n_layers * dense_b / template.params_b))
    what = (f"{total_b:.3g}B total / {active_b:.3g}B active (Mixtral-style MoE, "
            f"{_MOE_SHARED_FRACTION:.0%} shared)" if active_b is not None
            else f"{total_b:.3g}B parameters")
    note = (f"unknown model {name!r}: assumed {what} from its name, with a Llama-like shape "
            f"({layers} layers of {template.name}'s width, {template.n_kv_heads} KV heads); "
            "set serving.profile to a measured profile for accurate results")
    return replace(template, name=name, params_b=round(total_b, 4),
                   active_params_b=None if active_b is None else round(active_b, 4),
                   n_layers=layers, hf_id=name, note=note)


# Maximum sequence length (prompt + output) of the catalogued decoders, from their configs'
# max_position_embeddings; versions that share an architecture can differ (Llama 3 vs 3.1).
_CONTEXT_BY_ALIAS: dict[str, int] = {
    "llama-2-7b": 4096, "llama-2-13b": 4096, "llama-2-70b": 4096,
    "llama-3-8b": 8192, "llama-3-70b": 8192,
    "llama-3.1-8b": 131072, "llama-3.1-70b": 131072, "llama-3.3-70b": 131072,
    "mistral-7b": 32768, "mixtral-8x7b": 32768, "qwen2-7b": 32768, "qwen2-72b": 32768,
}  # fmt: skip


def max_context_tokens(name: str) -> int | None:
    """The longest prompt + output a decoder ``name`` serves (None when unknown: no limit)."""
    norm = _normalise(name)
    if norm in _CONTEXT_BY_ALIAS:
        return _CONTEXT_BY_ALIAS[norm]
    spec = MODELS.get(name) or next(
        (m for m in MODELS.values() if norm in (_normalise(m.name), _normalise(m.hf_id))), None
    )
    if spec is None:
        return None
    return _CONTEXT_BY_ALIAS.get(_normalise(spec.name), spec.max_context)


def resolve_model(name: str, config: str | Path | None = None) -> ModelSpec:
    """The spec of model ``name`` (HF id or catalog name, any case); inferred from "70b" if unknown.

    With ``config`` (a Hugging Face ``config.json``, ``serving.model_config``) the shape is
    read from that file instead (:func:`sim.serving.architectures.spec_from_config`).
    """
    if config is not None:
        return spec_from_config(config, name.strip() or None)
    if not name or not name.strip():
        raise ProfileError("empty model name: expected a Hugging Face id such as "
                           "'meta-llama/Llama-2-7b-hf' (or set serving.profile to a profile file)")
    if name in MODELS:
        return MODELS[name]
    norm = _normalise(name)
    if norm in _ALIASES:
        return MODELS[_ALIASES[norm]]
    for spec in MODELS.values():
        if _normalise(spec.name) == norm or _normalise(spec.hf_id) == norm:
            return spec
    size = _infer_size(norm)
    if size is None:
        raise ProfileError(
            f"unknown model {name!r} and no size in its name (such as '7b', '70B', '8x7b'): "
            f"cannot infer its memory footprint or speed; known models: {', '.join(MODELS)}. "
            "Set serving.profile to a profile file (YAML or CSV with the coefficients of "
            "docs/profiles.md), or use a model name that carries its size")
    return _scaled_spec(name.strip(), *size)


def _kv_room_gb(model: ModelSpec) -> float:
    """KV room (GB) a worker needs beyond the weights: one MIN_KV_TOKENS context; 0 for encoders."""
    return 0.0 if model.is_encoder else MIN_KV_TOKENS * model.kv_bytes_per_token / 1e9


def memory_shortfall_gb(model: ModelSpec, gpu: str, gpus: int, utilization: float = 0.9) -> float:
    """GB missing for ``model`` on ``gpus`` x ``gpu`` (weights + one 4k-token KV context); 0 if it fits."""
    if gpus < 1:
        raise ProfileError(f"GPUs per worker must be >= 1, got {gpus}")
    if not 0 < utilization <= 1:
        raise ProfileError(f"gpu_memory_utilization must be in (0, 1], got {utilization}")
    usable = gpus * gpu_spec(gpu).memory_gb * utilization
    return max(0.0, model.weights_gb + _kv_room_gb(model) - usable)


def min_gpus_to_fit(model: ModelSpec, gpu: str, utilization: float = 0.9) -> int:
    """Smallest count in (1, 2, 4, 8) of ``gpu`` that holds ``model``; ProfileError if none does."""
    for n in GPU_COUNTS:
        if memory_shortfall_gb(model, gpu, n, utilization) <= 0:
            return n
    top = GPU_COUNTS[-1]
    short = memory_shortfall_gb(model, gpu, top, utilization)
    raise ProfileError(
        f"{model.name} ({model.weights_gb:.1f} GB of weights) does not fit on {top} x {gpu} "
        f"at gpu_memory_utilization {utilization}: needs {math.ceil(short * 10) / 10:.1f} GB more")
