"""The control loop: every ``decision_interval_s`` build the policy's observation, ask the
policy for a decision and apply it to the pool; apply scheduled PUT updates.

DESIGN §4: the policy sees N, ready and starting workers, the gateway queue, requests in
flight, the latency statistic over ``time_window_sec`` and how many workers the caps
(``max_workers``, on-prem room, price, throughput) still allow; it answers with a
:class:`~sim.policies.base.Decision` that this loop applies as given. Ticks that acted or
were blocked are logged (``decisions.csv``).

Ticks that provably change nothing are skipped (:mod:`sim.engine.idle`): when the queue is
empty, the latency window holds nothing and nothing arrived within it, the policy's tick was a
plain no-op, and a symbolic probe of the policy shows the same no-op at the following ticks,
the loop jumps to the first tick at which an event of the run or a timer of the policy could
change the answer. Results are identical to ticking every interval; each skipped tick still
adds its row (queue 0, the same running count, 0 arrivals) to the queue samples while the
run spans at most :data:`DENSE_TICK_ROWS` ticks. A longer run keeps rows only for ticks
that are not quiet, so its memory grows with activity, not with the span (the run warns).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sim.engine.idle import MAX_REPLAYED, holds, probe, tick_grid
from sim.engine.record import DecisionRecord, QueueSamples
from sim.policies.base import Decision, Observation

if TYPE_CHECKING:
    from sim.engine.clock import Clock
    from sim.engine.gateway import Gateway
    from sim.engine.pool import Pool
    from sim.engine.window import LatencyWindow


#: Runs spanning at most this many ticks keep a queue-sample row for every tick, skipped or not.
DENSE_TICK_ROWS = 2_000_000
#: Longest wait, in quiescent ticks, between two probes of a policy that cannot be skipped.
MAX_PROBE_BACKOFF = 63


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
        self.skip_idle = True  # skip ticks that provably change nothing (exact either way)
        self.dense_rows = True  # skipped ticks still add their queue-sample rows
        self.ticks_run = 0
        self.ticks_skipped = 0
        self.rows_skipped = 0  # quiet ticks without a queue-sample row (dense_rows False)
        self._probe_wait = 0  # quiescent ticks left before the next probe
        self._probe_backoff = 0

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
        # Quiet: nothing waits, nothing is in or entering the window, the policy did nothing.
        quiet = (
            d.delta == 0 and not d.logged and not gw.queue and not in_window
            and self.window.empty()
        )
        if self.dense_rows or not quiet:
            qs = self.qsamples
            qs.time_s.append(t)
            qs.queue_len.append(len(gw.queue))
            qs.running.append(gw.running)
            qs.arrivals.append(arrived - self._arrivals_at_sample)
            self._arrivals_at_sample = arrived
        else:
            self.rows_skipped += 1
        self.ticks_run += 1
        nxt = t + self.tick_s  # what Clock.schedule(tick_s) would compute
        if quiet and self.skip_idle:
            nxt = self._skip(obs, t, nxt)
        self.clock.schedule_at(nxt, self._on_tick)

    def _skip(self, obs: Observation, t: float, t1: float) -> float:
        """Skip the quiescent ticks from ``t1`` on; returns the time of the next tick to run.

        Only called when nothing waits, the window is empty and this tick was a no-op, so
        until the next event in the clock's queue every tick sees ``obs`` but for its time.
        """
        if self._probe_wait:
            self._probe_wait -= 1
            return t1
        q = self.clock._queue
        t_event = q[0][0] if q else float("inf")
        if not t1 < t_event:
            return t1
        comparisons = probe(self.policy, obs, t1)
        if comparisons is None:  # not skippable now: probe again after a growing pause
            self._probe_backoff = min(2 * self._probe_backoff + 1, MAX_PROBE_BACKOFF)
            self._probe_wait = self._probe_backoff
            return t1
        self._probe_backoff = 0
        dt = self.tick_s
        times: list[float] = [t1]  # the skipped ticks, while rows are kept
        dense = self.dense_rows
        k_max = int(min((t_event - t) / dt + 1, float(1 << 62)))
        grid = tick_grid(t, dt, k_max + 1)
        if grid is not None and grid(1) == t1:
            # Bisect the last tick k before the next event at which the comparisons hold
            # (each flips at most once in t, so "all hold" is true up to some k, then false).
            lo, hi = 1, k_max
            while lo < hi:
                mid = (lo + hi + 1) // 2
                tm = grid(mid)
                if tm < t_event and holds(comparisons, tm):
                    lo = mid
                else:
                    hi = mid - 1
            m, nxt = lo, grid(lo + 1)
            if dense:
                times = [grid(k) for k in range(1, m + 1)]
        else:  # replay the additions one by one
            m, x = 1, t1
            while m < MAX_REPLAYED:
                y = x + dt
                if not (y < t_event and holds(comparisons, y)):
                    break
                x = y
                m += 1
                if dense:
                    times.append(x)
            nxt = x + dt
        self.ticks_skipped += m
        self.clock.skipped += m
        if dense:
            qs, running = self.qsamples, self.gateway.running
            qs.time_s.extend(times)
            qs.queue_len.extend([0] * m)
            qs.running.extend([running] * m)
            qs.arrivals.extend([0] * m)
        else:
            self.rows_skipped += m
        return nxt

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
