"""The simulation clock: SimPy's environment, a cheap way to schedule a callback, and the loop
that runs them.

Every part of the engine (gateway, pool, control loop, services) schedules its events through
one :class:`Clock`, so they share one event queue and one notion of now (DESIGN §7). The queue
is SimPy's own heap of ``(time, priority, event id, item)`` entries, ordered as SimPy orders
them (time, then priority, then scheduling order); the item is the callback itself rather than
an event object, and :meth:`Clock.run` pops and calls them: the engine has no SimPy processes,
so it needs none of ``Environment.step``'s event machinery, and saves an object per event.
"""

from __future__ import annotations

from heapq import heappop, heappush
from typing import Any

import simpy
from simpy.events import NORMAL as _NORMAL


class Clock:
    """One run's SimPy environment and scheduling helpers."""

    def __init__(self) -> None:
        self.env = simpy.Environment()
        self._queue = self.env._queue
        self._eid = self.env._eid
        self.skipped = 0  # control ticks skipped (sim.engine.idle): counted as scheduled

    @property
    def now(self) -> float:
        """Current simulated time (seconds)."""
        return self.env._now

    def schedule(self, delay: float, callback: Any) -> None:
        """Call ``callback(None)`` after ``delay`` seconds.

        Ordered as ``Timeout(env, delay).callbacks.append(callback)`` would be (same time,
        priority and event id), without the event object (DESIGN §7).
        """
        entry: Any = (self.env._now + delay, _NORMAL, next(self._eid), callback)
        heappush(self._queue, entry)

    def schedule_at(self, time: float, callback: Any) -> None:
        """Call ``callback(None)`` at absolute time ``time`` (clamped to now)."""
        now = self.env._now
        entry: Any = (time if time > now else now, _NORMAL, next(self._eid), callback)
        heappush(self._queue, entry)

    def stop(self) -> None:
        """End :meth:`run` after what is already due now, as SimPy's ``run(until=event)`` does
        when ``event.succeed()`` is called now (it is scheduled like any event, so callbacks
        already queued for this instant run first)."""
        entry: Any = (self.env._now, _NORMAL, next(self._eid), None)
        heappush(self._queue, entry)

    def run(self) -> None:
        """Call the scheduled callbacks in order until :meth:`stop` (or nothing is left)."""
        q: Any = self._queue
        env = self.env
        while q:
            t, _, _, callback = heappop(q)
            if callback is None:
                next(self._eid)  # SimPy re-queues the until-event as it stops: count it too
                return
            env._now = t
            callback(None)

    def events(self) -> int:
        """How many events were scheduled so far (SimPy's event id counter), counting each
        skipped control tick as the event it would have been."""
        return next(self._eid) + self.skipped
