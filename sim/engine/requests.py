"""Per-request state of one run, in columns indexed by request id (arrival order).

Built once from the workload before the run (output lengths as the service model sees them,
requests the endpoint rejects for their length, drawn service times), filled by the gateway
and the services while the run goes, and turned into :class:`RequestColumns` at the end.
Plain Python lists on the hot path, never per-request objects (DESIGN §7).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from sim.engine.record import RequestColumns


class RequestState:
    """Columns of one run's requests: what arrives and what happened to it."""

    def __init__(
        self, workload: Any, *, kind: str, deployment: Any, serving: Any, rng: np.random.Generator
    ) -> None:
        n = len(workload.arrival_s)
        self.n = n
        self.arrival: list[float] = workload.arrival_s.tolist()
        self.prompt: list[int] = workload.prompt_tokens.tolist()
        self.warnings: list[str] = list(getattr(workload, "warnings", ()))
        self.too_long: list[bool] | None = None  # requests the endpoint rejects on arrival
        out = workload.output_tokens
        if kind == "llm":
            out = self._llm_request_checks(workload.prompt_tokens, out, deployment, serving)
        self.output: list[int] = out.tolist()
        # Prefix sums of tokens by arrival order: the policy's cumulative token counts per tick.
        self.cum_prompt: list[int] = [
            0, *np.cumsum(workload.prompt_tokens, dtype=np.int64).tolist()
        ]
        self.cum_output: list[int] = [0, *np.cumsum(out, dtype=np.int64).tolist()]
        self.service_time: list[float] = _draw_service_times(kind, serving, rng, n)
        self.cols = RequestColumns.empty(workload.arrival_s, workload.prompt_tokens, out)
        self.dispatch_t: list[float] = [math.nan] * n
        self.first_t: list[float] = [math.nan] * n
        self.done_t: list[float] = [math.nan] * n
        self.worker_of: list[int] = [-1] * n
        self.status = bytearray(n)
        self.fail_reason = bytearray(n)
        self.retries: list[int] = [0] * n

    def _llm_request_checks(
        self, prompt: np.ndarray, out: np.ndarray, deployment: Any, serving: Any
    ) -> np.ndarray:
        """Output lengths as an LLM serves them, and the requests too long for its context."""
        from sim.serving.models import max_context_tokens

        # A generation yields at least its first token (the prefill's output).
        zero = int(np.count_nonzero(out == 0))
        if zero:
            self.warnings.append(
                f"{zero:,} requests ask for 0 output tokens: served as 1 (an LLM's prefill "
                "yields the first token)"
            )
        out = np.maximum(out, 1)
        ctx = serving.max_model_len
        if ctx is None:
            ctx = max_context_tokens(deployment.base_model or deployment.model)
        if ctx:
            mask = (prompt + out) > ctx
            if mask.any():
                self.too_long = mask.tolist()
                self.warnings.append(
                    f"{int(mask.sum()):,} requests exceed the model's {ctx:,}-token context "
                    "(prompt + output) and fail as too_large on arrival, as the endpoint "
                    "would reject them"
                )
        return out

    def columns(self, arrived: int) -> RequestColumns:
        """The final columns, cut to the ``arrived`` requests that arrived before the horizon."""
        cols = self.cols
        cols.dispatch_s = np.asarray(self.dispatch_t, dtype=np.float64)
        cols.first_token_s = np.asarray(self.first_t, dtype=np.float64)
        cols.completion_s = np.asarray(self.done_t, dtype=np.float64)
        cols.worker = np.asarray(self.worker_of, dtype=np.int32)
        cols.status = np.frombuffer(bytes(self.status), dtype=np.int8).copy()
        cols.fail_reason = np.frombuffer(bytes(self.fail_reason), dtype=np.int8).copy()
        cols.retries = np.asarray(self.retries, dtype=np.int16)
        if arrived < self.n:
            for name in (
                "arrival_s", "prompt_tokens", "output_tokens", "dispatch_s", "first_token_s",
                "completion_s", "worker", "status", "fail_reason", "retries",
            ):
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
