"""The per-request part of a run's summary, fed in batches of resolved requests.

One code path for both result modes: ``sim.results: full`` hands :class:`RequestTally` all
requests at once at the end of the run (exact percentiles, as before); ``summary`` hands it
each batch of requests as they resolve, so no per-request table is ever kept (the
percentiles then come from a sketch, :mod:`sim.metrics.sketch`). Definitions follow
DESIGN §6 and ``docs/metrics.md``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sim.engine.record import COMPLETED, FAIL_REASONS, FAILED, RequestColumns
from sim.metrics.sketch import StreamStat


def slo_values(metric: str, req: RequestColumns) -> np.ndarray:
    """Each request's value of the SLO metric (e2e, ttft, queue or tpot), NaN where undefined."""
    a = req.arrival_s
    if metric == "e2e":
        return req.completion_s - a
    if metric == "ttft":
        return req.first_token_s - a
    if metric == "queue":
        return req.dispatch_s - a
    out = req.output_tokens.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(out > 1, (req.completion_s - req.first_token_s) / (out - 1), np.nan)


class RequestTally:
    """Counts, latency statistics, SLO attainment and output tokens of resolved requests.

    ``add`` takes any batch of requests (each request exactly once over the run); ``exact``
    keeps every latency for exact percentiles, otherwise a sketch keeps a few kB per metric.
    """

    def __init__(
        self, *, slo_metric: str, slo_threshold_s: float, warmup_s: float, exact: bool
    ) -> None:
        self.metric = slo_metric
        self.threshold = float(slo_threshold_s)
        self.warmup_s = float(warmup_s)
        self.exact = exact
        self.arrived = self.completed = self.failed = 0
        self.retried = self.retries_total = self.measured = 0
        self.slo_met = 0
        self.slo_nan = 0  # completed requests lacking the SLO metric's timestamp
        self.output_tokens = 0  # of completed requests
        self.reasons = np.zeros(len(FAIL_REASONS), dtype=np.int64)
        self.e2e, self.ttft, self.queue, self.tpot = (StreamStat(exact) for _ in range(4))

    def add(self, req: RequestColumns, request_id: np.ndarray | None = None) -> None:
        """Tally a batch of requests (completed, failed or still in flight at the horizon).

        ``request_id`` (the requests' arrival-order indices, as the engine's sink passes them)
        is not needed for the figures."""
        status = req.status
        completed = status == COMPLETED
        failed = status == FAILED
        self.arrived += len(status)
        self.completed += int(completed.sum())
        self.failed += int(failed.sum())
        self.reasons += np.bincount(
            req.fail_reason[failed].astype(np.int64), minlength=len(FAIL_REASONS)
        )
        self.retried += int((req.retries > 0).sum())
        self.retries_total += int(req.retries.astype(np.int64).sum())
        self.output_tokens += int(req.output_tokens[completed].sum())
        # Latency tallies: completed requests that arrived at or after the warm-up.
        measured = req.arrival_s >= self.warmup_s
        self.measured += int(measured.sum())
        done = completed & measured
        a = req.arrival_s[done]
        c = req.completion_s[done]
        f = req.first_token_s[done]
        out = req.output_tokens[done].astype(np.float64)
        decode = out > 1
        self.e2e.add(c - a)
        self.ttft.add(f - a)
        self.queue.add(req.dispatch_s[done] - a)
        self.tpot.add((c[decode] - f[decode]) / (out[decode] - 1))
        # SLO: failed and in-flight requests are misses; TPOT is undefined for out <= 1 (no
        # inter-token gap) and counts as met.
        values = slo_values(self.metric, req)[done]
        ok = values <= self.threshold
        if self.metric == "tpot":
            ok |= ~np.isfinite(values)
        else:
            self.slo_nan += int(np.isnan(values).sum())
        self.slo_met += int(ok.sum())

    def summary(self) -> dict[str, Any]:
        """The ``requests``, latency and ``slo`` blocks of the summary (DESIGN §3.3)."""
        reasons = self.reasons
        by_reason = {FAIL_REASONS[i]: int(reasons[i]) for i in range(1, len(FAIL_REASONS))}
        if reasons[0]:
            by_reason["unspecified"] = int(reasons[0])
        return {
            "requests": {
                "arrived": self.arrived,
                "completed": self.completed,
                "failed": self.failed,
                "in_flight": self.arrived - self.completed - self.failed,
                "retried": self.retried,
                "retries_total": self.retries_total,
                "measured": self.measured,
                "failed_by_reason": by_reason,
            },
            "latency_e2e_s": self.e2e.stats(),
            "ttft_s": self.ttft.stats(),
            "queue_s": self.queue.stats(),
            "tpot_s": self.tpot.stats(),
            "slo": {
                "metric": self.metric,
                "threshold_s": self.threshold,
                "attainment": self.slo_met / self.measured if self.measured else None,
            },
        }

    def warnings(self) -> list[str]:
        """What the tally noticed that the user should know."""
        out = []
        if self.completed == 0:
            out.append("no request completed: latency statistics are null")
        if self.slo_nan:
            out.append(
                f"{self.slo_nan} completed requests lack the {self.metric} timestamp and count "
                "as SLO misses"
            )
        return out
