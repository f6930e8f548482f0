"""End-to-end fidelity: predicted vs measured vLLM batch latency, TTFT and TPOT (Argonne).

Argonne's LLM-Inference-Bench (BSD-3; ``../shared/data/argonne_llm_inference_bench``) ran
vLLM (0.5/0.6 era) on A100-40GB (Polaris) and H100 GPUs: ``B`` requests of ``L`` prompt
tokens generating exactly ``L`` tokens each, submitted at once; it reports the whole batch's
latency (``All_results.csv``) and, at ``L`` = 1024 and ``B`` = 16, TTFT and end-to-end
latency (``Fig_22``; TPOT = (end - TTFT) / (L - 1)).

:func:`predict_batch` replays such a batch through the simulator's ``llm`` service model
arithmetic (``sim.engine.service.LlmService``, reserve admission): requests are admitted
while prompt plus output fit the KV cache (the rest wait for the next wave), a wave's
prefills share one iteration, then ``L - 1`` decode steps with the context growing one
token per step. :func:`argonne_errors` compares every NVIDIA vLLM row whose model is in the
architecture table; :func:`group_summary` gives the median and worst error per (model, GPU,
TP). Only a source checkout with ``../shared/data`` can run these (tests skip otherwise);
the shipped ``sim/serving/data/fidelity_groups.json`` carries the per-group figures that
``sim profile show`` prints.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sim.errors import ProfileError
from sim.serving.models import resolve_model
from sim.serving.profiles import Profile, get_profile

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data"
ARGONNE = "argonne_llm_inference_bench"

#: Argonne's hardware names -> catalog GPUs (Polaris nodes carry A100-SXM4-40GB).
GPU_MAP = {"Nvidia A100 GPU": "A100", "Nvidia H100 GPU": "H100"}

COLUMNS = ("model", "gpu", "tp", "batch", "length", "quantity", "predicted_s", "measured_s",
           "error")


def predict_batch(profile: Profile, batch: int, prompt: int, output: int) -> dict[str, float]:
    """Batch latency, time to the batch's last first token and TPOT (mean over requests), s.

    Waves of ``w = min(batch, kv_capacity // (prompt + output))`` requests (at least one);
    each wave: one iteration with the wave's prefills, then ``output - 1`` decode steps of
    ``w`` sequences whose context grows from ``prompt + 1`` to ``prompt + output - 1``.
    """
    if batch < 1 or prompt < 1 or output < 1:
        raise ProfileError("batch, prompt and output must be >= 1")
    p = profile
    w_max = max(1, min(batch, p.kv_capacity_tokens // (prompt + output)))
    t = 0.0
    ttft = 0.0
    decode_time = 0.0
    left = batch
    while left > 0:
        w = min(w_max, left)
        left -= w
        t += p.decode_step_s(0, 0.0) + p.prefill_s([prompt] * w)
        ttft = t
        steps = output - 1
        if steps > 0:
            # sum over k = 1..steps of decode_step(w, w * (prompt + k))
            ctx_sum = w * (prompt * steps + steps * (steps + 1) / 2)
            d = steps * (p.decode_base_s + p.decode_per_seq_s * w) + p.decode_per_ctx_token_s \
                * ctx_sum
            t += d
            decode_time += w * d / steps
    return {"latency": t, "ttft": ttft, "tpot": decode_time / batch}


def data_dir(data: str | Path | None = None) -> Path:
    path = Path(data) if data is not None else DEFAULT_DATA
    if not (path / ARGONNE).is_dir():
        raise ProfileError(f"{path / ARGONNE} not found: the end-to-end checks need the public "
                           "measurements (pass data=... or --data DIR)")
    return path


def _known(model: str) -> bool:
    try:
        return not resolve_model(model).note
    except ProfileError:
        return False


def argonne_rows(data: str | Path | None = None) -> pd.DataFrame:
    """NVIDIA vLLM rows of All_results.csv for models in the architecture table."""
    d = pd.read_csv(data_dir(data) / ARGONNE / "All_results.csv")
    d = d[(d["Framework"] == "vLLM") & d["Hardware"].isin(list(GPU_MAP))]
    d = d[[_known(m) for m in d["Model"]]]
    return pd.DataFrame({
        "model": d["Model"].to_numpy(), "gpu": d["Hardware"].map(GPU_MAP).to_numpy(),
        "tp": d["Num of Hardware"].astype(int).to_numpy(),
        "batch": d["Batch Size"].astype(int).to_numpy(),
        "length": d["Input Output Length"].astype(int).to_numpy(),
        "latency": d["Latency"].astype(float).to_numpy()})


def argonne_ttft_rows(data: str | Path | None = None) -> pd.DataFrame:
    """NVIDIA vLLM rows of Fig_22 (TTFT and end-to-end at 1024 tokens, batch 16)."""
    d = pd.read_csv(data_dir(data) / ARGONNE / "Fig_22_all_results_TTFT_ITL.csv")
    d.columns = [c.strip() for c in d.columns]
    d = d[(d["Framework"] == "vLLM") & d["Hardware"].isin(list(GPU_MAP))]
    d = d[[_known(m) for m in d["Model"]]]
    length = d["Input Length"].astype(int).to_numpy()
    ttft = d["TTFT Latency"].astype(float).to_numpy()
    end = d["end_latency"].astype(float).to_numpy()
    return pd.DataFrame({
        "model": d["Model"].to_numpy(), "gpu": d["Hardware"].map(GPU_MAP).to_numpy(),
        "tp": d["Num of Hardware"].astype(int).to_numpy(),
        "batch": d["Batch Size"].astype(int).to_numpy(), "length": length,
        "ttft": ttft, "tpot": (end - ttft) / (length - 1)})


@functools.cache
def _profile(model: str, gpu: str, tp: int, engine: str) -> Profile:
    return get_profile(model, gpu, tp, engine=engine)


def argonne_errors(data: str | Path | None = None, *, engine: str = "vllm-0.14",
                   profile_for: Any = None) -> pd.DataFrame:
    """One row per measured figure: predicted, measured and ``predicted / measured - 1``.

    ``profile_for(model, gpu, tp)`` overrides the profile (e.g. a calibrated one).
    """
    get = profile_for or (lambda m, g, n: _profile(m, g, n, engine))
    rows: list[dict[str, Any]] = []

    def add(r: Mapping[Any, Any], quantity: str, pred: dict[str, float]) -> None:
        meas = float(r[quantity])
        rows.append({"model": resolve_model(str(r["model"])).name, "gpu": r["gpu"],
                     "tp": int(r["tp"]), "batch": int(r["batch"]), "length": int(r["length"]),
                     "quantity": quantity, "predicted_s": pred[quantity], "measured_s": meas,
                     "error": pred[quantity] / meas - 1})

    def predicted(r: Mapping[Any, Any]) -> dict[str, float]:
        n = int(r["length"])
        return predict_batch(get(str(r["model"]), str(r["gpu"]), int(r["tp"])), int(r["batch"]),
                             n, n)

    for r in argonne_rows(data).to_dict("records"):
        add(r, "latency", predicted(r))
    for r in argonne_ttft_rows(data).to_dict("records"):
        pred = predicted(r)
        add(r, "ttft", pred)
        add(r, "tpot", pred)
    return pd.DataFrame(rows, columns=list(COLUMNS))


def group_summary(df: pd.DataFrame) -> pd.DataFrame:
    """Per (model, GPU, TP, quantity): points, median error, median and worst |error|."""
    g = df.groupby(["model", "gpu", "tp", "quantity"], sort=True)["error"]
    out = pd.DataFrame({
        "points": g.size(), "median": g.median(),
        "median_abs": g.apply(lambda e: float(np.median(np.abs(e)))),
        "worst_abs": g.apply(lambda e: float(np.max(np.abs(e)))),
    })
    return out.reset_index()


@functools.cache
def shipped_groups() -> dict[str, Any]:
    """The per-group errors shipped for ``sim profile show`` (empty if absent)."""
    try:
        text = resources.files("sim.serving").joinpath("data/fidelity_groups.json").read_text(
            "utf-8")
    except FileNotFoundError:
        return {}
    doc: dict[str, Any] = json.loads(text)
    return doc


def error_group_line(model: str, gpu: str, tp: int, engine: str) -> str:
    """The measured end-to-end error that applies to a shape, for ``sim profile show``."""
    doc = shipped_groups()
    groups = doc.get("engines", {}).get(engine)
    if not groups:
        return (f"end-to-end error: no Argonne comparison for engine {engine} "
                "(docs/fidelity.md)")
    key = f"{model}|{gpu}|{tp}"
    if key in groups:
        g = groups[key]
        return (f"end-to-end error ({engine} vs Argonne vLLM, {model} on {tp} x {gpu}, "
                f"{g['points']} batch latencies): median {g['median']:+.0%}, median |error| "
                f"{g['median_abs']:.0%}, worst {g['worst_abs']:.0%} (docs/fidelity.md)")
    allg = doc.get("overall", {}).get(engine)
    tail = (f"; over all {allg['points']} measured rows: median |error| "
            f"{allg['median_abs']:.0%}, worst {allg['worst_abs']:.0%}" if allg else "")
    return (f"end-to-end error: this shape was not measured end to end{tail} "
            "(docs/fidelity.md)")


def calibrated_holdout(data: str | Path | None = None,
                       engine: str = "vllm-0.14") -> pd.DataFrame:
    """``sim calibrate`` fitted on half of each (model, GPU, TP) group's batch latencies
    (every other row by length and batch) and checked on the other half.

    The KV capacity is the engine preset's; groups with fewer than 4 rows are left out.
    """
    from sim.calibrate import Run, calibrate

    rows: list[dict[str, Any]] = []
    df = argonne_rows(data)
    for key, g in df.groupby(["model", "gpu", "tp"], sort=True):
        k: tuple[Any, ...] = tuple(key)
        model, gpu, tp = str(k[0]), str(k[1]), int(k[2])
        g = g.sort_values(["length", "batch"]).reset_index(drop=True)
        if len(g) < 4:
            continue
        kv = _profile(model, gpu, tp, engine).kv_capacity_tokens
        runs = [Run(int(r["batch"]), float(r["length"]), float(r["length"]),
                    latency=float(r["latency"])) for r in g.to_dict("records")]
        cal = calibrate(runs[::2], kv)
        for r in runs[1::2]:
            pred = cal.predict(r, kv)["latency"]
            assert r.latency is not None
            rows.append({"model": resolve_model(model).name, "gpu": gpu, "tp": tp,
                         "batch": r.requests, "length": int(r.prompt), "quantity": "latency",
                         "predicted_s": pred, "measured_s": r.latency,
                         "error": pred / r.latency - 1})
    return pd.DataFrame(rows, columns=list(COLUMNS))
