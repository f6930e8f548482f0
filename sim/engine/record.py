"""What one simulation run hands to the metrics layer: columns and event lists, no pandas.

The engine fills these plain containers while it runs; :mod:`sim.metrics` turns them into
DataFrames and the summary once, at the end (DESIGN §7: results are built once).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# Request status codes (RequestColumns.status).
IN_FLIGHT = 0
COMPLETED = 1
FAILED = 2
STATUS_NAMES = ("in_flight", "completed", "failed")

# Failure reasons (RequestColumns.fail_reason); 0 = not failed.
FAIL_NONE = 0
FAIL_TIMEOUT = 1  # waited in the gateway queue longer than gateway.request_timeout_s
FAIL_PREEMPTED = 2  # lost on a preempted worker with on_preempt: fail
FAIL_TOO_LARGE = 3  # prompt + output exceed the KV cache of every worker shape
FAIL_REJECTED = 4  # rejected at admission (throughput_cap: admission)
FAIL_REASONS = ("", "timeout", "preempted", "too_large", "rejected")


@dataclass
class RequestColumns:
    """Per-request state in columns indexed by request id (arrival order). Times in seconds,
    NaN where the event did not happen."""

    arrival_s: np.ndarray  # float64
    prompt_tokens: np.ndarray  # int64
    output_tokens: np.ndarray  # int64
    dispatch_s: np.ndarray  # float64, last dispatch (after retries)
    first_token_s: np.ndarray  # float64
    completion_s: np.ndarray  # float64 (completion or failure time)
    worker: np.ndarray  # int32, id of the worker that served it last, -1 if none
    status: np.ndarray  # int8, IN_FLIGHT / COMPLETED / FAILED
    fail_reason: np.ndarray  # int8, FAIL_* code
    retries: np.ndarray  # int16, times it went back to the queue (preemption)

    @classmethod
    def empty(
        cls, arrival_s: np.ndarray, prompt_tokens: np.ndarray, output_tokens: np.ndarray
    ) -> RequestColumns:
        """Columns for requests that have not been served yet."""
        n = len(arrival_s)
        nan = np.full(n, np.nan)
        return cls(
            arrival_s=np.asarray(arrival_s, dtype=np.float64),
            prompt_tokens=np.asarray(prompt_tokens, dtype=np.int64),
            output_tokens=np.asarray(output_tokens, dtype=np.int64),
            dispatch_s=nan.copy(),
            first_token_s=nan.copy(),
            completion_s=nan.copy(),
            worker=np.full(n, -1, dtype=np.int32),
            status=np.zeros(n, dtype=np.int8),
            fail_reason=np.zeros(n, dtype=np.int8),
            retries=np.zeros(n, dtype=np.int16),
        )


@dataclass
class WorkerRecord:
    """One worker's life. Times in seconds from t = 0; NaN where the stage was not reached."""

    worker_id: int
    gpu: str
    gpus: int
    cloud: str
    region: str
    zone: str
    spot: bool
    on_prem: bool
    initial: bool  # part of the fleet at t = 0
    price_per_hour_usd: float
    requested_s: float
    provisioned_s: float = float("nan")  # VM running: billing starts here
    ready_s: float = float("nan")
    drain_s: float = float("nan")
    terminated_s: float = float("nan")
    end_reason: str = ""  # scale_down | scale_to_zero | preempted | update | horizon | provision_failed
    requests_served: int = 0
    instance_type: str = ""
    on_demand_price_per_hour_usd: float = float("nan")  # what the same shape costs on-demand
    lost_work_gpu_s: float = 0.0  # GPU-seconds of service lost to preemption (redone on retry)
    billed_s: float = 0.0
    cost_usd: float = 0.0


@dataclass
class DecisionRecord:
    """One autoscaler tick that acted or was blocked (ticks that did nothing are not kept)."""

    time_s: float
    policy: str
    statistic: float  # the value the policy compared against its bounds (NaN if none)
    workers: int  # N before the action
    action: str  # scale_up | scale_down | floor | from_zero | to_zero | update | replace | none
    delta: int  # workers added (+) or drained (-)
    reason: str  # e.g. "S=5.2>upper=4", "blocked: cooldown", "blocked: price cap"


@dataclass
class Timeline:
    """Step series sampled at each change (time-weighted monitors, value held until next change)."""

    time_s: list[float] = field(default_factory=list)
    workers_total: list[int] = field(default_factory=list)  # N (requested..ready, not draining)
    workers_ready: list[int] = field(default_factory=list)
    workers_billed: list[int] = field(default_factory=list)  # provisioned and not terminated
    cost_rate_usd_per_h: list[float] = field(default_factory=list)  # summed price of billed workers


@dataclass
class QueueSamples:
    """Gateway queue length and arrivals sampled on the autoscaler tick grid (for plots)."""

    time_s: list[float] = field(default_factory=list)
    queue_len: list[int] = field(default_factory=list)
    running: list[int] = field(default_factory=list)  # requests in service on workers
    arrivals: list[int] = field(default_factory=list)  # arrivals since the previous sample


@dataclass
class RunRecord:
    """Everything the engine measured in one run."""

    requests: RequestColumns | None  # None when requests were streamed (sim.results: summary)
    workers: list[WorkerRecord]
    decisions: list[DecisionRecord]
    timeline: Timeline
    queue: QueueSamples
    horizon_s: float
    seed: int
    events: int  # SimPy events processed (scheduled callbacks), for requests_per_wall_s
    wall_s: float
    queue_area: float  # integral of the gateway queue length over [0, horizon] (Little's law)
    queue_max: int = 0  # the longest the gateway queue ever was (exact, not sampled)
    warnings: list[str] = field(default_factory=list)
    placement: list[str] = field(default_factory=list)  # why scale-ups took their shapes
