"""Knob spaces: grids, random and Latin-hypercube samples of dotted scenario paths.

A space is a list of :class:`Dim` (one knob each): a :class:`Choice` of values or a
:class:`Range` (``low``..``high``, optionally ``log`` and ``int``). A range may be a
``fraction_of`` another knob (``lower_allowed_latency_sec`` as a share of the upper bound, so
the pair is always valid). The special knob ``worker_shape`` takes values like ``"A100x1"``
and sets the GPU type and count together.

Grid files (``sim sweep --grid GRID.yaml``)::

    grid:                     # every combination of these lists
      deployment.autoscaling_config.scaling_up_timeout_sec: [60, 300, 1200]
      deployment.initial_worker_config.min_workers: [1, 2]
    lhs: 20                   # and/or: 20 Latin-hypercube points (or random: 20) over
    ranges:
      deployment.autoscaling_config.upper_allowed_latency_sec: {low: 1, high: 8, log: true}
      deployment.allow_spot_instances: [false, true]
    seed: 0                   # sampler seed
    seeds: 1-3                # simulation seeds of every point (common random numbers)
    constraints: ["ttft_s.p95<=2"]

Grid and sampled points combine as a product (each grid point with each sample).
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sim.errors import ConfigError

#: The knob that sets the GPU type and count of a worker together.
WORKER_SHAPE = "worker_shape"
GPU_PATH = "deployment.initial_worker_config.initial_workers_gpu"
GPU_NUM_PATH = "deployment.initial_worker_config.initial_workers_gpu_num"
#: Most points a grid file may expand to (a typo like ``lhs: 1e9`` must not exhaust memory).
MAX_POINTS = 1_000_000

_SHAPE = re.compile(r"^([A-Za-z0-9_.+-]+?)x(\d+)$")


def parse_shape(value: str, *, source: str = "worker_shape") -> tuple[str, int]:
    """``"A100x2"`` -> ``("A100", 2)``."""
    m = _SHAPE.match(str(value))
    if not m:
        raise ConfigError(f"expected a worker shape like A100x1, got {value!r}", source=source)
    return m.group(1), int(m.group(2))


@dataclass(frozen=True)
class Dim:
    """One knob of a space: ``name`` is a dotted scenario path (or ``worker_shape``)."""

    name: str

    def from_unit(self, u: float) -> Any:
        """The value at quantile ``u`` in [0, 1) (for random and Latin-hypercube samples)."""
        raise NotImplementedError


@dataclass(frozen=True)
class Choice(Dim):
    """A knob taking one of ``values``."""

    values: tuple[Any, ...] = ()

    def from_unit(self, u: float) -> Any:
        return self.values[min(int(u * len(self.values)), len(self.values) - 1)]


@dataclass(frozen=True)
class Range(Dim):
    """A knob in ``[low, high]``; ``log`` samples uniformly in log space, ``int`` rounds.

    With ``fraction_of``, the value is a share of another knob (``value × other``), so a
    bound kept below another stays valid whatever the other is.
    """

    low: float = 0.0
    high: float = 1.0
    log: bool = False
    integer: bool = False
    fraction_of: str | None = None

    def from_unit(self, u: float) -> Any:
        if self.log:
            x = math.exp(math.log(self.low) + u * (math.log(self.high) - math.log(self.low)))
        else:
            x = self.low + u * (self.high - self.low)
        if self.integer:
            return int(min(max(round(x), math.ceil(self.low)), math.floor(self.high)))
        return float(x)


@dataclass(frozen=True)
class Space:
    """The knobs of a sweep: a grid (every combination) times ``n`` sampled points."""

    grid: tuple[Choice, ...] = ()
    ranges: tuple[Dim, ...] = ()
    sampler: str = "grid"  # grid | random | lhs
    n: int = 0
    seed: int = 0
    extra: Mapping[str, Any] = field(default_factory=dict)
    source: str = "<grid>"

    @property
    def names(self) -> list[str]:
        """Knob names in order (grid first)."""
        return [d.name for d in (*self.grid, *self.ranges)]

    @property
    def columns(self) -> list[str]:
        """The knob columns of a sweep table: each knob's dotted path, holding the value that was
        simulated (fractions resolved, floats tidied); a worker shape also as its GPU and count."""
        cols: list[str] = []
        for name in self.names:
            cols += [WORKER_SHAPE, GPU_PATH, GPU_NUM_PATH] if name == WORKER_SHAPE else [name]
        return cols

    def points(self) -> list[dict[str, Any]]:
        """Every point as ``{knob: value}``, in a fixed order (same file and seed -> same points)."""
        grid_points: list[dict[str, Any]] = [
            dict(zip([d.name for d in self.grid], combo, strict=True))
            for combo in itertools.product(*(d.values for d in self.grid))
        ]
        if not self.ranges:
            return grid_points
        units = sample_units(self.sampler, self.n, len(self.ranges), self.seed)
        sampled = [
            {d.name: d.from_unit(float(u)) for d, u in zip(self.ranges, row, strict=True)}
            for row in units
        ]
        return [{**g, **s} for g in grid_points for s in sampled]


def sample_units(sampler: str, n: int, d: int, seed: int) -> np.ndarray:
    """``n`` points in the unit cube [0, 1)^d: ``random`` (uniform) or ``lhs`` (Latin hypercube)."""
    if sampler == "lhs":
        try:
            from scipy.stats import qmc
        except ImportError:
            raise ConfigError("Latin-hypercube sampling needs scipy (a dependency of this package): pip install scipy",
                              source="lhs") from None
        return np.asarray(qmc.LatinHypercube(d=d, seed=np.random.default_rng(seed)).random(n))
    return np.random.default_rng(seed).random((n, d))


def tidy(value: Any) -> Any:
    """Floats to 4 significant digits (knobs people read and APIs receive), other values as is."""
    if isinstance(value, float) and math.isfinite(value):
        return float(f"{value:.4g}")
    if isinstance(value, np.generic):
        return tidy(value.item())
    return value


def overrides_for(point: Mapping[str, Any], base: Mapping[str, Any],
                  dims: Sequence[Dim] = ()) -> dict[str, Any]:
    """The dotted overrides that make ``point``: shapes expanded, fractions resolved.

    ``base`` is the resolved scenario mapping (for a ``fraction_of`` knob not in the point).
    """
    fractions = {d.name: d.fraction_of for d in dims if isinstance(d, Range) and d.fraction_of}
    out: dict[str, Any] = {}
    for name, value in point.items():
        if name == WORKER_SHAPE:
            gpu, num = parse_shape(value)
            out[GPU_PATH] = gpu
            out[GPU_NUM_PATH] = num
        elif name not in fractions:
            out[name] = tidy(value)
    for name, of in fractions.items():
        if name in point:
            other = out.get(of, _get(base, of))
            if not isinstance(other, int | float) or isinstance(other, bool):
                raise ConfigError(f"{name} is a fraction of {of}, which is {other!r}",
                                  field=name)
            out[name] = tidy(float(point[name]) * float(other))
    return out


def check_knobs(dims: Sequence[Dim], base: Mapping[str, Any], *, source: str) -> None:
    """Fail before running anything on a knob that names no scenario setting (nearest suggested)."""
    from sim.scenario import apply_overrides

    for d in dims:
        value = d.values[0] if isinstance(d, Choice) else d.from_unit(0.5)
        apply_overrides(base, overrides_for({d.name: value}, base, dims), source=source)


def _get(data: Mapping[str, Any], dotted: str) -> Any:
    node: Any = data
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def parse_dim(name: str, spec: Any, *, source: str) -> Dim:
    """A knob from its YAML: a list (choices) or ``{low, high, log, int, fraction_of}``."""
    where = f"{source}: {name}"
    if isinstance(spec, list | tuple):
        if not spec:
            raise ConfigError("expected a non-empty list of values", source=source, field=name)
        if name == WORKER_SHAPE:
            for v in spec:
                parse_shape(v, source=where)
        return Choice(name, tuple(spec))
    if isinstance(spec, Mapping):
        unknown = set(spec) - {"low", "high", "log", "int", "fraction_of", "choices"}
        if unknown:
            raise ConfigError(
                f"unknown key(s) {', '.join(sorted(map(str, unknown)))}; expected low, high, "
                "log, int, fraction_of (or choices)", source=source, field=name)
        if "choices" in spec:
            return parse_dim(name, list(spec["choices"]), source=source)
        try:
            low, high = float(spec["low"]), float(spec["high"])
        except KeyError as exc:
            raise ConfigError(f"missing {exc.args[0]!r}", source=source, field=name) from None
        except (TypeError, ValueError):
            raise ConfigError("expected numbers for low and high", source=source,
                              field=name) from None
        log = bool(spec.get("log", False))
        if not (math.isfinite(low) and math.isfinite(high) and low <= high):
            raise ConfigError(f"expected finite low <= high, got {low:g}..{high:g}",
                              source=source, field=name)
        if log and low <= 0:
            raise ConfigError("a log range needs low > 0", source=source, field=name)
        return Range(name, low, high, log, bool(spec.get("int", False)),
                     spec.get("fraction_of"))
    raise ConfigError(f"expected a list of values or {{low, high}}, got {spec!r}",
                      source=source, field=name)


def _count(value: Any, key: str, source: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_POINTS:
        raise ConfigError(f"expected a whole number of points in 1..{MAX_POINTS:,}, got {value!r}",
                          source=source, field=key)
    return value


def space_from_dict(data: Mapping[str, Any], *, source: str = "<grid>") -> Space:
    """A :class:`Space` from a grid file's mapping (see the module docstring)."""
    allowed = {"grid", "ranges", "random", "lhs", "seed", "seeds", "constraints"}
    unknown = set(data) - allowed
    if unknown:
        raise ConfigError(f"unknown key(s) {', '.join(sorted(map(str, unknown)))}; expected "
                          f"{', '.join(sorted(allowed))}", source=source)
    grid_spec = data.get("grid") or {}
    if not isinstance(grid_spec, Mapping):
        raise ConfigError("expected a mapping of dotted.path: [values]", source=source,
                          field="grid")
    grid = []
    for name, spec in grid_spec.items():
        if not isinstance(spec, list) or not spec:
            raise ConfigError("expected a non-empty list of values", source=source,
                              field=f"grid.{name}")
        grid.append(Choice(str(name), tuple(spec)))
    ranges_spec = data.get("ranges") or {}
    if not isinstance(ranges_spec, Mapping):
        raise ConfigError("expected a mapping of dotted.path: {low, high} or [values]",
                          source=source, field="ranges")
    ranges = [parse_dim(str(k), v, source=source) for k, v in ranges_spec.items()]
    if "random" in data and "lhs" in data:
        raise ConfigError("random and lhs are exclusive: pick one sampler", source=source)
    sampler, n = "grid", 0
    for key in ("random", "lhs"):
        if key in data:
            sampler, n = key, _count(data[key], key, source)
    if ranges and sampler == "grid":
        raise ConfigError("ranges need a number of points: add random: N or lhs: N",
                          source=source, field="ranges")
    if sampler != "grid" and not ranges:
        raise ConfigError(f"{sampler}: {n} needs ranges to sample", source=source, field=sampler)
    if not grid and not ranges:
        raise ConfigError("the grid file names no knob: add grid: or ranges:", source=source)
    seed = data.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"expected a whole number >= 0, got {seed!r}", source=source,
                          field="seed")
    space = Space(tuple(grid), tuple(ranges), sampler, n, seed,
                  {k: data[k] for k in ("seeds", "constraints") if k in data}, source)
    total = math.prod(len(d.values) for d in grid) * (n if ranges else 1)
    if total > MAX_POINTS:
        raise ConfigError(f"the grid expands to {total:,} points; the limit is {MAX_POINTS:,}",
                          source=source)
    return space


def load_space(path: str | Path) -> Space:
    """Read a grid file (YAML or JSON)."""
    from sim.io import read_yaml_or_json

    return space_from_dict(read_yaml_or_json(path), source=str(path))
