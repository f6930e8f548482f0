"""Per-request state of one run: bounded by the requests in the system, not by the trace.

A request that arrives takes a *slot* (an index into plain Python lists, reused once the
request resolves), and everything the gateway and the services keep about it lives in the
slot's columns; a resolved request's timestamps are moved into typed buffers and its slot
is freed. So the hot path indexes lists (DESIGN §7: no per-request objects, no numpy scalars)
while memory grows with the requests waiting or running, whatever the trace's length.

Arrivals are read from the workload's numpy columns a block at a time. Resolved requests
leave in batches (:data:`FLUSH`): with ``sink`` set (``sim.results: summary|stream``) each batch
goes to the sink as :class:`RequestColumns` and nothing per request is kept; without it
(``full``) the batch is scattered into preallocated typed columns indexed by request id,
which :meth:`RequestState.columns` returns at the end.

Slot ids are what the services see as ``rid``; where the order of requests matters (requeue
after preemption, completions within an iteration) the gateway orders them by ``gid``, the
request's index in arrival order, so results do not depend on slot reuse.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Callable
from typing import Any

import numpy as np

from sim.engine.record import IN_FLIGHT, RequestColumns

#: Arrivals converted to Python lists at a time.
BLOCK = 1 << 16
#: Resolved requests buffered before they are moved out (to the sink or the columns).
FLUSH = 1 << 16

#: Where resolved requests go in summary and stream modes: (columns, arrival-order indices).
Sink = Callable[[RequestColumns, np.ndarray], None]


class RequestState:
    """Slots of the requests in the system, and where resolved requests go."""

    def __init__(
        self,
        workload: Any,
        *,
        kind: str,
        deployment: Any,
        serving: Any,
        rng: np.random.Generator,
        sink: Sink | None = None,
    ) -> None:
        self.n = n = len(workload.arrival_s)
        self.arrival_s: np.ndarray = np.asarray(workload.arrival_s, dtype=np.float64)
        self.prompt_s: np.ndarray = np.asarray(workload.prompt_tokens, dtype=np.int64)
        self.output_s: np.ndarray = np.asarray(workload.output_tokens, dtype=np.int64)
        self.kind = kind
        self.serving = serving
        self.rng = rng
        self.sink = sink
        self.warnings: list[str] = list(getattr(workload, "warnings", ()))
        self.context = 0  # requests with prompt + output above it are rejected (0 = no limit)
        if kind == "llm":
            self._llm_request_checks(deployment, serving)
        # Slot columns (what the gateway and the services read and write on the hot path).
        self.arrival: list[float] = []
        self.prompt: list[int] = []
        self.output: list[int] = []
        self.service_time: list[float] = []
        self.dispatch_t: list[float] = []
        self.first_t: list[float] = []
        self.done_t: list[float] = []
        self.worker_of: list[int] = []
        self.status: list[int] = []
        self.fail_reason: list[int] = []
        self.retries: list[int] = []
        self.gid: list[int] = []  # request id (arrival order) of the request in each slot
        self._free: list[int] = []
        # Running totals over arrived requests (the policy's cumulative token counts).
        self.prompt_arrived = 0
        self.output_arrived = 0
        # The current block of arrivals as Python lists.
        self._base = 0
        self._b_arrival: list[float] = []
        self._b_prompt: list[int] = []
        self._b_output: list[int] = []
        self._b_service: list[float] = []
        # Resolved requests waiting to be moved out.
        self._r_gid = array("q")
        self._r_dispatch = array("d")
        self._r_first = array("d")
        self._r_done = array("d")
        self._r_worker = array("i")
        self._r_status = array("b")
        self._r_fail = array("b")
        self._r_retries = array("h")
        self._cols: RequestColumns | None = None
        if sink is None:
            nan = np.full(n, np.nan)
            self._cols = RequestColumns(
                arrival_s=self.arrival_s, prompt_tokens=self.prompt_s,
                output_tokens=self.output_s, dispatch_s=nan, first_token_s=nan.copy(),
                completion_s=nan.copy(), worker=np.full(n, -1, dtype=np.int32),
                status=np.zeros(n, dtype=np.int8), fail_reason=np.zeros(n, dtype=np.int8),
                retries=np.zeros(n, dtype=np.int16),
            )  # fmt: skip

    def _llm_request_checks(self, deployment: Any, serving: Any) -> None:
        """Output lengths as an LLM serves them, and the requests too long for its context."""
        from sim.serving.models import max_context_tokens

        prompt, out = self.prompt_s, self.output_s
        # A generation yields at least its first token (the prefill's output).
        zero = int(np.count_nonzero(out == 0))
        if zero:
            self.warnings.append(
                f"{zero:,} requests ask for 0 output tokens: served as 1 (an LLM's prefill "
                "yields the first token)"
            )
            self.output_s = out = np.maximum(out, 1)
        ctx = serving.max_model_len
        if ctx is None:
            ctx = max_context_tokens(deployment.base_model or deployment.model)
        if ctx:
            too_long = int(np.count_nonzero((prompt + out) > ctx))
            if too_long:
                self.context = int(ctx)
                self.warnings.append(
                    f"{too_long:,} requests exceed the model's {ctx:,}-token context "
                    "(prompt + output) and fail as too_large on arrival, as the endpoint "
                    "would reject them"
                )

    # -- arrivals -----------------------------------------------------------------------------
    def arrival_time(self, i: int) -> float:
        """Arrival time of request ``i`` (arrival order), as a Python float."""
        j = i - self._base
        if not 0 <= j < len(self._b_arrival):
            self._load_block(i)
            j = 0
        return self._b_arrival[j]

    def _load_block(self, i: int) -> None:
        end = min(i + BLOCK, self.n)
        self._base = i
        self._b_arrival = self.arrival_s[i:end].tolist()
        self._b_prompt = self.prompt_s[i:end].tolist()
        self._b_output = self.output_s[i:end].tolist()
        # Queueing models draw their service times block by block, in arrival order: the
        # same numbers as one draw of n (numpy's generators are sequential).
        self._b_service = _draw_service_times(self.kind, self.serving, self.rng, end - i)

    def arrive(self, i: int) -> tuple[int, bool]:
        """Request ``i`` arrives: its slot, and whether it is too long for the model."""
        j = i - self._base
        if not 0 <= j < len(self._b_arrival):
            self._load_block(i)
            j = 0
        p = self._b_prompt[j]
        o = self._b_output[j]
        self.prompt_arrived += p
        self.output_arrived += o
        st = self._b_service[j] if self._b_service else 0.0
        free = self._free
        if free:
            s = free.pop()
            self.arrival[s] = self._b_arrival[j]
            self.prompt[s] = p
            self.output[s] = o
            self.service_time[s] = st
            self.dispatch_t[s] = self.first_t[s] = self.done_t[s] = math.nan
            self.worker_of[s] = -1
            self.status[s] = self.fail_reason[s] = self.retries[s] = 0
            self.gid[s] = i
        else:
            s = len(self.arrival)
            self.arrival.append(self._b_arrival[j])
            self.prompt.append(p)
            self.output.append(o)
            self.service_time.append(st)
            self.dispatch_t.append(math.nan)
            self.first_t.append(math.nan)
            self.done_t.append(math.nan)
            self.worker_of.append(-1)
            self.status.append(0)
            self.fail_reason.append(0)
            self.retries.append(0)
            self.gid.append(i)
        return s, bool(self.context) and p + o > self.context

    # -- resolution ---------------------------------------------------------------------------
    def release(self, s: int) -> None:
        """The request in slot ``s`` reached a final state: move it out and free the slot."""
        self._r_gid.append(self.gid[s])
        self._r_dispatch.append(self.dispatch_t[s])
        self._r_first.append(self.first_t[s])
        self._r_done.append(self.done_t[s])
        self._r_worker.append(self.worker_of[s])
        self._r_status.append(self.status[s])
        self._r_fail.append(self.fail_reason[s])
        self._r_retries.append(self.retries[s])
        self._free.append(s)
        if len(self._r_gid) >= FLUSH:
            self._flush()

    def _flush(self) -> None:
        if not len(self._r_gid):
            return
        gid = np.frombuffer(self._r_gid, dtype=np.int64).copy()
        moved: dict[str, np.ndarray] = {
            "dispatch_s": np.frombuffer(self._r_dispatch, dtype=np.float64).copy(),
            "first_token_s": np.frombuffer(self._r_first, dtype=np.float64).copy(),
            "completion_s": np.frombuffer(self._r_done, dtype=np.float64).copy(),
            "worker": np.frombuffer(self._r_worker, dtype=np.int32).copy(),
            "status": np.frombuffer(self._r_status, dtype=np.int8).copy(),
            "fail_reason": np.frombuffer(self._r_fail, dtype=np.int8).copy(),
            "retries": np.frombuffer(self._r_retries, dtype=np.int16).copy(),
        }
        for buf in (
            self._r_gid, self._r_dispatch, self._r_first, self._r_done, self._r_worker,
            self._r_status, self._r_fail, self._r_retries,
        ):
            del buf[:]
        if self._cols is not None:
            for name, values in moved.items():
                getattr(self._cols, name)[gid] = values
        elif self.sink is not None:
            self.sink(
                RequestColumns(
                    arrival_s=self.arrival_s[gid], prompt_tokens=self.prompt_s[gid],
                    output_tokens=self.output_s[gid], **moved,
                ),
                gid,
            )

    def columns(self, arrived: int) -> RequestColumns | None:
        """Move out the requests still in the system (in flight at the horizon); the columns of
        the ``arrived`` requests that arrived before the horizon, or None with a sink."""
        free = set(self._free)
        for s in range(len(self.gid)):
            if s not in free:
                self.status[s] = IN_FLIGHT
                self.release(s)
        self._flush()
        cols = self._cols
        if cols is None:
            return None
        if arrived < self.n:
            for name in RequestColumns.__dataclass_fields__:
                setattr(cols, name, getattr(cols, name)[:arrived])
        return cols


def _draw_service_times(
    kind: str, serving: Any, rng: np.random.Generator, n: int
) -> list[float]:
    """Per-request service times of the plain queueing models (empty for token models)."""
    if kind == "fixed":
        return [float(serving.mean_s)] * n
    if kind == "exponential":
        return list(rng.exponential(serving.mean_s, n).tolist())
    if kind == "lognormal":
        sigma2 = math.log1p(serving.cv**2)
        mu = math.log(serving.mean_s) - sigma2 / 2
        return list(rng.lognormal(mu, math.sqrt(sigma2), n).tolist())
    return []
