"""Calibration: fit a worker's profile coefficients to the user's own engine measurements.

Input: measured *runs* — each a burst of ``requests`` requests of ``prompt`` input and
``output`` output tokens sent at once (vLLM ``bench serve --request-rate inf`` or
``benchmark_latency``), with any of the measured mean TTFT, mean TPOT and the batch's
latency (the last completion). Sources: vLLM ``bench serve --save-result`` JSON files (one run
each: ``input_lens``, ``output_lens``, ``ttfts``, ``itls``, ``duration``) or a CSV with
columns ``requests`` (or ``concurrency``), ``prompt``, ``output`` and any of ``ttft_s``,
``tpot_s``, ``latency_s``.

Runs measured at a request rate (vLLM ``bench serve --request-rate R``, with its
``burstiness`` and ``max_concurrency``), bursts with a concurrency limit, and CSVs of single
requests with their arrival times (columns ``arrival_s``, ``prompt``, ``output`` and any of
``ttft_s``, ``tpot_s``; an optional ``run`` column groups rows into runs) are *replayed*
through the engine's own scheduler (:mod:`sim.calibrate_replay`; the paged scheduler by
default) as affine functions of the coefficients, fitted, replayed again at the fit, until
the fit settles. A bench JSON carries no send times, so its requests are sent as vLLM's
client sends them (gamma gaps of its rate and burstiness; one seeded draw) and its mean TTFT,
mean TPOT and duration are fitted; a CSV with arrival times is fitted request by request.

Bursts sent at once with no concurrency limit are replayed with the ``llm`` service model's arithmetic
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
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from sim.errors import ProfileError

#: The fitted coefficients, in the order of the feature vectors.
FITTED = ("decode_base_s", "decode_per_seq_s", "decode_per_ctx_token_s", "prefill_base_s",
          "prefill_per_token_s", "prefill_per_token2_s")
METRICS = ("ttft", "tpot", "latency")


#: Most fit-and-replay rounds for replayed runs (the fit settles in 2-4 in the tests).
MAX_ROUNDS = 12


@dataclass(frozen=True)
class Run:
    """One measured run: a burst of ``requests`` x (``prompt`` in, ``output`` out) tokens, or,
    with ``prompts``/``outputs`` per request, a run replayed through the scheduler.

    Replayed runs send request ``i`` at ``arrivals[i]`` s (None: drawn at ``rate`` req/s with
    ``burstiness``, as vLLM's client does), at most ``max_concurrency`` in flight. Measured
    per-request ``ttfts``/``tpots`` (a CSV with arrival times) are fitted one by one; else the
    run's means ``ttft``/``tpot`` and ``latency`` (first send to last completion).
    """

    requests: int
    prompt: float
    output: float
    ttft: float | None = None  # mean time to first token, s
    tpot: float | None = None  # mean time per output token after the first, s
    latency: float | None = None  # time to the last completion, s
    label: str = ""
    prompts: tuple[int, ...] | None = None
    outputs: tuple[int, ...] | None = None
    arrivals: tuple[float, ...] | None = None
    rate: float | None = None
    burstiness: float = 1.0
    max_concurrency: int | None = None
    ttfts: tuple[float | None, ...] | None = None
    tpots: tuple[float | None, ...] | None = None
    seed: int = 0

    @property
    def replayed(self) -> bool:
        """Whether the run goes through the scheduler replay (not the burst arithmetic)."""
        return self.prompts is not None


@dataclass(frozen=True)
class Engine:
    """The worker the replayed runs are replayed on (vLLM's settings of the measured server)."""

    kv_capacity: int
    max_seqs: int = 256
    batched_tokens: int = 8192
    admission: str = "paged"


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


def replay_run(run: Run, coefficients: Sequence[float], engine: Engine) -> dict[str, Any]:
    """Replay a run with per-request lengths; per metric, the affine figures
    (:class:`~sim.calibrate_replay.Lin`): a list per request when the run measured them one by
    one, else the run's mean (and ``latency``, first send to last completion)."""
    from sim.calibrate_replay import Lin, poisson_arrivals, replay

    assert run.prompts is not None and run.outputs is not None
    n = len(run.prompts)
    if run.arrivals is not None:
        arrivals: Sequence[float] = run.arrivals
    elif run.rate:
        arrivals = poisson_arrivals(n, run.rate, run.burstiness, run.seed).tolist()
    else:
        arrivals = [0.0] * n
    try:
        r = replay(run.prompts, run.outputs, arrivals, coefficients, engine.kv_capacity,
                   max_seqs=engine.max_seqs, batched_tokens=engine.batched_tokens,
                   admission=engine.admission, max_concurrency=run.max_concurrency)
    except ValueError as exc:
        raise ProfileError(f"{run.label}: {exc}") from None
    ttft = r.ttft
    tpot: list[Any] = [(d - f) / (o - 1) if o > 1 else None
                       for d, f, o in zip(r.done, r.first, run.outputs, strict=True)]
    last = max(r.done, key=lambda x: x.value) - min(r.sent, key=lambda x: x.value)
    tp = [x for x in tpot if x is not None]

    def mean(xs: list[Any]) -> Any:
        return sum(xs[1:], xs[0]) / len(xs) if xs else None

    if run.ttfts is not None or run.tpots is not None:
        return {"ttft": ttft, "tpot": tpot, "latency": last}
    return {"ttft": mean(ttft), "tpot": mean(tp), "latency": last if isinstance(last, Lin)
            else None}


def _rows(runs: Sequence[Run], kv: int, coefficients: Sequence[float] | None = None,
          engine: Engine | None = None
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str], list[int]]:
    """Fit rows: features ``a``, constant ``k`` and measured ``y`` with ``y ~ a @ c + k``."""
    a, k, y, metric, index = [], [], [], [], []

    def add(f: np.ndarray, const: float, v: float | None, m: str, i: int) -> None:
        if v is not None and v > 0:
            a.append(f)
            k.append(const)
            y.append(float(v))
            metric.append(m)
            index.append(i)

    for i, r in enumerate(runs):
        if r.replayed:
            assert coefficients is not None and engine is not None
            figs = replay_run(r, coefficients, engine)
            for m in METRICS:
                got, meas = figs[m], getattr(r, m + "s", None) if m != "latency" else None
                if isinstance(got, list) and meas is not None:
                    for x, v in zip(got, meas, strict=True):
                        if x is not None:
                            add(x.grad, x.const, v, m, i)
                elif got is not None and not isinstance(got, list):
                    add(got.grad, got.const, getattr(r, m), m, i)
            continue
        f = features(r, kv)
        for m in METRICS:
            v = getattr(r, m)
            if m != "tpot" or r.output > 1:
                add(f[m], 0.0, v, m, i)
    if not y:
        raise ProfileError("no measured TTFT, TPOT or latency to fit (every run lacks them)")
    return np.array(a), np.array(k), np.array(y), metric, index


def _fit(a: np.ndarray, y: np.ndarray, k: np.ndarray | None = None) -> np.ndarray:
    """Non-negative least squares on relative residuals of ``y ~ a @ c + k`` (active set:
    drop negatives, refit)."""
    scale = a / y[:, None]
    target = np.ones_like(y) if k is None else 1 - k / y
    keep = [j for j in range(a.shape[1]) if np.any(a[:, j])]
    coef = np.zeros(a.shape[1])
    while keep:
        c, *_ = np.linalg.lstsq(scale[:, keep], target, rcond=None)
        if (c >= 0).all():
            coef[keep] = c
            break
        keep.pop(int(np.argmin(c)))
    return coef


def _cost(a: np.ndarray, k: np.ndarray, y: np.ndarray, coef: np.ndarray) -> float:
    """Sum of squared relative errors of the rows at ``coef`` (what :func:`_fit` minimises)."""
    return float(np.sum(((a @ coef + k) / y - 1) ** 2))


@dataclass
class Calibration:
    """Fitted coefficients with their errors (relative, predicted / measured - 1)."""

    coefficients: dict[str, float]
    in_sample: dict[str, dict[str, float]]  # metric -> {points, median_abs, worst_abs}
    loo: dict[str, dict[str, float]]  # leave-one-run-out, same keys
    warnings: list[str] = field(default_factory=list)
    runs: int = 0
    rounds: int = 0  # fit-and-replay rounds (0: bursts only, solved in one step)
    engine: Engine | None = None

    def predict(self, run: Run, kv_capacity: int) -> dict[str, float]:
        """The replayed TTFT, TPOT and latency of ``run`` with the fitted coefficients (means
        over requests for a replayed run)."""
        c = np.array([self.coefficients[k] for k in FITTED])
        if not run.replayed:
            return {m: float(f @ c) for m, f in features(run, kv_capacity).items()}
        engine = self.engine or Engine(kv_capacity)
        figs = replay_run(run, c.tolist(), engine)
        out = {}
        for m, x in figs.items():
            if isinstance(x, list):
                vals = [v.value for v in x if v is not None]
                out[m] = float(np.mean(vals)) if vals else math.nan
            elif x is not None:
                out[m] = float(x.value)
        return out


def _summary(err: np.ndarray, metric: list[str]) -> dict[str, dict[str, float]]:
    out = {}
    for m in METRICS:
        e = np.abs(np.array([x for x, mm in zip(err, metric, strict=True) if mm == m]))
        if len(e):
            out[m] = {"points": float(len(e)), "median_abs": float(np.median(e)),
                      "worst_abs": float(np.max(e))}
    return out


def calibrate(runs: Sequence[Run], kv_capacity: int, *, engine: Engine | None = None,
              start: Sequence[float] | None = None) -> Calibration:
    """Fit the six coefficients to ``runs`` on a worker with ``kv_capacity`` KV tokens.

    Replayed runs (:attr:`Run.replayed`) go through ``engine``'s scheduler (default: paged,
    256 sequences, 8,192 batched tokens, ``kv_capacity``), starting from the coefficients
    ``start`` (:data:`FITTED` order; default: the fit of the burst runs, or 10 ms per step);
    the fit and the replay alternate until the coefficients move by less than 1e-6
    (relative) or :data:`MAX_ROUNDS` rounds. Leave-one-out errors of replayed runs are taken
    on the rows linearised at the final schedule.
    """
    if len(runs) < 2:
        raise ProfileError("calibration needs at least 2 measured runs (different batch sizes "
                           "or lengths), got " + str(len(runs)))
    engine = engine or Engine(kv_capacity)
    rounds = 0
    coef: Any = None
    if any(r.replayed for r in runs):
        bursts = [r for r in runs if not r.replayed]
        if start is not None:
            coef = np.asarray(start, dtype=float)
        elif len(bursts) >= 2:
            ab, kb, yb, _, _ = _rows(bursts, kv_capacity)
            coef = _fit(ab, yb, kb)
        else:
            coef = np.array([0.01, 0.0, 0.0, 0.0, 0.0, 0.0])
        # Gauss-Newton on the replay: the rows at the current schedule give a step, taken
        # whole or halved until the replayed error falls (a changed schedule can make the
        # whole step worse); stop when no step helps or the coefficients settle.
        a, k, y, metric, index = _rows(runs, kv_capacity, coef, engine)
        cost = _cost(a, k, y, coef)
        while rounds < MAX_ROUNDS:
            rounds += 1
            step = _fit(a, y, k) - coef
            for alpha in (1.0, 0.5, 0.25, 0.125):
                trial = coef + alpha * step
                at = _rows(runs, kv_capacity, trial, engine)
                c_trial = _cost(at[0], at[1], at[2], trial)
                if c_trial < cost:
                    break
            else:
                break
            moved = np.max(np.abs(trial - coef) / np.maximum(np.abs(trial), 1e-30))
            coef, cost = trial, c_trial
            a, k, y, metric, index = at
            if moved < 1e-6:
                break
    a, k, y, metric, index = _rows(runs, kv_capacity, coef, engine)
    if not rounds:
        coef = _fit(a, y, k)
    err = (a @ coef + k) / y - 1
    loo_err = np.full(len(y), np.nan)
    for i in range(len(runs)):
        mask = np.array([j != i for j in index])
        rows = ~mask
        if not rows.any() or not mask.any():
            continue
        c = _fit(a[mask], y[mask], k[mask])
        loo_err[rows] = (a[rows] @ c + k[rows]) / y[rows] - 1
    ok = ~np.isnan(loo_err)
    cal = Calibration(coefficients={k: float(v) for k, v in zip(FITTED, coef, strict=True)},
                      in_sample=_summary(err, metric),
                      loo=_summary(loo_err[ok], [m for m, k in zip(metric, ok, strict=True) if k]),
                      runs=len(runs), rounds=rounds, engine=engine)
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
    rate_v = doc.get("request_rate", "inf")
    burst = str(rate_v).lower() in ("inf", "infinity") or bool(doc.get("burst"))
    rate: float | None = None
    if not burst:
        rate = _num({"request_rate": rate_v}, "request_rate", where)
        if not rate:
            raise ProfileError(f"{where}: request_rate must be a number > 0 or \"inf\", "
                               f"got {rate_v!r}")
    burstiness = _num(doc, "burstiness", where) or 1.0
    conc_v = doc.get("max_concurrency")
    conc = None if conc_v is None else _num(doc, "max_concurrency", where)
    if conc is not None and (conc < 1 or conc != int(conc)):
        raise ProfileError(f"{where}: max_concurrency must be a whole number >= 1 or null, "
                           f"got {conc_v!r}")
    tpot = None
    itls = doc.get("itls")
    if isinstance(itls, list) and len(itls) == len(ins):
        per = [float(np.mean(x)) for x, good in zip(itls, ok, strict=True) if good and x]
        tpot = float(np.mean(per)) if per else None
    duration = doc.get("duration")
    n = int(ok.sum())
    run = Run(requests=n, prompt=float(ins[ok].mean()), output=float(outs[ok].mean()),
              ttft=float(ttfts[ok].mean()), tpot=tpot,
              latency=float(duration) if isinstance(duration, (int, float)) else None,
              label=path.name)
    if burst and (conc is None or conc >= n):
        return run  # a burst with no limit: the closed-form wave arithmetic
    # At a rate, or a burst held to max_concurrency in flight: replayed (the send times are
    # not in the file; vLLM's client draws them from the rate and burstiness).
    return replace(run, prompts=tuple(int(x) for x in ins[ok]),
                   outputs=tuple(int(x) for x in outs[ok]), rate=rate, burstiness=burstiness,
                   max_concurrency=int(conc) if conc is not None else None)


def _requests_csv(path: Path, rows: list[dict[str, Any]]) -> list[Run]:
    """Runs from a CSV of single requests with their arrival times (grouped by ``run``)."""
    groups: dict[str, list[tuple[float, int, int, float | None, float | None]]] = {}
    for i, row in enumerate(rows, 2):
        where = f"{path}, line {i}"
        row = {k.strip(): (v or "").strip() for k, v in row.items() if k}
        a = _num(row, "arrival_s", where, required=True)
        p = _num(row, "prompt", where, required=True)
        o = _num(row, "output", where, required=True)
        assert a is not None and p is not None and o is not None
        if p < 1 or o < 1 or p != int(p) or o != int(o):
            raise ProfileError(f"{where}: prompt and output must be whole token counts >= 1")
        ttft, tpot = _num(row, "ttft_s", where), _num(row, "tpot_s", where)
        if ttft is None and tpot is None:
            raise ProfileError(f"{where}: give at least one of ttft_s, tpot_s")
        groups.setdefault(row.get("run", ""), []).append((a, int(p), int(o), ttft, tpot))
    runs = []
    for name, reqs in groups.items():
        reqs.sort(key=lambda r: r[0])
        t0 = reqs[0][0]
        label = f"{path.name}" + (f" run {name}" if name else "")
        ttfts = tuple(r[3] for r in reqs)
        tpots = tuple(r[4] for r in reqs)
        known_ttft = [x for x in ttfts if x is not None]
        known_tpot = [x for x in tpots if x is not None]
        runs.append(Run(
            requests=len(reqs), prompt=float(np.mean([r[1] for r in reqs])),
            output=float(np.mean([r[2] for r in reqs])),
            ttft=float(np.mean(known_ttft)) if known_ttft else None,
            tpot=float(np.mean(known_tpot)) if known_tpot else None, label=label,
            prompts=tuple(r[1] for r in reqs), outputs=tuple(r[2] for r in reqs),
            arrivals=tuple(r[0] - t0 for r in reqs), ttfts=ttfts, tpots=tpots))
    return runs


def read_runs_csv(path: Path) -> list[Run]:
    """Runs from a CSV: requests|concurrency, prompt, output, and ttft_s/tpot_s/latency_s; or,
    with an ``arrival_s`` column, single requests (``arrival_s``, ``prompt``, ``output``,
    ``ttft_s``/``tpot_s``, optional ``run``) replayed at their arrival times."""
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            rows = list(reader)
            header = [h.strip() for h in reader.fieldnames or []]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ProfileError(f"{path}: cannot read: {exc}") from None
    if "arrival_s" in header:
        if not rows:
            raise ProfileError(f"{path}: no rows")
        return _requests_csv(path, rows)
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
