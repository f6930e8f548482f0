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
from dataclasses import dataclass, replace

from sim.errors import ProfileError
from sim.hardware import gpu_spec

#: KV-cache room, in tokens, that a worker must have besides the weights to count as "fits".
MIN_KV_TOKENS = 4096

#: Worker sizes (GPUs per worker) tried by :func:`min_gpus_to_fit`, as tensor parallelism uses.
GPU_COUNTS = (1, 2, 4, 8)


@dataclass(frozen=True)
class ModelSpec:
    """Architecture of one served model (decoder LLM or encoder embedding model)."""

    name: str  # catalog name, e.g. "Llama-2-7B"
    params_b: float  # total parameters, billions (sets the weights memory)
    n_layers: int  # transformer blocks
    hidden: int  # model width
    n_heads: int  # query heads
    n_kv_heads: int  # key/value heads (== n_heads without grouped-query attention)
    head_dim: int  # width of one attention head
    intermediate: int  # MLP inner width (per expert for mixture-of-experts)
    vocab: int  # vocabulary size (LM head width)
    dtype_bytes: int = 2  # bytes per weight and per KV element (FP16/BF16)
    kind: str = "decoder"  # "decoder" (LLM, continuous batching) or "encoder" (embedding)
    active_params_b: float | None = None  # parameters used per token (MoE); None = all
    hf_id: str = ""  # canonical Hugging Face id, for messages and exports
    note: str = ""  # assumptions made when the spec was inferred rather than catalogued

    @property
    def weights_gb(self) -> float:
        """Weights memory in GB (1e9 bytes): parameters times bytes per parameter."""
        return self.params_b * self.dtype_bytes

    @property
    def kv_bytes_per_token(self) -> int:
        """KV-cache bytes one token occupies across all layers (K and V, all KV heads)."""
        return 2 * self.n_layers * self.n_kv_heads * self.head_dim * self.dtype_bytes

    @property
    def compute_params_b(self) -> float:
        """Parameters touched per token, billions: the active count for MoE, else all."""
        return self.active_params_b if self.active_params_b is not None else self.params_b

    @property
    def is_encoder(self) -> bool:
        """True for encoder-only (embedding) models, which have no decode phase."""
        return self.kind == "encoder"


def _llama(name: str, hf_id: str, params_b: float, n_layers: int, hidden: int, n_heads: int,
           n_kv_heads: int, intermediate: int, vocab: int, *, kind: str = "decoder",
           active_params_b: float | None = None) -> ModelSpec:
    return ModelSpec(name=name, params_b=params_b, n_layers=n_layers, hidden=hidden,
                     n_heads=n_heads, n_kv_heads=n_kv_heads, head_dim=hidden // n_heads,
                     intermediate=intermediate, vocab=vocab, kind=kind,
                     active_params_b=active_params_b, hf_id=hf_id)


# Shapes from each model's published config.json; parameter counts from the model cards.
MODELS: dict[str, ModelSpec] = {
    m.name: m
    for m in (
        _llama("Llama-2-7B", "meta-llama/Llama-2-7b-hf", 6.74, 32, 4096, 32, 32, 11008, 32000),
        _llama("Llama-2-13B", "meta-llama/Llama-2-13b-hf", 13.02, 40, 5120, 40, 40, 13824, 32000),
        _llama("Llama-2-70B", "meta-llama/Llama-2-70b-hf", 68.98, 80, 8192, 64, 8, 28672, 32000),
        _llama("Llama-3-8B", "meta-llama/Meta-Llama-3-8B", 8.03, 32, 4096, 32, 8, 14336, 128256),
        _llama("Llama-3-70B", "meta-llama/Meta-Llama-3-70B", 70.55, 80, 8192, 64, 8, 28672,
               128256),
        _llama("Mistral-7B", "mistralai/Mistral-7B-v0.1", 7.24, 32, 4096, 32, 8, 14336, 32000),
        _llama("Mixtral-8x7B", "mistralai/Mixtral-8x7B-v0.1", 46.70, 32, 4096, 32, 8, 14336,
               32000, active_params_b=12.9),
        # Encoders (BERT shape): bge-large is BERT-large sized, bge-small/MiniLM are tiny.
        _llama("bge-large-en", "BAAI/bge-large-en-v1.5", 0.335, 24, 1024, 16, 16, 4096, 30522,
               kind="encoder"),
        _llama("bge-base-en", "BAAI/bge-base-en-v1.5", 0.109, 12, 768, 12, 12, 3072, 30522,
               kind="encoder"),
        _llama("bge-small-en", "BAAI/bge-small-en-v1.5", 0.0334, 12, 384, 12, 12, 1536, 30522,
               kind="encoder"),
        _llama("all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2", 0.0227, 6, 384, 12,
               12, 1536, 30522, kind="encoder"),
    )
}

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
    "mistral-7b": 32768, "mixtral-8x7b": 32768,
}  # fmt: skip


def max_context_tokens(name: str) -> int | None:
    """The longest prompt + output a decoder ``name`` serves (None when unknown: no limit)."""
    norm = _normalise(name)
    if norm in _CONTEXT_BY_ALIAS:
        return _CONTEXT_BY_ALIAS[norm]
    spec = MODELS.get(name) or next(
        (m for m in MODELS.values() if norm in (_normalise(m.name), _normalise(m.hf_id))), None
    )
    return _CONTEXT_BY_ALIAS.get(_normalise(spec.name)) if spec is not None else None


def resolve_model(name: str) -> ModelSpec:
    """The spec of model ``name`` (HF id or catalog name, any case); inferred from "70b" if unknown."""
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
