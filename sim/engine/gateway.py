"""The gateway: arrivals, admission, one FIFO queue, dispatch to workers and queue timeouts.

DESIGN §5 (Gateway): a request is dispatched when a ready worker has a free batch slot and
KV-cache room, to the least-loaded such worker; requests wait while no worker can take them
(also at zero workers); a request waiting longer than ``gateway.request_timeout_s`` fails
with reason ``timeout``. With ``throughput_cap: admission`` a token bucket on output tokens
rejects what exceeds ``max_throughput_rate``. Every request ends completed, failed (with a
reason) or in flight; the gateway also feeds each request's latency to the autoscaler's
window (:mod:`sim.engine.window`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from heapq import heapify, heappop, heappush
from itertools import count
from typing import TYPE_CHECKING, Any

import numpy as np

from sim.engine.record import (
    COMPLETED,
    FAIL_PREEMPTED,
    FAIL_REJECTED,
    FAIL_TIMEOUT,
    FAIL_TOO_LARGE,
    FAILED,
)

#: The pool's READY state (sim.engine.pool), repeated to keep the import one-way.
_READY = 1

if TYPE_CHECKING:
    from sim.engine.clock import Clock
    from sim.engine.requests import RequestState
    from sim.engine.window import LatencyWindow


def admission_enforced(deployment: Any, autoscaler: Any) -> bool:
    """Whether ``max_throughput_rate`` is enforced by admission control at the gateway."""
    return (
        autoscaler.throughput_cap == "admission"
        and float(deployment.max_throughput_rate or 0) > 0
    )


#: Fleets of at most this many ready workers are scanned; larger ones use the heap (a scan of
#: a few dozen workers costs less than keeping a heap up to date on every load change).
SCAN_MAX = 24


class LeastLoaded:
    """The least-loaded ready worker: a scan of small fleets, a heap for large ones.

    Both pick what a scan of the ready list for the smallest load picks (the first of the
    least-loaded in ready order). Above ``scan_max`` ready workers the pick comes from a heap
    ordered by (load, order of becoming ready), in O(log W) instead of O(W): entries are
    pushed when a worker becomes ready and whenever its load changes (:meth:`touch`); an
    entry whose load is no longer the worker's, or whose worker left the ready list, is
    dropped when it reaches the top, and the heap is rebuilt from the ready list when stale
    entries outnumber live ones (so it holds O(W) entries). The heap is built when the fleet
    grows past ``scan_max`` and dropped when it shrinks back.
    """

    __slots__ = ("heap", "ready", "on", "scan_max", "_seq", "_push")

    def __init__(self, ready: list[Any], scan_max: int = SCAN_MAX) -> None:
        self.heap: list[tuple[int, int, int, Any]] = []
        self.ready = ready  # the pool's ready list (shared)
        self.on = False  # the heap is kept (the fleet is larger than scan_max)
        self.scan_max = scan_max
        self._seq = count()  # order of becoming ready: the scan's tie-break
        self._push = count()  # makes entries unique, so Worker objects are never compared

    def add(self, w: Any) -> None:
        """``w`` just became ready (and was appended to the ready list)."""
        w.ready_seq = next(self._seq)
        if self.on:
            self.touch(w)

    def touch(self, w: Any) -> None:
        """``w``'s load changed (or it became ready); callers skip it while ``on`` is False."""
        heap = self.heap
        heappush(heap, (w.service.load, w.ready_seq, next(self._push), w))
        if len(heap) > 2 * len(self.ready) + 64:
            self._rebuild()

    def _rebuild(self) -> None:
        push = self._push
        self.heap = heap = [(x.service.load, x.ready_seq, next(push), x) for x in self.ready]
        heapify(heap)

    def best(self) -> Any:
        """The least-loaded ready worker (first to become ready among equals), or None."""
        ready = self.ready
        if len(ready) <= self.scan_max:
            if self.on:
                self.on = False
                self.heap = []
            best = None
            best_load = 1 << 30
            for w in ready:
                load = w.service.load
                if load < best_load:
                    best, best_load = w, load
            return best
        if not self.on:
            self.on = True
            self._rebuild()
        heap = self.heap
        while heap:
            load, _, _, w = heap[0]
            if w.state == _READY and w.service.load == load:
                return w
            heappop(heap)
        return None


class Gateway:
    """The deployment's front door: queue, dispatch and timeouts over the request columns.

    ``ready`` is the pool's list of ready workers (shared, never rebound); ``resolve(k)`` is
    called when ``k`` requests reach a final state.
    """

    def __init__(
        self,
        clock: Clock,
        reqs: RequestState,
        window: LatencyWindow,
        *,
        deployment: Any,
        gateway: Any,
        autoscaler: Any,
        metric: str,
        ready: list[Any],
        resolve: Callable[[int], None],
        progress: Callable[[float], None] | None = None,
    ) -> None:
        self.clock = clock
        self.env = clock.env
        self.reqs = reqs
        self.window = window
        self.ready = ready
        self.least = LeastLoaded(ready)
        self.resolve = resolve
        self.progress = progress
        self.n = reqs.n
        self.arrival = reqs.arrival
        self.metric = metric
        # Each metric enters the autoscaler's window when it becomes known: the queueing delay
        # at dispatch, TTFT at the first token (the engine's first_token), E2E at completion.
        self.observe_queue = metric == "queue"
        self.observe_ttft = metric == "ttft"
        self.observe_e2e = metric not in ("queue", "ttft")
        self.embedding = deployment.inf_type == "embedding"
        self.timeout_s = float(gateway.request_timeout_s)
        tcap = float(deployment.max_throughput_rate or 0)
        self.admission_rate = tcap if admission_enforced(deployment, autoscaler) else 0.0
        self.bucket = self.bucket_depth = self.admission_rate * float(gateway.admission_burst_s)
        self._bucket_t = 0.0

        self.queue: deque[int] = deque()
        self.requeued_at: dict[int, float] = {}  # queue re-entry time of preempted requests
        self.queue_area = 0.0
        self.queue_max = 0
        self._q_last_t = 0.0
        self.next_arrival = 0
        self.last_arrival_t = float("-inf")
        self.last_departure_t = float("-inf")  # latest completion or failure
        self.running = 0

    def start(self) -> None:
        """Schedule the first arrival."""
        if self.n:
            self.clock.schedule(self.reqs.arrival_time(0), self._on_arrival)

    # -- arrivals --------------------------------------------------------------------------------
    def _on_arrival(self, _e: Any) -> None:
        i = self.next_arrival
        self.next_arrival = i + 1
        t = self.env._now
        self.last_arrival_t = t
        reqs = self.reqs
        rid, too_long = reqs.arrive(i)  # rid: the request's slot while it is in the system
        if i + 1 < self.n:
            self.clock.schedule(reqs.arrival_time(i + 1) - t, self._on_arrival)
        if too_long:
            self.fail(rid, t, FAIL_TOO_LARGE)
            return
        if self.admission_rate and not self._admit(rid, t):
            self.fail(rid, t, FAIL_REJECTED)
            return
        q = self.queue
        self.queue_area_to(t)
        q.append(rid)
        if len(q) == 1:  # otherwise the head is blocked and nothing has freed up
            self.dispatch()
        elif len(q) > self.queue_max:
            self.queue_max = len(q)
        if self.progress is not None and not i % 4096:
            self.progress(t)

    def arrived_after(self, t0: float) -> int:
        """Requests that arrived in (t0, now]."""
        arrived = self.next_arrival
        before = int(np.searchsorted(self.reqs.arrival_s, t0, side="right"))
        return arrived - min(before, arrived)

    def queue_area_to(self, t: float) -> None:
        """Integrate the gateway queue length up to ``t`` (before the queue changes)."""
        self.queue_area += len(self.queue) * (t - self._q_last_t)
        self._q_last_t = t

    def _admit(self, rid: int, t: float) -> bool:
        """Token bucket on output tokens at ``max_throughput_rate`` (``throughput_cap: admission``)."""
        self.bucket = min(
            self.bucket_depth, self.bucket + (t - self._bucket_t) * self.admission_rate
        )
        self._bucket_t = t
        # Output tokens for LLMs; an embedding request's cost is its input tokens.
        need = self.reqs.prompt[rid] if self.embedding else self.reqs.output[rid]
        if need > self.bucket:
            return False
        self.bucket -= need
        return True

    # -- dispatch ----------------------------------------------------------------------------------
    def dispatch(self) -> None:
        """Send queued requests, head first, to the least-loaded ready worker that takes them."""
        q = self.queue
        t = self.env._now
        self.queue_area_to(t)
        arrival = self.arrival
        ready = self.ready
        least = self.least
        reqs = self.reqs
        while q:
            rid = q[0]
            if t - arrival[rid] > self.timeout_s and self._expired(rid, t):
                q.popleft()
                self._expire(rid, t)
                continue
            # Least-loaded ready worker that can take the head request; the least-loaded
            # one almost always can, so test admission only there before scanning all.
            best = least.best()
            if best is not None and not best.service.can_accept(rid):
                best, best_load = None, 1 << 30
                for w in ready:
                    svc = w.service
                    if svc.load < best_load and svc.can_accept(rid):
                        best, best_load = w, svc.load
            if best is None:
                if ready and not any(w.service.fits_ever(rid) for w in ready):
                    q.popleft()
                    self.fail(rid, t, FAIL_TOO_LARGE)
                    continue
                return
            q.popleft()
            reqs.dispatch_t[rid] = t
            reqs.worker_of[rid] = best.wid
            self.running += 1
            if self.observe_queue:
                self.window.add(t, t - arrival[rid])
            best.service.accept(rid)
            if least.on:
                least.touch(best)

    # -- timeouts ------------------------------------------------------------------------------------
    def _expired(self, rid: int, t: float) -> bool:
        """Whether ``rid`` has waited longer than the timeout since it (re-)entered the queue."""
        return t - self.requeued_at.get(rid, self.arrival[rid]) > self.timeout_s

    def _expire(self, rid: int, t: float) -> None:
        """Request ``rid`` timed out in the queue; it failed when its wait hit the limit."""
        fail_t = self.requeued_at.get(rid, self.arrival[rid]) + self.timeout_s
        # The queue area counted it until now; it left at fail_t.
        self.queue_area -= t - fail_t
        self.fail(rid, fail_t, FAIL_TIMEOUT)

    def expire_queue(self, t: float) -> None:
        """Fail every queued request whose wait exceeded the timeout by ``t``."""
        q = self.queue
        self.queue_area_to(t)
        while q and self._expired(q[0], t):
            self._expire(q.popleft(), t)
        if q and self.requeued_at and q[0] in self.requeued_at:
            # Requeued requests sit at the head with an earlier arrival but a later queue
            # entry: requests behind them may have expired while the head has not.
            keep: deque[int] = deque()
            for rid in q:
                if self._expired(rid, t):
                    self._expire(rid, t)
                else:
                    keep.append(rid)
            self.queue = keep

    # -- final states ------------------------------------------------------------------------------
    def fail(self, rid: int, t: float, reason: int) -> None:
        """Request ``rid`` failed at ``t`` with ``reason`` (a ``FAIL_*`` code)."""
        reqs = self.reqs
        reqs.status[rid] = FAILED
        reqs.fail_reason[rid] = reason
        reqs.done_t[rid] = t
        if reason not in (FAIL_REJECTED, FAIL_TOO_LARGE) and not self._observed(rid):
            # A request that waited and failed before its metric was known counts in the
            # autoscaler's window with its time to failure; one rejected on arrival never
            # entered the system (its 0 s would only hide the overload that caused it).
            self.window.add(t, t - self.arrival[rid])
        if t > self.last_departure_t:
            self.last_departure_t = t
        if self.requeued_at:
            self.requeued_at.pop(rid, None)
        reqs.release(rid)
        self.resolve(1)

    def _observed(self, rid: int) -> bool:
        """Whether ``rid``'s metric already entered the window (TTFT or queue delay known)."""
        if self.observe_ttft:
            return self.reqs.first_t[rid] == self.reqs.first_t[rid]  # not NaN
        if self.observe_queue:
            return self.reqs.dispatch_t[rid] == self.reqs.dispatch_t[rid]
        return False

    def idle_since(self) -> float:
        """Start of the current idle spell: nothing waiting or in flight and no arrival since
        (KEDA HTTP add-on and Knative count in-flight requests); +inf while busy."""
        if self.queue or self.running:
            return float("inf")
        return max(self.last_arrival_t, self.last_departure_t, 0.0)

    def completed(self, rids: list[int], tc: float) -> None:
        """Requests ``rids`` completed at ``tc`` (as the gateway sees it, after the round trip)."""
        reqs = self.reqs
        if len(rids) > 1:
            # In arrival order whatever slots they hold (the window sums in this order).
            rids = sorted(rids, key=reqs.gid.__getitem__)
        done_t, status = reqs.done_t, reqs.status
        for rid in rids:
            done_t[rid] = tc
            status[rid] = COMPLETED
        if self.observe_e2e:  # E2E is known at completion (docs/metrics.md, window rule)
            add, arrival = self.window.add, self.arrival
            for rid in rids:
                add(tc, tc - arrival[rid])
        self.running -= len(rids)
        self.last_departure_t = tc
        requeued, release = self.requeued_at, reqs.release
        for rid in rids:
            if requeued:
                requeued.pop(rid, None)
            release(rid)

    def take_back(self, lost: list[int], t: float, *, fail: bool) -> None:
        """Requests lost on a preempted worker: fail them, or put them back at the queue head
        in their original arrival order (``on_preempt: retry``)."""
        self.running -= len(lost)
        reqs = self.reqs
        requeue = []
        for rid in lost:
            if fail:
                self.fail(rid, t, FAIL_PREEMPTED)
            else:
                reqs.retries[rid] += 1
                reqs.first_t[rid] = float("nan")
                reqs.dispatch_t[rid] = float("nan")
                self.requeued_at[rid] = t
                requeue.append(rid)
        if requeue:
            self.queue_area_to(t)
            self.queue.extendleft(sorted(requeue, key=reqs.gid.__getitem__, reverse=True))
            self.queue_max = max(self.queue_max, len(self.queue))
