"""The engine's event loop (sim.engine.clock) runs callbacks in SimPy's order and counts
events as SimPy does, stop included."""

from __future__ import annotations

import simpy

from sim.engine.clock import Clock


def _simpy_run(plan: list[tuple[float, str]], stop_at: str) -> tuple[list[str], float, int]:
    """The same plan with SimPy timeouts and run(until=event)."""
    env = simpy.Environment()
    stop = env.event()
    seen: list[str] = []

    def cb(name: str):  # noqa: ANN202
        def f(_e: object) -> None:
            seen.append(name)
            if name == stop_at:
                stop.succeed()
            if name == "a":  # schedules more at the same instant and later
                env.timeout(0).callbacks.append(cb("a0"))
                env.timeout(1).callbacks.append(cb("a1"))
        return f

    for delay, name in plan:
        env.timeout(delay).callbacks.append(cb(name))
    env.run(until=stop)
    return seen, env.now, next(env._eid)


def _clock_run(plan: list[tuple[float, str]], stop_at: str) -> tuple[list[str], float, int]:
    clock = Clock()
    seen: list[str] = []

    def cb(name: str):  # noqa: ANN202
        def f(_e: object) -> None:
            seen.append(name)
            if name == stop_at:
                clock.stop()
            if name == "a":
                clock.schedule(0, cb("a0"))
                clock.schedule(1, cb("a1"))
        return f

    for delay, name in plan:
        clock.schedule(delay, cb(name))
    clock.run()
    return seen, clock.now, clock.events()


def test_order_stop_and_event_count_match_simpy() -> None:
    """Ties run in scheduling order; a stop lets what is already queued for the instant run
    and nothing scheduled after it; the event count includes SimPy's re-queued until-event."""
    plan = [(2.0, "c"), (1.0, "a"), (1.0, "b"), (2.0, "d"), (3.0, "e")]
    for stop_at in ("a", "b", "a0", "c", "a1", "e"):
        assert _clock_run(plan, stop_at) == _simpy_run(plan, stop_at), stop_at
