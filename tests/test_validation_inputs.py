"""Bad-input gaps found by QA: each ends in one clear line (CLI, exit 2) or a typed error (API).

Covers conflicting ``sim run`` options, ``--seed``/``--seeds``/``--workers``, ``--bin-s``,
unwritable ``--out``, policy names and ``autoscaler.params``, model vs ``inf_type``, what
``sim validate`` builds, ``--set`` parse errors and list items, and the run headline/warnings.
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from helpers import small_scenario, write_yaml

from sim.cli import _headline, main
from sim.errors import ConfigError
from sim.policies.scalegen import build_policy
from sim.replicate import parse_seeds, replicate
from sim.rng import Streams
from sim.run import simulate
from sim.scenario import load_scenario, scenario_from_dict, validate_scenario


def scenario_dict(**extra: Any) -> dict[str, Any]:
    """A small, fast scenario: 60 Poisson requests on one worker with an exponential service time."""
    return small_scenario("qa", workers=1, requests=60, mean_s=0.5, **extra)


@pytest.fixture
def scenario_file(tmp_path: Path) -> Path:
    """A valid scenario YAML in tmp_path."""
    return write_yaml(tmp_path / "scenario.yaml", scenario_dict())


@pytest.fixture
def create_and_trace(tmp_path: Path) -> tuple[Path, Path]:
    """A create-request JSON and a 3-row CSV trace in tmp_path."""
    body = tmp_path / "create.json"
    body.write_text(json.dumps(scenario_dict()["deployment"]))
    trace = tmp_path / "trace.csv"
    trace.write_text("arrival,prompt,output\n0,100,20\n0.5,200,10\n1.0,50,5\n")
    return body, trace


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run ``sim ARGS`` in-process; (exit code, stdout, stderr)."""
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(code: int, err: str, *needles: str) -> str:
    """Assert exit 2 and exactly one 'error:' line on stderr containing each needle; return it."""
    assert code == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error:"), lines[0]
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


# --- 1. conflicting sim run options ----------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "needle"),
    [(["--trace", "TRACE"], "--trace"), (["--trace-format", "csv"], "--trace-format")],
    ids=["trace", "trace-format"],
)
def test_run_scenario_with_trace_option_is_error(
    scenario_file: Path,
    create_and_trace: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    needle: str,
) -> None:
    """`sim run SCENARIO --trace/--trace-format` is an error saying they go only with --deployment."""
    extra = [str(create_and_trace[1]) if x == "TRACE" else x for x in extra]
    code, _, err = run_cli(["run", str(scenario_file), *extra, "--out", str(tmp_path / "o"),
                            "--quiet"], capsys)
    one_line_error(code, err, needle, "only with --deployment")
    assert not (tmp_path / "o").exists()


def test_run_scenario_and_deployment_are_exclusive(
    scenario_file: Path,
    create_and_trace: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`sim run SCENARIO --deployment CREATE.json --trace FILE` is an error, not a silently ignored scenario."""
    body, trace = create_and_trace
    code, _, err = run_cli(["run", str(scenario_file), "--deployment", str(body), "--trace",
                            str(trace), "--out", str(tmp_path / "o"), "--quiet"], capsys)
    one_line_error(code, err, "scenario file", "--deployment", "exclusive")


def test_unknown_trace_format_names_the_option(
    create_and_trace: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An unknown --trace-format names --trace-format and the known formats, not the create body."""
    body, trace = create_and_trace
    code, _, err = run_cli(["run", "--deployment", str(body), "--trace", str(trace),
                            "--trace-format", "cvs", "--out", str(tmp_path / "o")], capsys)
    line = one_line_error(code, err, "--trace-format", "'cvs'", "azure", "csv", "jsonl")
    assert "create.json" not in line
    code, _, err = run_cli(["trace", "stats", str(trace), "--trace-format", "cvs"], capsys)
    one_line_error(code, err, "--trace-format", "csv")


# --- 2. --seed, --seeds, --workers ----------------------------------------------------------


@pytest.mark.parametrize("seeds", ["1,1", "", "4"], ids=["repeat", "empty", "single"])
def test_seeds_need_two_distinct_seeds(
    scenario_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], seeds: str
) -> None:
    """`--seeds` with fewer than 2 distinct seeds (or empty) is an error naming --seeds."""
    code, _, err = run_cli(["run", str(scenario_file), "--seeds", seeds, "--out",
                            str(tmp_path / "o"), "--quiet"], capsys)
    one_line_error(code, err, "--seeds")


def test_parse_seeds_min_count() -> None:
    """parse_seeds(min_count=2) rejects one distinct seed and keeps order without repeats."""
    assert parse_seeds("3,1-2,3", min_count=2) == [3, 1, 2]
    with pytest.raises(ConfigError, match="at least 2"):
        parse_seeds("5,5", min_count=2)


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--seed", "3", "--seeds", "1-2"], ("--seed", "--seeds", "exclusive")),
        (["--seeds", "1-2", "--workers", "0"], ("--workers", ">= 1")),
        (["--workers", "2"], ("--workers", "--seeds")),
        (["--seed", "-4"], ("--seed", ">= 0", "-4")),
    ],
    ids=["seed-and-seeds", "workers-0", "workers-without-seeds", "negative-seed"],
)
def test_seed_and_worker_options(
    scenario_file: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    needles: tuple[str, ...],
) -> None:
    """--seed with --seeds, --workers < 1, --workers without --seeds and a negative --seed: one-line errors."""
    code, _, err = run_cli(["run", str(scenario_file), *args, "--out", str(tmp_path / "o"),
                            "--quiet"], capsys)
    one_line_error(code, err, *needles)


def test_workers_with_seeds_still_runs(
    scenario_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--seeds 1-2 --workers 2` is accepted and writes both replications (guard for the checks above)."""
    out = tmp_path / "o"
    code, _, err = run_cli(["run", str(scenario_file), "--seeds", "1-2", "--workers", "2",
                            "--out", str(out), "--quiet"], capsys)
    assert code == 0, err
    assert json.loads((out / "replications.json").read_text())["replications"]["seeds"] == [1, 2]


def test_sensitivity_workers_below_one(
    scenario_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`sim sensitivity --workers 0` is a one-line error naming --workers, before any run."""
    code, _, err = run_cli(["sensitivity", str(scenario_file), "--workers", "0", "--out",
                            str(tmp_path / "o"), "--quiet"], capsys)
    one_line_error(code, err, "--workers")
    assert not (tmp_path / "o").exists()


def test_negative_seed_is_config_error_in_python() -> None:
    """Streams(-1), simulate(seed=-1) and replicate(workers=0) raise ConfigError, not ValueError."""
    with pytest.raises(ConfigError) as info:
        Streams(-1)
    assert info.value.field == "sim.seed"
    sc = scenario_from_dict(scenario_dict())
    with pytest.raises(ConfigError, match="sim.seed"):
        simulate(sc, seed=-1)
    with pytest.raises(ConfigError, match="workers"):
        replicate(sc, [1, 2], workers=0)


def test_scenario_negative_seed_rejected() -> None:
    """sim.seed < 0 in a scenario is a ConfigError on sim.seed (guard: already enforced by the schema)."""
    with pytest.raises(ConfigError) as info:
        scenario_from_dict(scenario_dict(sim={"seed": -1}), source="s.yaml")
    assert info.value.field == "sim.seed"


# --- 3. sim trace stats --bin-s ---------------------------------------------------------------


@pytest.mark.parametrize("bin_s", ["0", "-5", "nan", "1e-12"])
def test_trace_stats_bad_bin_s(
    create_and_trace: tuple[Path, Path], capsys: pytest.CaptureFixture[str], bin_s: str
) -> None:
    """`sim trace stats --bin-s` of 0, negative, NaN or absurdly small is a one-line error naming --bin-s."""
    code, _, err = run_cli(["trace", "stats", str(create_and_trace[1]), f"--bin-s={bin_s}"], capsys)
    one_line_error(code, err, "--bin-s")


# --- 4. unwritable --out ----------------------------------------------------------------------


def test_out_is_an_existing_file(
    scenario_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--out pointing at an existing file is a one-line error naming the path (run, --seeds, sensitivity)."""
    target = tmp_path / "taken.txt"
    target.write_text("x")
    for args in (
        ["run", str(scenario_file), "--quiet"],
        ["run", str(scenario_file), "--seeds", "1-2", "--quiet"],
        ["sensitivity", str(scenario_file), "--quiet"],
    ):
        code, _, err = run_cli([*args, "--out", str(target)], capsys)
        one_line_error(code, err, "--out", "taken.txt")
    assert target.read_text() == "x"


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc")
def test_out_unwritable_place(
    scenario_file: Path, create_and_trace: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """--out /proc/x (and trace stats --plot there) is a one-line error naming the path."""
    code, _, err = run_cli(["run", str(scenario_file), "--out", "/proc/x/out", "--quiet"], capsys)
    one_line_error(code, err, "--out", "/proc/x")
    code, _, err = run_cli(
        ["trace", "stats", str(create_and_trace[1]), "--plot", "/proc/x/trace.png"], capsys
    )
    one_line_error(code, err, "--plot", "/proc/x")


# --- 5. autoscaler.policy and autoscaler.params -------------------------------------------------


@pytest.fixture
def policy_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """An importable module ``qa_policies`` holding a non-policy, a valid policy and a broken one."""
    (tmp_path / "qa_policies.py").write_text(
        "NOT_A_POLICY = 3\n"
        "class NoDecide:\n"
        "    @classmethod\n"
        "    def from_scenario(cls, deployment, autoscaler):\n"
        "        return cls()\n"
        "class Good(NoDecide):\n"
        "    name = 'good'\n"
        "    def decide(self, obs):\n"
        "        from sim.policies import NO_OP\n"
        "        return NO_OP\n"
        "    def on_update(self, deployment, time_s, immediate):\n"
        "        pass\n"
    )
    (tmp_path / "qa_broken.py").write_text("raise RuntimeError('boom at import')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("qa_policies", "qa_broken"):
        sys.modules.pop(name, None)
    return "qa_policies"


@pytest.mark.parametrize(
    ("policy", "needles"),
    [
        ("qa_policies:NOT_A_POLICY", ("not an autoscaling policy", "from_scenario", "decide")),
        ("qa_policies:NoDecide", ("not an autoscaling policy", "decide")),
        ("qa_policies:Missing", ("cannot import",)),
        ("qa_no_such_module:X", ("cannot import", "qa_no_such_module")),
        ("qa_broken:X", ("cannot import", "boom at import")),
        (":X", ("module:Attr",)),
    ],
    ids=["int", "no-decide", "no-attr", "no-module", "raises", "empty-module"],
)
def test_bad_policy_reference(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    policy_module: str,
    policy: str,
    needles: tuple[str, ...],
) -> None:
    """A module:Attr that is not a policy or does not import: one line naming the file and autoscaler.policy."""
    path = write_yaml(tmp_path / "pol.yaml", scenario_dict(autoscaler={"policy": policy}))
    for cmd in (["validate", str(path)], ["run", str(path), "--out", str(tmp_path / "o")]):
        code, _, err = run_cli(cmd, capsys)
        one_line_error(code, err, "pol.yaml", "autoscaler.policy", *needles)


def test_custom_policy_is_accepted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], policy_module: str
) -> None:
    """A module:Attr class with from_scenario and decide passes validation and runs."""
    path = write_yaml(tmp_path / "pol.yaml", scenario_dict(autoscaler={"policy": "qa_policies:Good"}))
    code, _, err = run_cli(["run", str(path), "--out", str(tmp_path / "o"), "--quiet"], capsys)
    assert code == 0, err


@pytest.mark.parametrize(
    ("autoscaler", "needles"),
    [
        ({"params": {"workers": 2}}, ("autoscaler.params.workers", "takes no params")),
        ({"params": {"scale_up_stp": 2}}, ("takes no params", "autoscaler.scale_up_step")),
        ({"policy": "fixed", "params": {"workers": -1}}, ("autoscaler.params.workers", ">= 0")),
        ({"policy": "fixed", "params": {"workers": "two"}}, ("autoscaler.params.workers", "'two'")),
        ({"policy": "fixed", "params": {"workers": 1.5}}, ("autoscaler.params.workers",)),
        ({"policy": "fixed", "params": {"worker": 1}}, ("autoscaler.params.worker", "'workers'")),
    ],
    ids=["scalegen-any", "scalegen-typo", "fixed-negative", "fixed-str", "fixed-float", "fixed-typo"],
)
def test_bad_policy_params(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    autoscaler: dict[str, Any],
    needles: tuple[str, ...],
) -> None:
    """Unknown or bad autoscaler.params fail in validate, run and build_policy, naming the param."""
    data = scenario_dict(autoscaler=autoscaler)
    path = write_yaml(tmp_path / "params.yaml", data)
    for cmd in (["validate", str(path)], ["run", str(path), "--out", str(tmp_path / "o")]):
        code, _, err = run_cli(cmd, capsys)
        one_line_error(code, err, "params.yaml", *needles)
    # The Python API: where the policy is built, without the CLI's validation in front.
    sc = scenario_from_dict(data)
    with pytest.raises(ConfigError) as info:
        build_policy(sc.deployment, sc.autoscaler)
    assert (info.value.field or "").startswith("autoscaler.params")


def test_fixed_policy_workers_param_is_used() -> None:
    """A valid autoscaler.params.workers for the fixed policy still builds a fleet of that size."""
    sc = scenario_from_dict(scenario_dict(autoscaler={"policy": "fixed", "params": {"workers": 3}}))
    assert validate_scenario(sc) == []
    assert build_policy(sc.deployment, sc.autoscaler).workers == 3


# --- 6. model kind vs inf_type ----------------------------------------------------------------


def test_encoder_model_with_llm_inf_type_is_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An embedding (encoder) model with inf_type llm is an error on deployment.inf_type."""
    data = scenario_dict(serving={"kind": "auto"})
    data["deployment"].update(model="BAAI/bge-large-en-v1.5", inf_type="llm")
    with pytest.raises(ConfigError) as info:
        validate_scenario(scenario_from_dict(data, source="emb.yaml"))
    assert info.value.field == "deployment.inf_type" and "encoder" in str(info.value)
    path = write_yaml(tmp_path / "emb.yaml", data)
    code, _, err = run_cli(["validate", str(path)], capsys)
    one_line_error(code, err, "emb.yaml", "deployment.inf_type", "embedding")


def test_decoder_model_as_embedding_warns() -> None:
    """A decoder LLM with inf_type embedding is allowed with a warning (LLM-based embedders exist)."""
    data = scenario_dict(serving={"kind": "auto"})
    data["deployment"]["inf_type"] = "embedding"
    warnings = validate_scenario(scenario_from_dict(data))
    assert any("inf_type=embedding" in w and "decoder" in w for w in warnings), warnings


# --- 7. sim validate builds what sim run builds ----------------------------------------------


def _validate_cases(tmp: Path) -> dict[str, tuple[dict[str, Any], tuple[str, ...]]]:
    """Scenario patches that load fine but fail when the run builds its parts; expected needles."""
    bad_rows = tmp / "bad_rows.csv"
    bad_rows.write_text("arrival,prompt,output\n0,100,20\n1,abc,10\n")
    trace_wl = {"kind": "trace", "format": "csv"}
    return {
        "missing-trace": ({"workload": {**trace_wl, "path": "nope.csv"}}, ("nope.csv",)),
        "bad-trace-row": ({"workload": {**trace_wl, "path": str(bad_rows)}}, ("bad_rows.csv:3",)),
        "missing-profile": (
            {"serving": {"kind": "llm", "profile": "no_profile.yaml"}}, ("no_profile.yaml",)
        ),
        "missing-catalog": ({"fleet": {"catalog": "no_catalog.csv"}}, ("no_catalog.csv",)),
        "missing-spot-trace": (
            {"fleet": {"spot": {"preemption": {"kind": "trace", "trace_path": "no_spot.json"}}}},
            ("no_spot.json",),
        ),
        "unknown-cloud": ({"deployment": {"cloud_providers": ["nocloud"]}}, ("cloud_providers",)),
        "unknown-instance-type": (
            {"deployment": {"initial_worker_config": {"instance_types": ["p9.huge"]}}},
            ("instance_types",),
        ),
    }


@pytest.mark.parametrize(
    "case",
    ["missing-trace", "bad-trace-row", "missing-profile", "missing-catalog", "missing-spot-trace",
     "unknown-cloud", "unknown-instance-type"],
)
def test_validate_fails_where_run_would(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    """`sim validate` builds the workload, fleet and initial worker, so it fails with the same line as `sim run`."""
    patch, needles = _validate_cases(tmp_path)[case]
    data = scenario_dict()
    for section, value in patch.items():
        if section == "deployment":
            for key, sub in value.items():
                if isinstance(sub, dict):
                    data["deployment"].setdefault(key, {}).update(sub)
                else:
                    data["deployment"][key] = sub
        else:
            data[section] = value
    path = write_yaml(tmp_path / "v.yaml", data)
    code, out, err = run_cli(["validate", str(path)], capsys)
    line = one_line_error(code, err.replace(_workload_line(err), ""), *needles)
    assert out == ""  # no resolved scenario printed for a scenario that cannot run
    code, _, err = run_cli(["run", str(path), "--out", str(tmp_path / "o")], capsys)
    assert one_line_error(code, err) == line


def _workload_line(err: str) -> str:
    """The 'workload: ...' progress line of `sim validate` (empty when absent)."""
    return next((ln + "\n" for ln in err.splitlines() if ln.startswith("workload: ")), "")


def test_validate_reports_workload_size(
    scenario_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`sim validate SCENARIO` prints the built workload's request count and span to stderr."""
    code, out, err = run_cli(["validate", str(scenario_file)], capsys)
    assert code == 0, err
    assert json.loads(out)["name"] == "qa"
    assert _workload_line(err).startswith("workload: 60 requests over ")


def test_validate_create_body_checks_clouds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`sim validate CREATE.json` with an unknown cloud provider fails like a scenario does."""
    body = copy.deepcopy(scenario_dict()["deployment"])
    body["cloud_providers"] = ["nocloud"]
    path = tmp_path / "create.json"
    path.write_text(json.dumps(body))
    code, _, err = run_cli(["validate", str(path)], capsys)
    one_line_error(code, err, "create.json", "cloud_providers")


# --- 8. --set YAML errors and the override source ----------------------------------------------


def test_set_yaml_error_is_one_line(scenario_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A YAML syntax error in a --set value is one line: `--set: PATH: cannot parse VALUE as YAML (...)`."""
    code, _, err = run_cli(["validate", str(scenario_file), "--set", "deployment.name=[a"], capsys)
    line = one_line_error(code, err, "--set: deployment.name: cannot parse '[a' as YAML (")
    assert line.endswith(")")


def test_python_overrides_blame_overrides(scenario_file: Path) -> None:
    """load_scenario(overrides=...) errors name 'overrides' as the source, not the CLI's --set."""
    for bad in ("deployment.name=[a", "gateway.request_timout_s=3", "gateway.request_timeout_s=-1"):
        with pytest.raises(ConfigError) as info:
            load_scenario(scenario_file, overrides=[bad])
        assert info.value.source == "overrides", info.value
        assert "--set" not in str(info.value)
    with pytest.raises(ConfigError) as info:
        load_scenario(scenario_file, overrides=["deployment.name=[a"], override_source="--set")
    assert info.value.source == "--set"


# --- 9. run warnings and the headline ----------------------------------------------------------


def test_run_prints_warnings_unless_quiet(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`sim run` prints the run's and the scenario's warnings to stderr as `warning: ...` lines, not with --quiet."""
    trace = tmp_path / "unsorted.csv"
    trace.write_text("arrival,prompt,output\n0,100,20\n2,100,20\n1,200,10\n")
    data = scenario_dict(workload={"kind": "trace", "path": str(trace), "format": "csv"})
    data["deployment"]["autoscaling_config"] = {"time_window_sec": 5}
    path = write_yaml(tmp_path / "w.yaml", data)
    code, out, err = run_cli(["run", str(path), "--out", str(tmp_path / "o")], capsys)
    assert code == 0, err
    warnings = [ln for ln in err.splitlines() if ln.startswith("warning: ")]
    assert any("out-of-order" in w for w in warnings), err  # from the run's summary
    assert any("time_window_sec" in w for w in warnings), err  # from validate_scenario
    assert "requests" in out
    code, _, err = run_cli(["run", str(path), "--out", str(tmp_path / "o"), "--quiet"], capsys)
    assert code == 0 and "warning" not in err


def _summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    """The summary.json of a small run."""
    path = write_yaml(tmp_path / "h.yaml", scenario_dict())
    assert run_cli(["run", str(path), "--out", str(tmp_path / "h"), "--quiet"], capsys)[0] == 0
    summary: dict[str, Any] = json.loads((tmp_path / "h" / "summary.json").read_text())
    return summary


def test_headline_survives_missing_figures(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The headline prints n/a for None figures (e.g. no requests: per_hour_usd None) instead of crashing."""
    summary = _summary(tmp_path, capsys)
    for section in ("cost", "latency_e2e_s", "ttft_s"):
        summary[section] = {k: None for k in summary[section]}
    summary["workers"]["mean"] = None
    summary["slo"]["attainment"] = None
    text = _headline(summary)
    assert "n/a/h" in text and "mean n/a" in text


def test_headline_shows_preemptions_and_retries(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The headline adds preemptions to the workers line and retried to the requests line when > 0."""
    summary = _summary(tmp_path, capsys)
    plain = _headline(summary)
    assert "preemptions" not in plain and "retried" not in plain
    summary["workers"]["preemptions"] = 4
    summary["requests"]["retried"] = 7
    lines = _headline(summary).splitlines()
    assert "preemptions 4" in next(ln for ln in lines if ln.startswith("workers"))
    assert "retried 7" in next(ln for ln in lines if ln.startswith("requests"))


# --- 10. --set on a list item the scenario does not have ---------------------------------------


def test_set_missing_list_item_blames_set(
    scenario_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--set updates.0.at_s=5` without updates blames --set and says the list has no item 0."""
    code, _, err = run_cli(["validate", str(scenario_file), "--set", "updates.0.at_s=5"], capsys)
    line = one_line_error(code, err, "--set", "updates.0.at_s", "no item 0")
    assert "scenario.yaml" not in line
    with pytest.raises(ConfigError) as info:
        load_scenario(scenario_file, overrides=["workload.transforms.0.factor=2"])
    assert info.value.source == "overrides" and "no item 0" in str(info.value)
