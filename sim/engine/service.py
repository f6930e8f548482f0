"""Service models: how one worker turns requests into first tokens and completions.

A service owns the requests dispatched to its worker and schedules its own SimPy events
through the :class:`Host` it is given (the engine). Hot-path state is plain Python numbers and
lists, never per-request objects (DESIGN §7).

Continuous batching (``LlmService``) follows vLLM's iteration loop: each iteration decodes one
token for every running request and, when requests are waiting at the worker, also runs their
prefill; a request's first token is produced at the end of the iteration that ran its prefill.
Both modes share all bookkeeping; ``exact`` schedules an event at every iteration boundary,
``fast`` jumps straight to the next boundary at which something happens (a completion, or the
first boundary after a request joined), summing the iteration times in closed form.
"""

from __future__ import annotations

import heapq
import math
from typing import TYPE_CHECKING, Any, Protocol

from sim.registry import Registry

if TYPE_CHECKING:
    from sim.serving.profiles import Profile


class Host(Protocol):
    """What a service needs from the engine."""

    @property
    def now(self) -> float:
        """Current simulated time."""

    env: Any  # the simpy.Environment (its clock is read directly on the hot path)
    prompt: list[int]
    output: list[int]
    service_time: list[float]

    def schedule(self, delay: float, callback: object) -> None:
        """Call ``callback(event)`` after ``delay`` seconds."""

    def schedule_at(self, time: float, callback: object) -> None:
        """Call ``callback(event)`` at simulated time ``time`` (not before now)."""

    def first_token(self, rid: int, t: float) -> None:
        """Record the first token of request ``rid`` at ``t``."""

    def completed(self, worker_id: int, rids: list[int], t: float) -> None:
        """Requests ``rids`` finished on ``worker_id`` at ``t``."""


class Service(Protocol):
    """The interface every service model implements (one instance per worker)."""

    load: int  # requests on this worker (running or waiting at the worker)

    def can_accept(self, rid: int) -> bool:
        """Whether request ``rid`` can be admitted now."""

    def accept(self, rid: int) -> None:
        """Admit request ``rid`` at the host's current time."""

    def abort(self) -> list[int]:
        """Stop serving: forget every request on this worker and return their ids."""

    def rated_tokens_per_s(self) -> float:
        """Output tokens per second at full batch (for throughput caps)."""


SERVICES: Registry[type] = Registry("service model")


class SegmentClock:
    """The iteration clock the LLM services share (:class:`LlmService`, and
    :class:`~sim.engine.paged.PagedLlmService`): segments of iterations whose batch stays
    constant, their boundary times in closed form, and the one pending boundary event.

    A subclass calls :meth:`_init_clock` and implements ``_boundary(i, t)``.
    """

    def _init_clock(self, host: Host, profile: Profile) -> None:
        """The running sums, the segment state and the profile's coefficients, all zero/idle."""
        self.heap: list[tuple[int, int]] = []  # (finish iteration, rid) of running requests
        self.b = 0  # running (decoding) requests
        self.sum_p = 0
        self.sum_j = 0
        self.it = 0  # index of the next iteration to start
        self.seg_t = 0.0  # start time of iteration seg_it; batch constant from there on
        self.seg_it = 0
        self.seg_first = 0.0  # duration of iteration seg_it
        self.seg_d1 = 0.0  # duration of iteration seg_it + 1
        self.seg_step = 0.0  # growth of the iteration time per iteration (c * b)
        self.pending_it = -1  # boundary (iteration index) of the scheduled event, -1 if none
        self.settling = False  # inside _boundary: admissions join the iteration being planned
        self.version = 0
        self._a = profile.decode_base_s
        self._per_seq = profile.decode_per_seq_s
        self._c = profile.decode_per_ctx_token_s
        self._pf0 = profile.prefill_base_s
        self._pf1 = profile.prefill_per_token_s
        self._pf2 = profile.prefill_per_token2_s
        # Hot path: read the clock and schedule without going through the engine's methods.
        self._env = host.env
        self._schedule_at = host.schedule_at

    def _boundary(self, i: int, t: float) -> None:
        raise NotImplementedError

    # -- time arithmetic of a segment ---------------------------------------------------------
    # A segment starts at iteration seg_it (time seg_t) and keeps the batch constant after its
    # first iteration. The first iteration takes seg_first (a join iteration adds the joiners'
    # prefill); iteration seg_it + k, k >= 1, takes seg_d1 + seg_step * (k - 1), since the
    # summed context grows by b tokens per iteration.
    def _boundary_time(self, k: int) -> float:
        """Start time of iteration seg_it + k."""
        if k <= 0:
            return self.seg_t
        m = k - 1
        return self.seg_t + self.seg_first + m * self.seg_d1 + self.seg_step * (m * (m - 1) / 2)

    def _next_boundary_index(self, t: float) -> int:
        """Smallest k >= 1 with boundary_time(k) >= t.

        Never 0: iteration seg_it started at seg_t with its batch already fixed, so a request
        arriving at that same instant joins at the next boundary (as in exact mode).
        """
        x = t - self.seg_t - self.seg_first
        if x <= 0:
            return 1
        d1, s = self.seg_d1, self.seg_step
        if s <= 0:
            m = math.ceil(x / d1)
        else:
            # s/2 m^2 + (d1 - s/2) m - x = 0
            bq = d1 - s / 2
            m = math.ceil((-bq + math.sqrt(bq * bq + 2 * s * x)) / s)
        k = max(m, 0) + 1
        # Float guard: land exactly on the first boundary at or after t.
        while k > 1 and self._boundary_time(k - 1) >= t:
            k -= 1
        while self._boundary_time(k) < t:
            k += 1
        return k

    def _schedule_boundary(self, target_it: int) -> None:
        self.version += 1
        self.pending_it = target_it
        version = self.version
        env = self._env

        def on_boundary(_e: object) -> None:
            if version == self.version:  # else superseded: the batch changed meanwhile
                self._boundary(target_it, env._now)

        # _boundary_time(target_it - seg_it), inlined: this runs once per event.
        k = target_it - self.seg_it
        if k <= 0:
            at = self.seg_t
        else:
            m = k - 1
            at = self.seg_t + self.seg_first + m * self.seg_d1 + self.seg_step * (m * (m - 1) / 2)
        self._schedule_at(at, on_boundary)


@SERVICES.register("llm")
class LlmService(SegmentClock):
    """Continuous batching with a KV-cache admission limit (tokens reserved at admission).

    Iterations are numbered from 0 per worker. A request whose prefill runs in iteration ``j0``
    gets its first token at the end of ``j0`` and its last (``out``-th) at the end of
    ``j0 + out - 1``. Its KV context during iteration ``i > j0`` is ``p + (i - j0)``, so the summed
    context of the batch is ``K(i) = S_p + b*i - S_j`` with running sums ``S_p`` (prompts) and
    ``S_j`` (join iterations): O(1) per event however large the batch.
    """

    def __init__(
        self, host: Host, worker_id: int, profile: Profile, max_batch: int, exact: bool
    ) -> None:
        self.host = host
        self.worker_id = worker_id
        self.profile = profile
        self.max_batch = max_batch
        self.exact = exact
        self.kv_capacity = profile.kv_capacity_tokens
        self.kv_reserved = 0
        self.load = 0
        self.joiners: list[int] = []  # admitted, waiting for the next iteration boundary
        self._init_clock(host, profile)

    # -- admission ---------------------------------------------------------------------
    def can_accept(self, rid: int) -> bool:
        """Free batch slot and KV room for the prompt plus all output tokens."""
        host = self.host
        return (
            self.load < self.max_batch
            and self.kv_reserved + host.prompt[rid] + host.output[rid] <= self.kv_capacity
        )

    def fits_ever(self, rid: int) -> bool:
        """Whether the request could run on an empty worker of this shape."""
        return self.host.prompt[rid] + self.host.output[rid] <= self.kv_capacity

    def accept(self, rid: int) -> None:
        """Queue ``rid`` for the next iteration boundary (now, if the worker is idle)."""
        host = self.host
        self.kv_reserved += host.prompt[rid] + host.output[rid]
        self.load += 1
        self.joiners.append(rid)
        if self.settling:
            # Dispatched from the queue by a completion at this very boundary: the iteration
            # being planned picks it up (its prefill runs in it).
            return
        if self.pending_it < 0:  # idle: start a join iteration right away
            self._boundary(self.it, self._env._now)
        elif not self.exact:
            # Busy: the joiner waits for the end of the iteration in progress.
            target = self.seg_it + self._next_boundary_index(self._env._now)
            if target < self.pending_it:
                self._schedule_boundary(target)

    # -- the iteration boundary ------------------------------------------------------------
    def _boundary(self, i: int, t: float) -> None:
        """Iterations up to ``i - 1`` are done at time ``t``; settle them and start the next."""
        host = self.host
        self.pending_it = -1
        self.it = i
        heap = self.heap
        if heap and heap[0][0] < i:
            self.settling = True
            done: list[int] = []
            output = host.output
            prompt = host.prompt
            while heap and heap[0][0] < i:
                fin, rid = heapq.heappop(heap)
                out = output[rid]
                self.sum_p -= prompt[rid]
                self.sum_j -= fin - out + 1
                self.kv_reserved -= prompt[rid] + out
                done.append(rid)
            self.b -= len(done)
            self.load -= len(done)
            host.completed(self.worker_id, done, t)
            self.settling = False
        b = self.b
        c = self._c
        # The per-iteration base cost (weights read, engine overhead) is paid by every
        # iteration, also a prefill-only one on an idle worker (Profile.iteration_s).
        decode = self._a + self._per_seq * b + c * (self.sum_p + b * i - self.sum_j)
        first = decode
        if self.joiners:
            # Join iteration: decode the running batch and prefill the joiners together. Their
            # first token is known now (the end of this iteration), so no event is needed for it.
            joiners, self.joiners = self.joiners, []
            prompt = host.prompt
            output = host.output
            pf = self._pf0
            pf1, pf2 = self._pf1, self._pf2
            for rid in joiners:
                p = prompt[rid]
                pf += pf1 * p + pf2 * p * p
                heapq.heappush(heap, (i + output[rid] - 1, rid))
                self.sum_p += p
                self.sum_j += i
            first = decode + pf
            t_first = t + first
            for rid in joiners:
                host.first_token(rid, t_first)
            b = self.b = b + len(joiners)
        if not b:
            return  # idle
        self.seg_t, self.seg_it, self.seg_first = t, i, first
        self.seg_d1 = self._a + self._per_seq * b + c * (self.sum_p + b * (i + 1) - self.sum_j)
        self.seg_step = c * b
        self._schedule_boundary(i + 1 if self.exact else heap[0][0] + 1)

    def abort(self) -> list[int]:
        """Drop every request (preemption) and return their ids; the worker goes idle."""
        rids = self.joiners + [rid for _, rid in self.heap]
        self.joiners, self.heap = [], []
        self.b = self.load = self.kv_reserved = self.sum_p = self.sum_j = 0
        self.version += 1
        self.pending_it = -1
        return rids

    def rated_tokens_per_s(self) -> float:
        """The profile's rated decode throughput at this worker's max_batch (KV-capped), the
        figure ``sim profile show`` prints for comparison with max_throughput_rate."""
        return self.profile.rated_tokens_per_s(self.max_batch)


@SERVICES.register("embedding")
class EmbeddingService:
    """Batches the requests waiting at the worker up to a token budget; time = a + b·tokens.

    A batch runs to completion; requests admitted meanwhile form the next batch. There is no
    decode, so the first token (the embedding) arrives with completion.
    """

    def __init__(self, host: Host, worker_id: int, profile: Profile, max_batch: int,
                 batch_tokens: int) -> None:
        self.host = host
        self.worker_id = worker_id
        self.max_batch = max_batch
        self.batch_tokens = batch_tokens
        self._a = profile.embed_base_s
        self._b = profile.embed_per_token_s
        self.waiting: list[int] = []
        self.waiting_tokens = 0
        self.running: list[int] = []
        self.load = 0
        self.version = 0

    def can_accept(self, rid: int) -> bool:
        """Room in the next batch (slots and token budget)."""
        return (
            len(self.waiting) < self.max_batch
            and self.waiting_tokens + self.host.prompt[rid] <= self.batch_tokens
        ) or (not self.waiting and not self.running)

    def fits_ever(self, rid: int) -> bool:
        """Any request fits: an oversized one runs as a batch of its own."""
        return True

    def accept(self, rid: int) -> None:
        """Add ``rid`` to the next batch; start it now if the worker is idle."""
        self.waiting.append(rid)
        self.waiting_tokens += self.host.prompt[rid]
        self.load += 1
        if not self.running:
            self._start()

    def _start(self) -> None:
        batch, self.waiting, tokens = self.waiting, [], self.waiting_tokens
        self.waiting_tokens = 0
        self.running = batch
        version = self.version
        self.host.schedule(self._a + self._b * tokens, lambda _e: self._done(version))

    def _done(self, version: int) -> None:
        if version != self.version:
            return
        host, t, batch = self.host, self.host.now, self.running
        for rid in batch:
            host.first_token(rid, t)
        self.running = []
        self.load -= len(batch)
        host.completed(self.worker_id, batch, t)
        if self.waiting and not self.running:
            self._start()

    def abort(self) -> list[int]:
        """Drop every request and return their ids."""
        rids = self.running + self.waiting
        self.running, self.waiting, self.waiting_tokens, self.load = [], [], 0, 0
        self.version += 1
        return rids

    def rated_tokens_per_s(self) -> float:
        """Embedding models emit no output tokens; throughput caps count prompt tokens."""
        step = self._a + self._b * self.batch_tokens
        return self.batch_tokens / step if step > 0 else math.inf


class QueueingService:
    """``max_batch`` independent servers with a service time drawn per request (plain queueing).

    Service times are pre-drawn per request id by the engine, so the same request takes the
    same time whichever worker serves it (common random numbers across configurations).
    """

    def __init__(self, host: Host, worker_id: int, max_batch: int) -> None:
        self.host = host
        self.worker_id = worker_id
        self.max_batch = max_batch
        self.load = 0
        self.active: set[int] = set()
        self.version = 0

    def can_accept(self, rid: int) -> bool:
        """A free server."""
        return self.load < self.max_batch

    def fits_ever(self, rid: int) -> bool:
        """Every request fits."""
        return True

    def accept(self, rid: int) -> None:
        """Start serving ``rid`` now."""
        self.load += 1
        self.active.add(rid)
        version = self.version
        self.host.schedule(self.host.service_time[rid], lambda _e: self._done(version, rid))

    def _done(self, version: int, rid: int) -> None:
        if version != self.version:
            return
        self.active.discard(rid)
        self.load -= 1
        t = self.host.now
        self.host.first_token(rid, t)
        self.host.completed(self.worker_id, [rid], t)

    def abort(self) -> list[int]:
        """Drop every request and return their ids."""
        rids = sorted(self.active)
        self.active.clear()
        self.load = 0
        self.version += 1
        return rids

    def rated_tokens_per_s(self) -> float:
        """Not defined for plain queueing models (no token model): no cap applies."""
        return math.inf


for _name in ("fixed", "exponential", "lognormal"):
    SERVICES.register(_name)(QueueingService)
