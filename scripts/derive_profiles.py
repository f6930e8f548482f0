#!/usr/bin/env python
"""Derive the built-in performance profiles from public per-operator GPU measurements.

Reads the Vidur (MLSys'24, MIT) per-layer operator times in ``../shared/data/vidur_profiling``
and fits, per (model, GPU, GPUs per worker), the coefficients of the engine's linear
iteration-time model (docs/profiles.md, docs/architecture.md "Profile"):

    iteration_s = decode_base_s + decode_per_seq_s * b + decode_per_ctx_token_s * K
                  + [m > 0] * (prefill_base_s + sum_i (prefill_per_token_s * p_i
                                                       + prefill_per_token2_s * p_i**2))

It writes ``sim/serving/data/profiles.json``, prints the relative RMSE of each fit, and
cross-checks the scaled Llama-3-8B/H100 entry against the LLMServingSim (MIT) Llama-3.1-8B
H100 measurements. Deterministic: the same data give byte-identical output.

Usage: ``python scripts/derive_profiles.py [--data DIR] [--out FILE] [--check]``
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import lsq_linear

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere: make `sim` importable
    sys.path.insert(0, str(ROOT))

from sim.hardware import gpu_spec  # noqa: E402
from sim.serving.models import MODELS, ModelSpec, memory_shortfall_gb  # noqa: E402
from sim.serving.profiles import ENGINE_OVERHEAD_S  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data"
DEFAULT_OUT = ROOT / "sim" / "serving" / "data" / "profiles.json"

VIDUR = "vidur_profiling"
LSS = "llmservingsim_profiles"
VIDUR_CITE = "(Vidur, Agrawal et al., MLSys'24, MIT; github.com/microsoft/vidur @7d47513)"
VIDUR_ATTN_CITE = "(Vidur, MLSys'24, MIT; github.com/microsoft/vidur @e2d00e9)"
LSS_CITE = "(LLMServingSim, CASYS KAIST, MIT; github.com/casys-kaist/LLMServingSim @5daddb2)"

# Vidur's A100 profiles were taken on its A100 device SKU, declared with 80 GB
# (vidur/config/device_sku_config.py). The data agree: the measured H100/A100 ratio of the
# memory-bound single-token layer time of Llama-2-7B is ~1.65, i.e. 3350/2039 GB/s (80 GB
# SXM), not 3350/1555 (40 GB). So "a100" tables are A100-80GB measurements.
REF_ATTN_GPU = "A100-80GB"

# Per-layer operators in Vidur's mlp.csv (everything in a transformer block except attention).
LAYER_OPS = ("input_layernorm", "attn_pre_proj", "attn_rope", "attn_post_proj",
             "post_attention_layernorm", "mlp_up_proj", "mlp_act", "mlp_down_proj", "add")

TP_SIZES = (1, 2, 4, 8)
MAX_TOKENS = 4096  # fit range of tokens per iteration (the largest count common to all tables)
# Decode-only fit rows: batch sizes spread evenly on a log scale up to the default
# max_batch (256), so that small batches, where the linear model errs most, are not
# outweighed by the many measured points at large token counts.
DECODE_BATCHES = (1, 2, 4, 8, 16, 24, 32, 48, 64, 96, 128, 192, 256)
MIXED_DECODE_BATCHES = (0, 1, 16, 64, 256)  # decode sequences alongside a prefill in fit rows
MIN_PREFILL_TOKENS = 16

# The assumed per-iteration engine overhead (scheduling, sampling, input preparation, Python
# dispatch) is not in the GPU operator profiles. Vidur models it from a separate CPU-overhead
# profile that is not in the public snapshot; ENGINE_OVERHEAD_S (1 ms, an order-of-magnitude
# assumption for vLLM at small batch) is added to decode_base_s.

# Tensor-parallel all-reduce, not in the data (Vidur profiles collectives separately; that
# table is not in the snapshot). Assumed: two all-reduces per layer of tokens x hidden x 2 B,
# ring algorithm, time = latency + 2(n-1)/n * bytes / bus bandwidth. Bus bandwidths are
# typical NCCL all_reduce figures for NVLink3 (A100 SXM), NVLink4 (H100 SXM) and PCIe Gen4
# (A40 servers); latency is the small-message floor of one NCCL all-reduce.
ALLREDUCE_BUS_GBPS = {"A100": 230.0, "A100-80GB": 230.0, "H100": 370.0, "A40": 20.0}
ALLREDUCE_LATENCY_S = {"A100": 12e-6, "A100-80GB": 12e-6, "H100": 10e-6, "A40": 25e-6}


@dataclass(frozen=True)
class Target:
    """One profile to produce: which table feeds it and how it is adapted."""

    model: str  # catalog name
    gpu: str  # catalog GPU name
    table_gpu: str  # Vidur folder with the measurements ("a100", "h100", "a40")
    table_model: str  # Vidur model folder
    # Model whose H100/A100 ratio per token count rescales an A100 table to H100 (or "").
    ratio_model: str = ""


VIDUR_FOLDERS = {"Llama-2-7B": "Llama-2-7b-hf", "Llama-3-8B": "Meta-Llama-3-8B",
                 "Llama-2-70B": "Llama-2-70b-hf"}

TARGETS = (
    Target("Llama-2-7B", "A100", "a100", "Llama-2-7b-hf"),
    Target("Llama-2-7B", "A100-80GB", "a100", "Llama-2-7b-hf"),
    Target("Llama-2-7B", "H100", "h100", "Llama-2-7b-hf"),
    Target("Llama-2-7B", "A40", "a40", "Llama-2-7b-hf"),
    Target("Llama-3-8B", "A100", "a100", "Meta-Llama-3-8B"),
    Target("Llama-3-8B", "A100-80GB", "a100", "Meta-Llama-3-8B"),
    Target("Llama-3-8B", "H100", "a100", "Meta-Llama-3-8B", ratio_model="Llama-2-7b-hf"),
    Target("Llama-2-70B", "A100", "a100", "Llama-2-70b-hf"),
    Target("Llama-2-70B", "A100-80GB", "a100", "Llama-2-70b-hf"),
    Target("Llama-2-70B", "H100", "h100", "Llama-2-70b-hf"),
)

COEFFICIENTS = ("decode_base_s", "decode_per_seq_s", "decode_per_ctx_token_s", "prefill_base_s",
                "prefill_per_token_s", "prefill_per_token2_s", "embed_base_s", "embed_per_token_s")


def _sig(x: float, digits: int = 6) -> float:
    """Round to ``digits`` significant digits so the JSON is short and stable."""
    return float(f"{x:.{digits}g}")


def _mlp_path(data: Path, gpu_folder: str, model_folder: str) -> Path:
    return data / VIDUR / "compute" / gpu_folder / "meta-llama" / model_folder / "mlp.csv"


def load_linear_table(path: Path, tp: int) -> pd.DataFrame:
    """Per-token-count operator times (seconds) for one TP size: layer, emb, up-proj, norm."""
    df = pd.read_csv(path)
    df = df[(df["num_tensor_parallel_workers"] == tp) & (df["num_tokens"] <= MAX_TOKENS)]
    out = pd.DataFrame({"num_tokens": df["num_tokens"].to_numpy()})
    # Medians: robust to the occasional slow repetition in the profiler.
    out["layer"] = sum(df[f"time_stats.{op}.median"].to_numpy() for op in LAYER_OPS) * 1e-3
    out["emb"] = df["time_stats.emb.median"].to_numpy() * 1e-3
    out["up"] = df["time_stats.mlp_up_proj.median"].to_numpy() * 1e-3
    out["norm"] = df["time_stats.input_layernorm.median"].to_numpy() * 1e-3
    # Some token counts were profiled twice: average them.
    return out.groupby("num_tokens", sort=True).mean()


def table_for(data: Path, t: Target, tp: int) -> pd.DataFrame:
    """The measured (or ratio-scaled) linear-operator table feeding target ``t``."""
    base = load_linear_table(_mlp_path(data, t.table_gpu, t.table_model), tp)
    if not t.ratio_model:
        return base
    # No H100 table for this model: take the H100/A100 time ratio, per token count and per
    # operator group, of a sibling model of the same width measured on both GPUs.
    num = load_linear_table(_mlp_path(data, "h100", t.ratio_model), tp)
    den = load_linear_table(_mlp_path(data, "a100", t.ratio_model), tp)
    idx = base.index.intersection(num.index)
    return base.loc[idx] * (num.loc[idx] / den.loc[idx])


def allreduce_s(gpu: str, tp: int, tokens: np.ndarray, hidden: int) -> np.ndarray:
    """Assumed time of one layer's two tensor-parallel all-reduces (0 without TP)."""
    if tp == 1:
        return np.zeros_like(tokens, dtype=float)
    nbytes = tokens * hidden * 2.0
    one = ALLREDUCE_LATENCY_S[gpu] + 2 * (tp - 1) / tp * nbytes / (ALLREDUCE_BUS_GBPS[gpu] * 1e9)
    return 2 * one


def _relative_lsq(a: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Non-negative least squares on relative residuals (each row divided by its target)."""
    scale = (w / y)[:, None]
    res = lsq_linear(a * scale, w, bounds=(0.0, np.inf), method="bvls", tol=1e-12)
    return np.asarray(res.x)


def _rmse_rel(pred: np.ndarray, y: np.ndarray) -> float:
    return float(np.sqrt(np.mean((pred / y - 1.0) ** 2)))


def fit_linear_ops(tab: pd.DataFrame, spec: ModelSpec, gpu: str, tp: int
                   ) -> tuple[np.ndarray, float, float]:
    """Fit D0, D1, P0, P1 of the token-linear operators; returns coefs and decode/prefill RMSE."""
    n = tab.index.to_numpy().astype(float)

    layer = tab["layer"].to_dict()
    emb = tab["emb"].to_dict()

    def lin(k: np.ndarray) -> np.ndarray:
        # Work proportional to all tokens in the iteration: every layer, embedding, all-reduce.
        t_layer = np.array([layer[x] for x in k])
        t_emb = np.array([emb[x] for x in k])
        return spec.n_layers * (t_layer + allreduce_s(gpu, tp, k, spec.hidden)) + t_emb

    def head(b: np.ndarray) -> np.ndarray:
        # LM head + final norm run only on each sequence's last token (b decode tokens). Not in
        # Vidur's table: a hidden x vocab/tp GEMM, timed as the measured fused gate+up GEMM
        # (hidden x 2*intermediate/tp) at the same token count, scaled by the width ratio.
        b = np.asarray(b, dtype=float)
        out = np.zeros_like(b)
        pos = b > 0
        if pos.any():
            t = tab.reindex(b[pos], method="nearest")
            out[pos] = (t["up"].to_numpy() * spec.vocab / (2 * spec.intermediate)
                        + t["norm"].to_numpy())
        return out

    # Decode-only rows (b sequences, no prefill), then mixed rows (b decodes + a P-token prefill).
    dec_b = np.array([b for b in DECODE_BATCHES if b in set(n)], dtype=float)
    mix = [(float(b), tot) for b in MIXED_DECODE_BATCHES for tot in n[n - b >= MIN_PREFILL_TOKENS]]
    mix_b = np.array([m[0] for m in mix])
    mix_tot = np.array([m[1] for m in mix])
    rows_a = np.r_[np.c_[np.ones_like(dec_b), dec_b, np.zeros_like(dec_b), np.zeros_like(dec_b)],
                   np.c_[np.ones_like(mix_b), mix_b, np.ones_like(mix_b), mix_tot - mix_b]]
    # One joining prompt's last token also goes through the LM head (b + 1).
    rows_y = np.r_[lin(dec_b) + head(dec_b), lin(mix_tot) + head(mix_b + 1.0)]
    groups = np.r_[np.zeros(len(dec_b), dtype=int), np.ones(len(mix_b), dtype=int)]
    a, y, g = rows_a, rows_y, groups
    # Decode rows and prefill rows get equal total weight: most iterations are decode-only,
    # and there are many more prefill rows.
    w = np.where(g == 0, 1.0 / math.sqrt((g == 0).sum()), 1.0 / math.sqrt((g == 1).sum()))
    coef = _relative_lsq(a, y, w)
    pred = a @ coef
    return coef, _rmse_rel(pred[g == 0], y[g == 0]), _rmse_rel(pred[g == 1], y[g == 1])


def fit_attention(data: Path) -> dict[str, Any]:
    """Per-layer attention fits on Vidur's A100 table (70B shape at TP2: 32 q / 4 kv heads per GPU)."""
    df = pd.read_csv(data / VIDUR / "legacy_e2d00e9" / "a100" / "attention.csv")
    dec = df[~df["is_prefill"].astype(bool)]
    y = dec["time_stats.attn_decode.median"].to_numpy() * 1e-3
    b = dec["batch_size"].to_numpy().astype(float)
    ctx = dec["kv_cache_size"].to_numpy().astype(float)
    a = np.c_[np.ones_like(b), b, b * ctx]
    dcoef = _relative_lsq(a, y, np.ones_like(y))
    drmse = _rmse_rel(a @ dcoef, y)

    pre = df[df["is_prefill"].astype(bool) & (df["kv_cache_size"] == 0)]
    y2 = pre["time_stats.attn_prefill.median"].to_numpy() * 1e-3
    p = pre["prefill_chunk_size"].to_numpy().astype(float)
    a2 = np.c_[np.ones_like(p), p, p * p]
    pcoef = _relative_lsq(a2, y2, np.ones_like(y2))
    prmse = _rmse_rel(a2 @ pcoef, y2)
    first = df.iloc[0]
    tp = int(first["num_tensor_parallel_workers"])
    q_heads = int(first["n_q_head"]) // tp
    kv_heads = int(first["n_kv_head"]) // tp
    head_dim = int(first["n_embd"]) // int(first["n_q_head"])
    return {"decode": dcoef, "decode_rmse": drmse, "prefill": pcoef, "prefill_rmse": prmse,
            "q_width": q_heads * head_dim, "kv_width": kv_heads * head_dim,
            "n_decode": len(y), "n_prefill": len(y2)}


def _bw_ratio(gpu: str) -> float:
    """Reference-GPU / target-GPU HBM bandwidth (memory-bound kernels)."""
    return gpu_spec(REF_ATTN_GPU).hbm_gbps / gpu_spec(gpu).hbm_gbps


def _flops_ratio(gpu: str) -> float:
    """Reference-GPU / target-GPU dense FP16 throughput (compute-bound kernels)."""
    return gpu_spec(REF_ATTN_GPU).fp16_tflops / gpu_spec(gpu).fp16_tflops


def derive_entry(data: Path, t: Target, tp: int, attn: dict[str, Any]) -> dict[str, Any]:
    """Fit one (model, GPU, GPUs) profile entry with its provenance and fit errors."""
    spec = MODELS[t.model]
    tab = table_for(data, t, tp)
    (d0, d1, p0, p1), rmse_dec, rmse_pre = fit_linear_ops(tab, spec, t.gpu, tp)

    # Attention: rescale the per-layer A100 fits to this model's per-GPU heads and this GPU.
    # Decode attention streams the KV cache (memory-bound): scale by KV width per GPU and HBM
    # bandwidth. Prefill attention is compute-bound: scale by query width and FP16 FLOPs.
    # Constant terms (kernel launches) are kept as measured.
    kv_width = max(spec.n_kv_heads // tp, 1) * spec.head_dim
    q_width = (spec.n_heads // tp) * spec.head_dim
    a0, a1, a2 = attn["decode"]
    c0, c1, c2 = attn["prefill"]
    kv_scale = kv_width / attn["kv_width"] * _bw_ratio(t.gpu)
    q_scale = q_width / attn["q_width"] * _flops_ratio(t.gpu)
    if t.gpu == "A100" and t.table_gpu == "a100":
        # A100-40GB: same FP16 compute as the measured A100-80GB but 1555 vs 2039 GB/s, so
        # the memory-bound decode terms (weight streaming, KV reads) are slower by that ratio.
        d0 *= _bw_ratio("A100")
    L = spec.n_layers
    coef = {
        "decode_base_s": d0 + L * a0 + ENGINE_OVERHEAD_S,
        "decode_per_seq_s": d1 + L * a1 * _bw_ratio(t.gpu),
        "decode_per_ctx_token_s": L * a2 * kv_scale,
        "prefill_base_s": p0 + L * c0,
        "prefill_per_token_s": p1 + L * c1 * q_scale,
        "prefill_per_token2_s": L * c2 * q_scale,
    }
    # A decoder used as an embedder runs one prefill pass per batch.
    coef["embed_base_s"] = coef["decode_base_s"] + coef["prefill_base_s"]
    coef["embed_per_token_s"] = coef["prefill_per_token_s"]

    rel = _mlp_path(data, t.table_gpu, t.table_model).relative_to(data)
    attn_src = f"{VIDUR}/legacy_e2d00e9/a100/attention.csv {VIDUR_ATTN_CITE}"
    source = f"{rel} {VIDUR_CITE} + {attn_src}"
    steps = [f"linear operators: {t.table_gpu} table at TP{tp}, fit on 1..{MAX_TOKENS} tokens"]
    if t.ratio_model:
        source = (f"{rel} x ({VIDUR}/compute/h100|a100/meta-llama/{t.ratio_model}/mlp.csv) "
                  f"{VIDUR_CITE} + {attn_src}")
        steps.append(f"scaled to H100 by the measured H100/A100 ratio of {t.ratio_model} "
                     "per token count and operator")
    if t.gpu == "A100" and t.table_gpu == "a100":
        steps.append("A100-40GB: decode base x 2039/1555 (HBM bandwidth vs the measured 80 GB part)")
    steps.append("LM head = fused gate/up GEMM time x vocab/(2*intermediate) on decode tokens")
    if tp > 1:
        steps.append(f"all-reduce assumed: 2/layer, {ALLREDUCE_BUS_GBPS[t.gpu]:.0f} GB/s bus, "
                     f"{ALLREDUCE_LATENCY_S[t.gpu] * 1e6:.0f} us")
    steps.append(f"attention: A100 70B-shape table scaled by KV width x{kv_width / attn['kv_width']:.3g}"
                 f" and HBM bw x{_bw_ratio(t.gpu):.3g} (decode), query width "
                 f"x{q_width / attn['q_width']:.3g} and FLOPs x{_flops_ratio(t.gpu):.3g} (prefill)")
    steps.append(f"+{ENGINE_OVERHEAD_S * 1e3:g} ms/iteration engine overhead (assumed)")
    entry: dict[str, Any] = {"model": t.model, "gpu": t.gpu, "gpus": tp}
    entry.update({k: _sig(float(v)) for k, v in coef.items()})
    entry["source"] = source
    entry["derivation"] = "; ".join(steps)
    entry["fit_rmse_rel"] = _sig(math.sqrt((rmse_dec**2 + rmse_pre**2) / 2), 4)
    entry["fit_detail"] = {"linear_decode_rmse_rel": _sig(rmse_dec, 4),
                           "linear_prefill_rmse_rel": _sig(rmse_pre, 4),
                           "attn_decode_rmse_rel": _sig(attn["decode_rmse"], 4),
                           "attn_prefill_rmse_rel": _sig(attn["prefill_rmse"], 4),
                           "points": int(len(tab))}
    return entry


def derive_all(data: Path = DEFAULT_DATA) -> dict[str, Any]:
    """The full profiles document (header + entries), computed from the data under ``data``."""
    attn = fit_attention(data)
    entries = []
    for t in TARGETS:
        spec = MODELS[t.model]
        for tp in TP_SIZES:
            if memory_shortfall_gb(spec, t.gpu, tp) > 0:
                continue  # does not fit this worker shape (weights + one 4k-token context)
            entries.append(derive_entry(data, t, tp, attn))
    header = {
        "format": 1,
        "generated_by": "scripts/derive_profiles.py",
        "units": "seconds; b = running sequences, K = summed KV context tokens, p_i = prompt "
                 "lengths joining the iteration",
        "model": "iteration_s = decode_base_s + decode_per_seq_s*b + decode_per_ctx_token_s*K "
                 "+ [m>0]*(prefill_base_s + sum_i(prefill_per_token_s*p_i + "
                 "prefill_per_token2_s*p_i**2)); embed_s = embed_base_s + embed_per_token_s*tokens",
        "sources": [
            f"{VIDUR}/compute/<gpu>/meta-llama/<model>/mlp.csv {VIDUR_CITE}",
            f"{VIDUR}/legacy_e2d00e9/a100/attention.csv {VIDUR_ATTN_CITE}",
            f"{LSS}/H100/meta-llama/Llama-3.1-8B/tp1/layers.csv {LSS_CITE} (cross-check only)",
        ],
        "assumptions": [
            "Vidur 'a100' tables are A100-80GB (Vidur device SKU 80 GB; H100/A100 single-token "
            "ratio matches 3350/2039 GB/s); A100-40GB decode base scaled by 2039/1555",
            f"engine overhead {ENGINE_OVERHEAD_S * 1e3:g} ms per iteration (not in the GPU profiles)",
            "tensor-parallel all-reduce not in the data: 2 per layer, ring, bus bandwidth "
            f"{ALLREDUCE_BUS_GBPS} GB/s, latency {ALLREDUCE_LATENCY_S} s",
            "LM head: GEMM hidden x vocab/tp on each sequence's last token, timed like the "
            "measured gate/up GEMM scaled by width",
            "attention from one A100 table (70B shape, TP2), scaled by per-GPU head width and "
            "HBM bandwidth (decode) or FP16 FLOPs (prefill)",
            "Llama-3-8B on H100: A100 table x the measured H100/A100 ratio of Llama-2-7B",
            f"fit weights: decode-only rows (b in {list(DECODE_BATCHES)}) and prefill rows carry "
            "equal weight; "
            "relative residuals; non-negative coefficients",
        ],
        "fit_rmse_rel": "sqrt of the mean of the squared decode and prefill relative RMSEs of "
                        "the linear-operator fit against the measured points",
    }
    return {**header, "entries": entries}


def _lss_table(data: Path) -> pd.DataFrame:
    """LLMServingSim H100 Llama-3.1-8B per-op latency (seconds) by input tokens, TP1."""
    df = pd.read_csv(data / LSS / "H100" / "meta-llama" / "Llama-3.1-8B" / "tp1" / "layers.csv")
    df = df[(df["tp_size"] == 1) & (df["kv_cache"] == 0)]
    return df.pivot_table(index="input", columns="layer_name", values="latency(ns)") * 1e-9


def cross_check(data: Path, doc: dict[str, Any]) -> dict[str, float]:
    """Relative RMSE of the derived Llama-3-8B/H100/1 profile against LLMServingSim's H100 data."""
    lss = _lss_table(data)
    spec = MODELS["Llama-3-8B"]
    per_layer = ["input_layernorm", "q_proj", "k_proj", "v_proj", "rope", "o_proj",
                 "post_layernorm", "gate_proj", "up_proj", "act_fn", "down_proj"]
    lss_lin = lss[per_layer].sum(axis=1) * spec.n_layers + lss["embedding"]
    lss_head = lss["lm_head"] + lss["final_layernorm"]
    lss_attn = lss["attn"] * spec.n_layers  # self-attention over the input tokens (prefill)
    ours_tab = table_for(data, next(t for t in TARGETS
                                    if t.model == "Llama-3-8B" and t.gpu == "H100"), 1)
    common = ours_tab.index.intersection(lss.index)
    ours_layer = ours_tab.loc[common, "layer"] * spec.n_layers + ours_tab.loc[common, "emb"]
    e = next(x for x in doc["entries"]
             if x["model"] == "Llama-3-8B" and x["gpu"] == "H100" and x["gpus"] == 1)
    # Decode, b = 1..256 sequences at zero context: non-attention work + LM head (+overhead).
    b = np.array([k for k in lss.index if 1 <= k <= 256], dtype=float)
    ours_dec = e["decode_base_s"] - ENGINE_OVERHEAD_S + e["decode_per_seq_s"] * b
    lss_dec = (lss_lin + lss_head).loc[b].to_numpy()
    # Prefill of one prompt of p = 128..2048 tokens (b = 0): everything incl. attention.
    p = np.array([k for k in lss.index if 128 <= k <= 2048], dtype=float)
    ours_pre = (e["decode_base_s"] - ENGINE_OVERHEAD_S + e["prefill_base_s"]
                + e["prefill_per_token_s"] * p + e["prefill_per_token2_s"] * p * p)
    lss_pre = (lss_lin + lss_attn).loc[p].to_numpy() + lss_head.loc[1]
    return {
        "per_layer_table_rmse_rel": _rmse_rel(ours_layer.to_numpy(),
                                              lss_lin.loc[common].to_numpy()),
        "decode_rmse_rel": _rmse_rel(ours_dec, lss_dec),
        "decode_b1_ratio": float(ours_dec[0] / lss_dec[0]),
        "prefill_rmse_rel": _rmse_rel(ours_pre, lss_pre),
        "prefill_1024_ratio": float(ours_pre[p == 1024][0] / lss_pre[p == 1024][0]),
    }


def render(doc: dict[str, Any]) -> str:
    """The JSON text written to disk (stable key order, trailing newline)."""
    return json.dumps(doc, indent=1) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Derive, write (or check) the profiles and print the fit-error table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="shared data folder")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="profiles.json to write")
    ap.add_argument("--check", action="store_true",
                    help="do not write; exit 1 if the shipped file differs from the derivation")
    args = ap.parse_args(argv)
    if not (args.data / VIDUR).is_dir():
        print(f"error: {args.data / VIDUR} not found (use --data)", file=sys.stderr)
        return 2
    doc = derive_all(args.data)
    print(f"{'model':<12} {'gpu':<10} {'n':>2} {'dec ms':>7} {'/seq us':>8} {'/ctx ns':>8} "
          f"{'pf ms':>6} {'/tok us':>8} {'/tok2 ps':>9} {'fit':>6} {'dec':>6} {'pre':>6}")
    for e in doc["entries"]:
        f = e["fit_detail"]
        print(f"{e['model']:<12} {e['gpu']:<10} {e['gpus']:>2} {e['decode_base_s'] * 1e3:7.2f} "
              f"{e['decode_per_seq_s'] * 1e6:8.2f} {e['decode_per_ctx_token_s'] * 1e9:8.2f} "
              f"{e['prefill_base_s'] * 1e3:6.2f} {e['prefill_per_token_s'] * 1e6:8.2f} "
              f"{e['prefill_per_token2_s'] * 1e12:9.2f} {e['fit_rmse_rel']:6.1%} "
              f"{f['linear_decode_rmse_rel']:6.1%} {f['linear_prefill_rmse_rel']:6.1%}")
    first = doc["entries"][0]["fit_detail"]
    print(f"attention fits (A100 table): decode rel RMSE {first['attn_decode_rmse_rel']:.1%}, "
          f"prefill rel RMSE {first['attn_prefill_rmse_rel']:.1%}")
    if (args.data / LSS).is_dir():
        cc = cross_check(args.data, doc)
        print("cross-check Llama-3-8B/H100x1 (scaled) vs LLMServingSim Llama-3.1-8B H100: "
              f"per-layer table rel RMSE {cc['per_layer_table_rmse_rel']:.1%}; decode b=1..256 "
              f"rel RMSE {cc['decode_rmse_rel']:.1%} (b=1 ratio {cc['decode_b1_ratio']:.2f}); "
              f"prefill p=128..2048 rel RMSE {cc['prefill_rmse_rel']:.1%} "
              f"(p=1024 ratio {cc['prefill_1024_ratio']:.2f})")
    text = render(doc)
    if args.check:
        same = args.out.is_file() and args.out.read_text() == text
        print("shipped profiles match" if same else f"{args.out} differs from the derivation")
        return 0 if same else 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(f"wrote {len(doc['entries'])} entries to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
