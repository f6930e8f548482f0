"""Unit tests of the scenario model and loaders (sim/scenario.py)."""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel, ValidationError

pytest.importorskip("sim.workload.spec", reason="sim.workload.spec (WorkloadSpec) is not there yet")

from sim.errors import ConfigError  # noqa: E402
from sim.scenario import (  # noqa: E402
    AutoscalerSpec,
    ColdStartSpec,
    FleetSpec,
    GatewaySpec,
    OnPremNode,
    PreemptionSpec,
    Scenario,
    ScheduledUpdate,
    ServingSpec,
    SimSpec,
    SloSpec,
    SpotSpec,
    StageDist,
    WarmPoolSpec,
    apply_overrides,
    load_create_body,
    load_scenario,
    resolve_path,
    resolved_dict,
    scenario_from_create_body,
    scenario_from_dict,
    validate_scenario,
)

WORKLOAD: dict[str, Any] = {
    "kind": "poisson",
    "rate_per_s": 2,
    "duration_s": 60,
    "prompt_tokens": 100,
    "output_tokens": 50,
}

DEPLOYMENT: dict[str, Any] = {
    "name": "chat-8b",
    "model": "meta-llama/Meta-Llama-3-8B",
    "inf_type": "llm",
    "allow_spot_instances": False,
    "initial_worker_config": {
        "min_workers": 1,
        "initial_workers_gpu": "A100",
        "initial_workers_gpu_num": 1,
    },
    "autoscaling_config": {
        "time_window_sec": 300,
        "upper_allowed_latency_sec": 4,
        "lower_allowed_latency_sec": 1,
        "scaling_up_timeout_sec": 1200,
        "scaling_down_timeout_sec": 1200,
        "scale_to_zero_timeout_sec": 1800,
        "enable_speedup_shared": False,
    },
    "max_price_per_hour": 0,
}


def _data(**sections: Any) -> dict[str, Any]:
    """A minimal valid scenario mapping with ``sections`` added or replaced."""
    return {"name": "t", "deployment": dict(DEPLOYMENT), "workload": dict(WORKLOAD), **sections}


def _write(path: Path, data: dict[str, Any]) -> Path:
    """Write ``data`` as YAML to ``path`` and return the path."""
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def _config_error(data: dict[str, Any], overrides: Any = ()) -> ConfigError:
    """The ConfigError raised when building a scenario from ``data`` (source scenario.yaml)."""
    with pytest.raises(ConfigError) as info:
        scenario_from_dict(data, source="scenario.yaml", overrides=overrides)
    return info.value


# --- sections and defaults ------------------------------------------------------------------------


def test_minimal_scenario_has_documented_defaults() -> None:
    """Deployment plus workload is complete; every other section takes the documented defaults."""
    sc = scenario_from_dict({"deployment": DEPLOYMENT, "workload": WORKLOAD})
    assert sc.name == "chat-8b"  # from deployment.name
    assert (
        sc.fleet.catalog == "builtin" and sc.fleet.spot.on_demand_base == 0
    )
    assert sc.fleet.billing_granularity_s == 1 and sc.fleet.on_prem_gpu_hour_usd == 0
    assert sc.fleet.cold_start.provision_s == StageDist(median=90, sigma=0.6)
    assert sc.fleet.cold_start.image_pull_s == StageDist(median=120, sigma=0.4)
    assert sc.fleet.cold_start.engine_start_s == StageDist(median=60, sigma=0.3)
    assert sc.fleet.cold_start.weight_download_gb_per_s == 0.5
    assert sc.fleet.cold_start.warm_pool.provision_s == StageDist(median=0, sigma=0)
    assert sc.fleet.cold_start.warm_pool.weight_download_gb_per_s == 5.0
    assert sc.fleet.cold_start.warm_pool.engine_start_s == StageDist(median=30, sigma=0.3)
    assert sc.fleet.spot.preemption.kind == "hazard"
    assert sc.fleet.spot.preemption.mean_time_to_preemption_s == 10800
    assert sc.fleet.spot.on_preempt == "retry" and sc.fleet.spot.spot_acquire_timeout_s == 300
    assert sc.serving.kind == "auto" and sc.serving.mode == "fast" and sc.serving.max_batch == 256
    assert sc.serving.gpu_memory_utilization == 0.9
    assert sc.gateway.request_timeout_s == 600 and sc.gateway.network_rtt_s == 0
    assert sc.autoscaler.policy == "scalegen" and sc.autoscaler.decision_interval_s == 10
    assert sc.autoscaler.max_workers == 100 and sc.autoscaler.timeout_semantics == "cooldown"
    assert sc.updates == []
    assert sc.sim.horizon_s is None and sc.sim.seed == 1 and sc.sim.start == "warm"
    assert sc.sim.max_drain_s == 3600


def test_every_field_has_help_text() -> None:
    """Every field of every scenario section has a description."""
    sections: tuple[type[BaseModel], ...] = (
        Scenario,
        FleetSpec,
        ColdStartSpec,
        WarmPoolSpec,
        StageDist,
        SpotSpec,
        PreemptionSpec,
        OnPremNode,
        ServingSpec,
        GatewaySpec,
        AutoscalerSpec,
        ScheduledUpdate,
        SimSpec,
        SloSpec,
    )
    for model in sections:
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name} has no description"


def test_scenario_is_frozen() -> None:
    """Assigning to a scenario field is an error."""
    sc = scenario_from_dict(_data())
    with pytest.raises(ValidationError):
        sc.name = "x"


def test_resolved_helpers() -> None:
    """auto metric/kind, the SLO threshold and the spot notice resolve as documented."""
    sc = scenario_from_dict(_data())
    assert sc.metric() == "ttft" and sc.serving_kind() == "llm"
    assert sc.slo_metric() == "ttft" and sc.slo_threshold_s() == 4
    assert sc.fleet.spot.resolved_notice_s("AWS") == 120
    emb = scenario_from_dict(_data(), overrides=["deployment.inf_type=embedding"])
    assert emb.metric() == "e2e" and emb.serving_kind() == "embedding"
    assert sc.fleet.spot.resolved_notice_s("gcp") == 30
    assert AutoscalerSpec(metric="queue").resolved_metric("llm") == "queue"
    explicit = scenario_from_dict(_data(sim={"slo": {"metric": "e2e", "threshold_s": 10}}))
    assert explicit.slo_metric() == "e2e" and explicit.slo_threshold_s() == 10


def test_stage_may_be_a_bare_number() -> None:
    """A cold-start stage written as a number is a constant (sigma 0)."""
    sc = scenario_from_dict(_data(fleet={"cold_start": {"provision_s": 30}}))
    assert sc.fleet.cold_start.provision_s == StageDist(median=30, sigma=0)


# --- validation errors ----------------------------------------------------------------------------


def test_unknown_key_names_file_path_and_nearest_key() -> None:
    """A misspelt key gives one error naming the file, the dotted path and the nearest key."""
    data = _data()
    data["deployment"]["autoscaling_config"] = {"time_windw_sec": 120}
    err = _config_error(data)
    assert str(err) == (
        "scenario.yaml: deployment.autoscaling_config.time_windw_sec: unknown key; "
        "did you mean 'time_window_sec'?"
    )


def test_unknown_top_level_section_suggested() -> None:
    """A misspelt section name suggests the section."""
    err = _config_error(_data(autoscaller={}))
    assert err.field == "autoscaller" and "did you mean 'autoscaler'" in str(err)


def test_bad_value_names_path_given_and_expected() -> None:
    """A bad value names the dotted path, the value given and what was expected."""
    data = _data()
    data["deployment"]["autoscaling_config"] = {"time_window_sec": -5}
    err = _config_error(data)
    assert err.field == "deployment.autoscaling_config.time_window_sec"
    assert "-5" in str(err) and "greater than or equal to 1" in str(err)


@pytest.mark.parametrize(
    ("section", "field", "value"),
    [
        ("fleet", "billing_granularity_s", 0),
        ("fleet", "on_prem_gpu_hour_usd", -1),
        ("serving", "max_batch", 0),
        ("serving", "gpu_memory_utilization", 1.5),
        ("serving", "gpu_memory_utilization", 0),
        ("serving", "mean_s", 0),
        ("serving", "kind", "quantum"),
        ("gateway", "request_timeout_s", 0),
        ("gateway", "network_rtt_s", -1),
        ("autoscaler", "decision_interval_s", 0),
        ("autoscaler", "max_workers", 0),
        ("autoscaler", "metric", "tpot"),
        ("autoscaler", "statistic", "p42"),
        ("autoscaler", "timeout_semantics", "eventually"),
        ("autoscaler", "scale_up_step", 0),
        ("sim", "seed", -1),
        ("sim", "start", "lukewarm"),
        ("sim", "horizon_s", 0),
    ],
)
def test_section_field_rules(section: str, field: str, value: Any) -> None:
    """Out-of-range or unknown values in the scenario sections name their dotted path."""
    err = _config_error(_data(**{section: {field: value}}))
    assert err.field == f"{section}.{field}"
    assert repr(value) in str(err)


def test_unknown_workload_kind_suggested() -> None:
    """An unknown workload kind names workload.kind and the nearest kind."""
    err = _config_error(_data(workload={**WORKLOAD, "kind": "poison"}))
    assert err.field == "workload.kind" and "did you mean 'poisson'" in str(err)


def test_missing_workload_named() -> None:
    """A scenario without a workload names the missing section."""
    err = _config_error({"deployment": DEPLOYMENT})
    assert err.field == "workload" and "missing" in str(err)


def test_warmup_must_be_inside_horizon() -> None:
    """warmup_s >= horizon_s is rejected naming sim.warmup_s."""
    err = _config_error(_data(sim={"horizon_s": 100, "warmup_s": 100}))
    assert err.field == "sim.warmup_s"


def test_trace_preemption_needs_path() -> None:
    """Preemption kind trace without a trace_path is rejected."""
    err = _config_error(_data(fleet={"spot": {"preemption": {"kind": "trace"}}}))
    assert err.field == "fleet.spot.preemption" and "trace_path" in str(err)


def test_duplicate_on_prem_ids_rejected() -> None:
    """Two on-prem nodes with one id are rejected."""
    nodes = [{"id": "a", "gpu": "A100", "gpus": 8}, {"id": "a", "gpu": "H100", "gpus": 8}]
    err = _config_error(_data(fleet={"on_prem_nodes": nodes}))
    assert err.field == "fleet.on_prem_nodes" and "duplicate node ids: a" in str(err)


def test_on_prem_gpu_normalised() -> None:
    """On-prem GPU names use the catalog spelling."""
    sc = scenario_from_dict(
        _data(fleet={"on_prem_nodes": [{"id": "a", "gpu": "a100-80g", "gpus": 8}]})
    )
    assert sc.fleet.on_prem_nodes[0].gpu == "A100-80GB"


def test_updates_must_be_sorted() -> None:
    """Updates out of time order are rejected naming updates."""
    updates = [{"at_s": 10, "body": {}}, {"at_s": 5, "body": {}}]
    err = _config_error(_data(updates=updates))
    assert err.field == "updates" and "sorted" in str(err)


def test_update_must_leave_valid_deployment() -> None:
    """An update that empties the latency band is rejected naming the update's field."""
    updates = [{"at_s": 10, "body": {"autoscaling_config": {"lower_allowed_latency_sec": 9}}}]
    err = _config_error(_data(updates=updates))
    assert err.field == "updates.0.body.autoscaling_config.upper_allowed_latency_sec"
    assert err.source == "scenario.yaml"


def test_update_bodies_use_vendor_spelling() -> None:
    """Scheduled update bodies accept imidiate_scale_down (vendor spelling)."""
    updates = [
        {
            "at_s": 7200,
            "body": {"initial_worker_config": {"min_workers": 0}, "imidiate_scale_down": True},
        }
    ]
    sc = scenario_from_dict(_data(updates=updates))
    assert sc.updates[0].body.imidiate_scale_down is True


# --- files ----------------------------------------------------------------------------------------


def test_load_yaml_file_sets_base_dir(tmp_path: Path) -> None:
    """A YAML scenario loads, remembers its folder and its source name."""
    path = _write(tmp_path / "s.yaml", _data())
    sc = load_scenario(path)
    assert sc.base_dir == tmp_path.resolve()
    assert sc.source == str(path)
    assert pickle.loads(pickle.dumps(sc)).base_dir == tmp_path.resolve()


def test_yaml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    """A YAML syntax error is a ConfigError with the file and the line."""
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\ndeployment:\n  name: [a\n  model: b\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad\.yaml:4: invalid YAML"):
        load_scenario(path)


def test_missing_file_is_config_error(tmp_path: Path) -> None:
    """A scenario path that does not exist is a ConfigError naming it."""
    with pytest.raises(ConfigError, match="nope.yaml: file not found"):
        load_scenario(tmp_path / "nope.yaml")


def test_top_level_must_be_mapping(tmp_path: Path) -> None:
    """A YAML file whose top level is a list is rejected."""
    path = tmp_path / "list.yaml"
    path.write_text("- 1\n- 2\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_scenario(path)


def test_validation_error_names_file(tmp_path: Path) -> None:
    """Errors found while validating a file name that file."""
    data = _data()
    data["deployment"]["inf_type"] = "chat"
    path = _write(tmp_path / "s.yaml", data)
    with pytest.raises(ConfigError) as info:
        load_scenario(path)
    assert info.value.source == str(path) and info.value.field == "deployment.inf_type"


def test_create_json_with_workload_override(tmp_path: Path) -> None:
    """A bare create-request JSON is a scenario once a workload is given as an override."""
    path = tmp_path / "create.json"
    path.write_text(json.dumps(DEPLOYMENT), encoding="utf-8")
    sc = load_scenario(path, {"workload": WORKLOAD})
    assert sc.name == "chat-8b" and sc.deployment.model == DEPLOYMENT["model"]


def test_create_json_without_workload_explains(tmp_path: Path) -> None:
    """A bare create-request JSON without a workload says how to give one."""
    path = tmp_path / "create.json"
    path.write_text(json.dumps(DEPLOYMENT), encoding="utf-8")
    with pytest.raises(ConfigError, match="--trace") as info:
        load_scenario(path)
    assert info.value.field == "workload"


def test_scenario_from_create_body_with_trace(tmp_path: Path) -> None:
    """--deployment CREATE.json --trace FILE builds a trace workload with the absolute trace path."""
    create = tmp_path / "create.json"
    create.write_text(json.dumps(DEPLOYMENT), encoding="utf-8")
    trace = tmp_path / "t.csv"
    trace.write_text("arrival,prompt,output\n0,10,5\n", encoding="utf-8")
    sc = scenario_from_create_body(create, trace, "csv", overrides=["sim.seed=9"])
    assert sc.workload.kind == "trace"
    assert Path(sc.workload.path) == trace.resolve()
    assert sc.workload.format == "csv" and sc.sim.seed == 9


def test_scenario_from_create_body_missing_trace(tmp_path: Path) -> None:
    """A missing trace file is a ConfigError blaming --trace."""
    create = tmp_path / "create.json"
    create.write_text(json.dumps(DEPLOYMENT), encoding="utf-8")
    with pytest.raises(ConfigError, match="--trace"):
        scenario_from_create_body(create, tmp_path / "none.csv")


def test_load_create_body(tmp_path: Path) -> None:
    """load_create_body validates a create JSON and rejects a scenario file."""
    create = tmp_path / "create.json"
    create.write_text(json.dumps(DEPLOYMENT), encoding="utf-8")
    assert load_create_body(create).name == "chat-8b"
    with pytest.raises(ConfigError, match="scenario file"):
        load_create_body(_write(tmp_path / "s.yaml", _data()))


def test_relative_paths_resolve_against_file_then_repo_root(tmp_path: Path) -> None:
    """Relative paths resolve against the scenario folder, then against the repository root."""
    repo = tmp_path / "repo"
    (repo / "scenarios").mkdir(parents=True)
    (repo / "pyproject.toml").write_text("", encoding="utf-8")
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "trace.csv").write_text("x", encoding="utf-8")
    (repo / "scenarios" / "local.csv").write_text("x", encoding="utf-8")
    base = repo / "scenarios"
    assert resolve_path("local.csv", base) == (base / "local.csv").resolve()
    assert (
        resolve_path("../shared/trace.csv", base) == (tmp_path / "shared" / "trace.csv").resolve()
    )
    assert resolve_path("missing.csv", base) == base.resolve() / "missing.csv"
    sc = load_scenario(_write(base / "s.yaml", _data()))
    assert sc.resolve_path("../shared/trace.csv") == (tmp_path / "shared" / "trace.csv").resolve()


# --- overrides ------------------------------------------------------------------------------------


def test_overrides_parse_yaml_values() -> None:
    """--set values are YAML: ints, bools, lists, flow mappings and nested paths work."""
    sc = scenario_from_dict(
        _data(),
        overrides=[
            "deployment.autoscaling_config.time_window_sec=120",
            "deployment.allow_spot_instances=true",
            "deployment.cloud_providers=[aws, gcp]",
            "autoscaler.params={a: 1}",
            "autoscaler.params.b.c=2",
            "fleet.spot.preemption.mean_time_to_preemption_s=3600",
            "deployment.autoscaling_config.lower_allowed_latency_sec=0.5",
            "sim.horizon_s=null",
        ],
    )
    assert sc.deployment.autoscaling_config.time_window_sec == 120
    assert sc.deployment.allow_spot_instances is True
    assert sc.deployment.cloud_providers == ["aws", "gcp"]
    assert sc.autoscaler.params == {"a": 1, "b": {"c": 2}}
    assert sc.fleet.spot.preemption.mean_time_to_preemption_s == 3600
    assert sc.deployment.autoscaling_config.lower_allowed_latency_sec == 0.5
    assert sc.sim.horizon_s is None


def test_mapping_overrides_taken_as_values() -> None:
    """Mapping overrides set their values as given (no YAML parsing)."""
    sc = scenario_from_dict(_data(), overrides={"deployment.name": "123", "sim.seed": 5})
    assert sc.deployment.name == "123" and sc.sim.seed == 5


def test_override_list_item_by_index() -> None:
    """A list item is addressed by its index."""
    updates = [{"at_s": 10, "body": {}}]
    sc = scenario_from_dict(_data(updates=updates), overrides=["updates.0.at_s=60"])
    assert sc.updates[0].at_s == 60
    with pytest.raises(ConfigError, match="no item 3"):
        scenario_from_dict(_data(updates=updates), overrides=["updates.3.at_s=60"])


def test_override_of_nonexistent_path_names_nearest() -> None:
    """An override path that is not in the schema is an error naming it and the nearest valid key."""
    err = _config_error(_data(), overrides=["deployment.autoscaling_config.time_windw_sec=3"])
    assert err.source == "overrides"  # the Python API's name for them; the CLI says --set
    assert err.field == "deployment.autoscaling_config.time_windw_sec"
    assert "did you mean 'deployment.autoscaling_config.time_window_sec'" in str(err)
    err = _config_error(_data(), overrides=["workload.rate_per_sec=3"])
    assert "did you mean 'workload.rate_per_s'" in str(err)


def test_override_below_a_leaf_rejected() -> None:
    """A path that goes below a plain value is an error."""
    err = _config_error(_data(), overrides=["sim.seed.x=1"])
    assert err.field == "sim.seed.x"


def test_malformed_override_rejected() -> None:
    """An override without '=' is an error that shows the expected form."""
    err = _config_error(_data(), overrides=["sim.seed"])
    assert "dotted.path=VALUE" in str(err)


def test_invalid_override_value_blames_set() -> None:
    """A bad value that came from an override is reported against the overrides, not the file."""
    err = _config_error(_data(), overrides=["deployment.autoscaling_config.time_window_sec=0"])
    assert err.source == "overrides"
    assert err.field == "deployment.autoscaling_config.time_window_sec"
    with pytest.raises(ConfigError) as info:
        scenario_from_dict(
            _data(),
            source="scenario.yaml",
            overrides=["deployment.autoscaling_config.time_window_sec=0"],
            override_source="--set",
        )
    assert info.value.source == "--set"


def test_apply_overrides_does_not_mutate_input() -> None:
    """apply_overrides returns a new mapping and leaves its input alone."""
    data = _data()
    out = apply_overrides(data, ["sim.seed=3"])
    assert out["sim"] == {"seed": 3} and "sim" not in data


# --- resolved dict --------------------------------------------------------------------------------


def test_resolved_dict_is_json_and_masks_token() -> None:
    """resolved_dict is JSON-able, complete, and never contains the hf_token."""
    data = _data()
    data["deployment"]["hf_token"] = "hf_TOPSECRET"
    sc = scenario_from_dict(data)
    out = resolved_dict(sc)
    text = json.dumps(out)
    assert "hf_TOPSECRET" not in text
    assert out["deployment"]["hf_token"] == "**********"
    assert out["fleet"]["cold_start"]["provision_s"] == {"median": 90.0, "sigma": 0.6}
    assert sc.deployment.to_request()["hf_token"] == "hf_TOPSECRET"  # only the export reveals it


def test_resolved_dict_round_trips() -> None:
    """A resolved dict loads back into an equal scenario (token aside)."""
    sc = scenario_from_dict(_data(updates=[{"at_s": 5, "body": {"imidiate_scale_down": True}}]))
    again = scenario_from_dict(resolved_dict(sc))
    assert again == sc


# --- cross-field checks (need the model catalog) --------------------------------------------------


def _models_or_skip() -> None:
    """Skip when the model catalog (sim.serving.models) is not there yet."""
    pytest.importorskip("sim.serving.models", reason="sim.serving.models is not there yet")


def test_validate_fitting_shape_has_no_warnings() -> None:
    """An 8B model on one A100 validates without warnings."""
    _models_or_skip()
    assert validate_scenario(scenario_from_dict(_data())) == []


def test_validate_shape_too_small_says_how_much_is_missing() -> None:
    """A 70B model on one A100 is an error naming the GPU count field and the missing GB."""
    _models_or_skip()
    sc = scenario_from_dict(
        _data(),
        source="s.yaml",
        overrides=[
            "deployment.model=meta-llama/Llama-2-70b",
            "deployment.initial_worker_config.initial_workers_gpu_num=1",
        ],
    )
    with pytest.raises(ConfigError, match="GB missing") as info:
        validate_scenario(sc)
    assert info.value.field == "deployment.initial_worker_config.initial_workers_gpu_num"
    assert info.value.source == "s.yaml"


def test_validate_zero_gpus_means_smallest_fit() -> None:
    """initial_workers_gpu_num 0 accepts a model that fits on some count of the GPU."""
    _models_or_skip()
    sc = scenario_from_dict(
        _data(),
        overrides=[
            "deployment.model=meta-llama/Llama-2-70b",
            "deployment.initial_worker_config.initial_workers_gpu_num=0",
        ],
    )
    assert validate_scenario(sc) == []


def test_validate_unknown_model_names_model_field() -> None:
    """A model the catalog cannot size is an error on deployment.model."""
    _models_or_skip()
    sc = scenario_from_dict(_data(), overrides=["deployment.model=acme/mystery"])
    with pytest.raises(ConfigError) as info:
        validate_scenario(sc)
    assert info.value.field == "deployment.model"


def test_validate_update_shape_checked() -> None:
    """An update that shrinks the worker below the model's size is an error naming the update."""
    _models_or_skip()
    body = {"initial_worker_config": {"initial_workers_gpu": "T4", "initial_workers_gpu_num": 1}}
    sc = scenario_from_dict(_data(updates=[{"at_s": 60, "body": body}]))
    with pytest.raises(ConfigError) as info:
        validate_scenario(sc)
    assert info.value.field == "updates.0.body.initial_worker_config"


def test_validate_unknown_on_prem_node() -> None:
    """on_prem_node_ids must name nodes of fleet.on_prem_nodes (nearest suggested)."""
    data = _data(fleet={"on_prem_nodes": [{"id": "node-a", "gpu": "A100", "gpus": 8}]})
    data["deployment"]["initial_worker_config"] = {
        "use_on_prem": True,
        "on_prem_node_ids": ["node-b"],
    }
    with pytest.raises(ConfigError, match="did you mean 'node-a'") as info:
        validate_scenario(scenario_from_dict(data))
    assert info.value.field == "deployment.initial_worker_config.on_prem_node_ids.0"


def test_validate_floor_above_cap() -> None:
    """min_workers above autoscaler.max_workers is an error."""
    sc = scenario_from_dict(
        _data(autoscaler={"max_workers": 1}),
        overrides=["deployment.initial_worker_config.min_workers=2"],
    )
    with pytest.raises(ConfigError) as info:
        validate_scenario(sc)
    assert info.value.field == "deployment.initial_worker_config.min_workers"


def test_validate_warns_on_update_after_horizon() -> None:
    """An update scheduled after the horizon is a warning."""
    sc = scenario_from_dict(_data(sim={"horizon_s": 100}, updates=[{"at_s": 200, "body": {}}]))
    assert any("never applies" in w for w in validate_scenario(sc))
