"""Replay a measured run through the engine's own scheduler, as an affine function of the
profile coefficients (used by :mod:`sim.calibrate` for runs at a request rate).

A run measured at a request rate (vLLM ``bench serve --request-rate R``) or with its arrival
times (a CSV of requests) cannot be replayed in closed form as a burst can: who shares which
iteration depends on timing. For a *fixed* schedule, however, every iteration's duration is
linear in the six coefficients of :class:`sim.serving.profiles.Profile` (its decode and
prefill terms), so each request's first-token and completion times are affine in them
(arrival time + a sum of iteration times).

:func:`replay` runs one worker — the :class:`~sim.engine.paged.PagedLlmService` (vLLM's
scheduler, ``serving.kv_admission: paged``) or the :class:`~sim.engine.service.LlmService`
(``reserve``), in ``exact`` mode — on a small event loop whose clock values are
:class:`Lin` numbers: a value at the current coefficients plus its gradient in them. The
schedule follows the values; the figures come out as affine functions. :mod:`sim.calibrate`
fits, replays again at the fitted coefficients, and repeats until the fit settles (a
fixed point; at most ``MAX_ROUNDS`` rounds).

Requests are sent as vLLM's benchmark client does: at their arrival times, at most
``max_concurrency`` in flight (the next one is sent when one completes, and its TTFT counts
from then); the engine queues every request it receives (vLLM's waiting queue).
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

#: The coefficients the gradients are taken in (the order of :data:`sim.calibrate.FITTED`).
NCOEF = 6


class Lin:
    """``const + grad @ coefficients``, with ``value`` its value at the current coefficients.

    Supports what the services do with times and durations: sums, differences, products and
    quotients by plain numbers, truthiness (non-zero) and ordering by value.
    """

    __slots__ = ("value", "const", "grad")

    def __init__(self, value: float, const: float, grad: np.ndarray) -> None:
        self.value, self.const, self.grad = value, const, grad

    @staticmethod
    def of(x: Any) -> Lin:
        """A constant (a float) as a Lin; a Lin unchanged."""
        return x if isinstance(x, Lin) else Lin(float(x), float(x), np.zeros(NCOEF))

    def __add__(self, o: Any) -> Lin:
        if isinstance(o, Lin):
            return Lin(self.value + o.value, self.const + o.const, self.grad + o.grad)
        return Lin(self.value + o, self.const + o, self.grad)

    __radd__ = __add__

    def __sub__(self, o: Any) -> Lin:
        if isinstance(o, Lin):
            return Lin(self.value - o.value, self.const - o.const, self.grad - o.grad)
        return Lin(self.value - o, self.const - o, self.grad)

    def __rsub__(self, o: Any) -> Lin:
        return Lin(o - self.value, o - self.const, -self.grad)

    def __mul__(self, k: Any) -> Lin:
        if isinstance(k, Lin):
            raise TypeError("a product of two coefficient-dependent values is not affine")
        return Lin(self.value * k, self.const * k, self.grad * k)

    __rmul__ = __mul__

    def __truediv__(self, k: float) -> Lin:
        return Lin(self.value / k, self.const / k, self.grad / k)

    def __bool__(self) -> bool:
        return self.value != 0 or self.const != 0 or bool(self.grad.any())

    def __lt__(self, o: Any) -> bool:
        return self.value < (o.value if isinstance(o, Lin) else o)

    def __le__(self, o: Any) -> bool:
        return self.value <= (o.value if isinstance(o, Lin) else o)

    def __gt__(self, o: Any) -> bool:
        return self.value > (o.value if isinstance(o, Lin) else o)

    def __ge__(self, o: Any) -> bool:
        return self.value >= (o.value if isinstance(o, Lin) else o)

    def __float__(self) -> float:
        return self.value


def _unit(j: int, value: float) -> Lin:
    g = np.zeros(NCOEF)
    g[j] = 1.0
    return Lin(value, 0.0, g)


@dataclass(frozen=True)
class _Coefs:
    """The profile fields the services read, as Lin unit vectors at the current values."""

    decode_base_s: Lin
    decode_per_seq_s: Lin
    decode_per_ctx_token_s: Lin
    prefill_base_s: Lin
    prefill_per_token_s: Lin
    prefill_per_token2_s: Lin
    kv_capacity_tokens: int


@dataclass
class Replayed:
    """Per request: send, first-token and completion times, and the TTFT (affine in the
    coefficients).

    ``ttft`` is not ``first - sent``: a request sent during an iteration waits for its end,
    and that wait is taken as the same *fraction* of the iteration whatever the coefficients
    (its gradient is the fraction times the iteration's), not as the distance to a boundary
    summed over the whole busy period, whose gradient would be far larger than its value.
    Its value equals ``first - sent``.
    """

    sent: list[Lin]
    first: list[Lin]
    done: list[Lin]
    ttft: list[Lin]


class _Env:
    """The clock the services read (``_now``)."""

    def __init__(self) -> None:
        self._now: Lin = Lin.of(0.0)


class _Host:
    """One worker's engine: an event loop over Lin times, the client's sends, and records."""

    def __init__(self, prompts: Sequence[int], outputs: Sequence[int]) -> None:
        self.env = _Env()
        self.prompt = list(prompts)
        self.output = list(outputs)
        self.service_time = [0.0] * len(self.prompt)
        self._heap: list[tuple[float, int, Lin, Any]] = []
        self._seq = itertools.count()
        n = len(self.prompt)
        self.first: list[Lin | None] = [None] * n
        self.done: list[Lin | None] = [None] * n
        self.on_done: Any = None

    @property
    def now(self) -> Lin:
        return self.env._now

    def schedule_at(self, time: Any, callback: Any) -> None:
        t = Lin.of(time)
        if t.value < self.env._now.value:
            t = self.env._now
        heapq.heappush(self._heap, (t.value, next(self._seq), t, callback))

    def schedule(self, delay: Any, callback: Any) -> None:
        self.schedule_at(self.env._now + delay, callback)

    def first_token(self, rid: int, t: Any) -> None:
        self.first[rid] = Lin.of(t)

    def completed(self, worker_id: int, rids: list[int], t: Any) -> None:
        for rid in rids:
            self.done[rid] = Lin.of(t)
        if self.on_done is not None:
            self.on_done(len(rids))

    def run(self) -> None:
        while self._heap:
            _, _, t, cb = heapq.heappop(self._heap)
            self.env._now = t
            cb(None)


def replay(prompts: Sequence[int], outputs: Sequence[int], arrivals: Sequence[float],
           coefficients: Sequence[float], kv_capacity: int, *, max_seqs: int = 256,
           batched_tokens: int = 8192, admission: str = "paged",
           max_concurrency: int | None = None) -> Replayed:
    """Replay requests (``prompts``/``outputs`` tokens, sent at ``arrivals`` s, sorted) on
    one worker with the given coefficients (:data:`sim.calibrate.FITTED` order).

    Returns each request's send, first-token and completion times as :class:`Lin`. Raises
    ValueError when a request can never fit the KV cache (``prompt + output >
    kv_capacity``), as the engine refuses it.
    """
    from sim.engine.paged import PagedLlmService
    from sim.engine.service import LlmService

    n = len(prompts)
    if not (len(outputs) == len(arrivals) == n):
        raise ValueError("prompts, outputs and arrivals must have the same length")
    for rid in range(n):
        if prompts[rid] + outputs[rid] > kv_capacity:
            raise ValueError(f"request {rid}: {prompts[rid]} + {outputs[rid]} tokens exceed "
                             f"the KV capacity ({kv_capacity} tokens)")
    host = _Host([max(1, int(p)) for p in prompts], [max(1, int(o)) for o in outputs])
    c = [float(x) for x in coefficients]
    u = [_unit(j, c[j]) for j in range(NCOEF)]
    prof: Any = _Coefs(u[0], u[1], u[2], u[3], u[4], u[5], kv_capacity_tokens=kv_capacity)
    h: Any = host  # the services' Host protocol, with Lin times
    svc: Any
    if admission == "paged":
        svc = PagedLlmService(h, 0, prof, max_seqs, True, batched_tokens)
    elif admission == "reserve":
        svc = LlmService(h, 0, prof, max_seqs, True)
    else:
        raise ValueError(f"unknown admission {admission!r} (expected paged or reserve)")
    sent: list[Lin] = [Lin.of(0.0)] * n
    backlog: list[int] = []
    in_flight = 0
    limit = max_concurrency or n

    # The iteration in progress when each request was sent: (start, end), None if idle.
    phase: list[tuple[Lin, Lin] | None] = [None] * n

    def send(rid: int) -> None:
        nonlocal in_flight
        in_flight += 1
        sent[rid] = host.env._now
        if svc.pending_it >= 0:  # exact mode: the pending boundary ends this iteration
            phase[rid] = (svc.seg_t, svc.seg_t + svc.seg_first)
        if admission == "reserve" and not svc.can_accept(rid):
            backlog.append(rid)  # the reserve model holds it until prompt + output fit
            return
        svc.accept(rid)

    def arrive(rid: int) -> Any:
        def cb(_e: object) -> None:
            if in_flight < limit:
                send(rid)
            else:
                waiting.append(rid)
        return cb

    waiting: list[int] = []

    def on_done(k: int) -> None:
        nonlocal in_flight
        in_flight -= k
        while backlog and svc.can_accept(backlog[0]):
            svc.accept(backlog.pop(0))
        while waiting and in_flight < limit:
            send(waiting.pop(0))

    host.on_done = on_done
    for rid, a in enumerate(arrivals):
        host.schedule_at(Lin.of(float(a)), arrive(rid))
    host.run()
    missing = [i for i in range(n) if host.done[i] is None or host.first[i] is None]
    if missing:  # pragma: no cover - every accepted request completes on a lone worker
        raise RuntimeError(f"replay left {len(missing)} requests unfinished")
    first = [x for x in host.first if x is not None]
    ttft = []
    for rid in range(n):
        ph = phase[rid]
        if ph is None:
            ttft.append(first[rid] - sent[rid])
            continue
        start, end = ph
        span = end.value - start.value
        frac = (end.value - sent[rid].value) / span if span > 0 else 0.0
        local = first[rid] - end + frac * (end - start)
        # Same value as first - sent; keep that value exactly (rounding aside).
        ttft.append(Lin(first[rid].value - sent[rid].value,
                        local.const + (first[rid].value - sent[rid].value - local.value),
                        local.grad))
    return Replayed(sent=sent, first=first, done=[x for x in host.done if x is not None],
                    ttft=ttft)


def poisson_arrivals(n: int, rate: float, burstiness: float = 1.0, seed: int = 0) -> np.ndarray:
    """Send times of ``n`` requests as vLLM's benchmark client draws them: gaps from a gamma
    distribution of shape ``burstiness`` and mean ``1 / rate`` (Poisson at burstiness 1;
    ``vllm bench serve --request-rate --burstiness``), the first at 0."""
    rng = np.random.default_rng(seed)
    gaps = rng.gamma(burstiness, 1.0 / (rate * burstiness), size=n)
    gaps[0] = 0.0
    return np.cumsum(gaps)
