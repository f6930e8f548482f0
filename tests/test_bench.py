"""``sim bench``: the smoke suite end to end, the capacity bound below every policy, CLI errors."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from sim.cli import main


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The smoke suite, run once through the CLI (two processes)."""
    out = tmp_path_factory.mktemp("bench") / "smoke"
    assert main(["bench", "--suite", "smoke", "--workers", "2", "--out", str(out), "-q"]) == 0
    return out


def test_smoke_writes_leaderboard(smoke: Path) -> None:
    """Every policy x scenario of the suite has a leaderboard row, and the files exist."""
    from sim.bench.suite import SUITES

    lb = pd.read_csv(smoke / "leaderboard.csv")
    suite = SUITES["smoke"]
    assert len(lb) == len(suite.scenarios) * len(suite.policies)
    assert set(lb.policy) == set(suite.policies)
    for name in ("leaderboard.md", "runs.csv", "yardsticks.csv", "cost_vs_p95.png"):
        assert (smoke / name).stat().st_size > 0
    assert (lb.loc[lb.policy == "hindsight", "ratio_to_hindsight"] == 1.0).all()


def test_capacity_bound_below_every_policy(smoke: Path) -> None:
    """The capacity lower bound is below every policy's cost, per scenario and seed."""
    runs = pd.read_csv(smoke / "runs.csv")
    yard = pd.read_csv(smoke / "yardsticks.csv")
    m = runs.merge(yard[["scenario", "seed", "bound_usd"]], on=["scenario", "seed"])
    assert len(m) == len(runs)
    assert (m.bound_usd > 0).all()
    assert (m.bound_usd < m.cost_total_usd).all(), m[m.bound_usd >= m.cost_total_usd]


def test_unknown_suite_and_policy_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A bad --suite or --policies is one line on stderr and exit status 2."""
    assert main(["bench", "--suite", "nope", "--out", str(tmp_path / "x")]) == 2
    assert "--suite: unknown suite 'nope'" in capsys.readouterr().err
    assert main(["bench", "--policies", "knativ", "--out", str(tmp_path / "y")]) == 2
    assert "unknown policy 'knativ'" in capsys.readouterr().err


def test_hindsight_replay_beaten_only_where_need_unmet(smoke: Path) -> None:
    """The hindsight replay costs at most every policy on every smoke scenario and seed, except
    a policy that left more of the MILP's SLO-feasible need unmet than the replay did and met
    the SLO for fewer requests (the MILP's feasibility is stricter than that policy's fleet)."""
    runs = pd.read_csv(smoke / "runs.csv")
    assert runs.deficit.between(0, 1).all()
    for (_scenario, _seed), g in runs.groupby(["scenario", "seed"]):
        h = g[g.policy == "hindsight"].iloc[0]
        cheaper = g[(g.policy != "hindsight") & (g.cost_total_usd < h.cost_total_usd)]
        for r in cheaper.itertuples():
            assert r.deficit > h.deficit and r.slo_attainment < h.slo_attainment, (r, h)


def test_scalegen_tuned_searches_autoscaler_knobs_only() -> None:
    """The bench's small ``sim tune`` of scalegen leaves the fleet alone (no spot, shape or
    use_same_gpus knob in the winner) and the tuned row keeps the scenario's SLO pinned."""
    from sim.bench.tuned import FLEET_KNOBS, slo_pins, tune_scalegen
    from sim.executor import Runner
    from sim.scenario import load_scenario

    repo = Path(__file__).resolve().parents[1]
    sc = load_scenario(repo / "scenarios" / "spike_llama3_8b_a100.yaml", ["workload.duration_s=600"])
    with Runner(1) as runner:
        ov = tune_scalegen(sc, 1, runner, 0.9, trials=2, batch=2)
    assert ov and not set(ov) & set(FLEET_KNOBS)
    assert all(k.startswith(("deployment.autoscaling_config.", "deployment.initial_worker_config.min_workers"))
               for k in ov)
    assert slo_pins(sc) == ["sim.slo.metric=ttft", "sim.slo.threshold_s=2"]
    tuned = load_scenario(repo / "scenarios" / "spike_llama3_8b_a100.yaml",
                          [f"{k}={v}" for k, v in ov.items()] + slo_pins(sc))
    assert tuned.slo_threshold_s() == 2.0 and tuned.slo_metric() == sc.slo_metric()


def test_every_sweep_holds_the_documented_default() -> None:
    """Each baseline's three-value sweep includes its documented default (whose run is reused)."""
    from sim.bench.suite import SWEEPS, documented_default

    assert {p: documented_default(p, k) for p, (k, _v) in SWEEPS.items()} == {
        "knative": 100.0, "hpa": 70.0, "keda": 100.0, "ray_serve": 2.0, "skyserve": 2.5,
        "sla_planner": 0.05}
    for policy, (knob, values) in SWEEPS.items():
        assert documented_default(policy, knob) in values
