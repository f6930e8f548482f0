"""Fidelity of the performance profiles: predictions against the public measurements.

Three families of checks, each a DataFrame with one row per (shape, quantity, size):

* :func:`in_sample` — every built-in entry that has its own measured table, against the
  totals reconstructed from that table (the data the coefficients were fitted to, so this is
  the fit error of the linear iteration-time form, not a test of it);
* :func:`out_of_sample` — where two sources overlap or where a scaling rule can be checked
  against a measurement it did not use: Llama-3-8B on H100 (our entry is ratio-scaled from
  A100; LLMServingSim measured Llama-3.1-8B on H100), the generic A100→H100 rule of
  :func:`sim.serving.profiles.get_profile` on Llama-2-7B (Vidur measured both GPUs), and
  Llama-3-8B on an A6000 (no built-in entry; LLMServingSim measured it);
* :func:`profile_table` — the predictions alone, for ``sim profile show``.

All comparisons are of GPU time: the profile's prediction minus the assumed 1 ms engine
overhead (:data:`sim.serving.profiles.ENGINE_OVERHEAD_S`, which neither source measures)
against sums of measured operator times. Errors are ``predicted / measured - 1``.

The raw data are read from ``../shared/data`` next to the repository (or ``data=``); they
are never copied into the repository. The in-sample reconstruction reuses the derivation
script's own readers (``scripts/derive_profiles.py``), so the two cannot drift apart.
"""

from __future__ import annotations

import functools
import importlib.util
import math
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any
from unittest import mock

import numpy as np
import pandas as pd

from sim.errors import ProfileError
from sim.serving import profiles as _profiles
from sim.serving.models import MODELS, resolve_model
from sim.serving.profiles import (
    ENGINE_OVERHEAD_S,
    VIDUR,
    Profile,
    builtin_shapes,
    get_profile,
)

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data"

#: Prompt lengths and batch sizes of the fidelity tables (all are measured token counts).
PROMPTS: tuple[int, ...] = (128, 512, 1024, 2048, 4096)
BATCHES: tuple[int, ...] = (1, 8, 32, 128)
#: KV context per sequence at which time per output token is compared.
CONTEXT = 1024

LSS = "llmservingsim_profiles"
# LLMServingSim's per-layer operators (everything in a block except attention).
_LSS_LAYER_OPS = ("input_layernorm", "q_proj", "k_proj", "v_proj", "rope", "o_proj",
                  "post_layernorm", "gate_proj", "up_proj", "act_fn", "down_proj")

COLUMNS = ("check", "model", "gpu", "gpus", "quantity", "size", "context", "predicted_ms",
           "measured_ms", "error")


# ---------------------------------------------------------------------------------------------
# Predictions


def prefill_alone_s(profile: Profile, prompt: int) -> float:
    """Time of an iteration that runs only the prefill of one ``prompt``-token request (its TTFT)."""
    return profile.decode_step_s(0, 0.0) + profile.prefill_s([prompt])


def profile_table(profile: Profile, *, batches: Sequence[int] = BATCHES, prompt: int = 1024,
                  context: int = CONTEXT, max_batch: int = 256) -> dict[str, Any]:
    """Predicted TTFT, TPOT and decode throughput of ``profile`` (the data of ``sim profile show``)."""
    if prompt < 1 or context < 0 or any(b < 1 for b in batches):
        raise ProfileError("batch sizes and --prompt must be >= 1 and --context >= 0")
    # Encoders (embedding models) have no decode phase: a batch of b requests of ``prompt``
    # tokens is one pass, and their throughput is input tokens/s.
    encoder = profile.decode_base_s <= 0 and profile.decode_per_seq_s <= 0
    rows = []
    for b in batches:
        step = profile.embed_s(b * prompt) if encoder else profile.tpot_s(b, context)
        rows.append({"batch": b, "tpot_s": step,
                     "tokens_per_s": b * (prompt if encoder else 1) / step,
                     "kv_tokens": 0 if encoder else b * context,
                     "fits_kv": encoder or b * context <= profile.kv_capacity_tokens})
    return {"model": profile.model, "gpu": profile.gpu, "gpus": profile.gpus,
            "source": profile.source, "kv_capacity_tokens": profile.kv_capacity_tokens,
            "prompt": prompt, "context": context, "encoder": encoder,
            "ttft_s": profile.embed_s(prompt) if encoder else prefill_alone_s(profile, prompt),
            "rows": rows, "max_batch": max_batch,
            "rated_tokens_per_s": profile.rated_tokens_per_s(max_batch)}


def format_profile_table(info: dict[str, Any]) -> str:
    """The text ``sim profile show`` prints for :func:`profile_table`'s result."""
    lines = [f"{info['model']} on {info['gpus']} x {info['gpu']}", f"source       {info['source']}"]
    if info["encoder"]:
        lines += [
            f"latency      {info['ttft_s'] * 1e3:.2f} ms (one {info['prompt']}-token input alone)",
            "",
            f"batches of {info['prompt']}-token inputs (embedding: one pass per batch):",
            f"{'batch':>7} {'batch ms':>9} {'tokens/s':>10}",
        ]
    else:
        kv, ctx = info["kv_capacity_tokens"], max(info["context"], 1)
        lines += [
            f"KV capacity  {kv:,} tokens ({kv // ctx:,} sequences of {info['context']} tokens)",
            f"TTFT         {info['ttft_s'] * 1e3:.1f} ms (prefill of one {info['prompt']}-token "
            "prompt alone, no queueing)",
            "",
            f"decode with {info['context']} context tokens per sequence:",
            f"{'batch':>7} {'TPOT ms':>9} {'tokens/s':>10}",
        ]
    for r in info["rows"]:
        note = "" if r["fits_kv"] else "  (exceeds KV capacity)"
        lines.append(f"{r['batch']:>7} {r['tpot_s'] * 1e3:>9.2f} {r['tokens_per_s']:>10.0f}{note}")
    unit = "input" if info["encoder"] else "output"
    lines += ["", f"rated        {info['rated_tokens_per_s']:,.0f} {unit} tokens/s at max_batch "
              f"{info['max_batch']} (the figure max_throughput_rate is compared with)"]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Data access


def data_dir(data: str | Path | None = None) -> Path:
    """The shared data folder holding ``vidur_profiling`` and ``llmservingsim_profiles``."""
    path = Path(data) if data is not None else DEFAULT_DATA
    if not (path / "vidur_profiling").is_dir():
        raise ProfileError(f"{path / 'vidur_profiling'} not found: the fidelity checks need the "
                           "public measurements (pass data=... or --data DIR)")
    return path


@functools.cache
def _derivation() -> ModuleType:
    """The profile derivation script, imported as a module (it owns the table readers)."""
    path = ROOT / "scripts" / "derive_profiles.py"
    spec = importlib.util.spec_from_file_location("_sim_derive_profiles", path)
    if spec is None or spec.loader is None or not path.is_file():
        raise ProfileError(f"{path} not found: fidelity checks run from a source checkout")
    module = importlib.util.module_from_spec(spec)
    # Registered before running: its dataclasses look their module up in sys.modules.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@functools.cache
def _attention(data: Path) -> tuple[dict[str, Any], pd.DataFrame]:
    """The derivation's attention fit and the raw Vidur A100 attention table (seconds per layer)."""
    d = _derivation()
    raw = pd.read_csv(data / d.VIDUR / "legacy_e2d00e9" / "a100" / "attention.csv")
    return d.fit_attention(data), raw


@functools.cache
def _lss_tables(data: Path, gpu_folder: str) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """LLMServingSim per-op latencies (s, by input tokens) and its attention table (A6000 only)."""
    base = data / LSS / gpu_folder / "meta-llama" / "Llama-3.1-8B" / "tp1"
    df = pd.read_csv(base / "layers.csv")
    df = df[(df["tp_size"] == 1) & (df["kv_cache"] == 0)]
    layers = df.pivot_table(index="input", columns="layer_name", values="latency(ns)") * 1e-9
    attn_path = base / "attention.csv"
    attn = pd.read_csv(attn_path) if attn_path.is_file() else None
    return layers, attn


def _cell(df: pd.DataFrame, row: int, col: str) -> float:
    """One table cell as a float (pandas types cells loosely)."""
    value: Any = df.at[row, col]
    return float(value)


def _nearest_decode_row(table: pd.DataFrame, b: int, ctx: int, col: str) -> float:
    """Measured decode attention (table units) at batch ``b`` and the KV length nearest ``ctx``."""
    dec = table[(~table["is_prefill"].astype(bool)) & (table["batch_size"] == b)]
    if dec.empty:
        return math.nan
    kv = dec["kv_cache_size"].to_numpy()
    best = kv[np.argmin(np.abs(kv - ctx))]
    if abs(best - ctx) > 0.1 * max(ctx, 1):
        return math.nan  # no measurement close enough: leave the point out rather than guess
    return float(dec.loc[dec["kv_cache_size"] == best, col].median())


# ---------------------------------------------------------------------------------------------
# In-sample: built-in entries against the measured tables they were fitted to


class _Measured:
    """Measured GPU-time totals of one built-in (model, GPU, GPUs) shape, rebuilt from Vidur."""

    def __init__(self, data: Path, model: str, gpu: str, gpus: int) -> None:
        d = _derivation()
        self.target = next((t for t in d.TARGETS if t.model == model and t.gpu == gpu), None)
        if self.target is None:
            raise ProfileError(f"{model}/{gpu} has no measured table")
        self.spec = MODELS[model]
        self.gpu, self.tp = gpu, gpus
        self.tab = d.table_for(data, self.target, gpus)
        self.attn, self.raw_attn = _attention(data)
        self._d = d

    def _lin(self, n: int) -> float:
        """Work proportional to every token of the iteration (the derivation's ``lin(n)``)."""
        row = self.tab.loc[n]
        ar = float(self._d.allreduce_s(self.gpu, self.tp, np.array([float(n)]),
                                       self.spec.hidden)[0])
        return float(self.spec.n_layers * (row["layer"] + ar) + row["emb"])

    def _head(self, b: int) -> float:
        """LM head + final norm on the last token of each sequence (the derivation's rule)."""
        row = self.tab.loc[b]
        return float(row["up"] * self.spec.vocab / (2 * self.spec.intermediate) + row["norm"])

    def _widths(self) -> tuple[float, float, float]:
        """Bandwidth ratio, decode (KV) scale and prefill (query) scale from the measured shape."""
        s, tp, a = self.spec, self.tp, self.attn
        bwr = float(self._d._bw_ratio(self.gpu))
        kv_scale = max(s.n_kv_heads // tp, 1) * s.head_dim / a["kv_width"] * bwr
        q_scale = (s.n_heads // tp) * s.head_dim / a["q_width"] * float(self._d._flops_ratio(self.gpu))
        return bwr, kv_scale, q_scale

    def decode_s(self, b: int, ctx: int) -> float:
        """Decode step of ``b`` sequences of ``ctx`` KV tokens each (GPU time)."""
        a0, a1, _ = self.attn["decode"]
        bwr, kv_scale, _ = self._widths()
        t = _nearest_decode_row(self.raw_attn, b, ctx, "time_stats.attn_decode.median") * 1e-3
        # The measured table is the 70B shape on A100 at TP2: move it to this shape with the
        # derivation's own rule (launch term kept, per-sequence term x bandwidth, the rest
        # — KV streaming — x KV width x bandwidth). Exact for the reference shape.
        attn = a0 + a1 * b * bwr + (t - a0 - a1 * b) * kv_scale
        return self._lin(b) + self._head(b) + self.spec.n_layers * attn

    def prefill_s(self, p: int) -> float:
        """Iteration that runs only the prefill of one ``p``-token prompt (GPU time)."""
        c0 = self.attn["prefill"][0]
        _, _, q_scale = self._widths()
        pre = self.raw_attn[self.raw_attn["is_prefill"].astype(bool)
                            & (self.raw_attn["kv_cache_size"] == 0)
                            & (self.raw_attn["prefill_chunk_size"] == p)]
        t = float(pre["time_stats.attn_prefill.median"].mean()) * 1e-3 if len(pre) else math.nan
        attn = c0 + (t - c0) * q_scale
        return self._lin(p) + self._head(1) + self.spec.n_layers * attn


def _row(check: str, prof: Profile, quantity: str, size: int, ctx: int, pred_s: float,
         meas_s: float) -> dict[str, Any]:
    return {"check": check, "model": prof.model, "gpu": prof.gpu, "gpus": prof.gpus,
            "quantity": quantity, "size": size, "context": ctx, "predicted_ms": pred_s * 1e3,
            "measured_ms": meas_s * 1e3, "error": pred_s / meas_s - 1.0}


def _compare(check: str, prof: Profile, meas: Any, prompts: Sequence[int],
             batches: Sequence[int], ctx: int) -> list[dict[str, Any]]:
    """Rows comparing ``prof`` (GPU time) with ``meas.prefill_s`` / ``meas.decode_s``."""
    rows = []
    for p in prompts:
        m = meas.prefill_s(p)
        if math.isfinite(m):
            rows.append(_row(check, prof, "prefill", p, 0,
                             prefill_alone_s(prof, p) - ENGINE_OVERHEAD_S, m))
    for b in batches:
        m = meas.decode_s(b, ctx)
        if math.isfinite(m):
            rows.append(_row(check, prof, "tpot", b, ctx, prof.tpot_s(b, ctx) - ENGINE_OVERHEAD_S,
                             m))
    return rows


def measured_shapes() -> list[tuple[str, str, int]]:
    """Built-in shapes with a measured (Vidur) table of their own GPU.

    A100-40GB entries are left out: they reuse the A100-80GB tables with the decode base
    scaled by bandwidth, so there is no 40 GB measurement to compare with.
    """
    return [s for s in builtin_shapes() if s[1] != "A100"]


def in_sample(data: str | Path | None = None, *, prompts: Sequence[int] = PROMPTS,
              batches: Sequence[int] = BATCHES, context: int = CONTEXT) -> pd.DataFrame:
    """Built-in profiles against the measured totals they were fitted to (the fit error)."""
    root = data_dir(data)
    rows: list[dict[str, Any]] = []
    for model, gpu, n in measured_shapes():
        prof = get_profile(model, gpu, n, engine=VIDUR)
        rows += _compare("in-sample", prof, _Measured(root, model, gpu, n), prompts, batches,
                         context)
    return pd.DataFrame(rows, columns=list(COLUMNS))


# ---------------------------------------------------------------------------------------------
# Out-of-sample


class _LssMeasured:
    """Measured GPU-time totals of Llama-3.1-8B on one GPU from LLMServingSim's operator tables."""

    def __init__(self, data: Path, gpu_folder: str) -> None:
        self.layers, self.attn = _lss_tables(data, gpu_folder)
        self.spec = MODELS["Llama-3-8B"]

    def _lin(self, n: int) -> float:
        per_layer = sum(_cell(self.layers, n, op) for op in _LSS_LAYER_OPS)
        return per_layer * self.spec.n_layers + _cell(self.layers, n, "embedding")

    def _head(self, b: int) -> float:
        return _cell(self.layers, b, "lm_head") + _cell(self.layers, b, "final_layernorm")

    def decode_attention_s(self, b: int, ctx: int) -> float:
        """Measured decode attention per layer (s) at batch ``b`` and ``ctx`` tokens per sequence."""
        if self.attn is None:
            return math.nan
        # The table's times are in milliseconds (Vidur's format, which it follows).
        return _nearest_decode_row(self.attn, b, ctx, "time_stats.attn_decode.median") * 1e-3

    def decode_s(self, b: int, ctx: int) -> float:
        """Decode of ``b`` sequences: measured attention at ``ctx`` if the GPU has a table."""
        if b not in self.layers.index:
            return math.nan
        # At zero context attention is one small kernel; the layer table's attention over b
        # tokens stands in for it (the H100 set has no decode-attention table at all).
        attn = _cell(self.layers, b, "attn") if ctx == 0 else self.decode_attention_s(b, ctx)
        return self._lin(b) + self._head(b) + self.spec.n_layers * attn

    def prefill_s(self, p: int) -> float:
        """One ``p``-token prompt alone: layers, self-attention over p tokens, head on 1 token."""
        if p not in self.layers.index:
            return math.nan
        attn = _cell(self.layers, p, "attn")
        return self._lin(p) + self.spec.n_layers * attn + self._head(1)


@contextmanager
def _forced_source(shape: tuple[str, str, int]) -> Iterator[None]:
    """Make the unprofiled-shape scaling rule start from ``shape`` (to test the rule itself)."""
    with mock.patch.object(_profiles, "_pick_source", lambda *_args: shape):
        yield


def scaled_profile(model: str, gpu: str, gpus: int, source: tuple[str, str, int]) -> Profile:
    """The profile :func:`get_profile`'s scaling rule gives for a shape, scaled from ``source``."""
    spec = resolve_model(model)
    with _forced_source(source):
        coefs, rule = _profiles._scaled(spec, gpu, gpus)
    kv = _profiles.kv_capacity_tokens(spec, gpu, gpus)
    return Profile(model=spec.name, gpu=gpu, gpus=gpus, kv_capacity_tokens=kv, source=rule,
                   scaled=True, **coefs)


def out_of_sample(data: str | Path | None = None, *, prompts: Sequence[int] = PROMPTS,
                  batches: Sequence[int] = BATCHES, context: int = CONTEXT) -> pd.DataFrame:
    """Predictions against measurements they were not derived from (see the module docstring)."""
    root = data_dir(data)
    rows: list[dict[str, Any]] = []
    lss_prompts = [p for p in prompts if p <= 2048]  # LLMServingSim profiled 1..2048 tokens
    if (root / LSS / "H100").is_dir():
        h100 = _LssMeasured(root, "H100")
        # The shipped entry (A100 table x Llama-2-7B's H100/A100 ratio) ...
        rows += _compare("8B/H100 shipped vs LLMServingSim", get_profile("Llama-3-8B", "H100", 1, engine=VIDUR),
                         h100, lss_prompts, batches, 0)
        # ... and what the generic rule for unprofiled shapes would give from the A100 entry.
        rows += _compare("8B/H100 rule from A100-80GB vs LLMServingSim",
                         scaled_profile("Llama-3-8B", "H100", 1, ("Llama-3-8B", "A100-80GB", 1)),
                         h100, lss_prompts, batches, 0)
    for n in (1, 2, 4, 8):
        src = ("Llama-2-7B", "A100-80GB", n)
        if src in builtin_shapes():
            rows += _compare("7B A100-80GB->H100 rule vs Vidur H100",
                             scaled_profile("Llama-2-7B", "H100", n, src),
                             _Measured(root, "Llama-2-7B", "H100", n), prompts, batches, context)
    if (root / LSS / "A6000").is_dir():
        a6000 = get_profile("Llama-3-8B", "A6000", 1, engine=VIDUR)
        meas = _LssMeasured(root, "A6000")
        rows += _compare("8B/A6000 scaled vs LLMServingSim", a6000, meas, lss_prompts, batches,
                         0)
        # With context, the measured decode attention of this table reads KV faster than the
        # GPU's memory allows (see implied_kv_bandwidth_gbps); reported, not trusted.
        rows += _compare("8B/A6000 scaled vs LLMServingSim, with its decode-attention table",
                         a6000, meas, [], batches, context)
    return pd.DataFrame(rows, columns=list(COLUMNS))


def implied_kv_bandwidth_gbps(data: str | Path | None, b: int, ctx: int) -> float:
    """KV bytes one layer's decode attention reads on the A6000, divided by its measured time.

    A physical check on LLMServingSim's A6000 decode-attention table: above the GPU's HBM
    bandwidth (768 GB/s) the measured kernel cannot have read the whole KV cache.
    """
    meas = _LssMeasured(data_dir(data), "A6000")
    spec = meas.spec
    per_layer_bytes = b * ctx * 2 * spec.n_kv_heads * spec.head_dim * spec.dtype_bytes
    return per_layer_bytes / meas.decode_attention_s(b, ctx) / 1e9


def elementwise_gap(data: str | Path | None = None,
                    batches: Sequence[int] = BATCHES) -> pd.DataFrame:
    """Where the 8B/H100 decode gap comes from: elementwise kernels, LLMServingSim vs Vidur.

    Per batch size: the zero-context decode gap (LLMServingSim measured − our prediction) and
    the time all layers spend in norms, RoPE, activation (and Vidur's residual add) in each
    source (Vidur: Llama-2-7B on H100, the same 4096 width; LLMServingSim: Llama-3.1-8B).
    """
    root = data_dir(data)
    d = _derivation()
    lss = _LssMeasured(root, "H100")
    vidur = pd.read_csv(d._mlp_path(root, "h100", "Llama-2-7b-hf"))
    vidur = vidur[vidur["num_tensor_parallel_workers"] == 1].groupby("num_tokens").median(
        numeric_only=True)
    prof = get_profile("Llama-3-8B", "H100", 1, engine=VIDUR)
    n_layers = lss.spec.n_layers
    rows = []
    for b in batches:
        gap = lss.decode_s(b, 0) - (prof.tpot_s(b, 0) - ENGINE_OVERHEAD_S)
        ew_lss = sum(_cell(lss.layers, b, op)
                     for op in ("input_layernorm", "post_layernorm", "rope", "act_fn"))
        ew_vidur = sum(_cell(vidur, b, f"time_stats.{op}.median") for op in (
            "input_layernorm", "post_attention_layernorm", "attn_rope", "mlp_act", "add")) * 1e-3
        rows.append({"batch": b, "gap_ms": gap * 1e3, "lss_elementwise_ms": ew_lss * n_layers * 1e3,
                     "vidur_elementwise_ms": ew_vidur * n_layers * 1e3})
    return pd.DataFrame(rows)


def error_summary(df: pd.DataFrame) -> pd.DataFrame:
    """Per check and quantity: number of points, RMS, mean and largest absolute relative error."""
    g = df.groupby(["check", "quantity"], sort=False)["error"]
    out = pd.DataFrame({
        "points": g.size(),
        "rms": g.apply(lambda e: float(np.sqrt(np.mean(np.square(e))))),
        "mean": g.mean(),
        "max_abs": g.apply(lambda e: float(np.max(np.abs(e)))),
    })
    return out.reset_index()
