"""Tests of sim.io: reading YAML/JSON with clear errors, writing a run's result files."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from sim.errors import ConfigError
from sim.io import read_yaml_or_json, result_json, write_result
from sim.metrics import build_result
from sim.metrics.example import example_record

# DESIGN §3.3: keys summary.json must always have.
CONTRACT = {
    "requests": {"arrived", "completed", "failed", "in_flight", "retried"},
    "latency_e2e_s": {"mean", "p50", "p90", "p95", "p99", "max"},
    "ttft_s": {"mean", "p50", "p90", "p95", "p99", "max"},
    "queue_s": {"mean", "p50", "p90", "p95", "p99", "max"},
    "slo": {"metric", "threshold_s", "attainment"},
    "cost": {"total_usd", "per_hour_usd", "per_1k_requests_usd", "per_1m_output_tokens_usd",
             "on_demand_usd", "spot_usd", "on_prem_usd"},
    "workers": {"max", "mean", "gpu_hours", "cold_starts", "preemptions", "scale_ups", "scale_downs"},
    "sim": {"seed", "horizon_s", "wall_s", "events", "requests_per_wall_s"},
}  # fmt: skip


@pytest.fixture(scope="module")
def demo():
    """A result built from the synthetic example record, with a token in its scenario."""
    scen = {"name": "demo", "deployment": {"model": "m", "hf_token": "hf_SECRET"}}
    return build_result(
        example_record(n_requests=400), slo_metric="ttft", slo_threshold_s=2.0, scenario_dict=scen
    )


def test_read_yaml_and_json(tmp_path):
    """YAML and JSON files load to the same dict."""
    (tmp_path / "a.yaml").write_text("name: x\nsim: {seed: 3}\n")
    (tmp_path / "a.json").write_text('{"name": "x", "sim": {"seed": 3}}')
    assert read_yaml_or_json(tmp_path / "a.yaml") == read_yaml_or_json(tmp_path / "a.json") == {
        "name": "x", "sim": {"seed": 3},
    }  # fmt: skip


def test_yaml_syntax_error_names_file_and_line(tmp_path):
    """A YAML syntax error is a ConfigError whose message names the file and the 1-based line."""
    p = tmp_path / "bad.yaml"
    p.write_text("name: x\nsim:\n  seed: 1\n   horizon_s: [1, 2\n")
    with pytest.raises(ConfigError) as exc:
        read_yaml_or_json(p)
    assert f"{p}:4" in str(exc.value) or f"{p}:5" in str(exc.value)


def test_json_syntax_error_names_line(tmp_path):
    """A JSON syntax error is a ConfigError naming the file and line."""
    p = tmp_path / "bad.json"
    p.write_text('{\n  "a": 1,\n  "b": \n}\n')
    with pytest.raises(ConfigError, match=r"bad\.json:4"):
        read_yaml_or_json(p)


def test_duplicate_yaml_key_is_an_error(tmp_path):
    """Duplicate keys are reported (with both lines) instead of silently keeping the last."""
    p = tmp_path / "dup.yaml"
    p.write_text("sim:\n  seed: 1\n  seed: 2\n")
    with pytest.raises(ConfigError, match=r"duplicate key 'seed' \(first defined on line 2\)"):
        read_yaml_or_json(p)


@pytest.mark.parametrize(
    ("content", "message"),
    [("", "empty"), ("- a\n- b\n", "mapping"), ("just text", "mapping")],
)
def test_non_mapping_documents_rejected(tmp_path, content, message):
    """Empty files and documents that are not mappings are ConfigErrors."""
    p = tmp_path / "x.yml"
    p.write_text(content)
    with pytest.raises(ConfigError, match=message):
        read_yaml_or_json(p)


def test_missing_file(tmp_path):
    """A missing file is a ConfigError naming it."""
    with pytest.raises(ConfigError, match="nope.yaml: file not found"):
        read_yaml_or_json(tmp_path / "nope.yaml")


def test_write_result_writes_every_file(demo, tmp_path):
    """write_result writes summary.json, two parquet files and the CSVs, all readable."""
    paths = write_result(demo, tmp_path / "out")
    assert set(paths) == {"summary", "requests", "workers", "decisions", "timeline", "queue"}
    for p in paths.values():
        assert p.exists() and p.stat().st_size > 0
    req = pd.read_parquet(paths["requests"])
    assert len(req) == len(demo.requests)
    assert list(req.columns) == list(demo.requests.columns)
    assert str(req["status"].dtype) == "category"
    wk = pd.read_parquet(paths["workers"])
    assert wk["cost_usd"].sum() == pytest.approx(demo.summary["cost"]["total_usd"])
    assert len(pd.read_csv(paths["decisions"])) == len(demo.decisions)
    assert len(pd.read_csv(paths["timeline"])) == len(demo.timeline)


def test_summary_json_has_contract_keys_and_no_nan(demo, tmp_path):
    """summary.json is strict JSON (no NaN), keeps key order and has every DESIGN §3.3 key."""
    paths = write_result(demo, tmp_path)
    text = paths["summary"].read_text()
    data = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))
    for section, keys in CONTRACT.items():
        assert keys <= set(data[section]), (section, keys - set(data[section]))
    assert "scenario" in data and "warnings" in data
    assert list(data)[:2] == ["requests", "latency_e2e_s"]  # not sorted
    assert text.startswith("{\n  ")  # indent 2


def test_nan_written_as_null():
    """Non-finite floats anywhere in a summary are written as null."""
    text = result_json({"a": math.nan, "b": [math.inf, 1.0], "c": {"d": -math.inf}})
    assert json.loads(text) == {"a": None, "b": [None, 1.0], "c": {"d": None}}


def test_hf_token_masked_when_written(demo, tmp_path):
    """Any hf_token in the written summary is ***, even if a caller put one back in memory."""
    demo.summary["scenario"]["deployment"]["hf_token"] = "hf_LEAKED"
    demo.summary["scenario"]["updates"] = [{"body": {"hf_token": "hf_LEAKED2"}}]
    try:
        paths = write_result(demo, tmp_path)
    finally:
        demo.summary["scenario"]["deployment"]["hf_token"] = "***"
        del demo.summary["scenario"]["updates"]
    text = paths["summary"].read_text()
    assert "hf_LEAKED" not in text and "hf_SECRET" not in text
    data = json.loads(text)
    assert data["scenario"]["deployment"]["hf_token"] == "***"
    assert data["scenario"]["updates"][0]["body"]["hf_token"] == "***"
