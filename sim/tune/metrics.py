"""Summary figures by dotted name, constraints on them, and Pareto fronts.

A run's summary (DESIGN §3.3) is a nested dict; sweeps and tuning address its numeric leaves
by dotted names (``cost.per_hour_usd``, ``ttft_s.p95``, ``slo.attainment``), the same names
the summary JSON uses.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sim.errors import ConfigError

#: Summary sections whose numeric leaves are outcome figures (not the input scenario).
FIGURE_SECTIONS = ("requests", "latency_e2e_s", "ttft_s", "queue_s", "tpot_s", "slo", "cost",
                   "workers", "queue", "sim")
#: Figures where larger is better (every other figure is minimised).
MAXIMISED = frozenset({"slo.attainment", "requests.completed"})
#: The default cost objective.
COST = "cost.per_hour_usd"
#: Hours in a month for monthly savings (365.25 × 24 / 12).
HOURS_PER_MONTH = 730.5


def flatten(summary: Mapping[str, Any]) -> dict[str, float | None]:
    """Numeric leaves of a run summary as ``{"section.key": value}`` (None where undefined)."""
    out: dict[str, float | None] = {}

    def walk(prefix: str, node: Any) -> None:
        if isinstance(node, Mapping):
            for k, v in node.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        elif node is None:
            out[prefix] = None
        elif isinstance(node, int | float) and not isinstance(node, bool):
            out[prefix] = float(node)

    for section in FIGURE_SECTIONS:
        if section in summary:
            walk(section, summary[section])
    return out


def _known(name: str, source: str) -> None:
    section = name.split(".", 1)[0]
    if section not in FIGURE_SECTIONS or "." not in name:
        raise ConfigError(
            f"unknown figure {name!r}; expected section.key with a section among "
            f"{', '.join(FIGURE_SECTIONS)} (e.g. ttft_s.p95, cost.per_hour_usd, slo.attainment)",
            source=source,
        )


@dataclass(frozen=True)
class Constraint:
    """``figure op bound``, e.g. ``ttft_s.p95 <= 2`` or ``slo.attainment >= 0.99``."""

    figure: str
    op: str
    bound: float

    def __str__(self) -> str:
        return f"{self.figure}{self.op}{self.bound:g}"

    def violation(self, value: float | None) -> float:
        """How far ``value`` is on the wrong side (<= 0 when met; +inf when undefined)."""
        if value is None or not math.isfinite(value):
            return math.inf
        return value - self.bound if self.op in ("<=", "<") else self.bound - value

    def met(self, value: float | None) -> bool:
        """Whether ``value`` meets the constraint (strict for ``<``/``>``)."""
        v = self.violation(value)
        return v < 0 if self.op in ("<", ">") else v <= 0

    @property
    def upper(self) -> bool:
        """True for an upper bound (``<=``/``<``)."""
        return self.op in ("<=", "<")


_CONSTRAINT = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*(<=|>=|<|>)\s*([-+0-9.eE]+)\s*$")


def parse_constraint(text: str, *, source: str = "--constraint") -> Constraint:
    """Parse ``"ttft_s.p95<=2"``; a malformed text or unknown figure is a ConfigError."""
    m = _CONSTRAINT.match(str(text))
    if not m:
        raise ConfigError(
            f"expected FIGURE<=VALUE or FIGURE>=VALUE (e.g. ttft_s.p95<=2, slo.attainment>=0.99), "
            f"got {text!r}", source=source,
        )
    figure, op, raw = m.groups()
    _known(figure, source)
    try:
        bound = float(raw)
    except ValueError:
        raise ConfigError(f"expected a number after {op}, got {raw!r}", source=source) from None
    if not math.isfinite(bound):
        raise ConfigError(f"expected a finite bound, got {raw!r}", source=source)
    return Constraint(figure, op, bound)


def parse_figure(name: str, *, source: str = "--objective") -> str:
    """Check a dotted figure name such as ``latency_e2e_s.p95``."""
    _known(str(name), source)
    return str(name)


def pareto_mask(costs: np.ndarray, latencies: np.ndarray) -> np.ndarray:
    """Points no other point beats on both (lower cost and lower latency); NaNs never on the front.

    ``costs`` and ``latencies`` have shape (n,); returns a boolean mask of shape (n,).
    """
    c = np.asarray(costs, dtype=float)
    lat = np.asarray(latencies, dtype=float)
    ok = np.isfinite(c) & np.isfinite(lat)
    mask = np.zeros(len(c), dtype=bool)
    order = sorted(np.flatnonzero(ok), key=lambda i: (c[i], lat[i]))
    best = math.inf
    for i in order:
        if lat[i] < best:
            mask[i] = True
            best = lat[i]
    return mask


def feasible(values: Mapping[str, float | None], constraints: Sequence[Constraint]) -> bool:
    """Whether one point's figures meet every constraint."""
    return all(c.met(values.get(c.figure)) for c in constraints)


def pinned_base(scenario: Any) -> dict[str, Any]:
    """The resolved scenario mapping with its SLO pinned (``sim.slo.metric`` and ``threshold_s``).

    By default the SLO threshold is the deployment's ``upper_allowed_latency_sec``: a sweep or
    tune that moves that knob would otherwise move the yardstick of ``slo.attainment`` too.
    """
    from sim.scenario import resolved_dict

    data = resolved_dict(scenario)
    slo = data.setdefault("sim", {}).setdefault("slo", {})
    slo["metric"] = scenario.slo_metric()
    slo["threshold_s"] = scenario.slo_threshold_s()
    return data
