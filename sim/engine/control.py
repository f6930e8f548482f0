"""The control loop: every ``decision_interval_s`` build the policy's observation, ask the
policy for a decision and apply it to the pool; apply scheduled PUT updates.

DESIGN §4: the policy sees N, ready and starting workers, the gateway queue, requests in
flight, the latency statistic over ``time_window_sec`` and how many workers the caps
(``max_workers``, on-prem room, price, throughput) still allow; it answers with a
:class:`~sim.policies.base.Decision` that this loop applies as given. Ticks that acted or
were blocked are logged (``decisions.csv``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sim.engine.record import DecisionRecord, QueueSamples
from sim.policies.base import Decision, Observation

if TYPE_CHECKING:
    from sim.engine.clock import Clock
    from sim.engine.gateway import Gateway
    from sim.engine.pool import Pool
    from sim.engine.window import LatencyWindow


class DecisionLog:
    """The run's log of decisions that acted or were blocked, in time order."""

    def __init__(self, clock: Clock, policy_name: str) -> None:
        self.clock = clock
        self.policy_name = policy_name
        self.records: list[DecisionRecord] = []

    def log(self, d: Decision, workers: int) -> None:
        """Record decision ``d`` taken now with N = ``workers`` before it."""
        self.records.append(
            DecisionRecord(
                time_s=self.clock.now, policy=self.policy_name,
                statistic=float(d.statistic), workers=workers,
                action=d.action, delta=d.delta, reason=d.reason,
            )
        )


class ControlLoop:
    """The autoscaler's tick: observe, decide, apply; and the scheduled updates.

    ``autoscaler`` is the scenario's ``autoscaler`` section; ``updates`` its ``updates``.
    """

    def __init__(
        self,
        clock: Clock,
        gateway: Gateway,
        pool: Pool,
        window: LatencyWindow,
        policy: Any,
        decisions: DecisionLog,
        *,
        deployment: Any,
        autoscaler: Any,
        updates: list[Any],
    ) -> None:
        self.clock = clock
        self.env = clock.env
        self.gateway = gateway
        self.pool = pool
        self.window = window
        self.policy = policy
        self.decisions = decisions
        self.deployment = deployment
        self.tick_s = float(autoscaler.decision_interval_s)
        self.count_waiting = bool(autoscaler.count_waiting)
        self.max_workers = int(autoscaler.max_workers)
        self.throughput_cap_scales = autoscaler.throughput_cap == "scale"
        self.updates = list(updates)
        self.qsamples = QueueSamples()
        self._arrivals_at_sample = 0  # arrivals counted at the previous queue sample

    def start(self) -> None:
        """Schedule the first tick (at t = 0) and every update."""
        self.clock.schedule(0.0, self._on_tick)
        for upd in self.updates:
            self.clock.schedule(float(upd.at_s), lambda _e, u=upd: self._apply_update(u))

    # -- observation ---------------------------------------------------------------------------
    def _statistic(self, t: float) -> tuple[float, int, float]:
        """(S, finished in window, window length) over (t - window, t]."""
        window = float(self.deployment.autoscaling_config.time_window_sec)
        gw = self.gateway
        waiting: list[float] = []
        if self.count_waiting and gw.queue:
            arrival = gw.arrival
            waiting = [t - arrival[rid] for rid in gw.queue]
        s, n = self.window.statistic(t, window, waiting)
        return s, n, window

    def _addable(self) -> tuple[int, str]:
        dep, pool = self.deployment, self.pool
        limits: list[tuple[int, str]] = [
            (self.max_workers - pool.n_active, "max_workers"),
            (pool.fleet.placeable(dep), "on-prem full"),
        ]
        if float(dep.max_price_per_hour or 0) > 0:
            limits.append((pool.price_room(pool.next_shape(peek=True)), "price cap"))
        tcap = float(dep.max_throughput_rate or 0)
        if tcap > 0 and self.throughput_cap_scales:
            limits.append((0 if pool.rated_tokens_per_s() > tcap else 1 << 30, "throughput cap"))
        room, name = min(limits, key=lambda x: x[0])
        return max(room, 0), name

    # -- the tick ------------------------------------------------------------------------------
    def _on_tick(self, _e: Any) -> None:
        t = self.env._now
        gw, pool = self.gateway, self.pool
        gw.expire_queue(t)
        s, finished, window = self._statistic(t)
        arrived = gw.next_arrival
        in_window = gw.arrived_after(t - window)
        addable, limit = self._addable()
        obs = Observation(
            time_s=t, workers=pool.n_active, ready=len(pool.ready), starting=pool.n_starting,
            queue_len=len(gw.queue), running=gw.running, statistic=s,
            finished_in_window=finished, arrivals_in_window=in_window, window_s=window,
            last_arrival_s=gw.last_arrival_t,
            min_workers=int(self.deployment.initial_worker_config.min_workers),
            addable=addable, addable_limit=limit, price_per_hour_usd=pool.price_now(),
            arrived_total=arrived, prompt_tokens_arrived=gw.reqs.prompt_arrived,
            output_tokens_arrived=gw.reqs.output_arrived, idle_since_s=gw.idle_since(),
        )
        d = self.policy.decide(obs)
        self._apply(d, obs)
        qs = self.qsamples
        qs.time_s.append(t)
        qs.queue_len.append(len(gw.queue))
        qs.running.append(gw.running)
        qs.arrivals.append(arrived - self._arrivals_at_sample)
        self._arrivals_at_sample = arrived
        self.clock.schedule(self.tick_s, self._on_tick)

    def _apply(self, d: Decision, obs: Observation) -> None:
        pool = self.pool
        if d.delta > 0:
            pool.request_workers(d.delta)  # the policy asked for at most what the caps allow
        elif d.delta < 0:
            reason = "scale_to_zero" if d.action == "to_zero" else "scale_down"
            for w in pool.victims(-d.delta):
                pool.drain(w, reason)
        if d.logged:
            self.decisions.log(d, obs.workers)

    # -- updates ---------------------------------------------------------------------------------
    def _apply_update(self, upd: Any) -> None:
        from sim.api.schema import apply_update

        t = self.env._now
        pool = self.pool
        before = pool.n_active
        self.deployment = pool.deployment = apply_update(self.deployment, upd.body)
        immediate = bool(upd.body.imidiate_scale_down)
        self.policy.on_update(self.deployment, t, immediate)
        delta = 0
        if immediate:
            surplus = pool.n_active - int(self.deployment.initial_worker_config.min_workers)
            if surplus > 0:
                for w in pool.victims(surplus):
                    pool.drain(w, "update")
                delta = -surplus
        reason = "PUT body applied" + (", imidiate_scale_down" if immediate else "")
        self.decisions.log(Decision("update", delta, reason), before)
