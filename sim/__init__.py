"""Autoscaling policy simulator for GPU inference deployments.

>>> import sim
>>> scenario = sim.load_scenario("scenarios/quickstart.yaml")   # doctest: +SKIP
>>> result = sim.simulate(scenario, seed=1)                      # doctest: +SKIP
>>> result.summary["cost"]["per_hour_usd"]                       # doctest: +SKIP

``import sim`` is cheap: the public names below are imported on first use (PEP 562), so
``sim --help`` or a CLI error does not pay for pandas, SimPy or pydantic.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from sim.errors import ConfigError, ProfileError, SimError, TraceError

if TYPE_CHECKING:
    from sim.metrics import Result
    from sim.run import simulate
    from sim.scenario import Scenario, load_scenario, scenario_from_dict

# Public name -> module that defines it (imported lazily by __getattr__).
_LAZY = {
    "Result": "sim.metrics",
    "simulate": "sim.run",
    "Scenario": "sim.scenario",
    "load_scenario": "sim.scenario",
    "scenario_from_dict": "sim.scenario",
}

__all__ = [
    "ConfigError",
    "ProfileError",
    "Result",
    "Scenario",
    "SimError",
    "TraceError",
    "load_scenario",
    "scenario_from_dict",
    "simulate",
]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    """Import a public name's module on first access."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'sim' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
