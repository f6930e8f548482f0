"""sim compare: paired differences on common random numbers, the table, the plot, bad input."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
import yaml
from helpers import bursty_llm_scenario

from sim import ConfigError, scenario_from_dict
from sim.cli import main
from sim.metrics.stats import mean_ci95
from sim.run import simulate
from sim.tune.compare import parse_vary

MIN_W = "deployment.initial_worker_config.min_workers"


def scenario_data() -> dict[str, object]:
    return bursty_llm_scenario("cmp", duration_s=600)


def test_parse_vary() -> None:
    """path=v1,v2 parses values as YAML; one value or no path is an error naming --vary."""
    assert parse_vary("a.b=1,2.5,true") == ("a.b", [1, 2.5, True])
    for bad in ("a.b=1", "=1,2", "a.b"):
        with pytest.raises(ConfigError, match="--vary"):
            parse_vary(bad)


def test_cli_vary_paired_differences_match_hand_computation(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The Δ column is the mean and t-interval of per-seed differences of runs on the same seeds."""
    scen = tmp_path / "s.yaml"
    scen.write_text(yaml.safe_dump(scenario_data()))
    out = tmp_path / "out"
    code = main(["compare", str(scen), "--vary", f"{MIN_W}=1,2", "--seeds", "1-3",
                 "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "min_workers=1" in printed and "Δ" in printed
    for name in ("compare.md", "compare.csv", "compare.png"):
        assert (out / name).is_file()
    t = pd.read_csv(out / "compare.csv")
    row = t[(t["config"] == "min_workers=2") & (t["figure"] == "cost.per_hour_usd")].iloc[0]
    costs = {}
    for mw in (1, 2):
        data = scenario_data()
        data["deployment"]["initial_worker_config"]["min_workers"] = mw  # type: ignore[index]
        sc = scenario_from_dict(data)
        costs[mw] = [simulate(sc, s).summary["cost"]["per_hour_usd"] for s in (1, 2, 3)]
    d = mean_ci95([b - a for a, b in zip(costs[1], costs[2], strict=True)])
    assert math.isclose(row["diff"], d["mean"], rel_tol=1e-12)
    assert math.isclose(row["diff_half_width"], d["half_width"], rel_tol=1e-9)
    assert math.isclose(row["mean"], sum(costs[2]) / 3, rel_tol=1e-12)


def test_cli_two_scenarios(tmp_path: Path) -> None:
    """Two scenario files compare column by column under their file names."""
    a, b = tmp_path / "one.yaml", tmp_path / "two.yaml"
    a.write_text(yaml.safe_dump(scenario_data()))
    data = scenario_data()
    data["deployment"]["initial_worker_config"]["initial_workers_gpu"] = "H100"  # type: ignore[index]
    b.write_text(yaml.safe_dump(data))
    out = tmp_path / "out"
    assert main(["compare", str(a), str(b), "--seeds", "1-2", "--out", str(out), "-q"]) == 0
    t = pd.read_csv(out / "compare.csv")
    assert set(t["config"]) == {"one", "two"}


@pytest.mark.parametrize(
    ("extra", "needle"),
    [(["--vary", f"{MIN_W}=1,-1"], "min_workers"),
     (["--vary", "deployment.nope=1,2"], "nope"),
     ([], "two or more scenarios")],
)
def test_cli_bad_input_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                   extra: list[str], needle: str) -> None:
    """A bad --vary value or path, or a single scenario without --vary: one line, exit 2, nothing run."""
    scen = tmp_path / "s.yaml"
    scen.write_text(yaml.safe_dump(scenario_data()))
    code = main(["compare", str(scen), *extra, "--seeds", "1-2", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and needle in err[0]
