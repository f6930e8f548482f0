from sim.policies import hpa, knative, oracle, ray_serve, skyserve, sla_planner  # noqa: F401 - registers
from sim.policies.base import NO_OP, POLICIES, Decision, Observation, Policy
from sim.policies.scalegen import FixedPolicy, ScalegenPolicy, build_policy

__all__ = [
    "NO_OP",
    "POLICIES",
    "Decision",
    "FixedPolicy",
    "Observation",
    "Policy",
    "ScalegenPolicy",
    "build_policy",
]
