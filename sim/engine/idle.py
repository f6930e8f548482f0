"""Skipping control ticks that provably change nothing (idle stretches of a trace).

Between two events of the run (an arrival, a completion, a worker becoming ready, an
update, the horizon) nothing in the deployment moves, so every tick in that stretch sees the
same :class:`~sim.policies.base.Observation` except for ``time_s`` — provided the gateway
queue is empty and the latency window holds nothing that could age out or come in
(:meth:`sim.engine.control.ControlLoop` checks that). Whether the *policy* would act at one of
those ticks is its own business, so this module asks it, once, with a symbolic clock:

1. the policy is copied through :mod:`pickle` (a policy that cannot be pickled is never
   skipped);
2. the copy decides on the observation with ``time_s`` replaced by a :class:`SymbolicTime`,
   a number that records every comparison the policy makes against it (``t - since >=
   timeout``) and refuses every use it cannot follow (``float(t)``, ``t == x``, formatting,
   numpy): a refused use makes the probe fail, and the tick runs as usual;
3. the decision must be a plain no-op (no workers added or drained, nothing logged) and the
   copy's pickled state must be byte-identical before and after it (a policy that stores the
   time or samples per tick, as Knative's and Ray Serve's averages do, is not skipped).

Then every later tick of the stretch at which each recorded comparison keeps its outcome
runs the same code on the same state and returns the same no-op: those ticks are skipped.
The recorded expressions are ``t`` combined with constants by ``+``, ``-``, ``*`` and ``/``
only, each of them monotone in ``t`` (IEEE rounding is monotone), so each comparison flips at
most once and the last tick before the first flip is found by bisection. The result is exact:
the same decisions, the same worker timeline and the same summary as ticking every
``decision_interval_s`` (tested on every shipped scenario and in ``tests/test_idle_ticks.py``).

The tick times of skipped ticks are those the clock would have produced by adding the interval
once per tick: when the tick time and the interval are both multiples of a power of two and
the last tick's numerator stays below 2**53, every such addition is exact and tick k is
``(A + k·B) / D`` in closed form (:func:`tick_grid`); otherwise the additions are replayed one
by one, at most :data:`MAX_REPLAYED` per skip.
"""

from __future__ import annotations

import dataclasses
import operator
import pickle
from collections.abc import Callable
from typing import Any

#: Tick times replayed by repeated addition in one skip when no closed form is exact.
MAX_REPLAYED = 1_000_000

_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
}


class Opaque(BaseException):
    """The policy used the symbolic time in a way the probe cannot follow.

    A :class:`BaseException` so that a policy's own ``except Exception`` cannot swallow it.
    """


class _Probe:
    """What one symbolic decision recorded: comparisons ``(ops, op, other, outcome)``."""

    def __init__(self) -> None:
        self.comparisons: list[tuple[tuple[tuple[str, float], ...], str, float, bool]] = []


def _number(x: Any) -> float | int:
    """``x`` when it is a plain number the probe can replay (bool and numpy ints are not)."""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        raise Opaque(f"operand {type(x).__name__}")
    return x


def _apply(ops: tuple[tuple[str, float], ...], t: float) -> float:
    """Replay the recorded arithmetic on a concrete time ``t``, operation by operation."""
    x: Any = t
    for op, c in ops:
        if op == "+":
            x = x + c
        elif op == "-":
            x = x - c
        elif op == "r-":
            x = c - x
        elif op == "*":
            x = x * c
        elif op == "/":
            x = x / c
        else:  # "neg"
            x = -x
    return float(x)


class SymbolicTime:
    """The tick's time as the policy sees it in a probe: a value plus its recorded history.

    Supports ``+``/``-`` with numbers (either side), ``*`` by a non-zero number, ``/`` by a
    non-zero number, unary ``-`` and ordering comparisons with numbers; everything else
    raises :class:`Opaque`.
    """

    __slots__ = ("_v", "_ops", "_probe")

    def __init__(self, value: float, ops: tuple[tuple[str, float], ...], probe: _Probe) -> None:
        self._v = value
        self._ops = ops
        self._probe = probe

    def _then(self, op: str, c: float) -> SymbolicTime:
        ops = (*self._ops, (op, c))
        return SymbolicTime(_apply(((op, c),), self._v), ops, self._probe)

    def __add__(self, other: Any) -> SymbolicTime:
        return self._then("+", _number(other))

    __radd__ = __add__  # IEEE addition is commutative

    def __sub__(self, other: Any) -> SymbolicTime:
        return self._then("-", _number(other))

    def __rsub__(self, other: Any) -> SymbolicTime:
        return self._then("r-", _number(other))

    def __mul__(self, other: Any) -> SymbolicTime:
        c = _number(other)
        if not c or c != c or abs(c) == float("inf"):
            raise Opaque("multiplied by zero or a non-finite number")
        return self._then("*", c)

    __rmul__ = __mul__

    def __truediv__(self, other: Any) -> SymbolicTime:
        c = _number(other)
        if not c or c != c or abs(c) == float("inf"):
            raise Opaque("divided by zero or a non-finite number")
        return self._then("/", c)

    def __neg__(self) -> SymbolicTime:
        return self._then("neg", 0.0)

    def __pos__(self) -> SymbolicTime:
        return self

    def _compare(self, op: str, other: Any) -> bool:
        c = _number(other)
        outcome = _COMPARE[op](self._v, c)
        self._probe.comparisons.append((self._ops, op, c, outcome))
        return outcome

    def __lt__(self, other: Any) -> bool:
        return self._compare("<", other)

    def __le__(self, other: Any) -> bool:
        return self._compare("<=", other)

    def __gt__(self, other: Any) -> bool:
        return self._compare(">", other)

    def __ge__(self, other: Any) -> bool:
        return self._compare(">=", other)

    def _opaque(self, *_a: Any, **_k: Any) -> Any:
        raise Opaque("time used other than by +, -, *, / and ordering")

    # Equality is not monotone in t (true at one instant); the rest hands out the raw value.
    __eq__ = __ne__ = __bool__ = __float__ = __int__ = __index__ = _opaque
    __round__ = __floor__ = __ceil__ = __trunc__ = __abs__ = __format__ = _opaque
    __rtruediv__ = __floordiv__ = __rfloordiv__ = __mod__ = __rmod__ = _opaque
    __pow__ = __rpow__ = __divmod__ = __rdivmod__ = __array__ = __reduce_ex__ = _opaque
    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        raise Opaque("time formatted")

    __str__ = __repr__


def holds(comparisons: list[tuple[tuple[tuple[str, float], ...], str, float, bool]],
          t: float) -> bool:
    """Whether every recorded comparison has its recorded outcome at time ``t``."""
    return all(_COMPARE[op](_apply(ops, t), c) == outcome for ops, op, c, outcome in comparisons)


def probe(policy: Any, obs: Any, t: float) -> list[Any] | None:
    """Ask a copy of ``policy`` to decide on ``obs`` at a symbolic time equal to ``t``.

    Returns the comparisons it made when the decision is a plain no-op that leaves its
    pickled state unchanged; None when the tick cannot be skipped (see the module doc).
    """
    try:
        copy = pickle.loads(pickle.dumps(policy, protocol=pickle.HIGHEST_PROTOCOL))
        before = pickle.dumps(copy, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:  # noqa: BLE001 - a policy that cannot be copied is simply not skipped
        return None
    p = _Probe()
    try:
        d = copy.decide(dataclasses.replace(obs, time_s=SymbolicTime(t, (), p)))
        if d.delta != 0 or d.logged:
            return None
        after = pickle.dumps(copy, protocol=pickle.HIGHEST_PROTOCOL)
    except (Exception, Opaque):  # noqa: BLE001 - anything the probe cannot follow: tick as usual
        return None
    return p.comparisons if after == before else None


def tick_grid(t0: float, dt: float, k_max: int) -> Callable[[int], float] | None:
    """Tick k after ``t0`` (``t0 + dt + ... + dt``, k additions) in closed form, valid for
    every k <= ``k_max``, or None when some addition might round (then replay them).

    Floats are dyadic rationals: with t0 = A/D and dt = B/D (D a power of two), every
    t0 + k·dt is exactly representable while A + k·B < 2**53, and then each IEEE addition
    of the chain is exact, so repeated addition equals the closed form.
    """
    if not (t0 >= 0 and dt > 0):
        return None
    an, ad = t0.as_integer_ratio()
    bn, bd = dt.as_integer_ratio()
    d = max(ad, bd)
    a, b = an * (d // ad), bn * (d // bd)
    if a + k_max * b >= 1 << 53:
        return None
    return lambda k: (a + k * b) / d
