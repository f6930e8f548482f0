#!/usr/bin/env python
"""Derive the compact operator tables of the composed service model from AIConfigurator.

Reads NVIDIA AIConfigurator's operator latencies measured inside vLLM
(``../shared/data/aiconfigurator_vllm``, Apache-2.0, github.com/ai-dynamo/aiconfigurator at
095f58a) and writes ``sim/serving/data/operators.json``, which :mod:`sim.serving.compose`
reads at run time (the raw parquet files are never needed by the simulator):

* ``gemm``: BF16 GEMM latency on the full measured (m, n, k) grid (21 x 21 x 21), ms;
* ``prefill_attention``: per GPU, a relative least-squares fit of one prompt's FlashAttention
  prefill per layer, ``c0 + c1 * heads * p + c2 * heads * p**2`` (head_dim 128, BF16 KV),
  with its error (rows with at least MIN_HEADS query heads per GPU);
* ``decode_attention``: ``a0 + a1 * b * heads + a2 * b * ctx * kv_heads`` per layer (one decode step
  of ``b`` sequences of ``ctx`` cached tokens; the KV bytes read grow with ``ctx * kv_heads``),
  with its error;
* ``allreduce``: custom all-reduce latency vs message size and GPUs, with CUDA graphs
  (``graph``) and without (``eager``);
* ``encoder_attention`` (only where measured: H100 at vLLM 0.24): per head_dim (64, 72,
  80), a relative least-squares fit of one bidirectional FlashAttention-3 call over a batch
  of ``b`` sequences of ``s`` tokens per layer, ``e0 + e1 * b * heads * s + e2 * b * heads *
  s**2`` (the kernel vLLM runs for non-causal encoder attention), with its error;
* ``moe``: fused-MoE layer latency vs tokens for each measured (hidden, inter, top-k,
  experts) at each MoE TP size (expert parallelism 1), BF16, ``balanced`` routing where
  measured, else ``power_law_1.01`` (A100, L40S);
* ``host``: the per-iteration CPU overhead of a 2024 vLLM-like engine from Vidur's
  ``cpu_overhead_6d98aa8`` tables (schedule + sampler + prepare inputs + process outputs,
  and Ray's per-step communication at TP > 1), fitted ``h0 + h1 * batch`` (the
  ``eager-2024`` engine preset).

Deterministic. Usage: ``python scripts/derive_operators.py [--data DIR] [--out FILE] [--check]``
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data"
DEFAULT_OUT = ROOT / "sim" / "serving" / "data" / "operators.json"
AIC = "aiconfigurator_vllm"
AIC_CITE = ("NVIDIA AIConfigurator (Apache-2.0), github.com/ai-dynamo/aiconfigurator @095f58a, "
            "operator latencies measured inside vLLM")
VIDUR_CITE = ("Vidur (Agrawal et al., MLSys'24, MIT), github.com/microsoft/vidur @6d98aa8, "
              "data/profiling/a100/cpu_overheads.csv")

#: (system folder, vLLM version) pairs with tables, and the key the runtime uses.
SYSTEMS = (("a100_sxm", "0.14.0"), ("h100_sxm", "0.14.0"), ("h200_sxm", "0.14.0"),
           ("l40s", "0.14.0"), ("h100_sxm", "0.24.0"))


GEMM_M = (1, 2, 4, 8, 16, 32, 48, 64, 80, 96, 128, 160, 192, 256, 384, 512, 768, 1024, 2048,
          4096, 8192)
GEMM_NK = (128, 256, 512, 768, 1024, 1536, 2048, 2560, 3072, 3584, 4096, 5120, 6144, 7168,
           8192, 10240, 12288, 16384, 65536)
#: Served shapes have at least this many query heads per GPU (a 64-head model at TP 16);
#: the tables' 1- and 2-head rows run a single thread block per sequence and would skew fits.
MIN_HEADS = 4


def _sig(x: float, digits: int = 4) -> float:
    """Round to ``digits`` significant digits (keeps the JSON small and stable)."""
    if x == 0 or not math.isfinite(x):
        return 0.0
    return float(f"{x:.{digits - 1}e}")


def _rel_lsq(a: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Least squares on relative residuals; coefficients clipped at 0 by refitting without them."""
    keep = list(range(a.shape[1]))
    coef = np.zeros(a.shape[1])
    while keep:
        sub = a[:, keep] / y[:, None]
        c, *_ = np.linalg.lstsq(sub, np.ones_like(y), rcond=None)
        if (c >= 0).all():
            coef[keep] = c
            break
        keep.pop(int(np.argmin(c)))
    rel = a @ coef / y - 1
    return coef, float(np.sqrt(np.mean(rel**2))), float(np.max(np.abs(rel)))


def _read(data: Path, system: str, op: str, version: str, name: str) -> pd.DataFrame:
    return pd.read_parquet(data / AIC / system / op / "vllm" / version / name)


def gemm_table(data: Path, system: str, version: str) -> dict[str, Any]:
    g = _read(data, system, "gemm", version, "gemm_perf.parquet")
    g = g[g["gemm_dtype"] == "bfloat16"].groupby(["m", "n", "k"])["latency"].median()
    # The grid common to every system (some measure more points); n, k >= 128 (no served
    # model has a narrower projection per GPU). Three significant digits: the tables' own
    # run-to-run noise is larger.
    ms, ns, ks = GEMM_M, GEMM_NK, GEMM_NK
    def cell(m: int, n: int, k: int) -> float:
        t = float(g.get((m, n, k), math.nan))
        if math.isnan(t) and n > 16384:  # unmeasured 65536-wide cells: linear in n from 16384
            t = cell(m, 16384, k) * n / 16384
        if math.isnan(t) and k > 16384:
            t = cell(m, n, 16384) * k / 16384
        if math.isnan(t):  # a hole inside the grid: log-log interpolation along m
            have = [(mm, float(g[(mm, n, k)])) for mm in ms if (mm, n, k) in g.index]
            lo = [x for x in have if x[0] < m]
            hi = [x for x in have if x[0] > m]
            if not lo or not hi:
                raise SystemExit(f"{system} {version}: no GEMM time near m={m} n={n} k={k}")
            (m0, t0), (m1, t1) = lo[-1], hi[0]
            w = math.log(m / m0) / math.log(m1 / m0)
            t = math.exp(math.log(t0) * (1 - w) + math.log(t1) * w)
        return t

    cube = [[[_sig(cell(m, n, k), 3) for k in ks] for n in ns] for m in ms]
    return {"m": ms, "n": ns, "k": ks, "ms": cube}


def prefill_attention(data: Path, system: str, version: str) -> dict[str, Any]:
    c = _read(data, system, "attention", version, "context_attention_perf.parquet")
    c = c[(c["kv_cache_dtype"] == "bfloat16") & (c["head_dim"] == 128) & (c["batch_size"] == 1)]
    c = c[(c["isl"] >= 16) & (c["num_heads"] >= MIN_HEADS)]
    h = c["num_heads"].to_numpy(float)
    p = c["isl"].to_numpy(float)
    y = c["latency"].to_numpy(float)
    a = np.column_stack([np.ones_like(y), h * p, h * p * p])
    coef, rms, worst = _rel_lsq(a, y)
    return {"c0_ms": _sig(coef[0]), "c1_ms": _sig(coef[1]), "c2_ms": _sig(coef[2]),
            "points": len(y), "rms_error": round(rms, 4), "max_error": round(worst, 4)}


def encoder_attention(data: Path, system: str, version: str) -> dict[str, Any] | None:
    """Fits of the bidirectional (encoder) attention table per head_dim, None if unmeasured."""
    path = data / AIC / system / "encoder_attention" / "vllm" / version
    if not (path / "encoder_attention_perf.parquet").is_file():
        return None
    e = _read(data, system, "encoder_attention", version, "encoder_attention_perf.parquet")
    e = e[(e["attn_dtype"] == "bfloat16") & (e["isl"] >= 16) & (e["num_heads"] >= MIN_HEADS)]
    out: dict[str, Any] = {}
    for hd, g in e.groupby("head_dim"):
        b, h, s, y = (g[k].to_numpy(float) for k in ("batch_size", "num_heads", "isl", "latency"))
        a = np.column_stack([np.ones_like(y), b * h * s, b * h * s * s])
        coef, rms, worst = _rel_lsq(a, y)
        out[str(int(hd))] = {"e0_ms": _sig(coef[0]), "e1_ms": _sig(coef[1]),
                             "e2_ms": _sig(coef[2]), "points": len(y),
                             "rms_error": round(rms, 4), "max_error": round(worst, 4)}
    return out


def decode_attention(data: Path, system: str, version: str) -> dict[str, Any]:
    g = _read(data, system, "attention", version, "generation_attention_perf.parquet")
    g = g[(g["kv_cache_dtype"] == "bfloat16") & (g["head_dim"] == 128)]
    # The serving range: up to 256 sequences, contexts 15..32767 (smaller ones are a launch).
    g = g[(g["batch_size"] <= 256) & (g["step"] >= 15) & (g["step"] <= 32767)
          & (g["num_heads"] >= MIN_HEADS)]
    b = g["batch_size"].to_numpy(float)
    ctx = g["step"].to_numpy(float)
    kv = g["num_key_value_heads"].to_numpy(float)
    heads = g["num_heads"].to_numpy(float)
    y = g["latency"].to_numpy(float)
    a = np.column_stack([np.ones_like(y), b * heads, b * ctx * kv])
    coef, rms, worst = _rel_lsq(a, y)
    return {"a0_ms": _sig(coef[0]), "a1_ms": _sig(coef[1]), "a2_ms": _sig(coef[2]),
            "points": len(y), "rms_error": round(rms, 4), "max_error": round(worst, 4)}


def allreduce(data: Path, system: str, version: str) -> dict[str, Any]:
    path = data / AIC / system / "comm" / "vllm" / version / "custom_allreduce_perf.parquet"
    if not path.is_file():
        return {}
    r = pd.read_parquet(path)
    sizes = sorted({int(v) for v in r["message_size"]})
    out: dict[str, Any] = {"elements": sizes}
    for backend, key in (("vllm_graph", "graph"), ("vllm_eager", "eager")):
        sub = r[r["backend"] == backend]
        out[key] = {str(n): [_sig(float(sub[(sub["num_gpus"] == n)
                                            & (sub["message_size"] == s)]["latency"].median()))
                             for s in sizes]
                    for n in sorted({int(v) for v in sub["num_gpus"]})}
    return out


def moe(data: Path, system: str, version: str) -> dict[str, Any]:
    m = _read(data, system, "moe", version, "moe_perf.parquet")
    m = m[(m["moe_dtype"] == "bfloat16") & (m["moe_ep_size"] == 1)]
    dist = "balanced" if (m["distribution"] == "balanced").any() else "power_law_1.01"
    m = m[m["distribution"] == dist]
    tokens = sorted({int(v) for v in m["num_tokens"]})
    shapes: dict[str, Any] = {}
    for (hid, inter, topk, ne, tp), sub in m.groupby(
            ["hidden_size", "inter_size", "topk", "num_experts", "moe_tp_size"]):
        s = sub.groupby("num_tokens")["latency"].median()
        if len(s) < len(tokens):
            continue
        shapes.setdefault(f"{hid}/{inter}/{topk}/{ne}", {})[str(int(tp))] = [
            _sig(float(s[t])) for t in tokens]
    return {"distribution": dist, "tokens": tokens, "shapes": shapes}


def host_overhead(data: Path) -> dict[str, Any]:
    """eager-2024 host overhead: schedule + sampler + prepare + process outputs, + Ray at TP>1."""
    d = pd.read_csv(data / "vidur_profiling" / "cpu_overhead_6d98aa8" / "a100_cpu_overheads.csv")
    d["host_ms"] = (d["schedule_median"] + d["sampler_e2e_median"]
                    + d["prepare_inputs_e2e_median"] + d["process_model_outputs_median"])
    b = d["batch_size"].to_numpy(float)
    y = d["host_ms"].to_numpy(float)
    coef, rms, worst = _rel_lsq(np.column_stack([np.ones_like(y), b]), y)
    ray = d[d["tensor_parallel_degree"] > 1]["ray_comm_time_mean"]
    return {"h0_ms": _sig(coef[0]), "h1_ms": _sig(coef[1]), "points": len(y),
            "rms_error": round(rms, 4), "max_error": round(worst, 4),
            "tp_comm_ms": _sig(float(ray.median())), "tp_comm_points": int(len(ray)),
            "source": VIDUR_CITE}


def system_yaml(data: Path, system: str) -> dict[str, Any]:
    import yaml

    doc = yaml.safe_load((data / AIC / f"{system}.yaml").read_text())
    gpu = doc["gpu"]
    return {"mem_bw_gbps": gpu["mem_bw"] / 1e9, "bf16_tflops": gpu["bfloat16_tc_flops"] / 1e12,
            "mem_capacity_gib": gpu["mem_capacity"] / 2**30,
            "intra_node_gbps": doc["node"]["intra_node_bw"] / 1e9}


def derive(data: Path = DEFAULT_DATA) -> dict[str, Any]:
    systems: dict[str, Any] = {}
    for system, version in SYSTEMS:
        key = f"{system}@{version}"
        systems[key] = {
            "gpu": system_yaml(data, system),
            "gemm": gemm_table(data, system, version),
            "prefill_attention": prefill_attention(data, system, version),
            "decode_attention": decode_attention(data, system, version),
            "allreduce": allreduce(data, system, version),
            "moe": moe(data, system, version),
        }
        enc = encoder_attention(data, system, version)
        if enc is not None:
            systems[key]["encoder_attention"] = enc
    return {
        "header": {
            "source": AIC_CITE,
            "derivation": "scripts/derive_operators.py (see its docstring and docs/profiles.md)",
            "units": "milliseconds per call (per layer for attention and MoE); GEMM grid BF16",
        },
        "host_eager_2024": host_overhead(data),
        "systems": systems,
    }


def render(doc: dict[str, Any]) -> str:
    return json.dumps(doc, separators=(",", ":"), sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--check", action="store_true", help="exit 1 if the shipped file differs")
    args = ap.parse_args(argv)
    doc = derive(args.data)
    text = render(doc)
    for key, sysd in doc["systems"].items():
        pa, da = sysd["prefill_attention"], sysd["decode_attention"]
        print(f"{key}: prefill attention fit rms {pa['rms_error']:.1%} max {pa['max_error']:.1%}"
              f"; decode attention rms {da['rms_error']:.1%} max {da['max_error']:.1%}")
        for hd, ea in sysd.get("encoder_attention", {}).items():
            print(f"  encoder attention head_dim {hd}: rms {ea['rms_error']:.1%} "
                  f"max {ea['max_error']:.1%} ({ea['points']} points)")
    h = doc["host_eager_2024"]
    print(f"eager-2024 host: {h['h0_ms']} ms + {h['h1_ms']} ms/seq (rms {h['rms_error']:.1%}), "
          f"Ray comm at TP>1 {h['tp_comm_ms']} ms")
    if args.check:
        same = args.out.is_file() and args.out.read_text() == text
        print("up to date" if same else f"{args.out} differs from the derivation")
        return 0 if same else 1
    args.out.write_text(text)
    print(f"wrote {args.out} ({len(text) / 1e3:.0f} kB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
