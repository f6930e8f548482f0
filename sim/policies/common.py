"""Shared parts of the baseline policies: typed ``autoscaler.params``, windows, target counts.

Each baseline declares its knobs as a frozen dataclass whose fields carry ``help`` text, a
lower bound and, for strings, the allowed choices (``metadata``). :func:`parse_params` checks a
scenario's ``autoscaler.params`` mapping against it: an unknown key names the nearest valid one,
a wrong type or out-of-range value names the field and what was expected.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from collections import deque
from collections.abc import Mapping
from typing import Any, TypeVar

from sim.errors import ConfigError
from sim.policies.base import Decision, Observation
from sim.policies.scalegen import _params_of as params_of

__all__ = ["TimeAverage", "knob", "params_help", "params_of", "parse_params", "tick_of", "to_target"]

P = TypeVar("P")


def knob(default: Any, help: str, *, ge: float | None = None, gt: float | None = None,
         choices: tuple[str, ...] | None = None) -> Any:
    """A dataclass field with help text, a bound (``ge``/``gt``) and string ``choices``."""
    return dataclasses.field(
        default=default, metadata={"help": help, "ge": ge, "gt": gt, "choices": choices}
    )


def parse_params(policy: str, cls: type[P], params: Mapping[str, Any]) -> P:
    """Build ``cls`` (a dataclass of knobs) from ``params``; raise ConfigError naming the field.

    Integers are accepted for float knobs; ``None`` is accepted where the default is ``None``.
    """
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    values: dict[str, Any] = {}
    for key, value in params.items():
        where = f"autoscaler.params.{key}"
        if key not in fields:
            near = difflib.get_close_matches(str(key), list(fields), n=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            raise ConfigError(
                f"unknown parameter {key!r} of the {policy} policy{hint} "
                f"(valid: {', '.join(fields)})",
                field=where,
            )
        f = fields[key]
        values[key] = _check(policy, where, f, value)
    return cls(**values)


def _check(policy: str, where: str, f: dataclasses.Field[Any], value: Any) -> Any:
    default = f.default
    meta = f.metadata
    if value is None and default is None:
        return None
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"expected true or false, got {value!r}", field=where)
        return value
    if isinstance(default, str):
        choices = meta.get("choices")
        if not isinstance(value, str) or (choices and value not in choices):
            expected = " | ".join(choices) if choices else "a string"
            raise ConfigError(f"expected {expected}, got {value!r}", field=where)
        return value
    numeric = isinstance(default, (int, float)) or default is None
    if numeric:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"expected a number, got {value!r}", field=where)
        if isinstance(default, int) and not isinstance(value, int):
            raise ConfigError(f"expected an integer, got {value!r}", field=where)
        if not math.isfinite(float(value)):
            raise ConfigError(f"expected a finite number, got {value!r}", field=where)
        ge, gt = meta.get("ge"), meta.get("gt")
        if ge is not None and value < ge:
            raise ConfigError(f"expected a number >= {ge:g}, got {value!r}", field=where)
        if gt is not None and value <= gt:
            raise ConfigError(f"expected a number > {gt:g}, got {value!r}", field=where)
        return value
    return value  # lists and mappings: the policy checks them


def params_help(cls: type[Any]) -> list[tuple[str, Any, str]]:
    """(name, default, help) of every knob, for docs and ``sim bench --list``."""
    return [(f.name, f.default, f.metadata.get("help", "")) for f in dataclasses.fields(cls)]


class TimeAverage:
    """Mean of the samples taken in a trailing time window ``(t - window_s, t]``.

    The baselines sample their metric once per control tick and average the samples, as
    Knative's and Ray Serve's autoscalers average per-interval metric reports.
    """

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self._t: deque[float] = deque()
        self._v: deque[float] = deque()
        self._sum = 0.0

    def add(self, t: float, v: float) -> None:
        """Record sample ``v`` at time ``t`` and drop samples older than the window."""
        self._t.append(t)
        self._v.append(v)
        self._sum += v
        cutoff = t - self.window_s
        while self._t and self._t[0] <= cutoff:
            self._t.popleft()
            self._sum -= self._v.popleft()
        if len(self._t) == 1:
            self._sum = self._v[0]  # no float residue from dropped samples

    def mean(self) -> float:
        """Mean of the samples in the window (NaN when there is none)."""
        return self._sum / len(self._v) if self._v else math.nan

    def clear(self) -> None:
        """Forget every sample."""
        self._t.clear()
        self._v.clear()
        self._sum = 0.0


def tick_of(autoscaler: Any) -> float:
    """The control-loop period (``autoscaler.decision_interval_s``, 10 s when absent)."""
    return float(getattr(autoscaler, "decision_interval_s", 10.0) or 10.0)


def to_target(obs: Observation, desired: int, why: str, value: float = math.nan) -> Decision:
    """The decision that moves N toward ``desired`` workers (capped by what may be added now).

    Baselines compute a desired replica count, as Kubernetes and Ray Serve do; the engine takes
    deltas. Scale-ups are capped by ``obs.addable`` (max_workers, price, on-prem); a blocked
    scale-up is logged with the cap that bound.
    """
    n = obs.workers
    if desired > n:
        add = min(desired - n, obs.addable)
        if add <= 0:
            return Decision("none", 0, f"blocked: {obs.addable_limit}", value)
        action = "from_zero" if n == 0 else "scale_up"
        return Decision(action, add, f"desired={desired}>N={n}: {why}", value)
    if desired < n:
        action = "to_zero" if desired == 0 else "scale_down"
        return Decision(action, desired - n, f"desired={desired}<N={n}: {why}", value)
    return Decision("none", 0, "", value)
