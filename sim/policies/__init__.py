"""Autoscaling policies: an observation in, a decision out; registered by name."""

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
