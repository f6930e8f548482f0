"""Tests of the ``sim`` command line (sim/cli/): outputs of ``sim run``, overrides, and bad input.

Most tests call :func:`sim.cli.main` in-process (fast); a few run ``python -m sim`` in a
subprocess to check the real exit status and that no traceback ever reaches the user.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from helpers import MODEL, small_scenario, write_yaml

from sim.cli import main

REPO = Path(__file__).resolve().parents[1]

# DESIGN §3.3: keys summary.json must have (section -> keys).
SUMMARY_KEYS: dict[str, tuple[str, ...]] = {
    "requests": ("arrived", "completed", "failed", "in_flight", "retried"),
    "latency_e2e_s": ("mean", "p50", "p90", "p95", "p99", "max"),
    "ttft_s": ("mean", "p50", "p90", "p95", "p99", "max"),
    "queue_s": ("mean", "p50", "p90", "p95", "p99", "max"),
    "slo": ("metric", "threshold_s", "attainment"),
    "cost": (
        "total_usd",
        "per_hour_usd",
        "per_1k_requests_usd",
        "per_1m_output_tokens_usd",
        "on_demand_usd",
        "spot_usd",
        "on_prem_usd",
    ),
    "workers": (
        "max",
        "mean",
        "gpu_hours",
        "cold_starts",
        "preemptions",
        "scale_ups",
        "scale_downs",
    ),
    "sim": ("seed", "horizon_s", "wall_s", "events", "requests_per_wall_s"),
}


def scenario_dict(**extra: Any) -> dict[str, Any]:
    """A small, fast scenario: 300 Poisson requests on two workers with an exponential service time."""
    return small_scenario("cli-test", workers=2, requests=300, mean_s=1.0, **extra)


@pytest.fixture
def scenario_file(tmp_path: Path) -> Path:
    """A valid scenario YAML in tmp_path."""
    return write_yaml(tmp_path / "scenario.yaml", scenario_dict())


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run ``sim ARGS`` in-process; (exit code, stdout, stderr)."""
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def run_subprocess(args: list[str], cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    """Run ``python -m sim ARGS`` in a subprocess with the repo on the path."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "sim", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def assert_one_line_error(code: int, err: str, *needles: str) -> str:
    """Exit status 2 and exactly one stderr line, starting with 'error:' and containing each needle."""
    assert code == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    line = lines[0]
    assert line.startswith("error:"), line
    for needle in needles:
        assert needle in line, (needle, line)
    return line


# --- sim run -------------------------------------------------------------------------------------


def test_run_writes_all_outputs(scenario_file: Path, tmp_path: Path) -> None:
    """`python -m sim run SCENARIO --out DIR` writes summary.json (DESIGN §3.3 keys), parquet, csv, report and PNGs."""
    out = tmp_path / "out"
    proc = run_subprocess(["run", str(scenario_file), "--out", str(out), "--quiet"])
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    for section, keys in SUMMARY_KEYS.items():
        assert section in summary, section
        for key in keys:
            assert key in summary[section], f"{section}.{key}"
    assert "scenario" in summary  # the resolved scenario
    assert summary["scenario"]["deployment"]["name"] == "cli-test"
    assert summary["requests"]["arrived"] == 300
    req = pd.read_parquet(out / "requests.parquet")
    assert len(req) == 300
    for col in (
        "arrival_s",
        "dispatch_s",
        "first_token_s",
        "completion_s",
        "prompt_tokens",
        "output_tokens",
        "worker",
        "status",
        "retries",
    ):
        assert col in req.columns, col
    workers = pd.read_parquet(out / "workers.parquet")
    assert len(workers) == 2
    for col in (
        "gpu",
        "gpus",
        "cloud",
        "spot",
        "requested_s",
        "ready_s",
        "drain_s",
        "terminated_s",
        "end_reason",
        "billed_s",
        "cost_usd",
    ):
        assert col in workers.columns, col
    decisions = pd.read_csv(out / "decisions.csv")
    for col in ("time_s", "statistic", "action", "reason"):
        assert col in decisions.columns, col
    report = (out / "report.md").read_text()
    assert report.strip()
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert len(pngs) >= 3, pngs
    for name in pngs:
        assert f"({name})" in report  # the report embeds its plots
        assert (out / name).stat().st_size > 1000


def test_run_summary_mode_without_report(scenario_file: Path, tmp_path: Path) -> None:
    """`--set sim.results=summary --no-report`: summary and tables but no per-request table, no
    report, and matplotlib is never imported."""
    out = tmp_path / "out"
    code = (
        "import sys; from sim.cli import main; "
        f"rc = main(['run', {str(scenario_file)!r}, '--out', {str(out)!r}, '-q', "
        "'--set', 'sim.results=summary', '--no-report']); "
        "assert 'matplotlib' not in sys.modules, 'matplotlib imported'; sys.exit(rc)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["sim"]["results"] == "summary"
    assert summary["requests"]["arrived"] == 300
    assert summary["latency_e2e_s"]["p95"] is not None
    assert (out / "workers.parquet").exists()
    assert not (out / "requests.parquet").exists()
    assert not (out / "report.md").exists() and not list(out.glob("*.png"))


def test_run_prints_headline_unless_quiet(
    scenario_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without --quiet, `sim run` prints the headline numbers and where it wrote them."""
    code, out, err = run_cli(["run", str(scenario_file), "--out", str(tmp_path / "o")], capsys)
    assert code == 0, err
    assert "requests" in out and "cost" in out and "wrote" in out


def test_set_override_changes_resolved_scenario(
    scenario_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--set dotted.path=VALUE` changes the resolved scenario written to summary.json and the run."""
    out = tmp_path / "o"
    code, _, err = run_cli(
        [
            "run",
            str(scenario_file),
            "--out",
            str(out),
            "--quiet",
            "--set",
            "deployment.autoscaling_config.time_window_sec=120",
            "--set",
            "workload.requests=50",
        ],
        capsys,
    )
    assert code == 0, err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["scenario"]["deployment"]["autoscaling_config"]["time_window_sec"] == 120
    assert summary["scenario"]["workload"]["requests"] == 50
    assert summary["requests"]["arrived"] == 50


def test_validate_prints_resolved_json_with_overrides(
    scenario_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`sim validate` prints the resolved scenario as JSON, defaults filled in and --set applied."""
    code, out, err = run_cli(
        ["validate", str(scenario_file), "--set", "gateway.request_timeout_s=30"], capsys
    )
    assert code == 0, err
    data = json.loads(out)
    assert data["gateway"]["request_timeout_s"] == 30
    assert data["autoscaler"]["policy"] == "scalegen"  # a default, filled in
    assert data["deployment"]["autoscaling_config"]["time_window_sec"] == 300


def test_seed_changes_run_and_is_recorded(
    scenario_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--seed N` is used and recorded; the same seed reproduces the requests, another changes them."""
    outs = {}
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        out = tmp_path / name
        code, _, err = run_cli(
            ["run", str(scenario_file), "--out", str(out), "--quiet", "--seed", str(seed)], capsys
        )
        assert code == 0, err
        assert json.loads((out / "summary.json").read_text())["sim"]["seed"] == seed
        outs[name] = pd.read_parquet(out / "requests.parquet")
    pd.testing.assert_frame_equal(outs["a"], outs["b"])
    assert not outs["a"]["arrival_s"].equals(outs["c"]["arrival_s"])


def test_run_deployment_and_trace(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`sim run --deployment CREATE.json --trace FILE` replays the trace against the create body."""
    create = {
        "name": "from-create",
        "model": MODEL,
        "inf_type": "llm",
        "initial_worker_config": {
            "min_workers": 1,
            "initial_workers_gpu": "A100",
            "initial_workers_gpu_num": 1,
        },
    }
    body = tmp_path / "create.json"
    body.write_text(json.dumps(create))
    trace = tmp_path / "trace.csv"
    trace.write_text("arrival,prompt,output\n0,100,20\n0.5,200,10\n1.0,50,5\n")
    out = tmp_path / "o"
    code, _, err = run_cli(
        [
            "run",
            "--deployment",
            str(body),
            "--trace",
            str(trace),
            "--trace-format",
            "csv",
            "--out",
            str(out),
            "--quiet",
        ],
        capsys,
    )
    assert code == 0, err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["requests"]["arrived"] == 3
    assert summary["requests"]["completed"] == 3
    assert summary["scenario"]["deployment"]["name"] == "from-create"
    req = pd.read_parquet(out / "requests.parquet")
    assert req["prompt_tokens"].tolist() == [100, 200, 50]


# --- bad input: exit 2, one line, no traceback ---------------------------------------------------


def test_missing_file_subprocess(tmp_path: Path) -> None:
    """A missing scenario file: exit 2, one 'error:' line naming the file, no traceback (real process)."""
    missing = tmp_path / "nope.yaml"
    proc = run_subprocess(["run", str(missing), "--out", str(tmp_path / "o")])
    assert_one_line_error(proc.returncode, proc.stderr, "nope.yaml", "not found")
    proc = run_subprocess(["validate", str(missing)])
    assert_one_line_error(proc.returncode, proc.stderr, "nope.yaml")


def test_yaml_syntax_error_names_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A YAML syntax error names the file and the line."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: x\ndeployment:\n  name: x\n  model: [unclosed\nworkload: {kind: poisson\n"
    )
    code, _, err = run_cli(["validate", str(bad)], capsys)
    line = assert_one_line_error(code, err, "bad.yaml")
    assert re.search(r"(bad\.yaml:\d+|line \d+)", line), line


def test_unknown_key_suggests_nearest(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown key is an error naming the field and suggesting the nearest valid key."""
    data = scenario_dict()
    data["gateway"] = {"request_timout_s": 30}
    path = write_yaml(tmp_path / "typo.yaml", data)
    code, _, err = run_cli(["run", str(path), "--out", str(tmp_path / "o")], capsys)
    assert_one_line_error(code, err, "typo.yaml", "request_timout_s", "request_timeout_s")


@pytest.mark.parametrize(
    ("patch", "needles"),
    [
        ({"gateway": {"request_timeout_s": -5}}, ("gateway.request_timeout_s",)),
        (
            {
                "deployment": {
                    "autoscaling_config": {
                        "lower_allowed_latency_sec": 5,
                        "upper_allowed_latency_sec": 5,
                    }
                }
            },
            ("upper_allowed_latency_sec", "lower_allowed_latency_sec"),
        ),
        (
            {"deployment": {"initial_worker_config": {"initial_workers_gpu": "A1000"}}},
            ("initial_workers_gpu", "A1000"),
        ),
        ({"autoscaler": {"policy": "scalegn"}}, ("autoscaler.policy", "scalegen")),
    ],
    ids=["negative-timeout", "lower-ge-upper", "unknown-gpu", "unknown-policy"],
)
def test_bad_values(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    patch: dict[str, Any],
    needles: tuple[str, ...],
) -> None:
    """Bad values (negative timeout, lower >= upper, unknown GPU, unknown policy) name the file and field."""
    data = scenario_dict()
    for section, value in patch.items():
        if section == "deployment":
            for sub, fields in value.items():
                data["deployment"].setdefault(sub, {}).update(fields)
        else:
            data[section] = value
    path = write_yaml(tmp_path / "bad.yaml", data)
    for cmd in (["validate", str(path)], ["run", str(path), "--out", str(tmp_path / "o")]):
        code, _, err = run_cli(cmd, capsys)
        assert_one_line_error(code, err, "bad.yaml", *needles)


def test_malformed_trace_row_names_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A malformed trace row is an error naming the trace file and its line number."""
    trace = tmp_path / "trace.csv"
    trace.write_text("arrival,prompt,output\n0,100,20\n1,abc,10\n2,50,5\n")
    data = scenario_dict(workload={"kind": "trace", "path": str(trace), "format": "csv"})
    path = write_yaml(tmp_path / "s.yaml", data)
    code, _, err = run_cli(["run", str(path), "--out", str(tmp_path / "o")], capsys)
    line = assert_one_line_error(code, err, "trace.csv")
    assert ":3" in line or "line 3" in line, line


def test_set_nonexistent_path(scenario_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`--set` to a path that does not exist is an error naming --set, the path and the nearest key."""
    code, _, err = run_cli(
        ["validate", str(scenario_file), "--set", "gateway.request_timeout=5"], capsys
    )
    assert_one_line_error(code, err, "--set", "gateway.request_timeout", "request_timeout_s")
    code, _, err = run_cli(["validate", str(scenario_file), "--set", "nosuch.section=1"], capsys)
    assert_one_line_error(code, err, "--set", "nosuch")


def test_model_that_does_not_fit_gpu_shape(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A model that does not fit the worker shape is an error saying how much memory is missing."""
    data = scenario_dict(serving={"kind": "llm"})
    data["deployment"]["model"] = "meta-llama/Llama-2-70b-hf"
    path = write_yaml(tmp_path / "big.yaml", data)
    for cmd in (["validate", str(path)], ["run", str(path), "--out", str(tmp_path / "o")]):
        code, _, err = run_cli(cmd, capsys)
        line = assert_one_line_error(code, err, "big.yaml", "initial_workers_gpu_num")
        assert "GB" in line and "missing" in line, line


def test_run_without_scenario_or_trace(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`sim run` with neither a scenario nor --deployment/--trace, or --deployment without --trace: exit 2."""
    code, _, err = run_cli(["run"], capsys)
    assert_one_line_error(code, err)
    body = tmp_path / "create.json"
    body.write_text(json.dumps({"name": "x", "model": MODEL}))
    code, _, err = run_cli(["run", "--deployment", str(body)], capsys)
    assert_one_line_error(code, err, "--trace")


def test_bad_inputs_subprocess_no_traceback(tmp_path: Path) -> None:
    """Through a real process, a bad value and a bad --set give exit 2 and one error line."""
    data = scenario_dict()
    data["gateway"] = {"request_timeout_s": -1}
    path = write_yaml(tmp_path / "neg.yaml", data)
    proc = run_subprocess(["run", str(path), "--out", str(tmp_path / "o")])
    assert_one_line_error(proc.returncode, proc.stderr, "neg.yaml", "request_timeout_s")
    good = write_yaml(tmp_path / "good.yaml", scenario_dict())
    proc = run_subprocess(["validate", str(good), "--set", "serving.max_bach=4"])
    assert_one_line_error(proc.returncode, proc.stderr, "--set", "max_batch")


# --- sim validate on JSON files ------------------------------------------------------------------


def _create_body(model: str = MODEL, gpus: int = 1) -> dict[str, Any]:
    return {
        "name": "create",
        "model": model,
        "initial_worker_config": {
            "min_workers": 1,
            "initial_workers_gpu": "A100",
            "initial_workers_gpu_num": gpus,
        },
    }


def test_validate_create_json_prints_body(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`sim validate CREATE.json` prints the create body with the API's defaults filled in."""
    body = tmp_path / "create.json"
    body.write_text(json.dumps(_create_body()))
    code, out, err = run_cli(["validate", str(body)], capsys)
    assert code == 0, err
    data = json.loads(out)
    assert data["name"] == "create"
    assert data["autoscaling_config"]["time_window_sec"] == 300


def test_validate_create_json_bad_value(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`sim validate CREATE.json` with a bad field: exit 2, one line naming file and field."""
    data = _create_body()
    data["autoscaling_config"] = {"time_window_sec": -1}
    body = tmp_path / "create.json"
    body.write_text(json.dumps(data))
    code, _, err = run_cli(["validate", str(body)], capsys)
    assert_one_line_error(code, err, "create.json", "time_window_sec")


def test_validate_create_json_model_does_not_fit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`sim validate CREATE.json` whose GPU shape cannot hold the model: exit 2 saying how much memory is missing."""
    body = tmp_path / "create70.json"
    body.write_text(json.dumps(_create_body("meta-llama/Llama-2-70b-hf", gpus=1)))
    code, _, err = run_cli(["validate", str(body)], capsys)
    line = assert_one_line_error(code, err, "create70.json")
    assert "GB" in line and "missing" in line


def test_validate_scenario_written_as_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`sim validate SCENARIO.json` (a scenario in JSON, as `sim run` accepts) prints the resolved scenario."""
    path = tmp_path / "scenario.json"
    path.write_text(json.dumps(scenario_dict()))
    code, out, err = run_cli(["validate", str(path)], capsys)
    assert code == 0, err
    assert json.loads(out)["deployment"]["name"] == "cli-test"


def test_validate_create_json_rejects_bad_set(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`sim validate CREATE.json --set no.such.path=1` is an error, not silently ignored."""
    body = tmp_path / "create.json"
    body.write_text(json.dumps(_create_body()))
    code, _, err = run_cli(["validate", str(body), "--set", "no.such.path=1"], capsys)
    assert_one_line_error(code, err, "--set")


def test_run_scenario_written_as_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`sim run SCENARIO.json` accepts a scenario in JSON form."""
    path = tmp_path / "scenario.json"
    path.write_text(json.dumps(scenario_dict()))
    out = tmp_path / "o"
    code, _, err = run_cli(["run", str(path), "--out", str(out), "--quiet"], capsys)
    assert code == 0, err
    assert json.loads((out / "summary.json").read_text())["requests"]["arrived"] == 300


def test_same_seed_identical_across_processes(tmp_path: Path) -> None:
    """The same scenario and seed give identical requests/workers tables in two processes with different hash seeds."""
    data = scenario_dict(
        serving={"kind": "llm", "max_batch": 32},
        fleet={"spot": {"preemption": {"kind": "hazard", "mean_time_to_preemption_s": 200}}},
    )
    data["deployment"]["allow_spot_instances"] = True
    data["deployment"]["autoscaling_config"] = {
        "scaling_up_timeout_sec": 30,
        "upper_allowed_latency_sec": 0.5,
        "lower_allowed_latency_sec": 0.1,
    }
    data["workload"]["requests"] = 1000
    data["workload"]["rate_per_s"] = 5.0
    path = write_yaml(tmp_path / "spot.yaml", data)
    frames = []
    for hash_seed in ("1", "2"):
        out = tmp_path / f"o{hash_seed}"
        env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONHASHSEED": hash_seed}
        proc = subprocess.run(
            [sys.executable, "-m", "sim", "run", str(path), "--out", str(out), "--quiet"],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr
        frames.append(
            (pd.read_parquet(out / "requests.parquet"), pd.read_parquet(out / "workers.parquet"))
        )
    pd.testing.assert_frame_equal(frames[0][0], frames[1][0])
    pd.testing.assert_frame_equal(frames[0][1], frames[1][1])
    assert (frames[0][1]["end_reason"] == "preempted").any()  # spot churn was exercised


def test_help_imports_no_heavy_library() -> None:
    """Building the parser (every subcommand's --help) imports neither pandas, pyarrow nor
    matplotlib: `sim --help` stays well under a second."""
    code = (
        "import sys; from sim.cli import build_parser; build_parser(); "
        "heavy = [m for m in ('pandas', 'pyarrow', 'matplotlib') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def _epoch_ms_trace(tmp_path: Path) -> Path:
    """2,000 requests 0.33 s apart with ``ts`` in epoch milliseconds (~1.7e12)."""
    path = tmp_path / "epoch_ms.csv"
    rows = ["ts,in_tok,out_tok"] + [
        f"{1_700_000_000_000 + 330 * i},200,50" for i in range(2000)
    ]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_epoch_ms_without_time_unit_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A ts column in epoch ms mapped with --columns but no --time-unit exits 2 naming the unit and the flag; with --time-unit ms the span is right."""
    path = _epoch_ms_trace(tmp_path)
    cols = "arrival=ts,prompt=in_tok,output=out_tok"
    code, _, err = run_cli(["trace", "stats", str(path), "--columns", cols], capsys)
    assert code == 2 and "epoch milliseconds" in err and "--time-unit ms" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    code, out, _ = run_cli(
        ["trace", "stats", str(path), "--columns", cols, "--time-unit", "ms", "--json"], capsys
    )
    assert code == 0 and json.loads(out)["span_s"] == pytest.approx(1999 * 0.33)


def test_run_takes_columns_and_time_unit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """sim run --deployment --trace reads a mapped epoch-ms CSV only with --time-unit ms: the run spans ~660 s, not 7.6 days."""
    path = _epoch_ms_trace(tmp_path)
    dep = tmp_path / "create.json"
    dep.write_text(json.dumps({
        "name": "units", "model": "meta-llama/Llama-3.1-8B-Instruct", "inf_type": "llm",
        "initial_worker_config": {"min_workers": 1, "initial_workers_gpu": "A100",
                                  "initial_workers_gpu_num": 1},
    }))
    base = ["run", "--deployment", str(dep), "--trace", str(path), "--trace-format", "csv",
            "--columns", "arrival=ts,prompt=in_tok,output=out_tok", "-q"]
    code, _, err = run_cli([*base, "--out", str(tmp_path / "bad")], capsys)
    assert code == 2 and "--time-unit ms" in err
    code, _, err = run_cli([*base, "--time-unit", "ms", "--out", str(tmp_path / "ok")], capsys)
    assert code == 0, err
    summary = json.loads((tmp_path / "ok" / "summary.json").read_text())
    assert summary["sim"]["horizon_s"] < 3600 and summary["cost"]["total_usd"] < 5
