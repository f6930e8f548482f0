"""Operator-composed iteration times for any dense or MoE transformer on a measured GPU.

One continuous-batching iteration that runs ``n`` tokens (``b`` decoding sequences holding
``K`` cached tokens in total, plus the prompt tokens of the prefills in it) takes

    T = L * [GEMMs(n) + MoE(n) + elementwise(n) + 2 all-reduce(n * hidden) at TP > 1]
        + L * [decode attention(b, K) + sum_i prefill attention(p_i)]
        + LM head(sequences) + host(sequences)

with ``L`` layers, GEMMs (QKV, O, gate/up, down; each split over the TP GPUs as vLLM's
column/row-parallel layers are) and fused MoE interpolated in NVIDIA AIConfigurator's
tables measured inside vLLM, attention from fits to its FlashAttention tables, all-reduce from
its custom all-reduce table (CUDA-graph or eager), and the engine preset's host terms
(:data:`ENGINES`). The tables ship in ``sim/serving/data/operators.json``
(``scripts/derive_operators.py``); no raw data is read at run time.

:func:`composed_coefficients` fits the engine's linear iteration form
(:class:`sim.serving.profiles.Profile`) to these times for one shape and reports the fit
error; docs/profiles.md gives every assumption.
"""

from __future__ import annotations

import bisect
import functools
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np

from sim.errors import ProfileError
from sim.hardware import gpu_spec
from sim.serving.architectures import ModelSpec

#: Catalog GPU -> AIConfigurator system whose tables describe it. The A100-40GB (SXM, HBM2,
#: 1555 GB/s) shares the 80 GB part's silicon and FLOPs; its memory-bound work is slowed to
#: its own bandwidth (see _Tables.gemm_ms), a stated adjustment rather than a scaling.
MEASURED_GPUS: dict[str, str] = {"A100": "a100_sxm", "A100-80GB": "a100_sxm",
                                 "H100": "h100_sxm", "H200": "h200_sxm", "L40S": "l40s"}

#: AIConfigurator's empirical corrections for memory-bound kernels (systems/*.yaml:
#: mem_bw_empirical_scaling_factor, mem_empirical_constant_latency).
MEM_EFFICIENCY = 0.8
MEM_CONSTANT_S = 3e-6

#: vLLM captures CUDA graphs for batches up to this many tokens (compilation config
#: ``max_capture_size`` default 512); larger iterations run eagerly.
CUDA_GRAPH_MAX_TOKENS = 512


@dataclass(frozen=True)
class EnginePreset:
    """Per-step, per-sequence and per-layer terms of one serving engine (docs/profiles.md)."""

    name: str
    tables: str  # AIConfigurator vLLM version of the GEMM/MoE/all-reduce tables
    attention_tables: str  # version of the attention fits
    cuda_graphs: bool  # decode iterations replay CUDA graphs (graph all-reduce, no launches)
    host_step_s: float  # CPU time per iteration not hidden behind the GPU
    host_per_seq_s: float  # ... per sequence in the iteration (sampling, detokenising, I/O)
    tp_step_s: float  # extra per-iteration coordination at TP > 1 (Ray in 2024 engines)
    layer_launch_s: float  # eager kernel-launch floor per layer (0 with CUDA graphs)
    description: str


def _host_2024() -> tuple[float, float, float]:
    h = operators()["host_eager_2024"]
    return h["h0_ms"] * 1e-3, h["h1_ms"] * 1e-3, h["tp_comm_ms"] * 1e-3


@functools.cache
def engines() -> dict[str, EnginePreset]:
    """The engine presets users name in ``serving.engine``."""
    h0, h1, tp = _host_2024()
    return {
        "vllm-0.14": EnginePreset(
            "vllm-0.14", "0.14.0", "0.14.0", True, 0.5e-3, 5e-6, 0.0, 0.0,
            "vLLM 0.14 (V1 engine, CUDA graphs, custom all-reduce): AIConfigurator 0.14 tables; "
            "host 0.5 ms/step + 5 us/seq assumed (V1 overlaps scheduling with the GPU; not "
            "measured here, `sim calibrate` fits it)"),
        "vllm-0.24": EnginePreset(
            "vllm-0.24", "0.24.0", "0.14.0", True, 0.5e-3, 5e-6, 0.0, 0.0,
            "vLLM 0.24 on H100: AIConfigurator 0.24 GEMM/MoE/all-reduce tables; attention from "
            "the 0.14 fits (the 0.24 decode-attention table reads KV faster than HBM allows); "
            "other GPUs fall back to the 0.14 tables; host as vllm-0.14"),
        "eager-2024": EnginePreset(
            "eager-2024", "0.14.0", "0.14.0", False, h0, h1, tp, 40e-6,
            f"a 2024 vLLM-like engine without CUDA graphs: host {h0 * 1e3:.2f} ms/step + "
            f"{h1 * 1e6:.0f} us/seq and {tp * 1e3:.1f} ms/step of Ray coordination at TP > 1 "
            "(Vidur cpu_overheads, A100), eager all-reduce, 40 us/layer kernel-launch floor "
            "(assumed: ~8 launches of ~5 us)"),
    }


DEFAULT_ENGINE = "vllm-0.14"


def engine_preset(name: str) -> EnginePreset:
    """The preset ``name``; ProfileError listing the known ones otherwise."""
    presets = engines()
    if name not in presets:
        raise ProfileError(f"unknown serving.engine {name!r} (expected one of: "
                           f"{', '.join(presets)})")
    return presets[name]


@functools.cache
def operators() -> dict[str, Any]:
    """The shipped operator tables (read once)."""
    text = resources.files("sim.serving").joinpath("data/operators.json").read_text("utf-8")
    doc: dict[str, Any] = json.loads(text)
    return doc


def _bracket(axis: Sequence[float], x: float) -> tuple[int, float]:
    """Index i and weight w with x ~ axis[i] * (1 - w) + axis[i + 1] * w in log space (clamped)."""
    if x <= axis[0]:
        return 0, 0.0
    if x >= axis[-1]:
        return len(axis) - 2, 1.0
    i = bisect.bisect_right(axis, x) - 1
    lo, hi = math.log(axis[i]), math.log(axis[i + 1])
    return i, (math.log(x) - lo) / (hi - lo)


class _Tables:
    """The operator tables of one AIConfigurator system at one vLLM version."""

    def __init__(self, key: str, gpu: str) -> None:
        doc = operators()["systems"][key]
        self.key = key
        g = doc["gemm"]
        self.m, self.n, self.k = g["m"], g["n"], g["k"]
        self.log_ms = np.log(np.asarray(g["ms"], dtype=float))
        self.pre = doc["prefill_attention"]
        self.dec = doc["decode_attention"]
        self.ar = doc["allreduce"]
        self.moe = doc["moe"]
        own = doc["gpu"]["mem_bw_gbps"]
        # The A100-40GB has less bandwidth than the measured 80 GB part: memory-bound work
        # runs at its own roofline (AIConfigurator's efficiency and constant).
        self.bw_floor = gpu_spec(gpu).hbm_gbps if gpu_spec(gpu).hbm_gbps < own * 0.95 else 0.0
        self.kv_slowdown = own / gpu_spec(gpu).hbm_gbps if self.bw_floor else 1.0

    def _floor_s(self, nbytes: float) -> float:
        return nbytes / (MEM_EFFICIENCY * self.bw_floor * 1e9) + MEM_CONSTANT_S \
            if self.bw_floor else 0.0

    def gemm_s(self, m: float, n: float, k: float) -> float:
        """BF16 GEMM (m x k) @ (k x n), seconds: log-log interpolation, linear beyond the grid."""
        scale = 1.0
        if m > self.m[-1]:
            scale *= m / self.m[-1]
        if n > self.n[-1]:
            scale *= n / self.n[-1]
        if k > self.k[-1]:
            scale *= k / self.k[-1]
        i, wi = _bracket(self.m, m)
        j, wj = _bracket(self.n, n)
        l_, wl = _bracket(self.k, k)
        c = self.log_ms
        v = 0.0
        for di, fi in ((0, 1 - wi), (1, wi)):
            for dj, fj in ((0, 1 - wj), (1, wj)):
                for dl, fl in ((0, 1 - wl), (1, wl)):
                    if fi * fj * fl:
                        v += fi * fj * fl * c[i + di, j + dj, l_ + dl]
        t = math.exp(v) * 1e-3 * scale
        return max(t, self._floor_s(2.0 * (m * k + k * n + m * n)))

    def allreduce_s(self, elements: float, gpus: int, graph: bool) -> float:
        """Custom all-reduce of ``elements`` BF16 values over ``gpus`` GPUs, seconds."""
        if gpus <= 1:
            return 0.0
        table = self.ar["graph" if graph else "eager"]
        key = str(gpus) if str(gpus) in table else max(table, key=int)
        sizes, lat = self.ar["elements"], table[key]
        i, w = _bracket(sizes, elements)
        t = math.exp(math.log(lat[i]) * (1 - w) + math.log(lat[i + 1]) * w)
        if elements > sizes[-1]:
            t = lat[-1] * elements / sizes[-1]
        return t * 1e-3

    def moe_s(self, spec: ModelSpec, tokens: float, tp: int) -> float | None:
        """Fused-MoE layer at ``tokens`` tokens (seconds) if the shape was measured, else None."""
        shape = self.moe["shapes"].get(f"{spec.hidden}/{spec.intermediate}/{spec.top_k}/"
                                       f"{spec.n_experts}")
        if not shape or str(tp) not in shape:
            return None
        axis, lat = self.moe["tokens"], shape[str(tp)]
        i, w = _bracket(axis, tokens)
        t = math.exp(math.log(lat[i]) * (1 - w) + math.log(lat[i + 1]) * w) * 1e-3
        if tokens > axis[-1]:
            t = lat[-1] * 1e-3 * tokens / axis[-1]
        active = min(spec.n_experts, tokens * spec.top_k)
        return max(t, self._floor_s(active * 3 * spec.hidden * spec.intermediate / tp * 2))


@functools.cache
def _tables(key: str, gpu: str) -> _Tables:
    return _Tables(key, gpu)


def nearest_measured_gpu(gpu: str) -> str:
    """The measured GPU closest in HBM bandwidth and FP16 FLOPs (log distance)."""
    d = gpu_spec(gpu)

    def dist(g: str) -> float:
        s = gpu_spec(g)
        return abs(math.log(s.hbm_gbps / d.hbm_gbps)) + abs(math.log(s.fp16_tflops / d.fp16_tflops))

    return min((g for g in MEASURED_GPUS if g != "A100-80GB"), key=dist)


class Composer:
    """Iteration times of one (model, GPU, GPUs per worker, engine) shape, in seconds."""

    def __init__(self, spec: ModelSpec, gpu: str, tp: int, engine: str = DEFAULT_ENGINE) -> None:
        self.spec, self.gpu, self.tp = spec, gpu, tp
        self.engine = engine_preset(engine)
        self.measured = gpu in MEASURED_GPUS
        base = gpu if self.measured else nearest_measured_gpu(gpu)
        self.base_gpu = base
        system = MEASURED_GPUS[base]
        version = self.engine.tables if f"{system}@{self.engine.tables}" in \
            operators()["systems"] else "0.14.0"
        self.ops = _tables(f"{system}@{version}", base)
        self.attn = _tables(f"{system}@{self.engine.attention_tables}", base)
        # A GPU outside the measured set: memory-bound work x bandwidth ratio, compute-bound
        # work x FLOPs ratio (applied per operator by its memory-bound share).
        src, dst = gpu_spec(base), gpu_spec(gpu)
        self.r_bw = src.hbm_gbps / dst.hbm_gbps
        self.r_fl = src.fp16_tflops / dst.fp16_tflops
        s = spec
        self.q_gpu = max(s.n_heads // tp, 1)
        self.kv_gpu = max(s.n_kv_heads // tp, 1)
        self.hd = s.head_dim
        self.layers = s.n_layers

    # -- operators -----------------------------------------------------------------------
    def _scaled(self, t: float, nbytes: float) -> float:
        """Move a time measured on the base GPU to this GPU (identity when measured)."""
        if self.measured:
            return t
        mem = min(1.0, nbytes / (MEM_EFFICIENCY * gpu_spec(self.base_gpu).hbm_gbps * 1e9) / t) \
            if t > 0 else 1.0
        return t * (mem * self.r_bw + (1 - mem) * self.r_fl)

    def _gemm(self, m: float, n: float, k: float) -> float:
        return self._scaled(self.ops.gemm_s(m, n, k), 2.0 * (m * k + k * n + m * n))

    def layer_s(self, n: float) -> float:
        """One transformer layer's non-attention work at ``n`` tokens (GEMMs, MoE, norms, TP)."""
        s, tp = self.spec, self.tp
        qkv = (s.n_heads + 2 * s.n_kv_heads) * s.head_dim
        t = self._gemm(n, max(qkv // tp, 1), s.hidden) + self._gemm(n, s.hidden,
                                                                    max(s.n_heads * s.head_dim
                                                                        // tp, 1))
        if s.is_moe:
            moe = self.ops.moe_s(s, n, tp)
            if moe is None:  # unmeasured expert shape: one GEMM pair per active expert
                active = min(s.n_experts, max(1.0, n * s.top_k))
                per = max(1.0, n * s.top_k / active)
                moe = active * (self._gemm(per, 2 * s.intermediate // tp, s.hidden)
                                + self._gemm(per, s.hidden, s.intermediate // tp))
            else:
                moe = self._scaled(moe, 3 * s.hidden * s.intermediate * 2 / tp
                                   * min(s.n_experts, n * s.top_k))
            t += moe + self._gemm(n, s.n_experts, s.hidden)  # router
        else:
            up = (2 if s.gated_mlp else 1) * s.intermediate // tp
            t += self._gemm(n, up, s.hidden) + self._gemm(n, s.hidden, s.intermediate // tp)
        # Elementwise kernels (2 norms, residual adds, activation, RoPE): memory-bound,
        # ~12 passes over n x hidden BF16 values; not in the tables.
        elem_bytes = 12 * n * s.hidden * 2
        bw = gpu_spec(self.gpu).hbm_gbps * 1e9 * MEM_EFFICIENCY
        t += elem_bytes / bw + 4 * MEM_CONSTANT_S
        graph = self.engine.cuda_graphs and n <= CUDA_GRAPH_MAX_TOKENS
        t += 2 * self.ops.allreduce_s(n * s.hidden, tp, graph)
        return max(t, self.engine.layer_launch_s)

    def head_s(self, seqs: float) -> float:
        """LM head (last token of each sequence) + final norm; vocab split over the TP GPUs."""
        if seqs <= 0 or self.spec.is_encoder:
            return 0.0
        s = self.spec
        return self._gemm(seqs, max(s.vocab // self.tp, 1), s.hidden) + MEM_CONSTANT_S

    def host_s(self, seqs: float) -> float:
        """Engine CPU time per iteration not overlapped with the GPU."""
        e = self.engine
        return e.host_step_s + e.host_per_seq_s * seqs + (e.tp_step_s if self.tp > 1 else 0.0)

    def decode_attention_coefs(self) -> tuple[float, float, float]:
        """(per layer constant, per sequence, per cached token) seconds of decode attention."""
        d = self.attn.dec
        hd = self.hd / 128  # the tables are head_dim 128; KV bytes and FLOPs scale with it
        a0 = d["a0_ms"] * 1e-3
        a1 = d["a1_ms"] * 1e-3 * self.q_gpu * hd
        a2 = d["a2_ms"] * 1e-3 * self.kv_gpu * hd * self.attn.kv_slowdown
        if not self.measured:
            a1, a2 = a1 * self.r_bw, a2 * self.r_bw
        return a0, a1, a2

    def prefill_attention_coefs(self) -> tuple[float, float, float]:
        """(per layer constant, per prompt token, per prompt token squared) seconds."""
        p = self.attn.pre
        hd = self.hd / 128
        c1 = p["c1_ms"] * 1e-3 * self.q_gpu * hd
        c2 = p["c2_ms"] * 1e-3 * self.q_gpu * hd
        if not self.measured:
            c1, c2 = c1 * self.r_fl, c2 * self.r_fl
        return p["c0_ms"] * 1e-3, c1, c2

    # -- iterations ----------------------------------------------------------------------
    def iteration_s(self, b: int, K: float, prompts: Sequence[int] = ()) -> float:
        """One iteration: ``b`` decoding sequences with ``K`` cached tokens, plus prefills."""
        n = b + sum(prompts)
        if n <= 0:
            return 0.0
        a0, a1, a2 = self.decode_attention_coefs()
        c0, c1, c2 = self.prefill_attention_coefs()
        attn = (a0 + a1 * b + a2 * K) if b else 0.0
        attn += sum(c0 + c1 * p + c2 * p * p for p in prompts)
        seqs = b + len(prompts)
        return self.layers * (self.layer_s(n) + attn) + self.head_s(seqs) + self.host_s(seqs)

    def encoder_attention_coefs(self) -> tuple[tuple[float, float, float], str]:
        """Bidirectional (encoder) attention of one layer, ``(e0, e1, e2)`` seconds with
        time = ``e0 + seqs * (e1 * s + e2 * s**2)`` for ``seqs`` inputs of ``s`` tokens, and
        where it comes from.

        From the vLLM 0.24 encoder-attention table (AIConfigurator, H100, FlashAttention-3,
        non-causal; fitted per head_dim 64/72/80 by ``scripts/derive_operators.py``; another
        head_dim takes the nearest one scaled by head_dim, as the work is). On other GPUs the
        H100 fit is moved by the ratio of this GPU's causal prefill-attention fit to the
        H100's (both vLLM 0.14 tables): the GPU's measured attention speed, the encoder
        kernel's shape. Causal models (decoders, LLM-based embedders) and GPUs with no H100
        table at hand keep the causal prefill fit.
        """
        c0, c1, c2 = self.prefill_attention_coefs()
        systems = operators()["systems"]
        table = next((systems[k]["encoder_attention"] for k in sorted(systems, reverse=True)
                      if k.startswith("h100_sxm@") and "encoder_attention" in systems[k]), None)
        if not self.spec.bidirectional or table is None:
            return (c0, c1, c2), "causal prefill attention fit"
        near = min(table, key=lambda h: (abs(int(h) - self.hd), int(h)))
        fit = table[near]
        w = self.q_gpu * self.hd / int(near)
        e = (fit["e0_ms"] * 1e-3, fit["e1_ms"] * 1e-3 * w, fit["e2_ms"] * 1e-3 * w)
        h100 = _tables("h100_sxm@0.14.0", "H100").pre
        hd = self.hd / 128
        ref = (h100["c0_ms"] * 1e-3, h100["c1_ms"] * 1e-3 * self.q_gpu * hd,
               h100["c2_ms"] * 1e-3 * self.q_gpu * hd)
        moved = tuple(x * (c / r) if r > 0 else x for x, c, r in zip(e, (c0, c1, c2), ref,
                                                                     strict=True))
        where = (f"vLLM 0.24 H100 encoder-attention table, head_dim {near} (fit rms "
                 f"{fit['rms_error']:.0%})")
        if self.base_gpu != "H100" or not self.measured:
            where += f", moved to {self.gpu} by its causal prefill-attention ratio to H100"
        return (moved[0], moved[1], moved[2]), where

    def encoder_batch_s(self, tokens: int, seqs: int) -> float:
        """One embedding batch of ``seqs`` inputs holding ``tokens`` tokens (no LM head)."""
        per = tokens / max(seqs, 1)
        (e0, e1, e2), _ = self.encoder_attention_coefs()
        attn = e0 + seqs * (e1 * per + e2 * per * per)
        return self.layers * (self.layer_s(tokens) + attn) + self.host_s(seqs)


#: Memory vLLM keeps per GPU besides weights, activations and KV: CUDA graphs of the decode
#: batch sizes (vLLM logs 0.5-1.5 GiB; assumed 1 GiB) and NCCL buffers at TP > 1
#: (AIConfigurator systems/*.yaml misc.nccl_mem: 342 MB at TP 2, 392 MB at TP 4 and 8).
CUDA_GRAPH_GB = 2**30 / 1e9
NCCL_GB = {1: 0.0, 2: 0.358612992, 4: 0.411041792, 8: 0.411041792}


def engine_reserved_gb(spec: ModelSpec, gpu: str, gpus: int, engine: str = DEFAULT_ENGINE,
                       batched_tokens: int | None = None, max_seqs: int = 256) -> float:
    """GB a worker's engine holds besides weights and KV cache, summed over its GPUs.

    vLLM sizes the KV cache after a profiling forward pass of ``max_num_batched_tokens``
    tokens: its peak activation memory (one layer's intermediates: residual and normed
    hidden states, QKV, gate/up and the activated MLP input, BF16) plus the sampler's
    float32 logits for ``max_num_seqs`` sequences, then CUDA graphs and NCCL buffers
    (assumptions stated at :data:`CUDA_GRAPH_GB`, :data:`NCCL_GB`). ``batched_tokens`` None =
    vLLM's default budget for the GPU.
    """
    from sim.engine.paged import default_batched_tokens

    e = engine_preset(engine)
    s = spec
    t = batched_tokens or default_batched_tokens(gpu)
    qkv = (s.n_heads + 2 * s.n_kv_heads) * s.head_dim
    mlp = (3 if s.gated_mlp else 2) * s.intermediate * max(s.top_k, 1)
    act = t * (2 * s.hidden * gpus + qkv + mlp) * 2  # hidden states replicated, rest split
    logits = 0 if s.is_encoder else max_seqs * s.vocab * 4
    graphs = CUDA_GRAPH_GB * gpus if e.cuda_graphs else 0.0
    nccl = NCCL_GB.get(gpus, NCCL_GB[8]) * gpus
    return (act + logits) / 1e9 + graphs + nccl


#: Batches and prompt lengths the linear form is fitted over (log-spaced so small ones count).
FIT_BATCHES = (1, 2, 4, 8, 16, 32, 48, 64, 96, 128, 192, 256)
FIT_PROMPTS = (16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192)
FIT_MIXED_BATCHES = (0, 16, 64)
FIT_CONTEXT = 1024  # context per sequence of the decode rows (only the b terms are fitted)


def _nonneg_lsq(a: np.ndarray, y: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Least squares of ``(a @ c - y) / scale`` with ``c >= 0`` (drop negatives, refit)."""
    keep = list(range(a.shape[1]))
    coef = np.zeros(a.shape[1])
    while keep:
        c, *_ = np.linalg.lstsq(a[:, keep] / scale[:, None], y / scale, rcond=None)
        if (c >= 0).all():
            coef[keep] = c
            break
        keep.pop(int(np.argmin(c)))
    return coef


@functools.cache
def composed_coefficients(spec: ModelSpec, gpu: str, tp: int,
                          engine: str = DEFAULT_ENGINE) -> tuple[dict[str, float], str]:
    """The linear profile coefficients (seconds) fitted to composed iteration times, and a
    source line with the fit errors and the assumptions used."""
    c = Composer(spec, gpu, tp, engine)
    a0, a1, a2 = c.decode_attention_coefs()
    p0, p1, p2 = c.prefill_attention_coefs()
    L = c.layers
    per_ctx = L * a2
    bs = np.array(FIT_BATCHES, dtype=float)
    y = np.array([c.iteration_s(int(b), b * FIT_CONTEXT) for b in bs]) - per_ctx * bs * FIT_CONTEXT
    d_base, d_seq = _nonneg_lsq(np.column_stack([np.ones_like(bs), bs]), y, y)
    dec_err = (d_base + d_seq * bs) / y - 1

    def dec(b: float) -> float:
        return float(d_base + d_seq * b)

    # Prefill terms: the iteration's time beyond the fitted decode line and the attention's
    # p^2 term, fitted relative to the whole iteration so that tiny prompts do not dominate.
    rows, extra, whole = [], [], []
    for b in FIT_MIXED_BATCHES:
        for p in FIT_PROMPTS:
            t = c.iteration_s(b, b * FIT_CONTEXT, [p]) - per_ctx * b * FIT_CONTEXT
            rows.append((1.0, float(p)))
            extra.append(t - dec(b) - L * p2 * p * p)
            whole.append(t)
    a = np.array(rows)
    yt, wt = np.array(extra), np.array(whole)
    pf_base, pf_tok = (float(v) for v in _nonneg_lsq(a, yt, wt))
    pre_err = (a @ np.array([pf_base, pf_tok]) - yt) / wt
    coefs = {"decode_base_s": dec(0), "decode_per_seq_s": float(d_seq),
             "decode_per_ctx_token_s": per_ctx, "prefill_base_s": pf_base,
             "prefill_per_token_s": pf_tok, "prefill_per_token2_s": L * p2}
    # Embedding (encoder) batches: fitted the same way against encoder_batch_s.
    # Batches of 512..16384 tokens: the sizes an embedding server runs under load.
    toks = np.array([512, 1024, 2048, 4096, 8192, 16384], dtype=float)
    ye = np.array([c.encoder_batch_s(int(t), max(1, int(t) // 256)) for t in toks])
    e_base, e_tok = _nonneg_lsq(np.column_stack([np.ones_like(toks), toks]), ye, ye)
    coefs["embed_base_s"], coefs["embed_per_token_s"] = float(e_base), float(e_tok)
    where = (f"AIConfigurator vLLM {c.ops.key}" if c.measured else
             f"scaled from AIConfigurator {c.ops.key} ({c.base_gpu}) by HBM bandwidth "
             f"x{c.r_bw:.3g} and FP16 FLOPs x{c.r_fl:.3g}")
    source = (f"composed from operators ({where}; engine {c.engine.name}); linear fit error "
              f"decode max {np.max(np.abs(dec_err)):.0%}, prefill max "
              f"{np.max(np.abs(pre_err)):.0%} of the iteration")
    if spec.is_encoder:
        source += f"; encoder attention: {c.encoder_attention_coefs()[1]}"
    return coefs, source
