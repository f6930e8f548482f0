"""Model architectures: the built-in table (facts with their source) and Hugging Face configs.

A :class:`ModelSpec` is the shape the composed service model (:mod:`sim.serving.compose`)
needs: layers, width, query and key/value heads, head width, MLP width, vocabulary, experts
and top-k for mixture-of-experts, and the longest context. Weights memory and KV-cache bytes
per token (with grouped-query attention: only the KV heads are cached) follow from it.

Every entry of :data:`ARCHITECTURES` is copied from the model's published ``config.json`` on
the Hugging Face Hub (the ``source`` field names the repository); parameter counts are the
model cards' figures and agree with :func:`count_params` on the shape within 2% (tested).
Any other model is read from its ``config.json`` with :func:`spec_from_config`
(``serving.model_config``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sim.errors import ProfileError


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
    n_experts: int = 0  # routed experts per MoE layer (0 = dense MLP)
    top_k: int = 0  # experts each token is routed to
    max_context: int | None = None  # max_position_embeddings (None = unknown)
    gated_mlp: bool = True  # SwiGLU/GeGLU (gate + up + down) vs plain up + down (BERT)
    source: str = ""  # where the figures come from
    # Every token attends to every other (BERT-family encoders); False = causal attention,
    # also for LLM-based embedders such as e5-mistral (a decoder run as an encoder).
    bidirectional: bool = False

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

    @property
    def is_moe(self) -> bool:
        """True for mixture-of-experts models."""
        return self.n_experts > 1


def count_params(spec: ModelSpec, *, tied_embeddings: bool = False) -> tuple[float, float]:
    """(total, active) parameters in billions, counted from the shape.

    Embedding ``vocab x hidden`` (+ an untied LM head of the same size); per layer the
    q/k/v/o projections ``hidden x (heads + 2 kv_heads) x head_dim + heads x head_dim x hidden``
    and the MLP ``(3 if gated else 2) x hidden x intermediate`` per expert, plus the router.
    Norms and biases (< 0.1%) are left out.
    """
    attn = spec.hidden * (spec.n_heads + 2 * spec.n_kv_heads) * spec.head_dim \
        + spec.n_heads * spec.head_dim * spec.hidden
    mlp = (3 if spec.gated_mlp else 2) * spec.hidden * spec.intermediate
    experts = max(spec.n_experts, 1)
    router = spec.hidden * spec.n_experts if spec.is_moe else 0
    emb = spec.vocab * spec.hidden * (1 if tied_embeddings or spec.is_encoder else 2)
    total = emb + spec.n_layers * (attn + mlp * experts + router)
    active = emb + spec.n_layers * (attn + mlp * max(spec.top_k, 1) + router) if spec.is_moe \
        else total
    return total / 1e9, active / 1e9


def _hf(name: str, hf_id: str, params_b: float, layers: int, hidden: int, heads: int,
        kv: int, inter: int, vocab: int, ctx: int, *, head_dim: int | None = None,
        experts: int = 0, top_k: int = 0, active_b: float | None = None,
        kind: str = "decoder", gated: bool = True) -> ModelSpec:
    return ModelSpec(name=name, params_b=params_b, n_layers=layers, hidden=hidden,
                     n_heads=heads, n_kv_heads=kv, head_dim=head_dim or hidden // heads,
                     intermediate=inter, vocab=vocab, kind=kind, active_params_b=active_b,
                     hf_id=hf_id, n_experts=experts, top_k=top_k, max_context=ctx,
                     gated_mlp=gated, source=f"huggingface.co/{hf_id} config.json, model card",
                     bidirectional=kind == "encoder" and not gated)


#: The built-in table: (layers, hidden, heads, KV heads, [head_dim], intermediate, vocab,
#: max_position_embeddings) from each repository's config.json; parameters from the cards.
ARCHITECTURES: tuple[ModelSpec, ...] = (
    _hf("Llama-2-7B", "meta-llama/Llama-2-7b-hf", 6.74, 32, 4096, 32, 32, 11008, 32000, 4096),
    _hf("Llama-2-13B", "meta-llama/Llama-2-13b-hf", 13.02, 40, 5120, 40, 40, 13824, 32000, 4096),
    _hf("Llama-2-70B", "meta-llama/Llama-2-70b-hf", 68.98, 80, 8192, 64, 8, 28672, 32000, 4096),
    _hf("Llama-3-8B", "meta-llama/Meta-Llama-3-8B", 8.03, 32, 4096, 32, 8, 14336, 128256, 8192),
    _hf("Llama-3-70B", "meta-llama/Meta-Llama-3-70B", 70.55, 80, 8192, 64, 8, 28672, 128256,
        8192),
    _hf("Llama-3.1-405B", "meta-llama/Llama-3.1-405B", 405.85, 126, 16384, 128, 8, 53248,
        128256, 131072),
    _hf("Mistral-7B", "mistralai/Mistral-7B-v0.1", 7.24, 32, 4096, 32, 8, 14336, 32000, 32768),
    _hf("Mixtral-8x7B", "mistralai/Mixtral-8x7B-v0.1", 46.70, 32, 4096, 32, 8, 14336, 32000,
        32768, experts=8, top_k=2, active_b=12.88),
    _hf("Mixtral-8x22B", "mistralai/Mixtral-8x22B-v0.1", 140.62, 56, 6144, 48, 8, 16384, 32000,
        65536, experts=8, top_k=2, active_b=39.15),
    _hf("Qwen2.5-7B", "Qwen/Qwen2.5-7B", 7.62, 28, 3584, 28, 4, 18944, 152064, 131072),
    _hf("Qwen2.5-14B", "Qwen/Qwen2.5-14B", 14.77, 48, 5120, 40, 8, 13824, 152064, 131072),
    _hf("Qwen2.5-32B", "Qwen/Qwen2.5-32B", 32.76, 64, 5120, 40, 8, 27648, 152064, 131072),
    _hf("Qwen2.5-72B", "Qwen/Qwen2.5-72B", 72.71, 80, 8192, 64, 8, 29568, 152064, 131072),
    _hf("Gemma-2-9B", "google/gemma-2-9b", 9.24, 42, 3584, 16, 8, 14336, 256000, 8192,
        head_dim=256),
    _hf("Gemma-2-27B", "google/gemma-2-27b", 27.23, 46, 4608, 32, 16, 36864, 256000, 8192,
        head_dim=128),
    _hf("Phi-3-mini", "microsoft/Phi-3-mini-4k-instruct", 3.82, 32, 3072, 32, 32, 8192, 32064,
        4096),
    _hf("Phi-3-medium", "microsoft/Phi-3-medium-4k-instruct", 13.96, 40, 5120, 40, 10, 17920,
        32064, 4096),
    # Encoders (BERT shape: plain GELU MLP, tied embeddings, 512 positions).
    _hf("bge-large-en", "BAAI/bge-large-en-v1.5", 0.335, 24, 1024, 16, 16, 4096, 30522, 512,
        kind="encoder", gated=False),
    _hf("bge-base-en", "BAAI/bge-base-en-v1.5", 0.109, 12, 768, 12, 12, 3072, 30522, 512,
        kind="encoder", gated=False),
    _hf("bge-small-en", "BAAI/bge-small-en-v1.5", 0.0334, 12, 384, 12, 12, 1536, 30522, 512,
        kind="encoder", gated=False),
    _hf("all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2", 0.0227, 6, 384, 12, 12,
        1536, 30522, 512, kind="encoder", gated=False),
    _hf("e5-large", "intfloat/e5-large-v2", 0.335, 24, 1024, 16, 16, 4096, 30522, 512,
        kind="encoder", gated=False),
    _hf("gte-large", "thenlper/gte-large", 0.335, 24, 1024, 16, 16, 4096, 30522, 512,
        kind="encoder", gated=False),
    _hf("gte-base", "thenlper/gte-base", 0.109, 12, 768, 12, 12, 3072, 30522, 512,
        kind="encoder", gated=False),
    # LLM-based embedders: a decoder run as an encoder (one prefill pass per batch).
    _hf("e5-mistral-7b", "intfloat/e5-mistral-7b-instruct", 7.11, 32, 4096, 32, 8, 14336, 32000,
        32768, kind="encoder"),
)


def _field(cfg: dict[str, Any], where: str, *names: str, default: Any = None) -> Any:
    for n in names:
        if n in cfg and cfg[n] is not None:
            return cfg[n]
    if default is not None:
        return default
    raise ProfileError(f"{where}: missing {' or '.join(repr(n) for n in names)} (a Hugging Face "
                       "config.json of a transformer model was expected)")


_ENCODER_TYPES = {"bert", "xlm-roberta", "roberta", "nomic_bert", "new", "distilbert"}
_DTYPE_BYTES = {"float16": 2, "bfloat16": 2, "float32": 2, "float8_e4m3fn": 1}


def spec_from_config(path: str | Path, name: str | None = None) -> ModelSpec:
    """A :class:`ModelSpec` read from a Hugging Face ``config.json`` (``serving.model_config``).

    Reads ``num_hidden_layers``, ``hidden_size``, ``num_attention_heads``,
    ``num_key_value_heads`` (default: the query heads), ``head_dim`` (default: hidden /
    heads), ``intermediate_size`` (``moe_intermediate_size`` for Qwen-MoE style experts),
    ``vocab_size``, ``num_local_experts``/``num_experts`` and ``num_experts_per_tok``,
    ``max_position_embeddings`` and ``tie_word_embeddings``; BERT-family ``model_type`` values
    are encoders. Weights are served in 16-bit (a float32 checkpoint is cast, as vLLM does by
    default). Parameters are counted from the shape (:func:`count_params`). ProfileError
    naming the file and field when a field is missing or not a positive integer.
    """
    p = Path(path)
    where = f"serving.model_config {p}"
    try:
        cfg = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ProfileError(f"{where}: file not found (expected a Hugging Face config.json)") \
            from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ProfileError(f"{where}: cannot read as JSON: {exc}") from None
    if not isinstance(cfg, dict):
        raise ProfileError(f"{where}: expected a JSON object")
    if "text_config" in cfg and isinstance(cfg["text_config"], dict):  # multimodal wrappers
        cfg = {**cfg, **cfg["text_config"]}
    def positive(key: str, val: Any) -> int:
        if isinstance(val, bool) or not isinstance(val, int) or val < 1:
            raise ProfileError(f"{where}: {key} must be a positive integer, got {val!r}")
        return val

    def count(key: str, *names: str) -> int:
        val = _field(cfg, where, *names, default=0)
        return 0 if val == 0 else positive(key, val)

    # Each field is checked as soon as it is read: the defaults below divide by them.
    ints: dict[str, int] = {}
    spec_fields = {
        "layers": ("num_hidden_layers", "n_layer", "num_layers"),
        "hidden": ("hidden_size", "n_embd", "d_model"),
        "heads": ("num_attention_heads", "n_head"),
        "vocab": ("vocab_size",),
    }
    for key, names in spec_fields.items():
        ints[key] = positive(key, _field(cfg, where, *names))
    ints["kv"] = positive("kv", _field(cfg, where, "num_key_value_heads", "multi_query_group_num",
                                       default=ints["heads"]))
    if ints["heads"] % ints["kv"]:
        raise ProfileError(f"{where}: num_attention_heads ({ints['heads']}) must be a multiple "
                           f"of num_key_value_heads ({ints['kv']}): each KV head serves a group "
                           "of query heads")
    n_experts = count("num_experts", "num_local_experts", "num_experts", "n_routed_experts")
    inter_names = ("moe_intermediate_size", "intermediate_size") if n_experts > 1 \
        else ("intermediate_size", "ffn_hidden_size", "n_inner")
    ints["inter"] = positive("inter", _field(cfg, where, *inter_names, default=4 * ints["hidden"]))
    ints["head_dim"] = positive(
        "head_dim", _field(cfg, where, "head_dim", default=ints["hidden"] // ints["heads"])
    )
    top_k = count("num_experts_per_tok", "num_experts_per_tok", "moe_top_k")
    if n_experts > 1 and not 1 <= top_k <= n_experts:
        raise ProfileError(f"{where}: num_experts_per_tok must be in 1..{n_experts} for a "
                           f"mixture-of-experts model, got {top_k}")
    model_type = str(cfg.get("model_type", "")).lower()
    encoder = model_type in _ENCODER_TYPES
    ctx = cfg.get("max_position_embeddings")
    archs = cfg.get("architectures") or []
    label = name or cfg.get("_name_or_path") or (archs[0] if archs else p.parent.name or p.stem)
    spec = ModelSpec(
        name=str(label), params_b=0.0, n_layers=ints["layers"], hidden=ints["hidden"],
        n_heads=ints["heads"], n_kv_heads=ints["kv"], head_dim=ints["head_dim"],
        intermediate=ints["inter"], vocab=ints["vocab"],
        dtype_bytes=_DTYPE_BYTES.get(str(cfg.get("torch_dtype", "bfloat16")), 2),
        kind="encoder" if encoder else "decoder", hf_id=str(label),
        n_experts=n_experts if n_experts > 1 else 0, top_k=top_k if n_experts > 1 else 0,
        max_context=int(ctx) if isinstance(ctx, int) and ctx > 0 else None,
        gated_mlp=not encoder, source=f"{p} (config.json)", bidirectional=encoder)
    total, active = count_params(spec, tied_embeddings=bool(cfg.get("tie_word_embeddings")))
    from dataclasses import replace

    return replace(spec, params_b=round(total, 4),
                   active_params_b=round(active, 4) if spec.is_moe else None)


def check_table() -> list[str]:
    """Entries whose card parameter count differs from the shape's count by more than 2%."""
    bad = []
    for s in ARCHITECTURES:
        total, _ = count_params(s, tied_embeddings=s.name.startswith("Gemma"))
        if not math.isclose(total, s.params_b, rel_tol=0.02):
            bad.append(f"{s.name}: card {s.params_b} B, shape {total:.3f} B")
    return bad
