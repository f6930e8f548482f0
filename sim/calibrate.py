"""Calibration: fit a worker's profile coefficients to the user's own engine measurements.

Input: measured *runs* — each a burst of ``requests`` requests of ``prompt`` input and
``output`` output tokens sent at once (vLLM ``bench serve --request-rate inf`` or
``benchmark_latency``), with any of the measured mean TTFT, mean TPOT and the batch's
latency (the last completion). Sources: vLLM ``bench serve --save-result`` JSON files (one run
each: ``input_lens``, ``output_lens``, ``ttfts``, ``itls``, ``duration``) or a CSV with
columns ``requests`` (or ``concurrency``), ``prompt``, ``output`` and any of ``ttft_s``,
``tpot_s``, ``latency_s``.

Each run is replayed with the ``llm`` service model's arithmetic
(:func:`sim.fidelity_e2e.predict_batch`: KV-limited waves, a wave's prefills in one iteration,
then decode steps with growing context). Every replayed figure is linear in the six
coefficients of :class:`sim.serving.profiles.Profile` (per-step ``decode_base_s``,
per-sequence ``decode_per_seq_s``, per-context-token ``decode_per_ctx_token_s``, and the
prefill terms), so the fit is a non-negative least-squares problem on relative residuals
(every figure weighs the same whatever its size), solved exactly. :func:`calibrate` returns
the coefficients, in-sample and leave-one-out errors per metric, and warnings where the data
contradict the model.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sim.errors import ProfileError

#: The fitted coefficients, in the order of the feature vectors.
FITTED = ("decode_base_s", "decode_per_seq_s", "decode_per_ctx_token_s", "prefill_base_s",
          "prefill_per_token_s", "prefill_per_token2_s")
METRICS = ("ttft", "tpot", "latency")


@dataclass(frozen=True)
class Run:
    """One measured burst: ``requests`` x (``prompt`` in, ``output`` out) tokens."""

    requests: int
    prompt: float
    output: float
    ttft: float | None = None  # mean time to first token, s
    tpot: float | None = None  # mean time per output token after the first, s
    latency: float | None = None  # time to the last completion, s
    label: str = ""


def features(run: Run, kv_capacity: int) -> dict[str, np.ndarray]:
    """Per metric, the vector ``f`` with replayed value = ``f @ coefficients`` (:data:`FITTED`).

    Waves of ``w = min(requests, kv // (prompt + output))``: each pays one iteration with its
    prefills (``decode_base + prefill_base + w (per_token p + per_token2 p^2)``) and
    ``o - 1`` decode steps of ``w`` sequences whose contexts grow from ``p + 1``. TTFT is the
    mean over requests of the end of their wave's prefill; TPOT the mean decode step.
    """
    p, o, n = float(run.prompt), float(run.output), int(run.requests)
    w_max = max(1, min(n, int(kv_capacity // max(p + o, 1))))
    steps = max(o - 1, 0.0)
    lat = np.zeros(6)
    ttft_sum = np.zeros(6)
    tpot_sum = np.zeros(6)
    left, waves = n, 0
    while left > 0:
        w = min(w_max, left)
        left -= w
        waves += 1
        lat += np.array([1.0, 0.0, 0.0, 1.0, w * p, w * p * p])
        ttft_sum += w * lat
        ctx = w * (p * steps + steps * (steps + 1) / 2)
        dec = np.array([steps, steps * w, ctx, 0.0, 0.0, 0.0])
        lat += dec
        if steps:
            tpot_sum += w * dec / steps
    return {"latency": lat, "ttft": ttft_sum / n, "tpot": tpot_sum / n}


def _rows(runs: Sequence[Run], kv: int) -> tuple[np.ndarray, np.ndarray, list[str], list[int]]:
    a, y, metric, index = [], [], [], []
    for i, r in enumerate(runs):
        f = features(r, kv)
        for m in METRICS:
            v = getattr(r, m)
            if v is not None and v > 0 and (m != "tpot" or r.output > 1):
                a.append(f[m])
                y.append(float(v))
                metric.append(m)
                index.append(i)
    if not y:
        raise ProfileError("no measured TTFT, TPOT or latency to fit (every run lacks them)")
    return np.array(a), np.array(y), metric, index


def _fit(a: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Non-negative least squares on relative residuals (active set: drop negatives, refit)."""
    scale = a / y[:, None]
    keep = [j for j in range(a.shape[1]) if np.any(a[:, j])]
    coef = np.zeros(a.shape[1])
    while keep:
        c, *_ = np.linalg.lstsq(scale[:, keep], np.ones_like(y), rcond=None)
        if (c >= 0).all():
            coef[keep] = c
            break
        keep.pop(int(np.argmin(c)))
    return coef


@dataclass
class Calibration:
    """Fitted coefficients with their errors (relative, predicted / measured - 1)."""

    coefficients: dict[str, float]
    in_sample: dict[str, dict[str, float]]  # metric -> {points, median_abs, worst_abs}
    loo: dict[str, dict[str, float]]  # leave-one-run-out, same keys
    warnings: list[str] = field(default_factory=list)
    runs: int = 0

    def predict(self, run: Run, kv_capacity: int) -> dict[str, float]:
        """The replayed TTFT, TPOT and latency of ``run`` with the fitted coefficients."""
        c = np.array([self.coefficients[k] for k in FITTED])
        return {m: float(f @ c) for m, f in features(run, kv_capacity).items()}


def _summary(err: np.ndarray, metric: list[str]) -> dict[str, dict[str, float]]:
    out = {}
    for m in METRICS:
        e = np.abs(np.array([x for x, mm in zip(err, metric, strict=True) if mm == m]))
        if len(e):
            out[m] = {"points": float(len(e)), "median_abs": float(np.median(e)),
                      "worst_abs": float(np.max(e))}
    return out


def calibrate(runs: Sequence[Run], kv_capacity: int) -> Calibration:
    """Fit the six coefficients to ``runs`` on a worker with ``kv_capacity`` KV tokens."""
    if len(runs) < 2:
        raise ProfileError("calibration needs at least 2 measured runs (different batch sizes "
                           "or lengths), got " + str(len(runs)))
    a, y, metric, index = _rows(runs, kv_capacity)
    coef = _fit(a, y)
    err = a @ coef / y - 1
    loo_err = np.full(len(y), np.nan)
    for i in range(len(runs)):
        mask = np.array([j != i for j in index])
        rows = ~mask
        if not rows.any() or not mask.any():
            continue
        c = _fit(a[mask], y[mask])
        loo_err[rows] = a[rows] @ c / y[rows] - 1
    ok = ~np.isnan(loo_err)
    cal = Calibration(coefficients={k: float(v) for k, v in zip(FITTED, coef, strict=True)},
                      in_sample=_summary(err, metric),
                      loo=_summary(loo_err[ok], [m for m, k in zip(metric, ok, strict=True) if k]),
                      runs=len(runs))
    cal.warnings = _contradictions(runs, a, y, coef, metric, index, err)
    return cal


def _contradictions(runs: Sequence[Run], a: np.ndarray, y: np.ndarray, coef: np.ndarray,
                    metric: list[str], index: list[int], err: np.ndarray) -> list[str]:
    """Where the measurements disagree with the model's shape."""
    out: list[str] = []
    for j, name in enumerate(FITTED):
        if coef[j] == 0 and np.any(a[:, j]):
            out.append(f"{name} fitted to 0: the data give it no positive share (it is "
                       "absorbed by the other terms, or the data contradict its sign)")
    # Batched prefill slower than linear in tokens: TTFT per prompt token rising with the
    # burst's total prompt tokens beyond what the fitted p^2 term allows.
    t = [(runs[i].requests * runs[i].prompt, y[k] / max(runs[i].prompt, 1), err[k])
         for k, (m, i) in enumerate(zip(metric, index, strict=True)) if m == "ttft"]
    if len(t) >= 3:
        t.sort()
        tail = [e for _, _, e in t[-max(1, len(t) // 3):]]
        if np.median(tail) < -0.15:
            out.append("TTFT of the largest bursts is more than 15% above the fit: batched "
                       "prefill grows faster than linearly in tokens here (queueing or "
                       "chunking in the engine that the model does not see)")
    for m, s in _summary(err, metric).items():
        if s["worst_abs"] > 0.5:
            out.append(f"{m}: some runs miss the fit by more than 50% "
                       f"(worst {s['worst_abs']:.0%}): the linear form does not describe them")
    return out


# ---------------------------------------------------------------------------------------------
# Readers


def _num(row: dict[str, Any], key: str, where: str, *, required: bool = False) -> float | None:
    v = row.get(key)
    if v in (None, ""):
        if required:
            raise ProfileError(f"{where}: missing {key!r}")
        return None
    try:
        x = float(v)
    except (TypeError, ValueError):
        raise ProfileError(f"{where}: {key} must be a number, got {v!r}") from None
    if not math.isfinite(x) or x < 0:
        raise ProfileError(f"{where}: {key} must be a finite number >= 0, got {v!r}")
    return x


def read_bench_json(path: Path) -> Run:
    """One run from a vLLM ``bench serve --save-result`` JSON (a burst of its requests)."""
    where = str(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ProfileError(f"{where}: cannot read as JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise ProfileError(f"{where}: expected a JSON object (vLLM bench serve --save-result)")
    for key in ("input_lens", "output_lens", "ttfts"):
        if not isinstance(doc.get(key), list) or not doc[key]:
            raise ProfileError(f"{where}: missing list {key!r} (save with --save-result "
                               "--save-detailed in recent vLLM)")
    ins = np.asarray(doc["input_lens"], dtype=float)
    outs = np.asarray(doc["output_lens"], dtype=float)
    ttfts = np.asarray(doc["ttfts"], dtype=float)
    ok = (outs > 0) & (ttfts > 0)
    if not ok.any():
        raise ProfileError(f"{where}: no successful request (every output length is 0)")
    rate = doc.get("request_rate", "inf")
    if str(rate).lower() not in ("inf", "infinity") and not doc.get("burst"):
        raise ProfileError(f"{where}: request_rate {rate}: only bursts (--request-rate inf) "
                           "are replayed; measure with --request-rate inf")
    tpot = None
    itls = doc.get("itls")
    if isinstance(itls, list) and len(itls) == len(ins):
        per = [float(np.mean(x)) for x, good in zip(itls, ok, strict=True) if good and x]
        tpot = float(np.mean(per)) if per else None
    duration = doc.get("duration")
    return Run(requests=int(ok.sum()), prompt=float(ins[ok].mean()), output=float(outs[ok].mean()),
               ttft=float(ttfts[ok].mean()), tpot=tpot,
               latency=float(duration) if isinstance(duration, (int, float)) else None,
               label=path.name)


def read_runs_csv(path: Path) -> list[Run]:
    """Runs from a CSV: requests|concurrency, prompt, output, and ttft_s/tpot_s/latency_s."""
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ProfileError(f"{path}: cannot read: {exc}") from None
    runs = []
    for i, row in enumerate(rows, 2):
        where = f"{path}, line {i}"
        row = {k.strip(): (v or "").strip() for k, v in row.items() if k}
        n = _num(row, "requests", where) or _num(row, "concurrency", where)
        if not n or n < 1:
            raise ProfileError(f"{where}: expected requests (or concurrency) >= 1")
        p = _num(row, "prompt", where, required=True)
        o = _num(row, "output", where, required=True)
        assert p is not None and o is not None
        run = Run(requests=int(n), prompt=p, output=o, ttft=_num(row, "ttft_s", where),
                  tpot=_num(row, "tpot_s", where), latency=_num(row, "latency_s", where),
                  label=f"line {i}")
        if run.ttft is None and run.tpot is None and run.latency is None:
            raise ProfileError(f"{where}: give at least one of ttft_s, tpot_s, latency_s")
        runs.append(run)
    if not runs:
        raise ProfileError(f"{path}: no rows")
    return runs


def read_runs(paths: Sequence[str | Path]) -> list[Run]:
    """Runs from any mix of bench-serve JSON files and run CSVs."""
    runs: list[Run] = []
    for p in map(Path, paths):
        if not p.is_file():
            raise ProfileError(f"{p}: file not found (expected a vLLM result JSON or a CSV)")
        runs += read_runs_csv(p) if p.suffix.lower() == ".csv" else [read_bench_json(p)]
    return runs
