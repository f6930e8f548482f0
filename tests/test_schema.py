"""Unit and property tests of the ScaleGenAI request-body models (sim/api/schema.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from sim.api.schema import (
    AutoscalingConfig,
    AutoscalingConfigUpdate,
    CreateBody,
    GatewayConfig,
    InitialWorkerConfig,
    InitialWorkerConfigUpdate,
    UpdateBody,
    apply_update,
    config_error_from_validation,
    parse_create,
    parse_update,
    update_from_create,
)
from sim.errors import ConfigError

# The create body of the vendor page with every documented default (field lists are authoritative).
VENDOR_CREATE_DEFAULTS: dict[str, Any] = {
    "name": "n",
    "model": "m",
    "inf_type": "llm",
    "allow_spot_instances": False,
    "cloud_providers": [],
    "initial_worker_config": {
        "min_workers": 0,
        "initial_workers_gpu": "A100",
        "initial_workers_gpu_num": 0,
        "use_same_gpus_when_scaling": False,
        "instance_types": [],
        "use_on_prem": False,
        "use_cloudburst": False,
        "on_prem_node_ids": [],
    },
    "autoscaling_config": {
        "enable_speedup_shared": False,
        "lower_allowed_latency_sec": 1,
        "scale_to_zero_timeout_sec": 1800,
        "scaling_down_timeout_sec": 1200,
        "scaling_up_timeout_sec": 1200,
        "time_window_sec": 300,
        "upper_allowed_latency_sec": 4,
    },
    "max_price_per_hour": 0,
    "max_throughput_rate": 0,
}

# The vendor's curl example for POST /sg_inf/create (closing braces restored).
VENDOR_CREATE_EXAMPLE: dict[str, Any] = {
    "name": "test_inference",
    "model": "meta-llama/Llama-2-70b",
    "inf_type": "llm",
    "allow_spot_instances": True,
    "autoscaling_config": {
        "enable_speedup_shared": False,
        "lower_allowed_latency_sec": 2,
        "scale_to_zero_timeout_sec": 1800,
        "scaling_down_timeout_sec": 1200,
        "scaling_up_timeout_sec": 1200,
        "time_window_sec": 300,
        "upper_allowed_latency_sec": 5,
    },
}

# The vendor's curl example for PUT /sg_inf/{id} (closing braces restored).
VENDOR_UPDATE_EXAMPLE: dict[str, Any] = {
    "initial_worker_config": {
        "min_workers": 3,
        "initial_workers_gpu": "A100",
        "initial_workers_gpu_num": 2,
        "use_same_gpus_when_scaling": False,
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
    "imidiate_scale_down": False,
}


def _error(model: type[BaseModel], data: dict[str, Any]) -> ConfigError:
    """The single ConfigError that validating ``data`` as ``model`` produces."""
    with pytest.raises(ValidationError) as info:
        model.model_validate(data)
    return config_error_from_validation(info.value, model=model, source="test.yaml")


def _create(**fields: Any) -> dict[str, Any]:
    """A minimal create body with ``fields`` added."""
    return {"name": "n", "model": "m", **fields}


# --- defaults and vendor examples -----------------------------------------------------------------


def test_defaults_equal_vendor_page() -> None:
    """A create body with only name and model exports every vendor default."""
    assert CreateBody(name="n", model="m").to_request() == VENDOR_CREATE_DEFAULTS


def test_nested_defaults_equal_vendor_page() -> None:
    """The nested configs built bare carry the vendor defaults."""
    assert InitialWorkerConfig().model_dump() == VENDOR_CREATE_DEFAULTS["initial_worker_config"]
    assert AutoscalingConfig().model_dump() == VENDOR_CREATE_DEFAULTS["autoscaling_config"]


def test_update_defaults_are_empty_patch() -> None:
    """An empty update changes nothing and exports only imidiate_scale_down=false."""
    assert UpdateBody().to_request() == {"imidiate_scale_down": False}


def test_vendor_create_example_parses() -> None:
    """The vendor's create curl example (Llama-2-70b) parses with its values."""
    body = CreateBody.model_validate(VENDOR_CREATE_EXAMPLE)
    assert body.model == "meta-llama/Llama-2-70b"
    assert body.allow_spot_instances is True
    assert body.autoscaling_config.lower_allowed_latency_sec == 2
    assert body.autoscaling_config.upper_allowed_latency_sec == 5


def test_vendor_update_example_parses() -> None:
    """The vendor's update curl example (min_workers 3) parses and keeps the vendor spelling."""
    update = UpdateBody.model_validate(VENDOR_UPDATE_EXAMPLE)
    assert update.initial_worker_config is not None
    assert update.initial_worker_config.min_workers == 3
    assert update.initial_worker_config.initial_workers_gpu_num == 2
    assert update.to_request() == VENDOR_UPDATE_EXAMPLE


def test_data_path_accepted() -> None:
    """The documented optional data_path field is accepted and exported."""
    body = CreateBody.model_validate(_create(data_path="org/dataset"))
    assert body.to_request()["data_path"] == "org/dataset"


def test_every_field_has_help_text() -> None:
    """Every field of every API model has a description."""
    models = (
        GatewayConfig,
        InitialWorkerConfig,
        AutoscalingConfig,
        CreateBody,
        InitialWorkerConfigUpdate,
        AutoscalingConfigUpdate,
        UpdateBody,
    )
    for model in models:
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name} has no description"


def test_models_are_frozen() -> None:
    """Assigning to a field of a body is an error."""
    body = CreateBody(name="n", model="m")
    with pytest.raises(ValidationError):
        body.name = "other"


# --- validation rules -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lower", "upper"),
    [(4, 4), (5, 4), (2.5, 0.5)],
)
def test_lower_bound_must_be_below_upper(lower: float, upper: float) -> None:
    """lower_allowed_latency_sec >= upper_allowed_latency_sec is rejected naming both fields."""
    err = _error(
        CreateBody,
        _create(
            autoscaling_config={
                "lower_allowed_latency_sec": lower,
                "upper_allowed_latency_sec": upper,
            }
        ),
    )
    assert err.field == "autoscaling_config.upper_allowed_latency_sec"
    assert "lower_allowed_latency_sec" in str(err)


def test_lower_bound_alone_checked_against_default_upper() -> None:
    """A lower bound above the default upper bound (4) is rejected even when upper is not given."""
    err = _error(AutoscalingConfig, {"lower_allowed_latency_sec": 5})
    assert err.field == "upper_allowed_latency_sec"


@pytest.mark.parametrize(
    "field",
    [
        "scaling_up_timeout_sec",
        "scaling_down_timeout_sec",
        "time_window_sec",
        "scale_to_zero_timeout_sec",
    ],
)
@pytest.mark.parametrize("value", [0, -5])
def test_timeouts_and_window_must_be_positive(field: str, value: int) -> None:
    """Zero or negative timeouts and window are rejected with the field path and the given value."""
    err = _error(CreateBody, _create(autoscaling_config={field: value}))
    assert err.field == f"autoscaling_config.{field}"
    assert str(value) in str(err)
    assert str(err).startswith("test.yaml: ")


def test_scale_to_zero_zero_explains_alternative() -> None:
    """scale_to_zero_timeout_sec: 0 is rejected with a hint to use min_workers instead."""
    err = _error(AutoscalingConfig, {"scale_to_zero_timeout_sec": 0})
    assert err.field == "scale_to_zero_timeout_sec"
    assert "min_workers" in str(err)


def test_fractional_timeout_rejected() -> None:
    """Timeouts are whole seconds, as on the vendor page."""
    err = _error(AutoscalingConfig, {"time_window_sec": 1.5})
    assert err.field == "time_window_sec"
    assert "integer" in str(err)


def test_boolean_is_not_a_number() -> None:
    """A boolean given for a numeric field is rejected (pydantic would read it as 1)."""
    err = _error(AutoscalingConfig, {"upper_allowed_latency_sec": True})
    assert err.field == "upper_allowed_latency_sec"
    err = _error(InitialWorkerConfig, {"min_workers": True})
    assert err.field == "min_workers"


@pytest.mark.parametrize("field", ["min_workers", "initial_workers_gpu_num"])
def test_negative_workers_rejected(field: str) -> None:
    """Negative worker or GPU counts are rejected naming the field."""
    err = _error(CreateBody, _create(initial_worker_config={field: -1}))
    assert err.field == f"initial_worker_config.{field}"
    assert "-1" in str(err)


@pytest.mark.parametrize("field", ["max_price_per_hour", "max_throughput_rate"])
def test_negative_caps_rejected(field: str) -> None:
    """Negative price or throughput caps are rejected naming the field."""
    err = _error(CreateBody, _create(**{field: -0.5}))
    assert err.field == field


def test_unknown_inf_type_rejected() -> None:
    """An inf_type other than llm/embedding is rejected, listing the expected values."""
    err = _error(CreateBody, _create(inf_type="chat"))
    assert err.field == "inf_type"
    assert "'chat'" in str(err) and "embedding" in str(err)


def test_unknown_gpu_rejected_with_suggestion() -> None:
    """An unknown GPU name is rejected naming the field and the nearest known GPU."""
    err = _error(CreateBody, _create(initial_worker_config={"initial_workers_gpu": "A1000"}))
    assert err.field == "initial_worker_config.initial_workers_gpu"
    assert "A100" in str(err)


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        ("a100", "A100"),
        ("A100-80G", "A100-80GB"),
        ("h100", "H100"),
        ("l40s", "L40S"),
        ("a10g", "A10G"),
    ],
)
def test_gpu_names_normalised(given: str, canonical: str) -> None:
    """GPU spellings are stored (and exported) in the catalog spelling."""
    cfg = InitialWorkerConfig(initial_workers_gpu=given)
    assert cfg.initial_workers_gpu == canonical


def test_unknown_key_suggests_nearest() -> None:
    """A misspelt key is an error that suggests the nearest valid key."""
    err = _error(CreateBody, _create(autoscaling_config={"time_windw_sec": 120}))
    assert err.field == "autoscaling_config.time_windw_sec"
    assert "did you mean 'time_window_sec'?" in str(err)


def test_missing_required_field_named() -> None:
    """A create body without a model names the missing field."""
    with pytest.raises(ConfigError, match=r"x\.json: model: missing"):
        parse_create({"name": "n"}, source="x.json")


def test_parse_update_rejects_unknown_key() -> None:
    """An update body with a misspelt vendor key is one ConfigError with a suggestion."""
    with pytest.raises(ConfigError, match="did you mean 'imidiate_scale_down'"):
        parse_update({"immediate_scale_down": True})


# --- floats, tokens, export -----------------------------------------------------------------------


def test_latency_bounds_export_as_given() -> None:
    """Latency bounds accept floats and export ints as ints, floats as floats."""
    cfg = AutoscalingConfig(lower_allowed_latency_sec=0.5, upper_allowed_latency_sec=4)
    out = json.loads(CreateBody(name="n", model="m", autoscaling_config=cfg).to_request_json())
    assert out["autoscaling_config"]["lower_allowed_latency_sec"] == 0.5
    assert isinstance(out["autoscaling_config"]["upper_allowed_latency_sec"], int)


def test_hf_token_masked_everywhere_but_export() -> None:
    """hf_token is masked in repr, JSON dumps and masked exports, and exact in the export."""
    body = CreateBody.model_validate(_create(hf_token="hf_SECRET"))
    assert "hf_SECRET" not in repr(body)
    assert "hf_SECRET" not in body.model_dump_json()
    assert "hf_SECRET" not in json.dumps(body.model_dump(mode="json"))
    assert "hf_SECRET" not in body.to_request_json(mask_token=True)
    assert body.to_request(mask_token=False)["hf_token"] == "hf_SECRET"


def test_unset_optional_fields_omitted_from_export() -> None:
    """Optional fields left unset are not sent; set ones are."""
    out = CreateBody(name="n", model="m").to_request()
    for key in ("base_model", "hf_token", "logs_store", "gateway_config", "data_path"):
        assert key not in out
    out = CreateBody.model_validate(
        _create(gateway_config={"name": "AWS", "region": "us-east-1"})
    ).to_request()
    assert out["gateway_config"] == {"name": "AWS", "region": "us-east-1"}


def test_create_round_trips_through_json() -> None:
    """create body -> exported JSON -> CreateBody gives an equal body (token included)."""
    body = CreateBody.model_validate(
        {**VENDOR_CREATE_EXAMPLE, "hf_token": "hf_x", "base_model": "b", "cloud_providers": ["aws"]}
    )
    again = CreateBody.model_validate_json(body.to_request_json(mask_token=False))
    assert again == body


# --- updates --------------------------------------------------------------------------------------


def test_apply_update_patches_only_given_fields() -> None:
    """apply_update changes the fields an update names and keeps every other field."""
    create = CreateBody.model_validate(
        {
            **VENDOR_CREATE_EXAMPLE,
            "initial_worker_config": {"min_workers": 2, "initial_workers_gpu_num": 4},
        }
    )
    update = UpdateBody.model_validate(
        {"initial_worker_config": {"min_workers": 0}, "autoscaling_config": {"time_window_sec": 60}}
    )
    after = apply_update(create, update)
    assert after.initial_worker_config.min_workers == 0
    assert after.initial_worker_config.initial_workers_gpu_num == 4
    assert after.autoscaling_config.time_window_sec == 60
    assert after.autoscaling_config.lower_allowed_latency_sec == 2
    assert after.autoscaling_config.upper_allowed_latency_sec == 5
    assert after.model == create.model and after.allow_spot_instances is True


def test_apply_update_checks_merged_band() -> None:
    """An update whose lower bound crosses the deployment's upper bound is rejected naming the field."""
    create = CreateBody.model_validate(VENDOR_CREATE_EXAMPLE)
    update = UpdateBody.model_validate({"autoscaling_config": {"lower_allowed_latency_sec": 6}})
    with pytest.raises(ConfigError) as info:
        apply_update(create, update)
    assert info.value.field == "autoscaling_config.upper_allowed_latency_sec"


def test_update_band_given_whole_is_checked() -> None:
    """An update giving both bounds in the wrong order is rejected by itself."""
    err = _error(
        UpdateBody,
        {"autoscaling_config": {"lower_allowed_latency_sec": 3, "upper_allowed_latency_sec": 2}},
    )
    assert err.field == "autoscaling_config.upper_allowed_latency_sec"


def test_update_from_create_is_full() -> None:
    """update_from_create names every worker and autoscaling field with the create body's values."""
    create = CreateBody.model_validate(VENDOR_CREATE_EXAMPLE)
    update = update_from_create(create, imidiate_scale_down=True)
    out = update.to_request()
    assert out["autoscaling_config"] == create.to_request()["autoscaling_config"]
    assert out["initial_worker_config"] == create.to_request()["initial_worker_config"]
    assert out["imidiate_scale_down"] is True
    assert (
        apply_update(CreateBody(name="n", model="m"), update).autoscaling_config
        == create.autoscaling_config
    )


# --- property test --------------------------------------------------------------------------------

_seconds = st.integers(min_value=1, max_value=10**6)
_latency = st.one_of(
    st.integers(min_value=0, max_value=600),
    st.floats(min_value=0, max_value=600, allow_nan=False, allow_infinity=False),
)


@st.composite
def autoscaling_configs(draw: st.DrawFn) -> dict[str, Any]:
    """Valid autoscaling_config dicts: positive whole-second timers and a non-empty latency band."""
    lower = draw(_latency)
    upper = draw(_latency.filter(lambda u: u > lower))
    return {
        "enable_speedup_shared": draw(st.booleans()),
        "lower_allowed_latency_sec": lower,
        "scale_to_zero_timeout_sec": draw(_seconds),
        "scaling_down_timeout_sec": draw(_seconds),
        "scaling_up_timeout_sec": draw(_seconds),
        "time_window_sec": draw(_seconds),
        "upper_allowed_latency_sec": upper,
    }


@given(autoscaling_configs())
def test_valid_autoscaling_configs_round_trip(data: dict[str, Any]) -> None:
    """Any valid autoscaling config survives dict -> model -> JSON -> model unchanged, types kept."""
    cfg = AutoscalingConfig.model_validate(data)
    assert cfg.model_dump() == data
    again = AutoscalingConfig.model_validate_json(cfg.model_dump_json())
    assert again == cfg
    for key, value in data.items():
        assert type(getattr(again, key)) is type(value)


@pytest.mark.parametrize("value", ["yes", 1, "true"])
def test_booleans_are_strict(value: object) -> None:
    """A create body's flags take JSON true/false only: "yes", 1 or "true" is an error naming the field."""
    with pytest.raises(ConfigError, match="allow_spot_instances"):
        parse_create({"name": "x", "model": "meta-llama/Llama-2-70b", "allow_spot_instances": value})
