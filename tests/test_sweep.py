"""Sweeps: grid and sampled spaces, one Parquet table, failures recorded, resume after kill -9
and after a killed pool process without lost or duplicated points, the CLI and its outputs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from helpers import bursty_llm_scenario

from sim import ConfigError, scenario_from_dict
from sim.cli import main
from sim.executor import Runner
from sim.tune.space import Range, space_from_dict
from sim.tune.sweep import JOURNAL, point_means, run_sweep

ROOT = Path(__file__).resolve().parents[1]
MIN_W = "deployment.initial_worker_config.min_workers"
UP = "deployment.autoscaling_config.scaling_up_timeout_sec"
UPPER = "deployment.autoscaling_config.upper_allowed_latency_sec"
LOWER = "deployment.autoscaling_config.lower_allowed_latency_sec"


def scenario_data(duration_s: float = 1200) -> dict[str, object]:
    return bursty_llm_scenario("sw", duration_s=duration_s, rate_per_s=4, autoscaling={
        "time_window_sec": 60, "upper_allowed_latency_sec": 1, "lower_allowed_latency_sec": 0.2,
        "scaling_up_timeout_sec": 60, "scaling_down_timeout_sec": 300})


GRID = {"grid": {MIN_W: [1, 2], UP: [30, 600]}}


def _figures(table: pd.DataFrame) -> pd.DataFrame:
    cols = [c for c in table.columns if not c.startswith("sim.") or c == "sim.seed"]
    return table[cols].reset_index(drop=True)


def test_grid_times_lhs_is_a_product_in_fixed_order() -> None:
    """2 x 2 grid points times 5 Latin-hypercube samples = 20 points, the same for the same seed."""
    spec = {**GRID, "lhs": 5, "ranges": {UPPER: {"low": 0.5, "high": 8, "log": True}}}
    a, b = space_from_dict(spec).points(), space_from_dict(spec).points()
    assert len(a) == 20 and a == b
    assert space_from_dict({**spec, "seed": 1}).points() != a
    assert a[0][MIN_W] == 1 and a[-1][MIN_W] == 2


def test_lhs_puts_one_sample_in_each_stratum() -> None:
    """Latin hypercube: each of the n equal strata of every range holds exactly one sample."""
    n = 10
    space = space_from_dict({"lhs": n, "ranges": {UP: {"low": 0, "high": 1000},
                                                  UPPER: {"low": 0, "high": 1}}})
    pts = space.points()
    for name, high in ((UP, 1000), (UPPER, 1)):
        strata = sorted(int(p[name] / high * n) for p in pts)
        assert strata == list(range(n))


def test_int_log_range_stays_in_bounds() -> None:
    """An integer log range rounds into [low, high] at both ends."""
    d = Range("x", 10, 1800, log=True, integer=True)
    assert d.from_unit(0.0) == 10 and d.from_unit(0.999999) == 1800
    assert isinstance(d.from_unit(0.5), int)


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ({"grid": {MIN_W: []}}, "non-empty list"),
        ({"gird": {MIN_W: [1]}}, "unknown key"),
        ({"ranges": {UPPER: {"low": 1, "high": 2}}}, "random: N or lhs: N"),
        ({"lhs": 3, "ranges": {UPPER: {"low": 2, "high": 1}}}, "low <= high"),
        ({"lhs": 3, "random": 3, "ranges": {UPPER: {"low": 1, "high": 2}}}, "exclusive"),
        ({"lhs": 0, "ranges": {UPPER: {"low": 1, "high": 2}}}, "whole number"),
        ({"lhs": 3, "ranges": {UPPER: {"low": 0, "high": 2, "log": True}}}, "low > 0"),
    ],
)
def test_bad_grid_files_are_config_errors(spec: dict[str, object], match: str) -> None:
    """Each malformed grid file raises a ConfigError saying what was expected."""
    with pytest.raises(ConfigError, match=match):
        space_from_dict(spec, source="grid.yaml")


def test_sweep_table_failures_and_resume(tmp_path: Path) -> None:
    """One row per point and seed; a bad point records its error; re-running runs nothing again."""
    sc = scenario_from_dict(scenario_data())
    space = space_from_dict({"grid": {MIN_W: [1, -1, 2]}})
    res = run_sweep(sc, space, [1, 2], tmp_path)
    t = res.table
    assert list(zip(t["point"], t["seed"], strict=True)) == [(p, s) for p in range(3) for s in (1, 2)]
    bad = t[t["point"] == 1]
    assert bad["error"].str.contains("min_workers").all() and bad["cost.per_hour_usd"].isna().all()
    good = t[t["point"] != 1]
    assert good["error"].isna().all() and (good["cost.per_hour_usd"] > 0).all()
    # More workers cost more (same seeds: common random numbers).
    means = point_means(t, space.names).set_index("point")
    assert means.loc[2, "cost.per_hour_usd"] > means.loc[0, "cost.per_hour_usd"]
    again = run_sweep(sc, space, [1, 2], tmp_path)
    assert again.ran == 0 and again.skipped == 6
    pd.testing.assert_frame_equal(again.table, t)
    on_disk = pd.read_parquet(tmp_path / "sweep.parquet")
    pd.testing.assert_frame_equal(on_disk.reset_index(drop=True), t)


def test_sweep_refuses_a_folder_of_another_sweep(tmp_path: Path) -> None:
    """Resuming into a folder that holds a different grid is an error naming the folder."""
    sc = scenario_from_dict(scenario_data(300))
    run_sweep(sc, space_from_dict({"grid": {MIN_W: [1]}}), [1], tmp_path)
    with pytest.raises(ConfigError, match="different sweep"):
        run_sweep(sc, space_from_dict({"grid": {MIN_W: [2]}}), [1], tmp_path)


def _pool_children() -> list[int]:
    me = os.getpid()
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == me and fields[0] != "Z":
            out.append(int(stat.parent.name))
    return out


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_pool_process_killed_mid_sweep_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    """SIGKILL to a pool process mid-sweep: every (point, seed) ends once, equal to a serial sweep."""
    sc = scenario_from_dict(scenario_data())
    space = space_from_dict({"grid": {MIN_W: [1, 2, 3], UP: [30, 120, 600]}})
    killed: list[int] = []

    def progress(done: int, total: int) -> None:
        if done == 3 and not killed:
            kids = _pool_children()
            if kids:
                os.kill(kids[0], signal.SIGKILL)
                killed.append(kids[0])

    with Runner(workers=2) as r:
        pooled = run_sweep(sc, space, [1], tmp_path / "pool", runner=r, progress=progress)
    assert killed, "no pool process was killed"
    serial = run_sweep(sc, space, [1], tmp_path / "serial")
    assert pooled.table["error"].isna().all()
    lines = (tmp_path / "pool" / JOURNAL).read_text().splitlines()
    keys = [json.loads(line)["key"] for line in lines]
    assert len(keys) == len(set(keys)) == 9
    pd.testing.assert_frame_equal(_figures(pooled.table), _figures(serial.table))


def _lines(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="process groups")
def test_kill_9_mid_sweep_then_resume(tmp_path: Path) -> None:
    """`sim sweep` killed with SIGKILL mid-run (a torn last line too) resumes to the full table, each run once."""
    scen = tmp_path / "s.yaml"
    scen.write_text(yaml.safe_dump(scenario_data(2400)))
    grid = tmp_path / "grid.yaml"
    grid.write_text(yaml.safe_dump({"grid": {MIN_W: [1, 2, 3], UP: [30, 120, 300, 600]},
                                    "seeds": "1"}))
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "sim", "sweep", str(scen), "--grid", str(grid),
           "--out", str(out), "--workers", "2", "-q"]
    proc = subprocess.Popen(cmd, cwd=ROOT, start_new_session=True, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while _lines(out / JOURNAL) < 2 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done_at_kill = _lines(out / JOURNAL)
    assert 2 <= done_at_kill < 12, f"the kill landed after {done_at_kill} of 12 runs"
    with open(out / JOURNAL, "ab") as f:  # as if the kill had landed mid-write
        f.write(b'{"key": "torn')
    assert main(["sweep", str(scen), "--grid", str(grid), "--out", str(out), "-q"]) == 0
    table = pd.read_parquet(out / "sweep.parquet")
    assert len(table) == 12 and table["error"].isna().all()
    assert not table.duplicated(["point", "seed"]).any()
    keys = [json.loads(line)["key"] for line in (out / JOURNAL).read_text().splitlines()]
    assert len(keys) == len(set(keys)) == 12
    fresh = tmp_path / "fresh"
    assert main(["sweep", str(scen), "--grid", str(grid), "--out", str(fresh), "-q"]) == 0
    pd.testing.assert_frame_equal(_figures(table), _figures(pd.read_parquet(fresh / "sweep.parquet")))


def test_cli_sweep_writes_summary_plots_and_an_exportable_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """sim sweep writes the table, sweep.md, the Pareto plot and a heatmap; a row exports as a create body."""
    scen = tmp_path / "s.yaml"
    scen.write_text(yaml.safe_dump(scenario_data(600)))
    grid = tmp_path / "grid.yaml"
    grid.write_text(yaml.safe_dump({"grid": {MIN_W: [1, 2]}, "random": 2,
                                    "ranges": {UPPER: {"low": 0.5, "high": 4},
                                               LOWER: {"low": 0.1, "high": 0.5,
                                                       "fraction_of": UPPER}}}))
    out = tmp_path / "out"
    code = main(["sweep", str(scen), "--grid", str(grid), "--out", str(out),
                 "--constraint", "ttft_s.p95<=5", "--seeds", "1-2"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "4 points x 2 seeds" in printed and "cheapest meeting ttft_s.p95<=5" in printed
    for name in ("sweep.parquet", "sweep.md", "pareto.png", "scenario.json"):
        assert (out / name).is_file(), name
    assert list(out.glob("heatmap_*.png"))
    assert "Cheapest points meeting the constraints" in (out / "sweep.md").read_text()
    from sim.api.sources import load_source

    table = pd.read_parquet(out / "sweep.parquet")
    row = int(np.flatnonzero(table[MIN_W] == 2)[0])
    exported = load_source(out / "sweep.parquet", row=row)
    assert exported.body.initial_worker_config.min_workers == 2
    # The table holds what was simulated (the lower bound resolved from its fraction), and the
    # exported body is exactly that.
    ac = exported.body.autoscaling_config
    assert ac.upper_allowed_latency_sec == table.loc[row, UPPER]
    assert ac.lower_allowed_latency_sec == table.loc[row, LOWER] < table.loc[row, UPPER]


def test_cli_sweep_bad_grid_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A typo in the grid file's path ends as one line naming it, exit 2."""
    scen = tmp_path / "s.yaml"
    scen.write_text(yaml.safe_dump(scenario_data(300)))
    grid = tmp_path / "grid.yaml"
    grid.write_text("grid: {deployment.initial_worker_config.min_wrkers: [1]}\n")
    code = main(["sweep", str(scen), "--grid", str(grid), "--out", str(tmp_path / "o"), "-q"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "min_wrkers" in err[0]
