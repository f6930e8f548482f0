"""The engine: wires the gateway, the worker pool and the control loop into one run.

Every event is a callback in SimPy's event queue, run by the engine's own loop
(:mod:`sim.engine.clock`) rather than a process per request; request state lives in
per-column lists indexed by request id (:mod:`sim.engine.requests`), and services skip from
event to event (DESIGN §7). The parts and their jobs:

- :mod:`sim.engine.gateway`: arrivals, admission, the queue, dispatch and timeouts;
- :mod:`sim.engine.pool`: worker requests, placement, cold start, drain, spot, the timeline;
- :mod:`sim.engine.control`: ticks, the policy's observation, applying decisions and updates;
- :mod:`sim.engine.service`: what each worker does with its requests (through this engine,
  the services' :class:`~sim.engine.service.Host`).

The engine takes the scenario sections it needs, not the scenario, and does no IO: it
returns a :class:`RunRecord`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from sim.engine.clock import Clock
from sim.engine.control import DENSE_TICK_ROWS, ControlLoop, DecisionLog
from sim.engine.gateway import Gateway, admission_enforced
from sim.engine.paged import PagedLlmService, default_batched_tokens
from sim.engine.pool import Pool, Worker
from sim.engine.record import RunRecord
from sim.engine.requests import RequestState, Sink
from sim.engine.service import SERVICES, EmbeddingService, LlmService, QueueingService
from sim.engine.window import LatencyWindow
from sim.fleet.model import FleetModel
from sim.rng import Streams

__all__ = ["Engine", "admission_enforced"]


class Engine:
    """One simulation run of a workload under a policy.

    Sections are the scenario's: ``deployment`` (the create body), ``serving``, ``gateway``,
    ``autoscaler``, ``sim``, ``spot`` (``fleet.spot``) and ``updates``; ``fleet`` is the
    run's :class:`FleetModel`. :meth:`from_scenario` picks them from a whole scenario.
    """

    def __init__(
        self,
        workload: Any,
        policy: Any,
        *,
        deployment: Any,
        serving: Any,
        gateway: Any,
        autoscaler: Any,
        sim: Any,
        spot: Any,
        updates: list[Any],
        fleet: FleetModel,
        seed: int,
        progress: Callable[[float], None] | None = None,
        request_sink: Sink | None = None,
    ) -> None:
        self.seed = seed
        self.sim = sim
        self.serving = serving
        self.policy = policy
        self.fleet = fleet
        self.clock = clock = Clock()
        self.env = clock.env
        self.schedule = clock.schedule
        self.schedule_at = clock.schedule_at
        inf_type = deployment.inf_type
        self.service_kind = serving.resolved_kind(inf_type)
        self.reqs = reqs = RequestState(
            workload, kind=self.service_kind, deployment=deployment, serving=serving,
            rng=Streams(seed).get("service"), sink=request_sink,
        )
        self.n = reqs.n
        # What services read from their host (the Host protocol).
        self.prompt = reqs.prompt
        self.output = reqs.output
        self.service_time = reqs.service_time
        self.warnings = reqs.warnings
        self.max_batch = int(serving.max_batch)
        self.exact = serving.mode == "exact"
        self.resolved = 0
        self._drain_stop = False
        self._stopped = False

        if self.n:  # heterogeneous placement rates offers on this traffic's request mix
            fleet.set_request_mix(
                float(workload.prompt_tokens.mean()), float(sum(reqs.output) / self.n)
            )
        self.window = LatencyWindow(autoscaler.statistic)
        self.gateway = Gateway(
            clock, reqs, self.window, deployment=deployment, gateway=gateway,
            autoscaler=autoscaler, metric=autoscaler.resolved_metric(inf_type),
            ready=[], resolve=self._resolve, progress=progress,
        )
        self.decisions = DecisionLog(clock, getattr(policy, "name", "custom"))
        self.pool = Pool(
            clock, fleet, self.gateway, self.decisions, deployment=deployment, spot=spot,
            network_rtt_s=float(gateway.network_rtt_s), make_service=self._make_service,
        )
        self.control = ControlLoop(
            clock, self.gateway, self.pool, self.window, policy, self.decisions,
            deployment=deployment, autoscaler=autoscaler, updates=updates,
        )

    @classmethod
    def from_scenario(
        cls,
        scenario: Any,
        workload: Any,
        policy: Any,
        *,
        seed: int,
        fleet: FleetModel | None = None,
        progress: Callable[[float], None] | None = None,
        request_sink: Sink | None = None,
    ) -> Engine:
        """An engine for ``scenario``'s sections (a fleet model is built when not given)."""
        if fleet is None:
            fleet = FleetModel(scenario, Streams(seed))
        return cls(
            workload, policy, deployment=scenario.deployment, serving=scenario.serving,
            gateway=scenario.gateway, autoscaler=scenario.autoscaler, sim=scenario.sim,
            spot=scenario.fleet.spot, updates=list(scenario.updates), fleet=fleet, seed=seed,
            progress=progress, request_sink=request_sink,
        )

    @property
    def now(self) -> float:
        """Current simulated time."""
        return self.env._now

    # -- run -------------------------------------------------------------------------------------
    def run(self) -> RunRecord:
        """Simulate until the horizon and return what was measured."""
        wall0 = time.perf_counter()
        sim = self.sim
        self.pool.start(cold=sim.start == "cold")
        self.gateway.start()
        self.control.start()
        horizon = sim.horizon_s
        if horizon is None:
            last = float(self.reqs.arrival_s[-1]) if self.n else 0.0
            horizon = last + float(sim.max_drain_s)
            self._drain_stop = True
            if not self.n:
                horizon = 0.0
                self.warnings.append(
                    "the workload has no requests, so the run is empty; set sim.horizon_s to "
                    "see what the idle fleet costs over a period"
                )
        # Skipped idle ticks keep their queue-sample rows unless the run spans too many ticks.
        self.control.dense_rows = float(horizon) / self.control.tick_s <= DENSE_TICK_ROWS
        self.schedule(float(horizon), lambda _e: self._finish())
        if self.n == 0 or horizon == 0:
            self._finish()
        self.clock.run()
        return self._record(time.perf_counter() - wall0)

    def _finish(self) -> None:
        if not self._stopped:
            self._stopped = True
            self.clock.stop()

    def _resolve(self, k: int) -> None:
        """``k`` requests reached a final state; without a set horizon, stop after the last."""
        self.resolved += k
        if self._drain_stop and self.resolved >= self.n:
            self._finish()

    # -- the services' host ----------------------------------------------------------------------
    def _make_service(self, w: Worker) -> Any:
        cls = SERVICES.get(self.service_kind)
        if cls is LlmService:
            sv = self.serving
            if sv.kv_admission == "paged":
                budget = sv.max_num_batched_tokens or default_batched_tokens(w.shape.gpu)
                return PagedLlmService(self, w.wid, w.shape.profile, self.max_batch,  # type: ignore[arg-type]
                                       self.exact, budget)
            return LlmService(self, w.wid, w.shape.profile, self.max_batch, self.exact)  # type: ignore[arg-type]
        if cls is EmbeddingService:
            return EmbeddingService(
                self, w.wid, w.shape.profile, self.max_batch,  # type: ignore[arg-type]
                int(self.serving.embedding_batch_tokens),
            )
        if cls is QueueingService:
            return QueueingService(self, w.wid, self.max_batch)
        return cls(self, w.wid, w.shape, self.serving)  # a user-registered service

    def first_token(self, rid: int, t: float) -> None:
        """Record the first token of ``rid``."""
        reqs = self.reqs
        tf = t + self.pool.workers[reqs.worker_of[rid]].rtt_s
        reqs.first_t[rid] = tf
        if self.gateway.observe_ttft:  # TTFT is known at the first token, not at completion
            self.window.add(tf, tf - reqs.arrival[rid])

    def completed(self, worker_id: int, rids: list[int], t: float) -> None:
        """Requests finished on a worker: record them and refill the worker from the queue."""
        w = self.pool.workers[worker_id]
        gw = self.gateway
        if gw.least.on:
            gw.least.touch(w)  # its load just fell: re-rank it before anything dispatches
        gw.completed(rids, t + w.rtt_s)
        self.pool.served(w, len(rids))
        self._resolve(len(rids))
        if gw.queue:
            gw.dispatch()

    # -- results ---------------------------------------------------------------------------------
    def _record(self, wall_s: float) -> RunRecord:
        t = self.env._now
        gw = self.gateway
        gw.expire_queue(t)
        gw.queue_area_to(t)
        self.pool.finish(t)
        # Requests not yet arrived at the horizon did not arrive: drop them from the columns.
        arrived = gw.next_arrival
        if arrived < self.n:
            self.warnings.append(
                f"{self.n - arrived:,} of {self.n:,} requests arrive after the horizon "
                f"({t:,.1f} s) and were not simulated"
            )
        cols = self.reqs.columns(arrived)
        self.warnings.extend(self.fleet.notes)
        if self.control.rows_skipped:
            self.warnings.append(
                f"{self.control.rows_skipped:,} quiet control ticks have no row in the queue "
                f"samples (the run spans more than {DENSE_TICK_ROWS:,} ticks): at each of them "
                "nothing waited, nothing arrived within the window and the policy did nothing"
            )
        return RunRecord(
            requests=cols,
            workers=[w.record for w in self.pool.workers],
            decisions=self.decisions.records,
            timeline=self.pool.timeline,
            queue=self.control.qsamples,
            horizon_s=t,
            seed=self.seed,
            events=self.clock.events(),  # SimPy's event id counter: events scheduled
            wall_s=wall_s,
            queue_area=gw.queue_area,
            queue_max=gw.queue_max,
            warnings=self.warnings,
            placement=list(self.fleet.placements),
        )


