"""Every scenario file in scenarios/ loads, validates and runs (on a short horizon)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim import load_scenario, simulate
from sim.scenario import validate_scenario

SCENARIOS = sorted((Path(__file__).resolve().parents[1] / "scenarios").glob("*.yaml"))
# Long-horizon scenarios whose first minutes are quiet get a longer slice.
HORIZON_S = {"servegen_14day_scale_to_zero": 43200.0, "servegen_day_scale_to_zero": 43200.0}
# Scenarios too long to generate whole in a test (tens of millions of requests): cut the workload.
WORKLOAD_OVERRIDES = {"fortnight_diurnal_llama3_8b": ["workload.duration_s=1800"]}


def test_there_are_scenarios() -> None:
    """The repository ships the scenario files the README and issues refer to."""
    names = {p.stem for p in SCENARIOS}
    assert {"quickstart", "azure_conv_llama3_8b_a100", "diurnal_scale_to_zero",
            "llama2_70b_4xa100_80gb"} <= names


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_scenario_runs(path: Path) -> None:
    """The scenario validates, and 20 simulated minutes of it conserve every request."""
    horizon = HORIZON_S.get(path.stem, 1200.0)
    overrides = [f"sim.horizon_s={horizon}", *WORKLOAD_OVERRIDES.get(path.stem, [])]
    scenario = load_scenario(path, overrides=overrides)
    validate_scenario(scenario)
    res = simulate(scenario)
    r = res.summary["requests"]
    assert r["arrived"] > 0
    assert r["arrived"] == r["completed"] + r["failed"] + r["in_flight"]
    assert res.summary["cost"]["total_usd"] > 0
    assert res.summary["sim"]["horizon_s"] == horizon
