"""What one worker can serve, from its performance profile: per-request worker time at latency
targets (the SLA planner, the hindsight optimum) and at full batch (the capacity bound).

A worker running continuous batching spends, per request, its prefill (``isl`` prompt tokens)
and ``osl`` decode steps shared with the rest of the batch. With ``P`` prefill tokens/s and
``D`` decode tokens/s per worker, one request costs ``isl / P + osl / D`` worker-seconds, and a
worker serves ``1 / (isl / P + osl / D)`` requests/s. This is the aggregated-serving form of the
throughput arithmetic of NVIDIA Dynamo's SLA planner (Dynamo v0.4 docs "SLA-based Planner":
prefill replicas = rate × ISL / prefill throughput, decode replicas = rate × OSL / decode
throughput at the ITL target, with context ISL + OSL / 2), summed because one worker does both.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class WorkerCapacity:
    """Throughput of one worker: prefill and decode tokens/s (``inf`` = costs nothing).

    ``per_request_s`` is the fixed worker time per request of the plain queueing models.
    """

    prefill_tokens_per_s: float
    decode_tokens_per_s: float
    per_request_s: float = 0.0
    batch: int = 1  # decode batch size reached at the target

    def work_s(self, isl: float, osl: float) -> float:
        """Worker-seconds one request of ``isl`` prompt and ``osl`` output tokens takes."""
        return self.per_request_s + isl / self.prefill_tokens_per_s + osl / self.decode_tokens_per_s

    def requests_per_s(self, isl: float, osl: float) -> float:
        """Requests/s one worker serves at this operating point."""
        w = self.work_s(isl, osl)
        return math.inf if w <= 0 else 1.0 / w


def at_targets(profile: Any, isl: float, osl: float, itl_s: float, max_batch: int,
               ) -> WorkerCapacity:
    """Capacity at an inter-token latency target: the largest decode batch whose step time at
    context ISL + OSL / 2 stays within ``itl_s`` (at least 1, at most ``max_batch`` and the
    KV-cache room), and the prefill rate of one ``isl``-token prompt.

    Raises ValueError on non-positive token counts or target.
    """
    if isl <= 0 or osl < 0 or itl_s <= 0:
        raise ValueError(f"expected isl > 0, osl >= 0, itl_s > 0; got {isl}, {osl}, {itl_s}")
    ctx = isl + osl / 2
    b_cap = max(1, min(max_batch, int(profile.kv_capacity_tokens // max(ctx, 1))))
    slope = profile.decode_per_seq_s + profile.decode_per_ctx_token_s * ctx
    room = itl_s - profile.decode_base_s
    b = int(room / slope) if slope > 0 and math.isfinite(room) else b_cap
    b = min(max(b, 1), b_cap)
    decode = b / profile.tpot_s(b, ctx)
    prefill = isl / profile.prefill_s([round(isl)])
    return WorkerCapacity(prefill, decode, batch=b)


def full_batch(profile: Any, isl: float, osl: float, max_batch: int) -> WorkerCapacity:
    """Capacity with no latency target: the biggest decode batch that fits (see at_targets)."""
    return at_targets(profile, isl, osl, math.inf, max_batch)


def queueing(mean_s: float, max_batch: int) -> WorkerCapacity:
    """Capacity of the plain queueing models: ``max_batch`` requests every ``mean_s`` seconds."""
    return WorkerCapacity(math.inf, math.inf, per_request_s=mean_s / max_batch, batch=max_batch)


def scale_up_shape(scenario: Any) -> Any:
    """The on-demand shape the engine gives a scale-up (with ``use_same_gpus_when_scaling:
    false`` the cheapest offer per unit of throughput, which may differ from the initial
    shape); None when no worker can be placed."""
    from sim.fleet.model import FleetModel
    from sim.rng import Streams

    return FleetModel(scenario, Streams(0)).place(
        scenario.deployment, initial=False, on_demand_workers=0, peek=True, allow_spot=False
    )


def worker_profile(scenario: Any) -> Any:
    """The performance profile of a scaled-up worker (None for queueing models)."""
    shape = scale_up_shape(scenario)
    return None if shape is None else shape.profile
