"""Performance profiles: iteration-time coefficients per (model, GPU type, GPUs per worker).

One continuous-batching iteration with ``b`` running sequences whose KV contexts sum to ``K``
tokens, in which requests with prompt lengths ``p_1..p_m`` join, takes

    iteration_s = decode_base_s + decode_per_seq_s * b + decode_per_ctx_token_s * K
                  + [m > 0] * (prefill_base_s + sum_i (prefill_per_token_s * p_i
                                                       + prefill_per_token2_s * p_i**2))

(linear in ``b`` and ``K`` so that the engine's fast mode can sum it in closed form between
events). Embedding models take ``embed_base_s + embed_per_token_s * tokens`` per batch.

Built-in profiles ship in ``sim/serving/data/profiles.json``, derived by
``scripts/derive_profiles.py`` from public measurements (Vidur, MLSys'24); see
``docs/profiles.md``. Shapes without a built-in entry are scaled from the nearest one (rule in
:func:`get_profile`); a user file (``serving.profile: path``) overrides any coefficient.
"""

from __future__ import annotations

import csv
import difflib
import functools
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from sim.errors import ConfigError, ProfileError
from sim.hardware import canonical_gpu, gpu_spec
from sim.serving.models import ModelSpec, resolve_model

#: Coefficient names, in seconds (the float fields of :class:`Profile`).
COEFFICIENTS: tuple[str, ...] = (
    "decode_base_s", "decode_per_seq_s", "decode_per_ctx_token_s", "prefill_base_s",
    "prefill_per_token_s", "prefill_per_token2_s", "embed_base_s", "embed_per_token_s",
)

#: Assumed per-iteration engine overhead (scheduler, sampler, Python) included in
#: ``decode_base_s`` of the built-in profiles; scaling leaves it unscaled.
ENGINE_OVERHEAD_S = 1.0e-3

#: Share of peak HBM bandwidth that decode weight streaming reaches (the Vidur data give
#: ~74% for Llama-2-7B on one A100-80GB: 13.5 GB in 8.9 ms at 2039 GB/s).
HBM_EFFICIENCY = 0.8

#: KV context per running sequence assumed by :meth:`Profile.rated_tokens_per_s`: a chat
#: request midway through generation (prompt of ~700 tokens plus ~300 generated).
TYPICAL_CONTEXT_TOKENS = 1024

#: Tokens per request assumed for the rated throughput of embedding models (a typical
#: retrieval chunk; BGE/BERT-style encoders accept at most 512).
TYPICAL_EMBED_TOKENS = 512


@dataclass(frozen=True)
class Profile:
    """Iteration-time coefficients and KV-cache room of one (model, GPU, GPUs) worker shape."""

    model: str
    gpu: str
    gpus: int
    decode_base_s: float
    decode_per_seq_s: float
    decode_per_ctx_token_s: float
    prefill_base_s: float
    prefill_per_token_s: float
    prefill_per_token2_s: float
    embed_base_s: float
    embed_per_token_s: float
    kv_capacity_tokens: int
    source: str
    scaled: bool = False  # True when no measurement of this GPU (or model) stands behind it

    def decode_step_s(self, b: int, K: float) -> float:
        """Time of one decode step for ``b`` sequences holding ``K`` KV tokens in total."""
        return self.decode_base_s + self.decode_per_seq_s * b + self.decode_per_ctx_token_s * K

    def prefill_s(self, prompts: Sequence[int]) -> float:
        """Extra iteration time when requests with these prompt lengths join (0 if none)."""
        if not prompts:
            return 0.0
        a, c = self.prefill_per_token_s, self.prefill_per_token2_s
        return self.prefill_base_s + sum(a * p + c * p * p for p in prompts)

    def iteration_s(self, b: int, K: float, prompts: Sequence[int]) -> float:
        """Time of one continuous-batching iteration: decode of ``b`` sequences plus prefills."""
        return self.decode_step_s(b, K) + self.prefill_s(prompts)

    def tpot_s(self, b: int, ctx: float) -> float:
        """Time per output token of each of ``b`` sequences that all hold ``ctx`` KV tokens."""
        return self.decode_step_s(b, b * ctx)

    def embed_s(self, tokens: int) -> float:
        """Time to embed one batch of ``tokens`` tokens (embedding service model)."""
        return self.embed_base_s + self.embed_per_token_s * tokens

    def rated_tokens_per_s(self, max_batch: int) -> float:
        """Output tokens/s at full batch with TYPICAL_CONTEXT_TOKENS of context per sequence.

        The batch is ``max_batch`` capped by KV-cache room (at least 1); prefill time is not
        counted, so this is the decode-throughput ceiling the throughput cap compares against.
        Embedding profiles (no decode) return input tokens/s for a batch of ``max_batch``
        requests of TYPICAL_EMBED_TOKENS tokens.
        """
        if self.decode_base_s <= 0 and self.decode_per_seq_s <= 0:
            tokens = max(1, max_batch) * TYPICAL_EMBED_TOKENS
            return tokens / self.embed_s(tokens)
        b = max(1, min(max_batch, self.kv_capacity_tokens // TYPICAL_CONTEXT_TOKENS))
        return b / self.tpot_s(b, TYPICAL_CONTEXT_TOKENS)


# ---------------------------------------------------------------------------------------------
# Built-in entries (loaded lazily, once).


@functools.cache
def builtin_document() -> dict[str, Any]:
    """The shipped profiles.json (header + entries), read on first use and cached."""
    text = resources.files("sim.serving").joinpath("data/profiles.json").read_text("utf-8")
    doc: dict[str, Any] = json.loads(text)
    return doc


@functools.cache
def _builtin_entries() -> dict[tuple[str, str, int], dict[str, Any]]:
    return {(e["model"], e["gpu"], int(e["gpus"])): e for e in builtin_document()["entries"]}


def builtin_shapes() -> list[tuple[str, str, int]]:
    """The (model, GPU, GPUs) shapes that have a built-in, fitted entry."""
    return sorted(_builtin_entries())


def kv_capacity_tokens(spec: ModelSpec, gpu: str, gpus: int, utilization: float = 0.9,
                       reserved_gb: float = 0.0) -> int:
    """KV-cache room in tokens: floor((gpus*memory*utilization - weights - reserved) / KV
    bytes per token); ``reserved_gb`` is the engine's other memory (activations, CUDA graphs,
    communication buffers; :func:`sim.serving.compose.engine_reserved_gb`)."""
    if not 0 < utilization <= 1:
        raise ProfileError(f"gpu_memory_utilization must be in (0, 1], got {utilization}")
    usable = gpus * gpu_spec(gpu).memory_gb * utilization
    free_gb = usable - spec.weights_gb - reserved_gb
    tokens = math.floor(free_gb * 1e9 / spec.kv_bytes_per_token) if free_gb > 0 else 0
    if tokens <= 0:
        raise ProfileError(
            f"{spec.name} does not fit on {gpus} x {gpu}: {spec.weights_gb:.1f} GB of weights"
            f"{f' + {reserved_gb:.1f} GB of activations and CUDA graphs' if reserved_gb else ''}, "
            f"{usable:.1f} GB usable at gpu_memory_utilization {utilization}; needs "
            f"{max(-free_gb, 0.0) + spec.kv_bytes_per_token / 1e9:.1f} GB more for any KV cache")
    return tokens


def _coefs_of(entry: Mapping[str, Any]) -> dict[str, float]:
    return {k: float(entry[k]) for k in COEFFICIENTS}


def _pick_source(spec: ModelSpec, gpu: str, gpus: int) -> tuple[str, str, int]:
    """Nearest built-in shape: same GPU count first, then closest size and bandwidth."""
    entries = _builtin_entries()
    if not entries:
        raise ProfileError("no built-in profiles are installed; set serving.profile to a file")
    bw = gpu_spec(gpu).hbm_gbps

    def key(shape: tuple[str, str, int]) -> tuple[float, float, str, str]:
        m, g, n = shape
        size = abs(math.log(resolve_model(m).compute_params_b / spec.compute_params_b))
        return (abs(math.log2(n / gpus)), size + abs(math.log(gpu_spec(g).hbm_gbps / bw)), m, g)

    return min(entries, key=key)


def _scaled(spec: ModelSpec, gpu: str, gpus: int) -> tuple[dict[str, float], str]:
    """Coefficients for an unprofiled shape, scaled from the nearest built-in entry."""
    shape = _pick_source(spec, gpu, gpus)
    src_m, src_g, src_n = shape
    entry = _builtin_entries()[shape]
    src = resolve_model(src_m)
    s_gpu, d_gpu = gpu_spec(src_g), gpu_spec(gpu)
    # Weights streamed per decode step: all of them (at batch > a few, a MoE's tokens touch
    # every expert); FLOPs per token: the active parameters.
    r_mem = spec.params_b / src.params_b
    r_par = spec.compute_params_b / src.compute_params_b
    r_kv = spec.kv_bytes_per_token / src.kv_bytes_per_token  # KV bytes read per context token
    r_att = (spec.n_layers * spec.n_heads * spec.head_dim) / (src.n_layers * src.n_heads
                                                              * src.head_dim)
    r_bw = s_gpu.hbm_gbps / d_gpu.hbm_gbps  # memory-bound parts
    r_fl = s_gpu.fp16_tflops / d_gpu.fp16_tflops  # compute-bound parts
    r_n = src_n / gpus  # tensor parallelism splits the per-token work evenly (ideal)
    c = _coefs_of(entry)
    # Split the source's decode floor into weight streaming (at HBM_EFFICIENCY of peak
    # bandwidth), which scales with weights per GPU and bandwidth, and the rest (kernel
    # launches, all-reduce latency), which scales with the number of layers.
    floor = max(0.0, c["decode_base_s"] - ENGINE_OVERHEAD_S)
    stream = min(floor, src.weights_gb / src_n / (s_gpu.hbm_gbps * HBM_EFFICIENCY))
    r_layers = spec.n_layers / src.n_layers
    out = {
        "decode_base_s": stream * r_mem * r_bw * r_n + (floor - stream) * r_layers
        + ENGINE_OVERHEAD_S,
        "decode_per_seq_s": c["decode_per_seq_s"] * r_par * r_fl * r_n,
        "decode_per_ctx_token_s": c["decode_per_ctx_token_s"] * r_kv * r_bw * r_n,
        # The prefill floor is kernel launches, one set per layer.
        "prefill_base_s": c["prefill_base_s"] * r_layers,
        # Prefill is compute-bound: FLOPs per token grow with parameters, p^2 with attention.
        "prefill_per_token_s": c["prefill_per_token_s"] * r_par * r_fl * r_n,
        "prefill_per_token2_s": c["prefill_per_token2_s"] * r_att * r_fl * r_n,
    }
    out["embed_base_s"] = out["decode_base_s"] + out["prefill_base_s"]
    out["embed_per_token_s"] = out["prefill_per_token_s"]
    rule = (f"scaled from built-in {src_m}/{src_g}x{src_n} ({entry['source']}): "
            f"weight streaming x{r_mem:.3g} (decode floor split at {HBM_EFFICIENCY:.0%} HBM "
            f"efficiency, rest x{r_layers:.3g} layers), active parameters x{r_par:.3g}, "
            f"KV bytes x{r_kv:.3g}, attention width x{r_att:.3g}, HBM bandwidth x{r_bw:.3g} on decode terms, FP16 FLOPs x{r_fl:.3g} on prefill terms, "
            f"GPUs x{r_n:.3g}")
    if spec.note:
        rule += f"; {spec.note}"
    return out, rule


def _as_encoder(coefs: dict[str, float], source: str) -> tuple[dict[str, float], str]:
    """Embedding model: one prefill pass per batch (a + b*tokens), no decode terms."""
    out = dict(coefs)
    out["embed_base_s"] = coefs["decode_base_s"] + coefs["prefill_base_s"]
    # a + b*tokens has no per-sequence p^2 term: fold attention in at the longest usual
    # input (TYPICAL_EMBED_TOKENS), which over-estimates shorter inputs slightly.
    out["embed_per_token_s"] = (coefs["prefill_per_token_s"]
                                + coefs["prefill_per_token2_s"] * TYPICAL_EMBED_TOKENS)
    for k in ("decode_base_s", "decode_per_seq_s", "decode_per_ctx_token_s"):
        out[k] = 0.0
    note = ("; encoder: embed time = a + b*tokens from the decoder prefill coefficients scaled by "
            f"parameters, attention folded in at {TYPICAL_EMBED_TOKENS}-token inputs "
            "(assumption: same efficiency as the profiled decoder)")
    return out, source + note


# ---------------------------------------------------------------------------------------------
# User profile files.

_USER_KEYS = (*COEFFICIENTS, "kv_capacity_tokens", "model", "gpu", "gpus", "source")


def _user_rows(path: Path) -> list[dict[str, Any]]:
    """Rows of a user profile file (YAML/JSON mapping or list, or CSV with a header)."""
    where = f"serving.profile {path}"
    if not path.is_file():
        raise ProfileError(f"{where}: file not found (expected a YAML or CSV profile)")
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            with path.open(newline="", encoding="utf-8") as fh:
                rows: list[Any] = [
                    {k.strip(): v.strip() for k, v in r.items() if k and v not in (None, "")}
                    for r in csv.DictReader(fh)
                ]
        elif suffix in (".yaml", ".yml", ".json"):
            import yaml  # only needed for user files; keeps import time down

            data = yaml.safe_load(path.read_text(encoding="utf-8"))
            if isinstance(data, Mapping) and "profiles" in data:
                data = data["profiles"]
            rows = [data] if isinstance(data, Mapping) else list(data or [])
        else:
            raise ProfileError(f"{where}: expected a .yaml, .yml, .json or .csv file")
    except (OSError, UnicodeDecodeError, csv.Error, ValueError) as exc:
        raise ProfileError(f"{where}: cannot read: {exc}") from exc
    except Exception as exc:  # yaml.YAMLError, without importing yaml at module level
        if type(exc).__module__.startswith("yaml"):
            raise ProfileError(f"{where}: invalid YAML: {exc}") from exc
        raise
    out: list[dict[str, Any]] = []
    for i, row in enumerate(rows, 1):
        if not isinstance(row, Mapping):
            raise ProfileError(f"{where}: entry {i} is not a mapping of coefficient names")
        for k in row:
            if k not in _USER_KEYS:
                close = difflib.get_close_matches(str(k), _USER_KEYS, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise ProfileError(f"{where}: entry {i}: unknown key {k!r}{hint} "
                                   f"(expected: {', '.join(_USER_KEYS)})")
        clean: dict[str, Any] = dict(row)
        for k in (*COEFFICIENTS, "kv_capacity_tokens", "gpus"):
            if k in clean:
                try:
                    val = float(clean[k])
                except (TypeError, ValueError):
                    raise ProfileError(f"{where}: entry {i}: {k} must be a number, "
                                       f"got {clean[k]!r}") from None
                if not math.isfinite(val) or val < 0:
                    raise ProfileError(f"{where}: entry {i}: {k} must be >= 0, got {val}")
                clean[k] = int(val) if k in ("kv_capacity_tokens", "gpus") else val
        out.append(clean)
    return out


def _match(rows: Iterable[dict[str, Any]], spec: ModelSpec, gpu: str,
           gpus: int) -> dict[str, Any] | None:
    """The most specific row whose model/gpu/gpus (where given) match this shape."""
    best: tuple[int, dict[str, Any]] | None = None
    for row in rows:
        score = 0
        if "model" in row:
            try:
                if resolve_model(str(row["model"])).name != spec.name:
                    continue
            except ProfileError:
                continue
            score += 1
        if "gpu" in row:
            try:
                if canonical_gpu(str(row["gpu"])) != gpu:
                    continue
            except ConfigError:
                continue
            score += 1
        if "gpus" in row:
            if int(row["gpus"]) != gpus:
                continue
            score += 1
        if best is None or score > best[0]:
            best = (score, row)
    return None if best is None else best[1]


# ---------------------------------------------------------------------------------------------


#: ``serving.profile`` value that selects the Vidur-fitted profiles of earlier versions.
VIDUR = "vidur"


def is_scaled(spec: ModelSpec, gpu: str, gpus: int, engine: str) -> bool:
    """Whether the profile of this shape is scaled rather than composed from/fitted to
    measurements of its GPU (and, for ``vidur``, its model)."""
    from sim.serving.compose import MEASURED_GPUS

    if spec.note:
        return True
    if engine == VIDUR:
        return (spec.name, gpu, gpus) not in _builtin_entries()
    return gpu not in MEASURED_GPUS


def get_profile(model: str | ModelSpec, gpu: str, gpus: int, *,
                gpu_memory_utilization: float = 0.9, path: str | None = None,
                engine: str | None = None, batched_tokens: int | None = None,
                max_seqs: int = 256) -> Profile:
    """The profile of ``model`` on ``gpus`` x ``gpu`` for a serving ``engine``.

    ``engine`` is a preset of :func:`sim.serving.compose.engines` (default ``vllm-0.14``):
    coefficients fitted to iteration times composed from measured operators
    (:func:`sim.serving.compose.composed_coefficients`), for any model shape; on a GPU
    outside the measured set they are scaled from the nearest measured GPU (``scaled``).
    ``engine="vidur"`` gives the Vidur-fitted profiles of earlier versions: an exact built-in
    entry, else the nearest entry scaled by parameters, KV bytes, HBM bandwidth and FP16
    FLOPs (the rule is in ``source``). A user file at ``path`` overrides the coefficients
    (and ``kv_capacity_tokens``) it gives for the most specific matching row; shapes it has
    no row for keep the built-in values. With a composed engine the KV room leaves out the
    engine's activation, CUDA-graph and communication memory for an iteration of
    ``batched_tokens`` tokens and ``max_seqs`` sequences (vLLM's profiling run; None = the
    engine's default budget). ProfileError when the model is unknown without a
    size in its name, the engine is unknown, the shape cannot hold the model, or the user
    file is invalid.
    """
    from sim.serving.compose import (
        DEFAULT_ENGINE,
        composed_coefficients,
        engine_preset,
        engine_reserved_gb,
    )

    engine = engine or DEFAULT_ENGINE
    spec = model if isinstance(model, ModelSpec) else resolve_model(model)
    gpu_c = canonical_gpu(gpu)
    if isinstance(gpus, bool) or not isinstance(gpus, int) or gpus < 1:
        raise ProfileError(f"GPUs per worker must be an integer >= 1, got {gpus!r}")
    if engine == VIDUR:
        exact = _builtin_entries().get((spec.name, gpu_c, gpus))
        if exact is not None and not spec.note:
            coefs, source = _coefs_of(exact), str(exact["source"])
        else:
            coefs, source = _scaled(spec, gpu_c, gpus)
        if spec.is_encoder:
            coefs, source = _as_encoder(coefs, source)
    else:
        engine_preset(engine)  # unknown names: a clear error before any work
        coefs, source = composed_coefficients(spec, gpu_c, gpus, engine)
        coefs = dict(coefs)
        if spec.is_encoder:
            for k in ("decode_base_s", "decode_per_seq_s", "decode_per_ctx_token_s"):
                coefs[k] = 0.0
            source += "; encoder: one pass per batch (embed terms)"
        if spec.note:
            source += f"; {spec.note}"
    scaled = is_scaled(spec, gpu_c, gpus, engine)
    kv_override: int | None = None
    if path is not None:
        p = Path(path)
        row = _match(_user_rows(p), spec, gpu_c, gpus)
        if row is not None:
            given = [k for k in COEFFICIENTS if k in row]
            coefs.update({k: float(row[k]) for k in given})
            scaled = scaled and len(given) < len(COEFFICIENTS)
            kv_override = row.get("kv_capacity_tokens")
            label = str(row.get("source", f"user profile {p}"))
            source = label if len(given) == len(COEFFICIENTS) else (
                f"{label} ({', '.join(given) or 'no coefficients'}) over {source}")
    if kv_override is not None:
        if kv_override <= 0:
            raise ProfileError(f"serving.profile {path}: kv_capacity_tokens must be >= 1")
        kv = int(kv_override)
    else:
        reserved = 0.0 if engine == VIDUR else engine_reserved_gb(
            spec, gpu_c, gpus, engine, batched_tokens, max_seqs)
        kv = kv_capacity_tokens(spec, gpu_c, gpus, gpu_memory_utilization, reserved)
    return Profile(model=spec.name, gpu=gpu_c, gpus=gpus, kv_capacity_tokens=kv,
                   source=source, scaled=scaled, **coefs)

