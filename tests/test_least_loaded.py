"""The gateway's least-loaded pick (a heap) picks what a scan of the ready list picks."""

from __future__ import annotations

import random

import pytest

from sim.engine import gateway, pool
from sim.engine.gateway import LeastLoaded


class _Svc:
    def __init__(self) -> None:
        self.load = 0


class _W:
    def __init__(self, wid: int) -> None:
        self.wid = wid
        self.state = pool.READY
        self.service = _Svc()
        self.ready_seq = -1


def _scan(ready: list[_W]) -> _W | None:
    best, best_load = None, 1 << 30
    for w in ready:
        if w.service.load < best_load:
            best, best_load = w, w.service.load
    return best


def test_ready_state_matches_the_pool() -> None:
    assert gateway._READY == pool.READY


@pytest.mark.parametrize("scan_max", [0, 6, 24])
def test_heap_matches_scan_under_random_churn(scan_max: int) -> None:
    """Workers join, leave (drain), take and finish requests in random order, the fleet
    crossing ``scan_max`` both ways; after every step the pick is the scan's (smallest load,
    first to become ready among equals)."""
    rng = random.Random(7)
    ready: list[_W] = []
    least = LeastLoaded(ready, scan_max=scan_max)
    sizes = set()
    nxt = 0
    for step in range(20_000):
        r = rng.random()
        touched = False
        grow = 0.05 if (step // 2000) % 2 == 0 else 0.02  # grow, then shrink, in phases
        if r < grow or not ready:
            w = _W(nxt)
            nxt += 1
            ready.append(w)
            least.add(w)
        elif r < 0.08 and len(ready) > 1:
            w = ready.pop(rng.randrange(len(ready)))
            w.state = pool.DRAINING
        elif r < 0.55:
            w = least.best()
            assert w is not None
            w.service.load += 1  # accept
            if least.on:
                least.touch(w)
                touched = True
        else:
            w = rng.choice(ready)
            if w.service.load:
                w.service.load -= rng.randint(1, w.service.load)  # an iteration finishes
                if least.on:
                    least.touch(w)
        assert least.best() is _scan(ready)
        if touched:  # stale entries are compacted on touch once they outnumber live ones
            assert len(least.heap) <= 2 * len(ready) + 65
        sizes.add(len(ready) > scan_max)
    assert sizes == {True, False} or scan_max == 0  # both sides of the threshold were used
