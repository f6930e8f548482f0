"""The worker pool's lifecycle: requests for workers, placement, cold start, drain, billing
records and spot (preemption notices, trace-driven capacity, on-demand fallback).

DESIGN §5 (Worker lifecycle): requested → provisioning → loading → ready → draining →
terminated; billing runs from the end of provisioning to termination. Where a new worker
goes and what it costs is the fleet model's answer (:mod:`sim.fleet.model`); this module
keeps the workers' states, the counts the control loop reads (N, ready, starting) and the
time-weighted timeline of workers and cost rate.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sim.engine.record import Timeline, WorkerRecord
from sim.fleet.model import FleetModel, WorkerShape
from sim.policies.base import Decision

if TYPE_CHECKING:
    from sim.engine.clock import Clock
    from sim.engine.control import DecisionLog
    from sim.engine.gateway import Gateway

# Worker states.
STARTING, READY, DRAINING, TERMINATED = 0, 1, 2, 3


class Worker:
    """One worker: lifecycle state, its service model and its record."""

    __slots__ = (
        "wid", "shape", "service", "state", "record", "version", "rtt_s", "acquired", "noticed",
        "fallback", "replaces", "ready_seq",
    )

    def __init__(self, wid: int, shape: WorkerShape, record: WorkerRecord, rtt_s: float) -> None:
        self.wid = wid
        self.rtt_s = rtt_s  # network round trip between the gateway and this worker
        self.acquired = True  # holds its instance (False while waiting for spot capacity)
        self.noticed = False  # received a spot preemption notice
        self.fallback = False  # on-demand because spot capacity ran out (may return to spot)
        self.replaces: Worker | None = None  # the fallback worker this spot worker replaces
        self.shape = shape
        self.service: Any = None
        self.state = STARTING
        self.record = record
        self.version = 0  # invalidates lifecycle events of a worker that was cancelled
        self.ready_seq = -1  # order of becoming ready (the gateway's tie-break among equals)


class Pool:
    """The workers of one run and every transition of their lifecycle.

    ``deployment`` is the create body as it stands (the control loop replaces it when an
    update applies); ``spot`` is the scenario's ``fleet.spot`` section; ``make_service``
    builds a worker's service model.
    """

    def __init__(
        self,
        clock: Clock,
        fleet: FleetModel,
        gateway: Gateway,
        decisions: DecisionLog,
        *,
        deployment: Any,
        spot: Any,
        network_rtt_s: float,
        make_service: Callable[[Worker], Any],
    ) -> None:
        self.clock = clock
        self.env = clock.env
        self.fleet = fleet
        self.gateway = gateway
        self.decisions = decisions
        self.deployment = deployment
        self.on_preempt_fail = spot.on_preempt == "fail"
        self.return_to_spot = bool(getattr(spot, "return_to_spot", True))
        self.spot_acquire_timeout_s = float(spot.spot_acquire_timeout_s)
        self.rtt_s = float(network_rtt_s)
        self.make_service = make_service
        self.workers: list[Worker] = []
        self.alive: list[Worker] = []  # not terminated (billed or about to be)
        self.ready: list[Worker] = gateway.ready  # shared with the gateway, never rebound
        self.n_active = 0  # N: starting or ready
        self.n_starting = 0
        self.timeline = Timeline()
        self._capacity_changes: Any = None

    def start(self, *, cold: bool) -> None:
        """The initial fleet (``min_workers``) and, with a capacity trace, its first change."""
        self.request_workers(
            int(self.deployment.initial_worker_config.min_workers), initial=True, cold=cold
        )
        self.record_timeline()
        if self.fleet.market is not None:
            self._capacity_changes = self.fleet.market.changes(0.0)
            self._schedule_next_capacity_change()

    # -- requesting workers ------------------------------------------------------------------------
    def request_workers(
        self, k: int, *, initial: bool = False, cold: bool = True, allow_spot: bool = True
    ) -> tuple[int, str]:
        """Place and start up to ``k`` workers; returns how many were placed and, if fewer,
        what stopped them ("on-prem full" or "price cap").

        The price cap is checked worker by worker against the summed price of every
        non-terminated worker (the initial fleet is the deployment itself and is not capped).
        """
        capped = not initial and float(self.deployment.max_price_per_hour or 0) > 0
        for placed in range(k):
            if capped and self.price_room(self.next_shape(allow_spot=allow_spot, peek=True)) < 1:
                return placed, "price cap"
            shape = self.next_shape(initial=initial, allow_spot=allow_spot)
            if shape is None:
                return placed, "on-prem full"
            self._add_worker(shape, initial=initial, cold=cold)
        return k, ""

    def next_shape(
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

    def price_room(self, shape: WorkerShape | None) -> int:
        """How many workers like ``shape`` fit under max_price_per_hour (huge when uncapped).

        The cap bounds the summed hourly price of every non-terminated worker.
        """
        cap = float(self.deployment.max_price_per_hour or 0)
        price = shape.price_per_hour_usd if shape is not None else 0.0
        if cap <= 0 or price <= 0:
            return 1 << 30
        return int(math.floor((cap - self.price_now()) / price + 1e-9))

    def price_now(self) -> float:
        """Summed hourly price of all non-terminated workers (what the price cap bounds)."""
        return sum(w.shape.price_per_hour_usd for w in self.alive)

    def rated_tokens_per_s(self) -> float:
        """Summed rated throughput of the starting and ready workers (for the throughput cap)."""
        return sum(
            w.service.rated_tokens_per_s()
            for w in self.alive if w.state in (STARTING, READY)
        )

    def _on_demand_workers(self) -> int:
        return sum(
            1 for w in self.alive
            if w.state in (STARTING, READY) and not w.shape.spot and not w.shape.on_prem
        )

    def _rtt_to(self, shape: WorkerShape) -> float:
        """The gateway-worker round trip: paid by workers outside the gateway's cloud/region."""
        gw = self.deployment.gateway_config
        if gw is None or self.rtt_s == 0:
            return 0.0
        same_cloud = shape.cloud.lower() == str(gw.name).lower()
        same_region = not gw.region or gw.region == shape.region
        return 0.0 if same_cloud and same_region else self.rtt_s

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
        w.service = self.make_service(w)
        self.workers.append(w)
        self.alive.append(w)
        self.n_active += 1
        if shape.awaiting_capacity:
            self.n_starting += 1
            self._await_spot(w, initial)
            self.record_timeline()
        elif initial and not cold:
            rec.provisioned_s = t
            self._on_ready(w, w.version)
            self._arm_preemption(w)
        else:
            self.n_starting += 1
            self._provision(w, initial)
            self.record_timeline()  # N counts a worker from the moment it is requested
        return w

    # -- cold start ----------------------------------------------------------------------------------
    def _provision(self, w: Worker, initial: bool) -> None:
        warm = not initial and bool(self.deployment.autoscaling_config.enable_speedup_shared)
        prov, load = self.fleet.cold_start(w.shape, warm)
        v = w.version
        self.clock.schedule(prov, lambda _e: self._on_provisioned(w, v, load))

    def _on_provisioned(self, w: Worker, version: int, load_s: float) -> None:
        if version != w.version:
            return
        w.record.provisioned_s = self.env._now
        self.record_timeline()
        self._arm_preemption(w)
        self.clock.schedule(load_s, lambda _e: self._on_loaded(w, version))

    def _on_loaded(self, w: Worker, version: int) -> None:
        if version != w.version or w.state != STARTING:
            return  # cancelled, or preempted while loading
        self.n_starting -= 1
        self._on_ready(w, version)

    def _on_ready(self, w: Worker, version: int) -> None:
        w.state = READY
        w.record.ready_s = self.env._now
        self.ready.append(w)
        self.gateway.least.add(w)
        self.record_timeline()
        old = w.replaces
        if old is not None:
            w.replaces = None
            self.n_active += 1  # a replacement counts in N from the moment it is ready
            if old.state in (STARTING, READY):  # back on spot: the on-demand stand-in goes
                self.drain(old, "return_to_spot")
        if self.gateway.queue:
            self.gateway.dispatch()

    # -- drain and termination -------------------------------------------------------------------
    def drain(self, w: Worker, reason: str) -> None:
        """Stop sending requests to ``w``; it terminates once its in-flight requests finish."""
        t = self.env._now
        if w.state == READY:
            self.ready.remove(w)
        elif w.state == STARTING:
            self.n_starting -= 1
        if w.replaces is None:
            self.n_active -= 1
        w.replaces = None
        w.record.drain_s = t
        w.record.end_reason = reason
        if w.state == STARTING or w.service.load == 0:
            w.version += 1  # cancels pending provisioning/loading/preemption events
            self._terminate(w, reason)
        else:
            w.state = DRAINING
            self.record_timeline()

    def served(self, w: Worker, k: int) -> None:
        """``k`` requests finished on ``w``; a draining worker with nothing left terminates."""
        w.record.requests_served += k
        if w.state == DRAINING and w.service.load == 0:
            self._terminate(w, w.record.end_reason or "scale_down")

    def _terminate(self, w: Worker, reason: str) -> None:
        self.alive.remove(w)
        self.fleet.release(w.shape)
        w.state = TERMINATED
        w.version += 1
        w.record.terminated_s = self.env._now
        w.record.end_reason = reason
        self.record_timeline()

    def victims(self, k: int) -> list[Worker]:
        """Which ``k`` workers to drain: cloud before on-prem, most expensive first, then fewest
        requests in flight, then newest."""
        # A spot replacement still starting is not in N (its on-demand stand-in is).
        active = [
            w for w in self.alive if w.state in (STARTING, READY) and w.replaces is None
        ]
        active.sort(
            key=lambda w: (
                w.shape.on_prem,
                -w.shape.price_per_hour_usd,
                w.service.load if w.state == READY else 0,
                -w.wid,
            )
        )
        return active[:k]

    def finish(self, t: float) -> None:
        """The horizon: every worker still alive ends here."""
        for w in self.workers:
            if w.state != TERMINATED:
                w.record.terminated_s = t
                w.record.end_reason = w.record.end_reason or "horizon"
        self.record_timeline()

    # -- spot preemption -----------------------------------------------------------------------------
    def _arm_preemption(self, w: Worker) -> None:
        ttp = self.fleet.time_to_preemption(w.shape)
        if math.isfinite(ttp):
            v = w.version
            self.clock.schedule(ttp, lambda _e: self._on_preempt_notice(w, v))

    def _on_preempt_notice(self, w: Worker, version: int) -> None:
        if version != w.version or w.state == TERMINATED:
            return
        t = self.env._now
        was_active = w.state in (STARTING, READY)
        if w.state == STARTING:
            self.n_starting -= 1
        if w.state == READY:
            self.ready.remove(w)
        replacing = w.replaces is not None
        w.replaces = None
        if was_active and not replacing:
            self.n_active -= 1
        w.state = DRAINING
        w.noticed = True
        if math.isnan(w.record.drain_s):  # a worker already draining keeps its drain record
            w.record.drain_s = t
        if was_active:
            w.record.end_reason = "preempted"
        self.record_timeline()
        if was_active and not replacing:  # a lost spot replacement leaves its stand-in running
            # The replacement is requested at notice time, outside the cooldowns.
            placed, blocked = self.request_workers(1)
            self.decisions.log(
                Decision("replace", placed, f"spot preemption notice for worker {w.wid}"
                         + (f"; blocked: {blocked}" if blocked else "")),
                self.n_active,
            )
        if w.service.load == 0:
            # Nothing to finish (idle, or still loading): release the VM now, not at the end
            # of the notice period.
            self._terminate(w, "preempted")
            return
        self.clock.schedule(
            self.fleet.notice_s(w.shape), lambda _e: self._on_preempted(w, version)
        )

    def _on_preempted(self, w: Worker, version: int) -> None:
        if version != w.version or w.state == TERMINATED:
            return
        t = self.env._now
        lost = w.service.abort() if w.service is not None else []
        if lost:
            # The lost requests shared the worker's GPUs; their service so far is redone.
            dispatch_t = self.gateway.reqs.dispatch_t
            served = sum(t - dispatch_t[rid] for rid in lost)
            w.record.lost_work_gpu_s = served * w.shape.gpus / len(lost)
        self.gateway.take_back(lost, t, fail=self.on_preempt_fail)
        self._terminate(w, "preempted")
        if self.gateway.queue:
            self.gateway.dispatch()

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
        deadline = w.record.requested_s + self.spot_acquire_timeout_s
        zone = w.shape.zone
        free_at = market.next_available(zone, t, self._spot_counts().get(zone, 0))
        v = w.version
        if free_at <= deadline:
            self.clock.schedule(free_at - t, lambda _e: self._on_spot_capacity(w, v, initial))
        else:
            self.clock.schedule(max(deadline - t, 0.0), lambda _e: self._spot_fallback(w, v))

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
        before = len(self.workers)
        placed, blocked = self.request_workers(1, allow_spot=False)
        for nw in self.workers[before:]:
            nw.fallback = not nw.shape.spot and not nw.shape.on_prem
        why = f"no spot capacity for worker {w.wid}: on-demand"
        self.decisions.log(
            Decision("replace", placed, why + (f"; blocked: {blocked}" if blocked else "")),
            self.n_active,
        )

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
        elif self.return_to_spot:
            self._return_to_spot()
        self._schedule_next_capacity_change()

    def _return_to_spot(self) -> None:
        """Spot capacity is back: start a spot worker for each on-demand fallback worker while
        zones have room (oldest fallback first); each fallback drains once its spot
        replacement is ready (SkyServe's dynamic fallback)."""
        market = self.fleet.market
        assert market is not None
        pending = {id(w.replaces) for w in self.alive if w.replaces is not None}
        for old in [w for w in self.alive if w.fallback and w.state in (STARTING, READY)]:
            if id(old) in pending:
                continue
            shape = self.next_shape(peek=True)
            if shape is None or not shape.spot or shape.awaiting_capacity:
                return  # no zone has spot room now
            if self.price_room(shape) < 1 and float(self.deployment.max_price_per_hour or 0) > 0:
                return
            nw = self._add_worker(self.next_shape())  # type: ignore[arg-type]
            nw.replaces = old
            self.n_active -= 1  # not in N while it starts: its stand-in still serves
            self.record_timeline()
            self.decisions.log(
                Decision("replace", 1, f"spot capacity back: spot worker {nw.wid} to replace "
                         f"on-demand fallback worker {old.wid}"),
                self.n_active,
            )

    def _schedule_next_capacity_change(self) -> None:
        change = next(self._capacity_changes, None)
        if change is not None:
            self.clock.schedule(
                max(change.time_s - self.env._now, 0.0),
                lambda _e: self._on_capacity_change(change),
            )

    # -- monitors --------------------------------------------------------------------------------
    def record_timeline(self) -> None:
        """Sample N, ready, billed workers and the cost rate now (one point per instant)."""
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
