"""The SimPy model: arrivals, the gateway queue, the worker pool and the control loop.

SimPy schedules every event; the hot path uses callbacks on timeouts rather than a process
per request, request state lives in per-column lists indexed by request id, and services skip
from event to event (DESIGN §7). The engine does no IO: it returns a :class:`RunRecord`.
"""

from __future__ import annotations

import math
import time
from bisect import bisect_right
from collections import deque
from collections.abc import Callable
from heapq import heappush
from typing import Any

import numpy as np
import simpy
from simpy.events import NORMAL as _NORMAL

from sim.engine.record import (
    COMPLETED,
    FAIL_PREEMPTED,
    FAIL_REJECTED,
    FAIL_TIMEOUT,
    FAIL_TOO_LARGE,
    FAILED,
    DecisionRecord,
    QueueSamples,
    RequestColumns,
    RunRecord,
    Timeline,
    WorkerRecord,
)
from sim.engine.service import SERVICES, EmbeddingService, LlmService, QueueingService
from sim.fleet.model import FleetModel, WorkerShape
from sim.policies.base import Decision, Observation
from sim.rng import Streams


def admission_enforced(scenario: Any) -> bool:
    """Whether ``max_throughput_rate`` is enforced by admission control at the gateway."""
    return (
        scenario.autoscaler.throughput_cap == "admission"
        and float(scenario.deployment.max_throughput_rate or 0) > 0
    )


class _Call:
    """A pre-triggered SimPy event that only runs callbacks (see :meth:`Engine.schedule`)."""

    __slots__ = ("callbacks", "_ok", "_value")

    def __init__(self, callback: Any) -> None:
        self.callbacks: tuple[Any, ...] = (callback,)
        self._ok = True
        self._value: Any = None


# Worker states.
STARTING, READY, DRAINING, TERMINATED = 0, 1, 2, 3


class Worker:
    """One worker: lifecycle state, its service model and its record."""

    __slots__ = (
        "wid", "shape", "service", "state", "record", "version", "rtt_s", "acquired", "noticed",
    )

    def __init__(self, wid: int, shape: WorkerShape, record: WorkerRecord, rtt_s: float) -> None:
        self.wid = wid
        self.rtt_s = rtt_s  # network round trip between the gateway and this worker
        self.acquired = True  # holds its instance (False while waiting for spot capacity)
        self.noticed = False  # received a spot preemption notice
        self.shape = shape
        self.service: Any = None
        self.state = STARTING
        self.record = record
        self.version = 0  # invalidates lifecycle events of a worker that was cancelled


class Engine:
    """One simulation run of a scenario's workload under a policy."""

    def __init__(
        self,
        scenario: Any,
        workload: Any,
        policy: Any,
        *,
        seed: int,
        fleet: FleetModel | None = None,
        progress: Callable[[float], None] | None = None,
    ) -> None:
        self.scenario = scenario
        self.deployment = scenario.deployment
        self.policy = policy
        self.seed = seed
        streams = Streams(seed)
        self.fleet = fleet if fleet is not None else FleetModel(scenario, streams)
        self.progress = progress
        self.env = simpy.Environment()
        self._env_queue = self.env._queue
        self._env_eid = self.env._eid

        n = len(workload.arrival_s)
        self.n = n
        self.arrival: list[float] = workload.arrival_s.tolist()
        self.prompt: list[int] = workload.prompt_tokens.tolist()
        self.service_kind = scenario.serving_kind()
        self.warnings: list[str] = list(getattr(workload, "warnings", ()))
        self.too_long: list[bool] | None = None  # requests the endpoint rejects on arrival
        out = workload.output_tokens
        if self.service_kind == "llm":
            out = self._llm_request_checks(workload.prompt_tokens, out)
        self.output: list[int] = out.tolist()
        # Prefix sums of tokens by arrival order: the policy's cumulative token counts per tick.
        self.cum_prompt: list[int] = [0, *np.cumsum(workload.prompt_tokens, dtype=np.int64).tolist()]
        self.cum_output: list[int] = [0, *np.cumsum(out, dtype=np.int64).tolist()]
        self.service_time: list[float] = self._draw_service_times(streams.get("service"), n)
        self.cols = RequestColumns.empty(workload.arrival_s, workload.prompt_tokens, out)
        self.dispatch_t: list[float] = [math.nan] * n
        self.first_t: list[float] = [math.nan] * n
        self.done_t: list[float] = [math.nan] * n
        self.worker_of: list[int] = [-1] * n
        self.status = bytearray(n)
        self.fail_reason = bytearray(n)
        self.retries: list[int] = [0] * n

        sv = scenario.serving
        self.max_batch = int(sv.max_batch)
        self.exact = sv.mode == "exact"
        self.timeout_s = float(scenario.gateway.request_timeout_s)
        self.rtt_s = float(scenario.gateway.network_rtt_s)
        tcap = float(self.deployment.max_throughput_rate or 0)
        self.admission_rate = tcap if admission_enforced(scenario) else 0.0
        self.bucket = self.bucket_depth = self.admission_rate * float(
            scenario.gateway.admission_burst_s
        )
        self._bucket_t = 0.0
        asc = scenario.autoscaler
        self.tick_s = float(asc.decision_interval_s)
        self.metric = scenario.metric()
        self.statistic_name = asc.statistic
        self.count_waiting = bool(asc.count_waiting)
        self.max_workers = int(asc.max_workers)

        self.queue: deque[int] = deque()
        self.requeued_at: dict[int, float] = {}  # queue re-entry time of preempted requests
        self.queue_area = 0.0
        self.queue_max = 0
        self._q_last_t = 0.0
        self.next_arrival = 0
        self.last_arrival_t = -math.inf
        self.resolved = 0
        self.running = 0
        self.workers: list[Worker] = []
        self.alive: list[Worker] = []  # not terminated (billed or about to be)
        self.ready: list[Worker] = []
        self.n_active = 0  # N: starting or ready
        self.n_starting = 0
        self.win_t: deque[float] = deque()
        self.win_v: deque[float] = deque()
        self.win_sum = 0.0
        self.decisions: list[DecisionRecord] = []
        self.timeline = Timeline()
        self.qsamples = QueueSamples()
        self._arrivals_at_sample = 0  # arrivals counted at the previous queue sample
        self._stop = self.env.event()
        self._updates = list(scenario.updates)

    # -- setup helpers -------------------------------------------------------------------------
    def _llm_request_checks(self, prompt: np.ndarray, out: np.ndarray) -> np.ndarray:
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
        dep = self.scenario.deployment
        ctx = self.scenario.serving.max_model_len
        if ctx is None:
            ctx = max_context_tokens(dep.base_model or dep.model)
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

    def _draw_service_times(self, rng: np.random.Generator, n: int) -> list[float]:
        sv = self.scenario.serving
        kind = self.service_kind
        if kind == "fixed":
            return [float(sv.mean_s)] * n
        if kind == "exponential":
            return list(rng.exponential(sv.mean_s, n).tolist())
        if kind == "lognormal":
            sigma2 = math.log1p(sv.cv**2)
            mu = math.log(sv.mean_s) - sigma2 / 2
            return list(rng.lognormal(mu, math.sqrt(sigma2), n).tolist())
        return []

    # -- scheduling ----------------------------------------------------------------------------
    @property
    def now(self) -> float:
        """Current simulated time."""
        return self.env._now

    def schedule(self, delay: float, callback: Any) -> None:
        """Call ``callback(event)`` after ``delay`` seconds, through SimPy's event queue.

        Equivalent to ``Timeout(env, delay).callbacks.append(callback)``, with a slotted event
        that carries only what ``Environment.step`` reads: half the cost per event on the hot
        path (DESIGN §7).
        """
        entry: Any = (self.env._now + delay, _NORMAL, next(self._env_eid), _Call(callback))
        heappush(self._env_queue, entry)

    def schedule_at(self, time: float, callback: Any) -> None:
        """Call ``callback(event)`` at absolute time ``time`` (clamped to now)."""
        now = self.env._now
        entry: Any = (time if time > now else now, _NORMAL, next(self._env_eid), _Call(callback))
        heappush(self._env_queue, entry)

    # -- run -------------------------------------------------------------------------------------
    def run(self) -> RunRecord:
        """Simulate until the horizon and return what was measured."""
        wall0 = time.perf_counter()
        sc = self.scenario
        start_cold = sc.sim.start == "cold"
        self._request_workers(
            int(self.deployment.initial_worker_config.min_workers), initial=True, cold=start_cold
        )
        self._record_timeline()
        if self.fleet.market is not None:
            self._capacity_changes = self.fleet.market.changes(0.0)
            self._schedule_next_capacity_change()
        if self.n:
            self.schedule(self.arrival[0], self._on_arrival)
        self.schedule(0.0, self._on_tick)
        for upd in self._updates:
            self.schedule(float(upd.at_s), lambda _e, u=upd: self._apply_update(u))
        horizon = sc.sim.horizon_s
        if horizon is None:
            last = self.arrival[-1] if self.n else 0.0
            horizon = last + float(sc.sim.max_drain_s)
            self._drain_stop = True
            if not self.n:
                horizon = 0.0
                self.warnings.append(
                    "the workload has no requests, so the run is empty; set sim.horizon_s to "
                    "see what the idle fleet costs over a period"
                )
        else:
            self._drain_stop = False
        self.schedule(float(horizon), lambda _e: self._finish())
        if self.n == 0 or horizon == 0:
            self._finish()
        self.env.run(until=self._stop)
        return self._record(time.perf_counter() - wall0)

    def _finish(self) -> None:
        if not self._stop.triggered:
            self._stop.succeed()

    # -- arrivals and the gateway -------------------------------------------------------------
    def _on_arrival(self, _e: Any) -> None:
        rid = self.next_arrival
        self.next_arrival = rid + 1
        t = self.env._now
        self.last_arrival_t = t
        if rid + 1 < self.n:
            self.schedule(self.arrival[rid + 1] - t, self._on_arrival)
        if self.too_long is not None and self.too_long[rid]:
            self._fail(rid, t, FAIL_TOO_LARGE)
            return
        if self.admission_rate and not self._admit(rid, t):
            self._fail(rid, t, FAIL_REJECTED)
            return
        q = self.queue
        self._queue_area_to(t)
        q.append(rid)
        if len(q) == 1:  # otherwise the head is blocked and nothing has freed up
            self._dispatch()
        elif len(q) > self.queue_max:
            self.queue_max = len(q)
        if self.progress is not None and not rid % 4096:
            self.progress(t)

    def _queue_area_to(self, t: float) -> None:
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
        need = self.prompt[rid] if self.deployment.inf_type == "embedding" else self.output[rid]
        if need > self.bucket:
            return False
        self.bucket -= need
        return True

    def _dispatch(self) -> None:
        q = self.queue
        t = self.env._now
        self._queue_area_to(t)
        arrival = self.arrival
        ready = self.ready
        while q:
            rid = q[0]
            if t - arrival[rid] > self.timeout_s and self._expired(rid, t):
                q.popleft()
                self._expire(rid, t)
                continue
            # Least-loaded ready worker that can take the head request; the least-loaded
            # one almost always can, so test admission only there before scanning all.
            best = None
            best_load = 1 << 30
            for w in ready:
                load = w.service.load
                if load < best_load:
                    best, best_load = w, load
            if best is not None and not best.service.can_accept(rid):
                best, best_load = None, 1 << 30
                for w in ready:
                    svc = w.service
                    if svc.load < best_load and svc.can_accept(rid):
                        best, best_load = w, svc.load
            if best is None:
                if ready and not any(w.service.fits_ever(rid) for w in ready):
                    q.popleft()
                    self._fail(rid, t, FAIL_TOO_LARGE)
                    continue
                return
            q.popleft()
            self.dispatch_t[rid] = t
            self.worker_of[rid] = best.wid
            self.running += 1
            best.service.accept(rid)

    def _expired(self, rid: int, t: float) -> bool:
        """Whether ``rid`` has waited longer than the timeout since it (re-)entered the queue."""
        return t - self.requeued_at.get(rid, self.arrival[rid]) > self.timeout_s

    def _expire(self, rid: int, t: float) -> None:
        """Request ``rid`` timed out in the queue; it failed when its wait hit the limit."""
        fail_t = self.requeued_at.get(rid, self.arrival[rid]) + self.timeout_s
        # The queue area counted it until now; it left at fail_t.
        self.queue_area -= t - fail_t
        self._fail(rid, fail_t, FAIL_TIMEOUT)

    def _expire_queue(self, t: float) -> None:
        q = self.queue
        self._queue_area_to(t)
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

    def _fail(self, rid: int, t: float, reason: int) -> None:
        self.status[rid] = FAILED
        self.fail_reason[rid] = reason
        self.done_t[rid] = t
        if reason not in (FAIL_REJECTED, FAIL_TOO_LARGE):
            # A request that waited and failed counts in the autoscaler's window with its time
            # to failure; one rejected on arrival never entered the system (its 0 s would
            # only hide the overload that caused it).
            self._window_add(t, t - self.arrival[rid])
        self._resolve(1)

    def _resolve(self, k: int) -> None:
        self.resolved += k
        if self._drain_stop and self.resolved >= self.n:
            self._finish()

    # -- service callbacks (Host protocol) -----------------------------------------------------
    def first_token(self, rid: int, t: float) -> None:
        """Record the first token of ``rid``."""
        self.first_t[rid] = t + self.workers[self.worker_of[rid]].rtt_s

    def completed(self, worker_id: int, rids: list[int], t: float) -> None:
        """Requests finished on a worker: record them and refill the worker from the queue."""
        rtt = self.workers[worker_id].rtt_s
        done_t, status, arrival = self.done_t, self.status, self.arrival
        tc = t + rtt
        # The autoscaler's latency metric of each request, from the column it is based on.
        start = {"ttft": self.first_t, "queue": self.dispatch_t}.get(self.metric)
        win_t, win_v = self.win_t, self.win_v
        total = 0.0
        for rid in rids:
            done_t[rid] = tc
            status[rid] = COMPLETED
            v = (tc if start is None else start[rid]) - arrival[rid]
            win_t.append(tc)
            win_v.append(v)
            total += v
        self.win_sum += total
        k = len(rids)
        self.running -= k
        w = self.workers[worker_id]
        w.record.requests_served += k
        if w.state == DRAINING and w.service.load == 0:
            self._terminate(w, w.record.end_reason or "scale_down")
        self._resolve(k)
        if self.queue:
            self._dispatch()

    def _window_add(self, t: float, v: float) -> None:
        self.win_t.append(t)
        self.win_v.append(v)
        self.win_sum += v

    # -- workers ---------------------------------------------------------------------------------
    def _add_worker(
        self, shape: WorkerShape, *, initial: bool = False, cold: bool = True
    ) -> Worker:
        t = self.env._now
        wid = len(self.workers)
        rec = WorkerRecord(
            worker_id=wid, gpu=shape.gpu, gpus=shape.gpus, cloud=shape.cloud,
            region=shape.region, zone=shape.zone, spot=shape.spot, on_prem=shape.on_prem,
            initial=initial, price_per_hour_usd=shape.price_per_hour_usd, requested_s=t,
            instance_type=shape.instance_type,
            on_demand_price_per_hour_usd=shape.on_demand_price_per_hour_usd,
        )
        w = Worker(wid, shape, rec, self._rtt_to(shape))
        w.service = self._make_service(w)
        self.workers.append(w)
        self.alive.append(w)
        self.n_active += 1
        if shape.awaiting_capacity:
            self.n_starting += 1
            self._await_spot(w, initial)
            self._record_timeline()
        elif initial and not cold:
            rec.provisioned_s = t
            self._on_ready(w, w.version)
            self._arm_preemption(w)
        else:
            self.n_starting += 1
            self._provision(w, initial)
            self._record_timeline()  # N counts a worker from the moment it is requested
        return w

    def _provision(self, w: Worker, initial: bool) -> None:
        warm = not initial and bool(self.deployment.autoscaling_config.enable_speedup_shared)
        prov, load = self.fleet.cold_start(w.shape, warm)
        v = w.version
        self.schedule(prov, lambda _e: self._on_provisioned(w, v, load))

    # -- trace-driven spot capacity ----------------------------------------------------------
    def _spot_counts(self) -> dict[str, int]:
        """Spot instances held per zone (workers under preemption notice no longer count)."""
        counts: dict[str, int] = {}
        for w in self.alive:
            if w.shape.spot and w.acquired and not w.noticed:
                counts[w.shape.zone] = counts.get(w.shape.zone, 0) + 1
        return counts

    def _await_spot(self, w: Worker, initial: bool) -> None:
        """No spot capacity anywhere: wait for the zone's capacity up to spot_acquire_timeout_s
        after the request, then give up on spot and request an on-demand worker instead."""
        market = self.fleet.market
        assert market is not None
        w.acquired = False
        t = self.env._now
        deadline = w.record.requested_s + float(self.scenario.fleet.spot.spot_acquire_timeout_s)
        zone = w.shape.zone
        free_at = market.next_available(zone, t, self._spot_counts().get(zone, 0))
        v = w.version
        if free_at <= deadline:
            self.schedule(free_at - t, lambda _e: self._on_spot_capacity(w, v, initial))
        else:
            self.schedule(max(deadline - t, 0.0), lambda _e: self._spot_fallback(w, v))

    def _on_spot_capacity(self, w: Worker, version: int, initial: bool) -> None:
        if version != w.version:
            return
        market = self.fleet.market
        assert market is not None
        zone = w.shape.zone
        if market.can_acquire(zone, self.env._now, self._spot_counts().get(zone, 0)):
            w.acquired = True
            self._provision(w, initial)
        else:  # another waiting worker took the capacity first: wait on, until the deadline
            self._await_spot(w, initial)

    def _spot_fallback(self, w: Worker, version: int) -> None:
        if version != w.version:
            return
        self.n_starting -= 1
        self.n_active -= 1
        self._terminate(w, "provision_failed")
        placed, blocked = self._request_workers(1, allow_spot=False)
        why = f"no spot capacity for worker {w.wid}: on-demand"
        self._log(Decision("replace", placed, why + (f"; blocked: {blocked}" if blocked else "")))

    def _on_capacity_change(self, change: Any) -> None:
        """A zone's spot capacity changed: preempt the excess (newest first), then wait for the next."""
        market = self.fleet.market
        assert market is not None
        t = self.env._now
        excess = market.excess(change.zone, t, self._spot_counts().get(change.zone, 0))
        if excess:
            held = [
                w for w in self.alive
                if w.shape.spot and w.acquired and w.shape.zone == change.zone
                and not w.noticed
            ]
            for w in sorted(held, key=lambda w: -w.wid)[:excess]:
                self._on_preempt_notice(w, w.version)
        self._schedule_next_capacity_change()

    def _schedule_next_capacity_change(self) -> None:
        change = next(self._capacity_changes, None)
        if change is not None:
            self.schedule(
                max(change.time_s - self.env._now, 0.0), lambda _e: self._on_capacity_change(change)
            )

    def _rtt_to(self, shape: WorkerShape) -> float:
        """The gateway-worker round trip: paid by workers outside the gateway's cloud/region."""
        gw = self.deployment.gateway_config
        if gw is None or self.rtt_s == 0:
            return 0.0
        same_cloud = shape.cloud.lower() == str(gw.name).lower()
        same_region = not gw.region or gw.region == shape.region
        return 0.0 if same_cloud and same_region else self.rtt_s

    def _on_demand_workers(self) -> int:
        return sum(
            1 for w in self.alive
            if w.state in (STARTING, READY) and not w.shape.spot and not w.shape.on_prem
        )

    def _request_workers(
        self, k: int, *, initial: bool = False, cold: bool = True, allow_spot: bool = True
    ) -> tuple[int, str]:
        """Place and start up to ``k`` workers; returns how many were placed and, if fewer,
        what stopped them ("on-prem full" or "price cap").

        The price cap is checked worker by worker against the summed price of every
        non-terminated worker (the initial fleet is the deployment itself and is not capped).
        """
        capped = not initial and float(self.deployment.max_price_per_hour or 0) > 0
        for placed in range(k):
            if capped and self._price_room(self._next_shape(allow_spot=allow_spot, peek=True)) < 1:
                return placed, "price cap"
            shape = self._next_shape(initial=initial, allow_spot=allow_spot)
            if shape is None:
                return placed, "on-prem full"
            self._add_worker(shape, initial=initial, cold=cold)
        return k, ""

    def _next_shape(
        self, *, initial: bool = False, allow_spot: bool = True, peek: bool = False
    ) -> WorkerShape | None:
        """Where the next worker would go now (``peek`` claims no on-prem GPUs)."""
        market = self.fleet.market
        room = (
            market.acquirable_zones(self.env._now, self._spot_counts())
            if market is not None else None
        )
        return self.fleet.place(
            self.deployment, initial=initial, on_demand_workers=self._on_demand_workers(),
            spot_room=room, allow_spot=allow_spot, peek=peek,
        )

    def _price_room(self, shape: WorkerShape | None) -> int:
        """How many workers like ``shape`` fit under max_price_per_hour (huge when uncapped).

        The cap bounds the summed hourly price of every non-terminated worker.
        """
        cap = float(self.deployment.max_price_per_hour or 0)
        price = shape.price_per_hour_usd if shape is not None else 0.0
        if cap <= 0 or price <= 0:
            return 1 << 30
        return int(math.floor((cap - self._price_now()) / price + 1e-9))

    def _make_service(self, w: Worker) -> Any:
        kind = self.service_kind
        cls = SERVICES.get(kind)
        if cls is LlmService:
            return LlmService(self, w.wid, w.shape.profile, self.max_batch, self.exact)  # type: ignore[arg-type]
        if cls is EmbeddingService:
            return EmbeddingService(
                self, w.wid, w.shape.profile, self.max_batch,  # type: ignore[arg-type]
                int(self.scenario.serving.embedding_batch_tokens),
            )
        if cls is QueueingService:
            return QueueingService(self, w.wid, self.max_batch)
        return cls(self, w.wid, w.shape, self.scenario.serving)  # a user-registered service

    def _on_provisioned(self, w: Worker, version: int, load_s: float) -> None:
        if version != w.version:
            return
        w.record.provisioned_s = self.env._now
        self._record_timeline()
        self._arm_preemption(w)
        self.schedule(load_s, lambda _e: self._on_loaded(w, version))

    def _on_loaded(self, w: Worker, version: int) -> None:
        if version != w.version or w.state != STARTING:
            return  # cancelled, or preempted while loading
        self.n_starting -= 1
        self._on_ready(w, version)

    def _on_ready(self, w: Worker, version: int) -> None:
        w.state = READY
        w.record.ready_s = self.env._now
        self.ready.append(w)
        self._record_timeline()
        if self.queue:
            self._dispatch()

    def _arm_preemption(self, w: Worker) -> None:
        ttp = self.fleet.time_to_preemption(w.shape)
        if math.isfinite(ttp):
            v = w.version
            self.schedule(ttp, lambda _e: self._on_preempt_notice(w, v))

    def _on_preempt_notice(self, w: Worker, version: int) -> None:
        if version != w.version or w.state == TERMINATED:
            return
        t = self.env._now
        was_active = w.state in (STARTING, READY)
        if w.state == STARTING:
            self.n_starting -= 1
        if w.state == READY:
            self.ready.remove(w)
        if was_active:
            self.n_active -= 1
        w.state = DRAINING
        w.noticed = True
        if math.isnan(w.record.drain_s):  # a worker already draining keeps its drain record
            w.record.drain_s = t
        if was_active:
            w.record.end_reason = "preempted"
        self._record_timeline()
        if was_active:
            # The replacement is requested at notice time, outside the cooldowns.
            placed, blocked = self._request_workers(1)
            self._log(
                Decision("replace", placed, f"spot preemption notice for worker {w.wid}"
                         + (f"; blocked: {blocked}" if blocked else ""))
            )
        if w.service.load == 0:
            # Nothing to finish (idle, or still loading): release the VM now, not at the end
            # of the notice period.
            self._terminate(w, "preempted")
            return
        self.schedule(self.fleet.notice_s(w.shape), lambda _e: self._on_preempted(w, version))

    def _on_preempted(self, w: Worker, version: int) -> None:
        if version != w.version or w.state == TERMINATED:
            return
        t = self.env._now
        lost = w.service.abort() if w.service is not None else []
        self.running -= len(lost)
        if lost:
            # The lost requests shared the worker's GPUs; their service so far is redone.
            served = sum(t - self.dispatch_t[rid] for rid in lost)
            w.record.lost_work_gpu_s = served * w.shape.gpus / len(lost)
        on_fail = self.scenario.fleet.spot.on_preempt == "fail"
        requeue = []
        for rid in lost:
            if on_fail:
                self._fail(rid, t, FAIL_PREEMPTED)
            else:
                self.retries[rid] += 1
                self.first_t[rid] = math.nan
                self.dispatch_t[rid] = math.nan
                self.requeued_at[rid] = t
                requeue.append(rid)
        if requeue:
            self._queue_area_to(t)
            # Back to the head of the queue in their original arrival order.
            self.queue.extendleft(sorted(requeue, reverse=True))
            self.queue_max = max(self.queue_max, len(self.queue))
        self._terminate(w, "preempted")
        if self.queue:
            self._dispatch()

    def _drain(self, w: Worker, reason: str) -> None:
        """Stop sending requests to ``w``; it terminates once its in-flight requests finish."""
        t = self.env._now
        if w.state == READY:
            self.ready.remove(w)
        elif w.state == STARTING:
            self.n_starting -= 1
        self.n_active -= 1
        w.record.drain_s = t
        w.record.end_reason = reason
        if w.state == STARTING or w.service.load == 0:
            w.version += 1  # cancels pending provisioning/loading/preemption events
            self._terminate(w, reason)
        else:
            w.state = DRAINING
            self._record_timeline()

    def _terminate(self, w: Worker, reason: str) -> None:
        self.alive.remove(w)
        self.fleet.release(w.shape)
        w.state = TERMINATED
        w.version += 1
        w.record.terminated_s = self.env._now
        w.record.end_reason = reason
        self._record_timeline()

    def _victims(self, k: int) -> list[Worker]:
        """Which ``k`` workers to drain: cloud before on-prem, most expensive first, then fewest
        requests in flight, then newest."""
        active = [w for w in self.alive if w.state in (STARTING, READY)]
        active.sort(
            key=lambda w: (
                w.shape.on_prem,
                -w.shape.price_per_hour_usd,
                w.service.load if w.state == READY else 0,
                -w.wid,
            )
        )
        return active[:k]

    # -- monitors --------------------------------------------------------------------------------
    def _record_timeline(self) -> None:
        tl = self.timeline
        t = self.env._now
        billed = [w for w in self.alive if not math.isnan(w.record.provisioned_s)]
        point = (
            self.n_active,
            len(self.ready),
            len(billed),
            sum(w.shape.price_per_hour_usd for w in billed),
        )
        if tl.time_s and tl.time_s[-1] == t:
            tl.workers_total[-1], tl.workers_ready[-1], tl.workers_billed[-1] = point[:3]
            tl.cost_rate_usd_per_h[-1] = point[3]
            return
        tl.time_s.append(t)
        tl.workers_total.append(point[0])
        tl.workers_ready.append(point[1])
        tl.workers_billed.append(point[2])
        tl.cost_rate_usd_per_h.append(point[3])

    # -- control loop ------------------------------------------------------------------------------
    def _statistic(self, t: float) -> tuple[float, int, float]:
        """(S, finished in window, window length) over (t - window, t]."""
        window = float(self.deployment.autoscaling_config.time_window_sec)
        wt, wv = self.win_t, self.win_v
        cutoff = t - window
        while wt and wt[0] <= cutoff:
            wt.popleft()
            self.win_sum -= wv.popleft()
        if not wt:
            self.win_sum = 0.0  # drop float residue once the window is empty
        n = len(wt)
        waiting: list[float] = []
        if self.count_waiting and self.queue:
            arrival = self.arrival
            waiting = [t - arrival[rid] for rid in self.queue]
        if n + len(waiting) == 0:
            return math.nan, 0, window
        if self.statistic_name == "mean":
            return (self.win_sum + sum(waiting)) / (n + len(waiting)), n, window
        q = {"p50": 50, "p90": 90, "p95": 95, "p99": 99}[self.statistic_name]
        values = np.fromiter(wv, dtype=np.float64, count=n)
        if waiting:
            values = np.concatenate([values, np.asarray(waiting)])
        return float(np.percentile(values, q)), n, window

    def _addable(self) -> tuple[int, str]:
        dep = self.deployment
        limits: list[tuple[int, str]] = [
            (self.max_workers - self.n_active, "max_workers"),
            (self.fleet.placeable(dep), "on-prem full"),
        ]
        if float(dep.max_price_per_hour or 0) > 0:
            limits.append((self._price_room(self._next_shape(peek=True)), "price cap"))
        tcap = float(dep.max_throughput_rate or 0)
        if tcap > 0 and self.scenario.autoscaler.throughput_cap == "scale":
            rated = sum(
                w.service.rated_tokens_per_s()
                for w in self.alive if w.state in (STARTING, READY)
            )
            limits.append((0 if rated > tcap else 1 << 30, "throughput cap"))
        room, name = min(limits, key=lambda x: x[0])
        return max(room, 0), name

    def _price_now(self) -> float:
        """Summed hourly price of all non-terminated workers (what the price cap bounds)."""
        return sum(w.shape.price_per_hour_usd for w in self.alive)

    def _on_tick(self, _e: Any) -> None:
        t = self.env._now
        self._expire_queue(t)
        s, finished, window = self._statistic(t)
        arrived = self.next_arrival
        in_window = arrived - bisect_right(self.arrival, t - window, 0, arrived)
        addable, limit = self._addable()
        current_price = self._price_now()
        obs = Observation(
            time_s=t, workers=self.n_active, ready=len(self.ready), starting=self.n_starting,
            queue_len=len(self.queue), running=self.running, statistic=s,
            finished_in_window=finished, arrivals_in_window=in_window, window_s=window,
            last_arrival_s=self.last_arrival_t,
            min_workers=int(self.deployment.initial_worker_config.min_workers),
            addable=addable, addable_limit=limit, price_per_hour_usd=current_price,
            arrived_total=arrived, prompt_tokens_arrived=self.cum_prompt[arrived],
            output_tokens_arrived=self.cum_output[arrived],
        )
        d = self.policy.decide(obs)
        self._apply(d, obs)
        qs = self.qsamples
        qs.time_s.append(t)
        qs.queue_len.append(len(self.queue))
        qs.running.append(self.running)
        qs.arrivals.append(arrived - self._arrivals_at_sample)
        self._arrivals_at_sample = arrived
        self.schedule(self.tick_s, self._on_tick)

    def _apply(self, d: Decision, obs: Observation) -> None:
        if d.delta > 0:
            self._request_workers(d.delta)  # the policy asked for at most what the caps allow
        elif d.delta < 0:
            reason = "scale_to_zero" if d.action == "to_zero" else "scale_down"
            for w in self._victims(-d.delta):
                self._drain(w, reason)
        if d.logged:
            self._log(d, obs.workers)

    def _log(self, d: Decision, workers: int | None = None) -> None:
        self.decisions.append(
            DecisionRecord(
                time_s=self.env._now, policy=getattr(self.policy, "name", "custom"),
                statistic=float(d.statistic), workers=self.n_active if workers is None else workers,
                action=d.action, delta=d.delta, reason=d.reason,
            )
        )

    def _apply_update(self, upd: Any) -> None:
        from sim.api.schema import apply_update

        t = self.env._now
        before = self.n_active
        self.deployment = apply_update(self.deployment, upd.body)
        immediate = bool(upd.body.imidiate_scale_down)
        self.policy.on_update(self.deployment, t, immediate)
        delta = 0
        if immediate:
            surplus = self.n_active - int(self.deployment.initial_worker_config.min_workers)
            if surplus > 0:
                for w in self._victims(surplus):
                    self._drain(w, "update")
                delta = -surplus
        reason = "PUT body applied" + (", imidiate_scale_down" if immediate else "")
        self._log(Decision("update", delta, reason), before)

    # -- results ---------------------------------------------------------------------------------
    def _record(self, wall_s: float) -> RunRecord:
        t = self.env._now
        self._expire_queue(t)
        self._queue_area_to(t)
        for w in self.workers:
            if w.state != TERMINATED:
                w.record.terminated_s = t
                w.record.end_reason = w.record.end_reason or "horizon"
        self._record_timeline()
        cols = self.cols
        cols.dispatch_s = np.asarray(self.dispatch_t, dtype=np.float64)
        cols.first_token_s = np.asarray(self.first_t, dtype=np.float64)
        cols.completion_s = np.asarray(self.done_t, dtype=np.float64)
        cols.worker = np.asarray(self.worker_of, dtype=np.int32)
        cols.status = np.frombuffer(bytes(self.status), dtype=np.int8).copy()
        cols.fail_reason = np.frombuffer(bytes(self.fail_reason), dtype=np.int8).copy()
        cols.retries = np.asarray(self.retries, dtype=np.int16)
        # Requests not yet arrived at the horizon did not arrive: drop them from the columns.
        arrived = self.next_arrival
        if arrived < self.n:
            self.warnings.append(
                f"{self.n - arrived:,} of {self.n:,} requests arrive after the horizon "
                f"({t:,.1f} s) and were not simulated"
            )
            for name in (
                "arrival_s", "prompt_tokens", "output_tokens", "dispatch_s", "first_token_s",
                "completion_s", "worker", "status", "fail_reason", "retries",
            ):
                setattr(cols, name, getattr(cols, name)[:arrived])
        self.warnings.extend(self.fleet.notes)
        return RunRecord(
            requests=cols,
            workers=[w.record for w in self.workers],
            decisions=self.decisions,
            timeline=self.timeline,
            queue=self.qsamples,
            horizon_s=t,
            seed=self.seed,
            events=next(self._env_eid),  # SimPy's event id counter: events scheduled
            wall_s=wall_s,
            queue_area=self.queue_area,
            queue_max=self.queue_max,
            warnings=self.warnings,
        )
