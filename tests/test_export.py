"""Unit and property tests of the request export (sim/api/export.py): every body is schema-valid."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.api.export import (
    create_body,
    create_request,
    curl_command,
    expand_placeholders,
    update_request,
    write_body,
)
from sim.api.schema import CreateBody, apply_update, parse_create, parse_update
from sim.api.sources import load_source
from sim.errors import ConfigError
from sim.io import write_result
from sim.run import simulate
from sim.scenario import scenario_from_dict
from tests.helpers import small_scenario, write_yaml

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "hf_SecretValue123"


def scenario_data(**deployment: Any) -> dict[str, Any]:
    """A small valid scenario whose deployment fields can be replaced."""
    data = small_scenario("exp", workers=1, requests=20, mean_s=0.5)
    data["deployment"].update(deployment)
    return data


def assert_valid_create(body: dict[str, Any]) -> CreateBody:
    """The body validates as a create body and serialises back to itself."""
    parsed = parse_create(body)
    assert parsed.to_request() == body
    return parsed


# --- create body ---------------------------------------------------------------------------------


def test_create_body_of_a_scenario_is_its_deployment_with_every_field():
    """The create body carries every documented field with the scenario's values."""
    scenario = scenario_from_dict(scenario_data())
    body = create_body(scenario)
    assert_valid_create(body)
    assert body == scenario.deployment.to_request()
    for key in ("name", "model", "inf_type", "allow_spot_instances", "cloud_providers",
                "initial_worker_config", "autoscaling_config", "max_price_per_hour",
                "max_throughput_rate"):
        assert key in body
    assert set(body["autoscaling_config"]) == {
        "enable_speedup_shared", "lower_allowed_latency_sec", "scale_to_zero_timeout_sec",
        "scaling_down_timeout_sec", "scaling_up_timeout_sec", "time_window_sec",
        "upper_allowed_latency_sec",
    }


def test_create_body_overrides_in_scenario_and_body_terms():
    """Dotted overrides apply under deployment whether or not they say so; others change nothing."""
    scenario = scenario_from_dict(scenario_data())
    body = create_body(
        scenario,
        [
            "deployment.autoscaling_config.time_window_sec=60",
            "initial_worker_config.min_workers=3",
            "autoscaler.decision_interval_s=5",
        ],
    )
    assert_valid_create(body)
    assert body["autoscaling_config"]["time_window_sec"] == 60
    assert body["initial_worker_config"]["min_workers"] == 3
    as_mapping = create_body(
        scenario.model_dump(mode="json"),
        {"deployment.autoscaling_config.time_window_sec": 60, "initial_worker_config.min_workers": 3},
    )
    assert as_mapping == body


def test_create_body_from_a_bare_create_body():
    """A CreateBody or a create-body mapping is accepted as the starting point."""
    base = parse_create({"name": "a", "model": "m", "allow_spot_instances": True})
    assert create_body(base) == base.to_request()
    assert create_body(base.to_request(), ["max_price_per_hour=12.5"])["max_price_per_hour"] == 12.5


@pytest.mark.parametrize(
    ("override", "field", "message"),
    [
        ("autoscaling_config.time_window_sec=0", "deployment.autoscaling_config.time_window_sec", "greater than or equal to 1"),
        ("deployment.autoscaling_config.time_windw_sec=1", "deployment.autoscaling_config.time_windw_sec", "did you mean"),
        ("autoscaling_config.lower_allowed_latency_sec=9", "deployment.autoscaling_config.upper_allowed_latency_sec", "greater than"),
        ("initial_worker_config.initial_workers_gpu=B9000", "deployment.initial_worker_config.initial_workers_gpu", "B9000"),
        ("no_equals_sign", None, "dotted.path=VALUE"),
    ],
)
def test_bad_overrides_name_the_field(override, field, message):
    """An override the schema rejects is a ConfigError blaming the overrides and naming the field."""
    with pytest.raises(ConfigError) as info:
        create_body(scenario_from_dict(scenario_data()), [override])
    assert info.value.source == "overrides"
    assert info.value.field == field
    assert message in str(info.value)


def test_create_body_rejects_non_scenarios():
    """Wrong input types are errors, not silent empty bodies."""
    with pytest.raises(TypeError):
        create_body(42)
    with pytest.raises(ConfigError, match="expected a scenario"):
        create_body({"workload": {}})


def test_hf_token_becomes_a_placeholder_and_is_never_written(tmp_path):
    """The token's value never reaches the body, the curl line or the written file."""
    scenario = scenario_from_dict(scenario_data(hf_token=TOKEN))
    body = create_body(scenario)
    assert body["hf_token"] == "${HF_TOKEN}"
    assert_valid_create(body)
    assert create_body(scenario, token_env="MY_TOKEN")["hf_token"] == "${MY_TOKEN}"
    out = write_body(body, tmp_path / "create.json")
    assert TOKEN not in out.read_text()
    assert TOKEN not in curl_command("create", body)
    with pytest.raises(ConfigError, match="literal hf_token"):
        write_body({**body, "hf_token": TOKEN}, tmp_path / "leak.json")
    assert not (tmp_path / "leak.json").exists()


def test_no_hf_token_no_placeholder():
    """A deployment without a token exports without the field (it is optional)."""
    assert "hf_token" not in create_body(scenario_from_dict(scenario_data()))


def test_expand_placeholders_reads_the_environment():
    """The placeholder is replaced by the variable's value; an unset variable is named."""
    body = {"name": "a", "hf_token": "${HF_TOKEN}"}
    assert expand_placeholders(body, {"HF_TOKEN": TOKEN})["hf_token"] == TOKEN
    with pytest.raises(ConfigError, match="HF_TOKEN is not set"):
        expand_placeholders(body, {})
    assert expand_placeholders({"hf_token": "literal"}, {}) == {"hf_token": "literal"}


# --- sources -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory) -> Path:
    """A real ``sim run --out`` folder of a short scenario with a token."""
    out = tmp_path_factory.mktemp("run")
    scenario = scenario_from_dict(scenario_data(hf_token=TOKEN), base_dir=out)
    write_result(simulate(scenario), out)
    return out


def test_export_from_a_run_folder(run_folder):
    """A run folder exports the deployment it simulated; the masked token becomes the placeholder."""
    exported = load_source(run_folder)
    assert exported.origin == "run folder"
    body = create_request(exported.body)
    assert_valid_create(body)
    expected = scenario_from_dict(scenario_data()).deployment.to_request()
    assert {k: v for k, v in body.items() if k != "hf_token"} == expected
    assert body["hf_token"] == "${HF_TOKEN}"
    # The summary file itself is accepted too.
    assert create_request(load_source(run_folder / "summary.json").body) == body


def test_export_from_a_replications_folder(run_folder, tmp_path):
    """`sim run --seeds` replaces summary.json by seed-N/ folders: the folder still exports,
    from the lowest seed's resolved scenario (every seed simulated the same deployment)."""
    (tmp_path / "replications.json").write_text("{}")
    for seed in (10, 2):
        (tmp_path / f"seed-{seed}").mkdir()
        shutil.copy(run_folder / "summary.json", tmp_path / f"seed-{seed}" / "summary.json")
    marked = json.loads((tmp_path / "seed-10" / "summary.json").read_text())
    marked["scenario"]["deployment"]["name"] = "not-the-lowest-seed"
    (tmp_path / "seed-10" / "summary.json").write_text(json.dumps(marked))
    assert create_request(load_source(tmp_path).body) == create_request(
        load_source(run_folder).body
    )


def test_export_from_a_tune_result(tmp_path):
    """A tune folder's best.json is a create body; overrides still apply on top."""
    best = create_body(scenario_from_dict(scenario_data()), ["initial_worker_config.min_workers=2"])
    write_body(best, tmp_path / "best.json")
    exported = load_source(tmp_path, overrides=["deployment.max_price_per_hour=20"])
    assert exported.origin == "tune result"
    body = create_request(exported.body)
    assert body == {**best, "max_price_per_hour": 20}


def test_export_from_a_scenario_and_a_create_body_file(tmp_path):
    """Scenario YAML and bare create-body JSON both load; scenario warnings are passed on."""
    scen = write_yaml(tmp_path / "s.yaml", scenario_data())
    exported = load_source(scen, overrides=["autoscaler.decision_interval_s=5"])
    assert exported.origin == "scenario"
    assert any("autoscaler.decision_interval_s" in w for w in exported.warnings)
    create = tmp_path / "c.json"
    create.write_text(json.dumps(create_request(exported.body)))
    again = load_source(create)
    assert again.origin == "create body"
    assert again.body == exported.body


def test_scenario_checks_run_on_export(tmp_path):
    """A shape that cannot hold the model is refused before anything is exported."""
    data = scenario_data(model="meta-llama/Llama-2-70b-hf")
    data["serving"] = {}  # the LLM service model checks memory
    data["deployment"]["initial_worker_config"]["initial_workers_gpu_num"] = 1
    scen = write_yaml(tmp_path / "big.yaml", data)
    with pytest.raises(ConfigError, match="GB missing"):
        load_source(scen)


def sweep_folder(tmp_path: Path, *, journal: bool = True) -> Path:
    """A sweep folder as ``sim sweep`` writes it: base scenario, journal and table.

    Three points on two seeds; point 1 is a worker-shape knob (its table value is not a
    setting: the journal holds the expanded overrides); point 2 failed on both seeds; point 0
    failed on one seed.
    """
    scenario = scenario_data()
    (tmp_path / "scenario.json").write_text(json.dumps(scenario))
    points = [
        ({"deployment.autoscaling_config.time_window_sec": 60, "worker_shape": "A100x1"},
         {"deployment.autoscaling_config.time_window_sec": 60,
          "deployment.initial_worker_config.initial_workers_gpu": "A100",
          "deployment.initial_worker_config.initial_workers_gpu_num": 1}),
        ({"deployment.autoscaling_config.time_window_sec": 120, "worker_shape": "A100x2"},
         {"deployment.autoscaling_config.time_window_sec": 120,
          "deployment.initial_worker_config.initial_workers_gpu": "A100",
          "deployment.initial_worker_config.initial_workers_gpu_num": 2,
          "autoscaler.decision_interval_s": 5}),
        ({"deployment.autoscaling_config.time_window_sec": 240, "worker_shape": "A100x1"},
         {"deployment.autoscaling_config.time_window_sec": 240}),
    ]
    errors = {(0, 2): "RuntimeError: one seed", (2, 1): "ConfigError: boom", (2, 2): "ConfigError: boom"}
    rows, lines = [], []
    for i, (knobs, overrides) in enumerate(points):
        for seed in (1, 2):
            err = errors.get((i, seed))
            rows.append({"point": i, "seed": seed, **knobs, "error": err,
                         "cost.per_hour_usd": None if err else 3.0 + i})
            lines.append(json.dumps({"key": f"{i}-{seed}", "point": i, "seed": seed,
                                     "knobs": knobs, "overrides": overrides, "error": err}))
    if journal:
        # A killed sweep leaves a torn last line; it must be skipped.
        (tmp_path / "points.jsonl").write_text("\n".join(lines) + '\n{"key": "x", "poi')
    pd.DataFrame(rows).to_parquet(tmp_path / "sweep.parquet", index=True)
    return tmp_path


def test_export_a_sweep_point(tmp_path):
    """The point's overrides from the journal (shape expanded) are set on the base scenario."""
    folder = sweep_folder(tmp_path)
    exported = load_source(folder, point=1)
    assert exported.origin == "sweep point 1"
    body = create_request(exported.body)
    assert_valid_create(body)
    assert body["autoscaling_config"]["time_window_sec"] == 120
    assert body["initial_worker_config"]["initial_workers_gpu_num"] == 2
    assert any("autoscaler.decision_interval_s" in w for w in exported.warnings)
    # The same point by a row of the table (rows 2 and 3 are point 1), as typed on the CLI.
    assert create_request(load_source(folder / "sweep.parquet", row="3").body) == body


def test_a_point_that_failed_on_some_seeds_warns(tmp_path):
    """Point 0 failed on one of its two seeds: exported, with a warning saying so."""
    exported = load_source(sweep_folder(tmp_path), point="0")
    assert any("failed on 1 of 2 seeds" in w for w in exported.warnings)


def test_without_a_journal_the_columns_are_literal(tmp_path):
    """With no journal, deployment.* columns are used as values and a warning says so."""
    folder = sweep_folder(tmp_path, journal=False)
    exported = load_source(folder, point=1)
    assert create_request(exported.body)["autoscaling_config"]["time_window_sec"] == 120
    assert any("taken as literal values" in w for w in exported.warnings)


@pytest.mark.parametrize(
    ("choice", "message"),
    [
        ({}, "--point N"),
        ({"point": 1, "row": 1}, "--point N"),
        ({"row": 30}, "no row 30"),
        ({"point": 7}, "no point 7"),
        ({"point": 2}, "sweep point 2 failed in the sweep"),
        ({"row": 5}, "sweep row 5 failed in the sweep"),
    ],
)
def test_sweep_point_errors(tmp_path, choice, message):
    """No choice, both, an unknown row or point, or a point that failed is a clear error."""
    folder = sweep_folder(tmp_path)
    with pytest.raises(ConfigError, match=message) as info:
        load_source(folder / "sweep.parquet", **choice)
    assert "sweep.parquet" in str(info.value)


def test_sweep_without_its_scenario(tmp_path):
    """Without a base scenario next to the table, the error says to pass --scenario."""
    folder = sweep_folder(tmp_path)
    (folder / "scenario.json").rename(tmp_path / "elsewhere.json")
    with pytest.raises(ConfigError, match="--scenario"):
        load_source(folder, point=0)
    body = create_request(load_source(folder, point=0, scenario=tmp_path / "elsewhere.json").body)
    assert body["autoscaling_config"]["time_window_sec"] == 60


def test_row_or_point_only_for_a_sweep(tmp_path):
    """--row/--point on a scenario file is an error, not silently ignored."""
    scen = write_yaml(tmp_path / "s.yaml", scenario_data())
    with pytest.raises(ConfigError, match="apply to a sweep only"):
        load_source(scen, point=1)


@pytest.mark.parametrize("content", ['{"workload": {}}', "[1, 2]"])
def test_unrecognised_files(tmp_path, content):
    """A file that is none of the sources is named in the error."""
    path = tmp_path / "x.json"
    path.write_text(content)
    with pytest.raises(ConfigError) as info:
        load_source(path)
    assert str(path) in str(info.value)


def test_missing_source_and_empty_folder(tmp_path):
    """A missing path or a folder with nothing to export is a ConfigError."""
    with pytest.raises(ConfigError, match="not found"):
        load_source(tmp_path / "nope")
    with pytest.raises(ConfigError, match="expected a run folder"):
        load_source(tmp_path)


# --- update body ---------------------------------------------------------------------------------


def body_with(**changes: Any) -> CreateBody:
    """A create body with nested dotted changes (``autoscaling_config__time_window_sec=60``)."""
    data: dict[str, Any] = {"name": "d", "model": "m"}
    for key, value in changes.items():
        if "__" in key:
            part, field = key.split("__")
            data.setdefault(part, {})[field] = value
        else:
            data[key] = value
    return parse_create(data)


def test_update_writes_only_what_changes():
    """Only the changed fields appear; the floor going up keeps imidiate_scale_down false."""
    current = body_with(initial_worker_config__min_workers=1)
    new = body_with(initial_worker_config__min_workers=2, autoscaling_config__time_window_sec=60)
    plan = update_request(new, current)
    assert plan.body == {
        "initial_worker_config": {"min_workers": 2},
        "autoscaling_config": {"time_window_sec": 60},
        "imidiate_scale_down": False,
    }
    parse_update(plan.body)
    assert ("initial_worker_config.min_workers", 1, 2) in plan.changes
    assert plan.warnings == []


def test_lower_floor_scales_down_at_once():
    """A lower min_workers sets the vendor-spelled imidiate_scale_down to true."""
    plan = update_request(
        body_with(initial_worker_config__min_workers=0),
        body_with(initial_worker_config__min_workers=3),
    )
    assert plan.body == {"initial_worker_config": {"min_workers": 0}, "imidiate_scale_down": True}


def test_update_of_half_a_band_is_valid_after_merge():
    """Raising only the lower bound below the unchanged upper bound validates once merged."""
    current = body_with(autoscaling_config__lower_allowed_latency_sec=1)
    new = body_with(autoscaling_config__lower_allowed_latency_sec=3)
    plan = update_request(new, current)
    assert plan.body["autoscaling_config"] == {"lower_allowed_latency_sec": 3}
    assert apply_update(current, parse_update(plan.body)) == new


def test_no_change_warns():
    """Identical configs give an empty update and a warning that says so."""
    plan = update_request(body_with(), body_with())
    assert plan.body == {"imidiate_scale_down": False}
    assert plan.warnings == [
        "nothing to update: the worker and autoscaling configs are unchanged"
    ]


def test_fields_the_update_cannot_change():
    """A change of spot, model or caps is refused unless partial, then it is a warning."""
    current = body_with()
    new = body_with(allow_spot_instances=True, autoscaling_config__time_window_sec=60)
    with pytest.raises(ConfigError, match="cannot change it") as info:
        update_request(new, current)
    assert info.value.field == "allow_spot_instances"
    plan = update_request(new, current, partial=True)
    assert plan.body["autoscaling_config"] == {"time_window_sec": 60}
    assert plan.not_updatable == (("allow_spot_instances", False, True),)
    assert "allow_spot_instances differs" in plan.warnings[0]


def test_hf_token_value_is_not_a_difference():
    """A placeholder against a real token is the same deployment (presence is compared)."""
    plan = update_request(body_with(hf_token="${HF_TOKEN}"), body_with(hf_token=TOKEN))
    assert plan.not_updatable == ()


_iwc = st.fixed_dictionaries(
    {
        "min_workers": st.integers(0, 5),
        "initial_workers_gpu": st.sampled_from(["A100", "H100", "L4"]),
        "initial_workers_gpu_num": st.integers(0, 8),
        "use_same_gpus_when_scaling": st.booleans(),
        "instance_types": st.lists(st.sampled_from(["p4d.24xlarge", "g5.xlarge"]), max_size=2),
    }
)
_band = st.tuples(st.integers(0, 4), st.integers(1, 6)).filter(lambda b: b[0] < b[1])
_asc = st.builds(
    lambda band, window, up, down, zero, shared: {
        "lower_allowed_latency_sec": band[0],
        "upper_allowed_latency_sec": band[1],
        "time_window_sec": window,
        "scaling_up_timeout_sec": up,
        "scaling_down_timeout_sec": down,
        "scale_to_zero_timeout_sec": zero,
        "enable_speedup_shared": shared,
    },
    _band,
    st.sampled_from([30, 60, 300]),
    st.sampled_from([1, 60, 1200]),
    st.sampled_from([1, 600, 1200]),
    st.sampled_from([1, 1800]),
    st.booleans(),
)


@settings(max_examples=60, deadline=None)
@given(_iwc, _asc, _iwc, _asc)
def test_update_reproduces_the_new_config(iwc_a, asc_a, iwc_b, asc_b):
    """Property: the update is schema-valid, minimal, and turns current into new when applied."""
    current = parse_create({"name": "d", "model": "m", "initial_worker_config": iwc_a,
                            "autoscaling_config": asc_a})
    new = parse_create({"name": "d", "model": "m", "initial_worker_config": iwc_b,
                        "autoscaling_config": asc_b})
    plan = update_request(new, current)
    update = parse_update(plan.body)
    assert apply_update(current, update) == new
    assert plan.body["imidiate_scale_down"] == (iwc_b["min_workers"] < iwc_a["min_workers"])
    for part in ("initial_worker_config", "autoscaling_config"):
        for key, value in plan.body.get(part, {}).items():
            assert getattr(getattr(current, part), key) != getattr(getattr(new, part), key)
            assert value is not None


# --- curl ----------------------------------------------------------------------------------------


def run_curl_line(line: str, env: dict[str, str]) -> list[str]:
    """The arguments curl would receive: the line run by bash with curl as a printing function."""
    script = 'curl() { for a in "$@"; do printf "%s\\0" "$a"; done; }\n' + line
    out = subprocess.run(
        ["bash", "-c", script], capture_output=True, env=env, check=True, timeout=30
    ).stdout.decode()
    return out.split("\0")[:-1]


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_curl_line_sends_the_exact_body():
    """Run through a shell, the curl line posts the exact JSON body with the token expanded."""
    body = create_body(
        scenario_from_dict(scenario_data(hf_token=TOKEN, name="it's a \"test\"")),
    )
    line = curl_command("create", body)
    env = {"HF_TOKEN": TOKEN, "SCALEGEN_API_URL": "http://h:1", "SCALEGEN_API_KEY": "k1"}
    args = run_curl_line(line, env)
    assert args[args.index("-X") + 1] == "POST"
    assert "http://h:1/sg_inf/create" in args
    assert "Authorization: Bearer k1" in args
    sent = json.loads(args[args.index("-d") + 1])
    assert sent == {**body, "hf_token": TOKEN}


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_curl_update_get_delete():
    """The other endpoints use PUT/GET/DELETE on /sg_inf/{id}; get and delete send no body."""
    env = {"SCALEGEN_API_KEY": "k"}
    upd = {"autoscaling_config": {"time_window_sec": 60}, "imidiate_scale_down": True}
    args = run_curl_line(curl_command("update", upd, inf_id="x1", base_url="http://b/"), env)
    assert args[args.index("-X") + 1] == "PUT" and "http://b/sg_inf/x1" in args
    assert json.loads(args[args.index("-d") + 1]) == upd
    for kind, method in (("get", "GET"), ("delete", "DELETE")):
        args = run_curl_line(curl_command(kind, inf_id="x1", base_url="http://b"), env)
        assert args[args.index("-X") + 1] == method and "-d" not in args
    with pytest.raises(ConfigError, match="inference id"):
        curl_command("delete")


def test_shipped_scenarios_export_valid_bodies():
    """Every scenario in scenarios/ exports a schema-valid create body."""
    for path in sorted((ROOT / "scenarios").glob("*.yaml")):
        assert_valid_create(create_request(load_source(path, check=False).body))


def test_tune_without_a_winner(tmp_path):
    """A tune folder without best.json says that no config met the constraints."""
    (tmp_path / "tune.json").write_text("{}")
    with pytest.raises(ConfigError, match="no best.json"):
        load_source(tmp_path)


def test_export_out_names_the_folder_and_writes_a_readable_file(tmp_path, capsys):
    """--out given a folder is one error naming that folder (not the temporary file beside it);
    a written body gets the mode a plain write would, not a temporary file's 0o600."""
    import os

    from sim.cli import main

    scen = write_yaml(tmp_path / "s.yaml", scenario_data())
    for fmt in ("create", "curl"):
        assert main(["export", str(scen), "--format", fmt, "--out", str(tmp_path)]) == 2
        err = capsys.readouterr().err
        assert err.strip().endswith(f"cannot write {tmp_path}: is a folder; give a file name")
    out = tmp_path / "deep" / "body.json"
    assert main(["export", str(scen), "--out", str(out), "-q"]) == 0
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask
    assert json.loads(out.read_text())["name"]
