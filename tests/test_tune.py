"""Tuning: constraints, search spaces, an Optuna study that is deterministic serial and on Dask,
resumes after kill -9, confirms its winner on more seeds and writes a valid create body."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from helpers import bursty_llm_scenario

from sim import ConfigError, scenario_from_dict
from sim.api.schema import parse_create
from sim.cli import main
from sim.executor import Runner
from sim.tune.metrics import pareto_mask, parse_constraint
from sim.tune.optimize import (
    TuneSettings,
    candidates,
    confirm,
    default_space,
    run_study,
    shape_choices,
    space_from_yaml,
)
from sim.tune.space import WORKER_SHAPE, Choice, Range, overrides_for

optuna = pytest.importorskip("optuna")
ROOT = Path(__file__).resolve().parents[1]
AC = "deployment.autoscaling_config."


def scenario_data(duration_s: float = 900) -> dict[str, object]:
    return bursty_llm_scenario("tu", workers=2, duration_s=duration_s)


SMALL_SPACE = [
    Range(AC + "upper_allowed_latency_sec", 0.3, 4, log=True),
    Range(AC + "lower_allowed_latency_sec", 0.1, 0.8, fraction_of=AC + "upper_allowed_latency_sec"),
    Range(AC + "scaling_up_timeout_sec", 10, 600, log=True, integer=True),
    Range("deployment.initial_worker_config.min_workers", 1, 3, integer=True),
]


def test_parse_constraint_forms_and_errors() -> None:
    """'FIG<=X' / '>=' parse; unknown figures and malformed text are ConfigErrors naming --constraint."""
    c = parse_constraint("ttft_s.p95 <= 2")
    assert (c.figure, c.op, c.bound) == ("ttft_s.p95", "<=", 2.0)
    assert c.met(2.0) and not c.met(2.1) and c.violation(None) == float("inf")
    lo = parse_constraint("slo.attainment>=0.99")
    assert lo.met(0.995) and lo.violation(0.98) == pytest.approx(0.01)
    for bad in ("ttft<=2", "ttft_s.p95=2", "latency.p95<=2", "ttft_s.p95<=x"):
        with pytest.raises(ConfigError, match="--constraint"):
            parse_constraint(bad)


def test_pareto_mask_by_hand() -> None:
    """Points beaten on both cost and latency are off the front; NaN never on it."""
    cost = [1.0, 2.0, 3.0, 2.5, float("nan")]
    lat = [5.0, 2.0, 1.0, 2.5, 0.1]
    assert pareto_mask(cost, lat).tolist() == [True, True, True, False, False]  # type: ignore[arg-type]


def test_default_space_covers_the_knobs_and_shapes_hold_the_model() -> None:
    """Band, window, three timeouts, floor, spot, same-GPUs and catalog shapes that fit an 8B model."""
    sc = scenario_from_dict(scenario_data())
    names = {d.name for d in default_space(sc)}
    for knob in ("upper_allowed_latency_sec", "lower_allowed_latency_sec", "time_window_sec",
                 "scaling_up_timeout_sec", "scaling_down_timeout_sec", "scale_to_zero_timeout_sec"):
        assert AC + knob in names
    assert {"deployment.allow_spot_instances", WORKER_SHAPE,
            "deployment.initial_worker_config.min_workers",
            "deployment.initial_worker_config.use_same_gpus_when_scaling"} <= names
    shapes = shape_choices(sc)
    assert "A100x1" in shapes and "H100x1" in shapes
    assert all(not s.startswith("T4x1") for s in shapes)  # 16 GB cannot hold 16 GB of weights


def test_fraction_and_shape_overrides() -> None:
    """A fraction knob multiplies its reference; a worker shape sets GPU type and count."""
    base = {"deployment": {"autoscaling_config": {"upper_allowed_latency_sec": 4}}}
    ov = overrides_for({AC + "lower_allowed_latency_sec": 0.25, WORKER_SHAPE: "H100x2"}, base,
                       SMALL_SPACE)
    assert ov[AC + "lower_allowed_latency_sec"] == 1.0
    assert ov["deployment.initial_worker_config.initial_workers_gpu"] == "H100"
    assert ov["deployment.initial_worker_config.initial_workers_gpu_num"] == 2


def test_space_yaml_edits_the_default(tmp_path: Path) -> None:
    """null drops a knob, a spec replaces one, replace: true keeps only the listed ones; typos fail."""
    sc = scenario_from_dict(scenario_data())
    dims = space_from_yaml({"space": {"deployment.allow_spot_instances": None,
                                      WORKER_SHAPE: ["A100x1", "H100x1"]}}, sc, source="s.yaml")
    names = [d.name for d in dims]
    assert "deployment.allow_spot_instances" not in names
    shape = next(d for d in dims if d.name == WORKER_SHAPE)
    assert isinstance(shape, Choice) and shape.values == ("A100x1", "H100x1")
    only = space_from_yaml({"replace": True, "space": {AC + "time_window_sec": {"low": 30, "high": 60}}},
                           sc, source="s.yaml")
    assert [d.name for d in only] == [AC + "time_window_sec"]
    with pytest.raises(ConfigError, match="shape like A100x1"):
        space_from_yaml({"space": {WORKER_SHAPE: ["A100"]}}, sc, source="s.yaml")


def _settings(trials: int, **kw: object) -> TuneSettings:
    base = dict(constraints=[parse_constraint("ttft_s.p95<=1.5")], trials=trials, batch=4,
                seeds=[1], confirm_seeds=[1, 2, 3], top=2, dims=SMALL_SPACE)
    base.update(kw)
    return TuneSettings(**base)  # type: ignore[arg-type]


def _params(study: object) -> list[dict[str, object]]:
    return [t.params for t in study.get_trials(deepcopy=False)]  # type: ignore[attr-defined]


def test_same_seed_same_trials_and_winner_serial_and_on_dask(tmp_path: Path) -> None:
    """The same sampler seed gives the same trials, values and confirmed winner alone and on a Dask LocalCluster."""
    pytest.importorskip("distributed")
    sc = scenario_from_dict(scenario_data())
    st = _settings(8)
    with Runner() as r:
        a = run_study(sc, st, tmp_path / "a", r)
        conf_a = confirm(sc, st, candidates(a, st), r)
    with Runner(workers=2, scheduler="local") as r:
        b = run_study(sc, st, tmp_path / "b", r)
        conf_b = confirm(sc, st, candidates(b, st), r)
    assert _params(a) == _params(b)
    assert [t.values for t in a.get_trials()] == [t.values for t in b.get_trials()]
    assert conf_a["winner"] is not None
    assert conf_a["winner"]["overrides"] == conf_b["winner"]["overrides"]
    # A different sampler seed explores elsewhere.
    with Runner() as r:
        c = run_study(sc, _settings(4, seed=1), tmp_path / "c", r)
    assert _params(c) != _params(a)[:4]


def test_resume_runs_trials_left_running_and_stops_at_the_count(tmp_path: Path) -> None:
    """Trials asked but never told (a killed tune) are evaluated on resume; the total is as asked."""
    sc = scenario_from_dict(scenario_data(600))
    st = _settings(4)
    with Runner() as r:
        run_study(sc, st, tmp_path, r)
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    study = optuna.load_study(study_name="sim-tune",
                              storage=JournalStorage(JournalFileBackend(str(tmp_path / "study.journal"))))
    t = study.ask()
    t.suggest_float(AC + "upper_allowed_latency_sec", 0.3, 4, log=True)  # left RUNNING
    with Runner() as r:
        done = run_study(sc, _settings(6), tmp_path, r)
    states = [t.state.name for t in done.get_trials()]
    assert len(states) == 6 and "RUNNING" not in states
    assert [t.number for t in done.get_trials()] == list(range(6))


def test_confirmation_prefers_a_confident_winner() -> None:
    """The winner meets each constraint at the cautious end of its CI; it is never an infeasible cheaper row."""
    sc = scenario_from_dict(scenario_data(600))
    st = _settings(1, constraints=[parse_constraint("ttft_s.p95<=1.5")])
    cands = [{"trial": 0, "overrides": {"deployment.initial_worker_config.min_workers": 1,
                                         AC + "scaling_up_timeout_sec": 1200}},
             {"trial": 1, "overrides": {"deployment.initial_worker_config.min_workers": 3}}]
    with Runner() as r:
        conf = confirm(sc, st, cands, r)
    rows = {r["label"]: r for r in conf["rows"]}
    assert set(rows) == {"starting config", "trial 0", "trial 1"}
    w = conf["winner"]
    assert w is not None and w["confident"]
    assert w["ttft_s.p95"]["ci95_high"] <= 1.5
    for r in conf["rows"]:
        if r.get("confident"):
            assert r["cost.per_hour_usd"]["mean"] >= w["cost.per_hour_usd"]["mean"]
    # Paired differences against the starting config exist for every figure.
    assert "diff:cost.per_hour_usd" in rows["trial 1"]


def test_cli_tune_writes_outputs_and_a_valid_create_body(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """sim tune writes trials, Pareto CSV/plot, candidates, tune.json, report.md and a schema-valid best.json."""
    scen = tmp_path / "s.yaml"
    scen.write_text(yaml.safe_dump(scenario_data(600)))
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump({"replace": True, "space": {
        "deployment.initial_worker_config.min_workers": {"low": 1, "high": 3, "int": True},
        AC + "scaling_up_timeout_sec": {"low": 10, "high": 600, "log": True, "int": True}}}))
    out = tmp_path / "out"
    code = main(["tune", str(scen), "--trials", "6", "--batch", "3", "--space", str(space),
                 "--constraint", "ttft_s.p95<=1.5", "--confirm-seeds", "1-3", "--top", "2",
                 "--out", str(out)])
    assert code == 0
    for name in ("trials.csv", "pareto.csv", "pareto.png", "candidates.csv", "tune.json",
                 "report.md", "study.journal"):
        assert (out / name).is_file(), name
    trials = pd.read_csv(out / "trials.csv")
    assert len(trials) == 6 and set(trials["state"]) == {"COMPLETE"}
    summary = json.loads((out / "tune.json").read_text())
    assert summary["winner"] is not None
    body = json.loads((out / "best.json").read_text())
    parsed = parse_create(body)
    assert parsed.initial_worker_config.min_workers == \
        summary["winner"]["overrides"].get("deployment.initial_worker_config.min_workers", 2)
    assert "Winner" in (out / "report.md").read_text() or "starting config" in (out / "report.md").read_text()
    from sim.api.sources import load_source

    assert load_source(out).body == parsed


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="process groups")
def test_kill_9_mid_tune_then_resume(tmp_path: Path) -> None:
    """`sim tune` killed with SIGKILL mid-study resumes from its journal to exactly the asked trials."""
    scen = tmp_path / "s.yaml"
    scen.write_text(yaml.safe_dump(scenario_data(1800)))
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "sim", "tune", str(scen), "--trials", "10", "--batch", "2",
           "--constraint", "ttft_s.p95<=1.5", "--confirm-seeds", "1-2", "--top", "1",
           "--out", str(out), "-q"]
    proc = subprocess.Popen(cmd, cwd=ROOT, start_new_session=True)
    journal = out / "study.journal"

    def told() -> int:
        if not journal.exists():
            return 0
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        try:
            study = optuna.load_study(study_name="sim-tune",
                                      storage=JournalStorage(JournalFileBackend(str(journal))))
        except KeyError:  # the study is not created yet
            return 0
        return len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)))

    deadline = time.monotonic() + 180
    while told() < 3 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert 3 <= told() < 10, f"the kill landed after {told()} of 10 trials"
    assert not (out / "best.json").exists()
    assert main(cmd[3:]) == 0
    trials = pd.read_csv(out / "trials.csv")
    assert trials["trial"].tolist() == list(range(10))
    assert set(trials["state"]) <= {"COMPLETE", "FAIL"} and (trials["state"] == "COMPLETE").all()
