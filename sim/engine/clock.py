"""The simulation clock: SimPy's environment plus a cheap way to schedule a callback.

Every part of the engine (gateway, pool, control loop, services) schedules its events through
one :class:`Clock`, so they share one event queue and one notion of now (DESIGN §7).
"""

from __future__ import annotations

from heapq import heappush
from typing import Any

import simpy
from simpy.events import NORMAL as _NORMAL


class _Call:
    """A pre-triggered SimPy event that only runs callbacks (see :meth:`Clock.schedule`)."""

    __slots__ = ("callbacks", "_ok", "_value")

    def __init__(self, callback: Any) -> None:
        self.callbacks: tuple[Any, ...] = (callback,)
        self._ok = True
        self._value: Any = None


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
        """Call ``callback(event)`` after ``delay`` seconds, through SimPy's event queue.

        Equivalent to ``Timeout(env, delay).callbacks.append(callback)``, with a slotted event
        that carries only what ``Environment.step`` reads: half the cost per event on the hot
        path (DESIGN §7).
        """
        entry: Any = (self.env._now + delay, _NORMAL, next(self._eid), _Call(callback))
        heappush(self._queue, entry)

    def schedule_at(self, time: float, callback: Any) -> None:
        """Call ``callback(event)`` at absolute time ``time`` (clamped to now)."""
        now = self.env._now
        entry: Any = (time if time > now else now, _NORMAL, next(self._eid), _Call(callback))
        heappush(self._queue, entry)

    def events(self) -> int:
        """How many events were scheduled so far (SimPy's event id counter), counting each
        skipped control tick as the event it would have been."""
        return next(self._eid) + self.skipped
