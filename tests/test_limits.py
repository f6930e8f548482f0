"""Nothing hangs or exhausts memory silently: bounded fields, and an estimate of requests,
control ticks, workers and memory checked before anything is allocated. One test per kind."""

from __future__ import annotations

import pytest

import sim
from sim.cli import main
from sim.errors import LimitError
from sim.estimate import Limits, estimate_spec, parse_size
from tests.helpers import small_scenario, write_yaml


def _cli(args, capsys):
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def _refused(code, err, *needles):
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, (needle, err)


def test_trace_spanning_centuries_is_estimated_by_its_activity(tmp_path):
    """Two trace rows 200 years apart span ~6.3e8 ticks, but idle ticks are skipped and keep
    no row (tests/test_idle_ticks.py runs it): the memory estimate counts the ticks the two
    requests keep awake, not the span."""
    from sim.estimate import BASE_BYTES, estimate_built

    sc = sim.scenario_from_dict(small_scenario("b", workers=1, requests=5, mean_s=1))
    span = 200 * 365.25 * 86400
    est = estimate_built(sc, 2, span)
    assert est.ticks > 6e8
    assert est.bytes < BASE_BYTES + 2**20
    assert "control ticks" in est.describe()


@pytest.mark.parametrize(
    ("override", "message"),
    [("sim.horizon_s=1e12", "10 years of simulated time"),
     ("workload.duration_s=1e15", "10 years of simulated time"),
     ("autoscaler.decision_interval_s=1e-9", "at most every 0.001 s"),
     ("deployment.initial_worker_config.min_workers=1000000000", "workers one deployment can run"),
     ("workload.requests=1000000000000000", "requests one run can hold"),
     ("workload.rate_per_s=1e12", "a rate above any real gateway")],
)
def test_absurd_fields_are_bounded(tmp_path, capsys, override, message):
    """Each numeric field has a documented bound; validate and run both refuse past it."""
    path = write_yaml(tmp_path / "s.yaml", small_scenario("b", workers=1, requests=5, mean_s=1))
    for args in (["validate", str(path)], ["run", str(path), "-q"]):
        code, _, err = _cli([*args, "--set", override], capsys)
        _refused(code, err, override.split("=")[0], message)


def test_huge_seed_range_refused_at_once(tmp_path, capsys):
    """--seeds 1-1000000000 is refused before the range is expanded."""
    path = write_yaml(tmp_path / "s.yaml", small_scenario("b", workers=1, requests=5, mean_s=1))
    code, _, err = _cli(["run", str(path), "--seeds", "1-1000000000", "-q"], capsys)
    _refused(code, err, "--seeds", "more than 100,000 replications")


def test_workload_of_1e8_requests_needs_raised_limits(tmp_path, capsys):
    """10^8 requests is above the default --max-requests; raising it, the memory estimate
    (~70 GB) still refuses on a normal machine; both messages name the option to raise."""
    data = small_scenario("big", workers=1, requests=100_000_000, mean_s=1)
    path = write_yaml(tmp_path / "s.yaml", data)
    code, _, err = _cli(["run", str(path), "-q"], capsys)
    _refused(code, err, "~100,000,000 requests", "--max-requests 50,000,000")
    code, _, err = _cli(["validate", str(path)], capsys)  # validate builds it too: same guard
    _refused(code, err, "~100,000,000 requests")
    code, _, err = _cli(["run", str(path), "-q", "--max-requests", "200000000",
                         "--max-memory", "16G"], capsys)
    _refused(code, err, "--max-memory 16.0 GB", "GB of memory")


def test_limits_are_the_users_to_set(tmp_path, capsys):
    """A 50-request run passes by default and is refused under --max-requests 10 or a
    --max-memory below its estimate; the Python API raises LimitError the same way."""
    path = write_yaml(tmp_path / "s.yaml", small_scenario("s", workers=1, requests=50, mean_s=1))
    assert _cli(["run", str(path), "-q", "--out", str(tmp_path / "o")], capsys)[0] == 0
    _refused(*_cli(["run", str(path), "-q", "--max-requests", "10"], capsys)[::2], "--max-requests 10")
    _refused(*_cli(["run", str(path), "-q", "--max-memory", "1M"], capsys)[::2], "--max-memory 1.0 MB")
    _refused(*_cli(["run", str(path), "-q", "--max-memory", "lots"], capsys)[::2], "--max-memory")
    sc = sim.load_scenario(path)
    with pytest.raises(LimitError, match="~50 requests"):
        sim.simulate(sc, limits=Limits(max_requests=10))
    est = estimate_spec(sc)
    assert est is not None and est.requests == 50 and est.workers >= 1
    assert parse_size("1.5G") == 3 * 2**29 and parse_size("512M") == 2**29


def test_progress_forced_when_piped(tmp_path, capsys):
    """stderr is not a terminal under pytest: no bar by default, a bar with --progress."""
    path = write_yaml(tmp_path / "s.yaml", small_scenario("p", workers=1, requests=50, mean_s=1))
    _, _, err = _cli(["run", str(path), "--out", str(tmp_path / "a")], capsys)
    assert "simulating" not in err
    _, _, err = _cli(["run", str(path), "--out", str(tmp_path / "b"), "--progress"], capsys)
    assert "simulating" in err and "sim-s" in err


def test_summary_results_are_estimated_without_the_request_table():
    """sim.results: summary keeps no per-request table: the fortnight (60M requests) is
    estimated at a few GB, not the ~40 GB of a full table, so only --max-requests stops it."""
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "scenarios" / "fortnight_diurnal_llama3_8b.yaml"
    full = estimate_spec(sim.load_scenario(path))
    summary = estimate_spec(sim.load_scenario(path, overrides=["sim.results=summary"]))
    assert full is not None and summary is not None
    assert summary.requests == full.requests > 6e7
    assert full.bytes > 30 * 2**30
    assert summary.bytes < 6 * 2**30
    with pytest.raises(LimitError, match="--max-requests"):
        sim.estimate.check_limits(summary)
    sim.estimate.check_limits(summary, Limits(max_requests=70_000_000, max_memory_bytes=8 * 2**30))
