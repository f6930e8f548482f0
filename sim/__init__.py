"""Autoscaling policy simulator for GPU inference deployments.

>>> import sim
>>> scenario = sim.load_scenario("scenarios/quickstart.yaml")   # doctest: +SKIP
>>> result = sim.simulate(scenario, seed=1)                      # doctest: +SKIP
>>> result.summary["cost"]["per_hour_usd"]                       # doctest: +SKIP
"""

from sim.errors import ConfigError, ProfileError, SimError, TraceError
from sim.metrics import Result
from sim.run import simulate
from sim.scenario import Scenario, load_scenario, scenario_from_dict

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
