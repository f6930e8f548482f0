"""Turn the engine's :class:`~sim.engine.record.RunRecord` into DataFrames and the summary dict.

Definitions follow DESIGN §6 and ``docs/metrics.md``; the summary's keys are the stable
contract of DESIGN §3.3. DataFrames are built once, here, with compact dtypes.
"""

from __future__ import annotations

import copy
import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import PurePath
from typing import Any

import numpy as np
import pandas as pd

from sim.engine.record import (
    COMPLETED,
    FAIL_REASONS,
    FAILED,
    IN_FLIGHT,
    STATUS_NAMES,
    DecisionRecord,
    QueueSamples,
    RequestColumns,
    RunRecord,
    Timeline,
    WorkerRecord,
)
from sim.errors import ConfigError
from sim.metrics.stats import billed_seconds, json_float, time_weighted
from sim.metrics.tally import RequestTally

# User spellings of the SLO metric -> canonical name (the autoscaler's `metric` switch names).
SLO_METRICS: dict[str, str] = {
    "e2e": "e2e",
    "e2e_s": "e2e",
    "latency_e2e_s": "e2e",
    "ttft": "ttft",
    "ttft_s": "ttft",
    "queue": "queue",
    "queue_s": "queue",
    "tpot": "tpot",
    "tpot_s": "tpot",
}

# Decision actions that add workers but are not autoscaling (spot replacements are counted as
# preemptions instead, so a policy is not blamed for churn the cloud caused).
_NOT_SCALE_UP_ACTIONS = frozenset({"replace"})

# Fixed category sets, so every run's requests frame has the same dtype (and parquet schema).
STATUS_DTYPE = pd.CategoricalDtype(list(STATUS_NAMES))
FAIL_REASON_DTYPE = pd.CategoricalDtype(list(FAIL_REASONS))

MASK = "***"
SECRET_KEYS = frozenset({"hf_token"})

REQUEST_COLUMNS = (
    "request_id", "arrival_s", "dispatch_s", "first_token_s", "completion_s", "prompt_tokens",
    "output_tokens", "worker", "status", "fail_reason", "retries", "e2e_s", "ttft_s", "queue_s",
)  # fmt: skip
WORKER_COLUMNS = tuple(f.name for f in fields(WorkerRecord))
DECISION_COLUMNS = tuple(f.name for f in fields(DecisionRecord))
TIMELINE_COLUMNS = tuple(f.name for f in fields(Timeline))
QUEUE_COLUMNS = tuple(f.name for f in fields(QueueSamples))


@dataclass
class Result:
    """One run's results: the summary dict, per-request/worker/decision DataFrames and the raw record."""

    summary: dict[str, Any]
    requests: pd.DataFrame
    workers: pd.DataFrame
    decisions: pd.DataFrame
    timeline: pd.DataFrame
    queue: pd.DataFrame
    record: RunRecord


def canonical_slo_metric(name: str) -> str:
    """The canonical SLO metric name (e2e, ttft, queue, tpot) for a user spelling."""
    key = str(name).strip().lower()
    if key not in SLO_METRICS:
        raise ConfigError(
            f"unknown SLO metric {name!r}; expected one of e2e, ttft, queue, tpot",
            field="sim.slo.metric",
        )
    return SLO_METRICS[key]


def mask_secrets(obj: Any) -> Any:
    """A deep copy of ``obj`` with every non-empty ``hf_token`` value replaced by ``***``."""
    if isinstance(obj, Mapping):
        return {
            k: (MASK if k in SECRET_KEYS and v not in (None, "") else mask_secrets(v))
            for k, v in obj.items()
        }
    if isinstance(obj, list | tuple):
        return [mask_secrets(v) for v in obj]
    return copy.copy(obj)


def to_jsonable(obj: Any) -> Any:
    """``obj`` with numpy scalars/arrays, tuples, paths and non-finite floats made JSON-native."""
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set | frozenset | np.ndarray):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, bool | np.bool_):
        return bool(obj)
    if isinstance(obj, int | np.integer):
        return int(obj)
    if isinstance(obj, float | np.floating):
        return json_float(obj)
    if isinstance(obj, PurePath):
        return str(obj)
    return obj


def _int_dtype(values: np.ndarray) -> type:
    # int32 unless the column needs more: a fixed type keeps the parquet schema identical
    # across runs, so sweep outputs concatenate cleanly.
    if values.size and (int(values.min()) < -(2**31) or int(values.max()) >= 2**31):
        return np.int64
    return np.int32


def _check_requests(req: RequestColumns) -> int:
    n = len(req.arrival_s)
    for f in fields(RequestColumns):
        col = getattr(req, f.name)
        if len(col) != n:
            raise ValueError(f"RequestColumns.{f.name} has {len(col)} rows, arrival_s has {n}")
    bad = ~np.isin(req.status, (IN_FLIGHT, COMPLETED, FAILED))
    if bad.any():
        raise ValueError(
            f"RequestColumns.status has unknown codes {sorted(set(req.status[bad].tolist()))}"
        )
    if n and (req.fail_reason.min() < 0 or req.fail_reason.max() >= len(FAIL_REASONS)):
        raise ValueError("RequestColumns.fail_reason has codes outside FAIL_REASONS")
    return n


def _select_requests(req: RequestColumns, idx: np.ndarray) -> RequestColumns:
    return RequestColumns(**{f.name: getattr(req, f.name)[idx] for f in fields(RequestColumns)})


def requests_frame(req: RequestColumns, request_id: np.ndarray) -> pd.DataFrame:
    """The per-request table (:data:`REQUEST_COLUMNS`, one row per request of ``req``);
    ``request_id`` is each row's index in arrival order."""
    a = req.arrival_s
    completed = req.status == COMPLETED
    # E2E only for completed requests: a failed request's completion_s is its failure time,
    # and a latency column that mixes both would invite wrong percentiles.
    e2e = np.where(completed, req.completion_s - a, np.nan)
    return pd.DataFrame(
        {
            "request_id": request_id.astype(_int_dtype(request_id)),
            "arrival_s": a.astype(np.float64),
            "dispatch_s": req.dispatch_s.astype(np.float64),
            "first_token_s": req.first_token_s.astype(np.float64),
            "completion_s": req.completion_s.astype(np.float64),
            "prompt_tokens": req.prompt_tokens.astype(_int_dtype(req.prompt_tokens)),
            "output_tokens": req.output_tokens.astype(_int_dtype(req.output_tokens)),
            "worker": req.worker.astype(np.int32),
            "status": pd.Categorical.from_codes(req.status.astype(np.int8), dtype=STATUS_DTYPE),
            "fail_reason": pd.Categorical.from_codes(
                req.fail_reason.astype(np.int8), dtype=FAIL_REASON_DTYPE
            ),
            "retries": req.retries.astype(np.int16),
            "e2e_s": e2e,
            "ttft_s": req.first_token_s - a,
            "queue_s": req.dispatch_s - a,
        },
        columns=list(REQUEST_COLUMNS),
        copy=False,  # columns are fresh copies already; consolidating them would copy again
    )


def empty_requests_frame() -> pd.DataFrame:
    """The requests frame of a summary-only run: the columns, no rows."""
    empty = np.zeros(0)
    return requests_frame(RequestColumns.empty(empty, empty, empty), np.arange(0))


def _worker_billing(
    workers: list[WorkerRecord], horizon_s: float, granularity_s: float
) -> tuple[np.ndarray, np.ndarray]:
    """Billed seconds and cost per worker, clipped to [0, horizon]."""
    if not workers:
        return np.zeros(0), np.zeros(0)
    prov = np.array([w.provisioned_s for w in workers], dtype=np.float64)
    ready = np.array([w.ready_s for w in workers], dtype=np.float64)
    term = np.array([w.terminated_s for w in workers], dtype=np.float64)
    # Billing starts when the VM runs; a worker without a provisioning stage (on-prem) starts
    # when it is ready. Still running at the horizon -> billed up to the horizon.
    start = np.where(np.isfinite(prov), prov, ready)
    end = np.where(np.isfinite(term), term, horizon_s)
    start = np.clip(start, 0.0, horizon_s)
    end = np.clip(end, 0.0, horizon_s)
    billed = billed_seconds(start, end, granularity_s)
    price = np.array([w.price_per_hour_usd for w in workers], dtype=np.float64)
    return billed, billed / 3600.0 * price


def _workers_frame(
    workers: list[WorkerRecord], billed: np.ndarray, cost: np.ndarray
) -> pd.DataFrame:
    cols: dict[str, Any] = {c: [getattr(w, c) for w in workers] for c in WORKER_COLUMNS}
    df = pd.DataFrame(cols, columns=list(WORKER_COLUMNS))
    dtypes = {
        "worker_id": np.int32, "gpus": np.int16, "spot": bool, "on_prem": bool, "initial": bool,
        "requests_served": np.int64,
    }  # fmt: skip
    float_cols = (
        "price_per_hour_usd",
        "on_demand_price_per_hour_usd",
        "lost_work_gpu_s",
        "requested_s",
        "provisioned_s",
        "ready_s",
        "drain_s",
        "terminated_s",
    )
    df = df.astype({**dtypes, **dict.fromkeys(float_cols, np.float64)})
    for c in ("gpu", "cloud", "region", "zone", "end_reason", "instance_type"):
        df[c] = df[c].astype(str)
    df["billed_s"] = billed.astype(np.float64)
    df["cost_usd"] = cost.astype(np.float64)
    return df


def _decisions_frame(decisions: list[DecisionRecord]) -> pd.DataFrame:
    df = pd.DataFrame([asdict(d) for d in decisions], columns=list(DECISION_COLUMNS))
    df = df.astype(
        {"time_s": np.float64, "statistic": np.float64, "workers": np.int32, "delta": np.int32}
    )
    for c in ("policy", "action", "reason"):
        df[c] = df[c].astype(str)
    return df


def _series_frame(obj: Timeline | QueueSamples, columns: tuple[str, ...]) -> pd.DataFrame:
    data = {c: list(getattr(obj, c)) for c in columns}
    lengths = {c: len(v) for c, v in data.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"{type(obj).__name__} columns have different lengths: {lengths}")
    df = pd.DataFrame(data, columns=list(columns))
    return df.astype(
        {c: (np.float64 if c == "time_s" or c.startswith("cost") else np.int64) for c in columns}
    )


def _worker_count_from_records(workers: list[WorkerRecord]) -> tuple[np.ndarray, np.ndarray]:
    """Step series of N (requested..ready, not draining) rebuilt from worker records."""
    ev: list[tuple[float, int]] = []
    for w in workers:
        ev.append((w.requested_s, 1))
        end = w.drain_s if math.isfinite(w.drain_s) else w.terminated_s
        if math.isfinite(end):
            ev.append((end, -1))
    ev.sort()
    times = np.array([t for t, _ in ev], dtype=np.float64)
    counts = np.cumsum([d for _, d in ev]) if ev else np.zeros(0)
    return times, np.asarray(counts, dtype=np.float64)


def _scale_up_shapes(record: RunRecord) -> dict[str, int]:
    """How many workers after the initial fleet ran on each shape ("1xA100 AWS on-demand")."""
    counts: dict[str, int] = {}
    for w in record.workers:
        if w.initial or w.end_reason == "provision_failed":
            continue
        where = "on-prem" if w.on_prem else f"{w.cloud} {'spot' if w.spot else 'on-demand'}"
        key = f"{w.gpus}x{w.gpu} {where}"
        counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def build_result(
    record: RunRecord,
    *,
    slo_metric: str,
    slo_threshold_s: float,
    warmup_s: float = 0.0,
    scenario_dict: Mapping[str, Any] | None = None,
    billing_granularity_s: float = 1.0,
    request_tally: RequestTally | None = None,
    results_mode: str | None = None,
) -> Result:
    """Build the summary and DataFrames of one run from the engine's record (DESIGN §3.3, §6).

    ``results_mode`` is what ``summary["sim"]["results"]`` reports (default: ``full`` when the
    record has request columns, else ``summary``; ``stream`` when the table went to a file).
    """
    metric = canonical_slo_metric(slo_metric)
    horizon = float(record.horizon_s)
    warnings = [str(w) for w in record.warnings]

    if record.requests is not None:
        req_all = record.requests
        n_all = _check_requests(req_all)
        # A request that arrives after the horizon never entered the simulated system: it is
        # not counted anywhere (the engine normally does not even keep such requests).
        inside = np.isfinite(req_all.arrival_s) & (req_all.arrival_s <= horizon)
        if inside.all():
            kept = req_all
            request_id = np.arange(n_all)
        else:
            request_id = np.flatnonzero(inside)
            kept = _select_requests(req_all, request_id)
            warnings.append(
                f"{n_all - request_id.size} requests arrive after the horizon ({horizon:g} s) and are not counted"
            )
        tally = RequestTally(
            slo_metric=metric, slo_threshold_s=slo_threshold_s, warmup_s=warmup_s, exact=True
        )
        tally.add(kept)
        req: RequestColumns | None = kept
    elif request_tally is not None:
        # Summary mode: the engine streamed every request into the tally as it resolved.
        req, tally = None, request_tally
    else:
        raise ValueError("build_result needs the record's request columns or a request_tally")
    if warmup_s >= horizon > 0:
        warnings.append(
            f"warm-up ({warmup_s:g} s) covers the whole horizon ({horizon:g} s): no request is measured"
        )
    warnings.extend(tally.warnings())
    blocks = tally.summary()
    n_completed = tally.completed
    out_tokens = tally.output_tokens

    # Cost.
    billed, cost = _worker_billing(record.workers, horizon, billing_granularity_s)
    spot = np.array([w.spot for w in record.workers], dtype=bool)
    on_prem = np.array([w.on_prem for w in record.workers], dtype=bool)
    gpus = np.array([w.gpus for w in record.workers], dtype=np.float64)
    total = float(cost.sum())
    on_prem_usd = float(cost[on_prem].sum())
    spot_usd = float(cost[spot & ~on_prem].sum())
    on_demand_usd = float(cost[~spot & ~on_prem].sum())
    od_price = np.array(
        [w.on_demand_price_per_hour_usd for w in record.workers], dtype=np.float64
    )
    # What the spot workers would have cost on-demand for the same billed time.
    spot_od = spot & ~on_prem & np.isfinite(od_price)
    spot_savings = float((billed[spot_od] / 3600.0 * od_price[spot_od]).sum() - cost[spot_od].sum())
    lost_work = float(sum(w.lost_work_gpu_s for w in record.workers))
    hours = horizon / 3600.0

    # Workers over time: the engine's time-weighted monitor, or a rebuild if it kept none.
    tl = record.timeline
    if tl.time_s:
        w_times, w_vals = (
            np.asarray(tl.time_s, dtype=np.float64),
            np.asarray(tl.workers_total, dtype=np.float64),
        )
    else:
        w_times, w_vals = _worker_count_from_records(record.workers)
        if record.workers:
            warnings.append("engine timeline is empty: worker counts rebuilt from worker records")
    w_mean, w_max, _ = time_weighted(w_times, w_vals, horizon)
    initial = np.array([w.initial for w in record.workers], dtype=bool)
    # A cold start is a non-initial worker that got a machine (VM running, or an on-prem slot)
    # and so paid for a model load; requests that never got a VM are provision failures.
    got_machine = np.array(
        [math.isfinite(w.provisioned_s) or math.isfinite(w.ready_s) for w in record.workers],
        dtype=bool,
    )
    became_ready = np.array([math.isfinite(w.ready_s) for w in record.workers], dtype=bool)
    startup = np.array([w.ready_s - w.requested_s for w in record.workers], dtype=np.float64)
    cold = ~initial & got_machine
    cold_ready = ~initial & became_ready
    end_reasons = Counter(w.end_reason for w in record.workers)

    deltas = [(dr.action, dr.delta) for dr in record.decisions]
    scale_ups = sum(1 for act, dl in deltas if dl > 0 and act not in _NOT_SCALE_UP_ACTIONS)
    scale_downs = sum(1 for _, dl in deltas if dl < 0)
    blocked = sum(1 for dr in record.decisions if dr.reason.startswith("blocked"))

    wall = float(record.wall_s)
    summary: dict[str, Any] = {
        **blocks,
        "cost": {
            "total_usd": total,
            "per_hour_usd": total / hours if hours > 0 else None,
            "per_1k_requests_usd": total / n_completed * 1e3 if n_completed else None,
            "per_1m_output_tokens_usd": total / out_tokens * 1e6 if out_tokens else None,
            "on_demand_usd": on_demand_usd,
            "spot_usd": spot_usd,
            "on_prem_usd": on_prem_usd,
            # Filled by sim.run against the counterfactual run (spot off, same seed); null
            # without it. The price discount is what the same spot workers would have cost
            # on-demand for the same billed time (not a saving: the fleet would differ).
            "spot_savings_usd": None,
            "spot_price_discount_usd": spot_savings,
            "billing_granularity_s": float(billing_granularity_s),
        },
        "workers": {
            "max": int(w_max) if w_max is not None else 0,
            "mean": json_float(w_mean),
            "gpu_hours": float(np.dot(billed, gpus) / 3600.0),
            "cold_starts": int(cold.sum()),
            "cold_starts_completed": int(cold_ready.sum()),
            "cold_start_mean_s": json_float(startup[cold_ready].mean())
            if cold_ready.any()
            else None,
            "preemptions": int(end_reasons.get("preempted", 0)),
            "lost_work_gpu_s": lost_work,
            "provision_failures": int(end_reasons.get("provision_failed", 0)),
            "scale_ups": scale_ups,
            "scale_downs": scale_downs,
            "decisions_blocked": blocked,
            "total_started": len(record.workers),
            "scale_up_shapes": _scale_up_shapes(record),
        },
        "placement": [str(p) for p in getattr(record, "placement", [])],
        "queue": {
            "mean_len": json_float(record.queue_area / horizon) if horizon > 0 else None,
            "max_len": int(record.queue_max),
        },
        "sim": {
            "seed": int(record.seed),
            "horizon_s": horizon,
            "warmup_s": float(warmup_s),
            "wall_s": wall,
            "events": int(record.events),
            "requests_per_wall_s": tally.arrived / wall if wall > 0 else None,
            "results": results_mode or ("full" if req is not None else "summary"),
        },
        "warnings": warnings,
        "scenario": to_jsonable(mask_secrets(scenario_dict or {})),
    }
    summary = to_jsonable(summary)

    billed_workers = _workers_frame(record.workers, billed, cost)
    return Result(
        summary=summary,
        requests=(
            requests_frame(req, request_id) if req is not None else empty_requests_frame()
        ),
        workers=billed_workers,
        decisions=_decisions_frame(record.decisions),
        timeline=_series_frame(record.timeline, TIMELINE_COLUMNS),
        queue=_series_frame(record.queue, QUEUE_COLUMNS),
        record=record,
    )
