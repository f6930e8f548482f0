"""Hostile inputs end as one clear line (exit 2) or a typed error, never a traceback: one test
per kind — duplicated keys (YAML and JSON, every entry point), absurd nesting, non-finite
numbers, NUL characters, wrong argument types, quoted numbers in API bodies, and traces that
are compressed under a plain name, folders, not UTF-8 or hold token counts past int64."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

import sim
from sim.api.schema import parse_create
from sim.cli import main
from sim.errors import ConfigError, SimError, TraceError
from sim.workload import load_trace
from tests.helpers import small_scenario, write_yaml

HEADER = "TIMESTAMP,ContextTokens,GeneratedTokens\n"
ROW = "2023-11-16 18:15:4{}.6805900,{},5\n"


def _cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(args)
    _, err = capsys.readouterr()
    return code, err


def _one_line_error(code: int, err: str) -> str:
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize("entry", ["validate", "run", "load_scenario"])
def test_duplicated_yaml_key_is_an_error_everywhere(tmp_path, capsys, entry):
    """sim validate, sim run and sim.load_scenario all refuse a duplicated key, naming both lines."""
    path = write_yaml(tmp_path / "s.yaml", small_scenario("dup", workers=1, requests=5, mean_s=1))
    path.write_text(path.read_text() + "name: again\n")
    if entry == "load_scenario":
        with pytest.raises(ConfigError, match=r"s\.yaml:\d+: .*duplicate key 'name' \(first defined on line 1\)"):
            sim.load_scenario(path)
    else:
        line = _one_line_error(*_cli([entry, str(path)] + (["-q"] if entry == "run" else []), capsys))
        assert "duplicate key 'name' (first defined on line 1)" in line


def test_duplicated_json_key_names_both_lines(tmp_path, capsys):
    """JSON's standard reading keeps the last value; here a duplicate is an error with both lines."""
    data = small_scenario("dupj", workers=1, requests=5, mean_s=1)
    text = json.dumps(data, indent=2)
    text = text.replace('"name": "dupj",', '"name": "dupj",\n  "name": "other",', 1)
    path = tmp_path / "s.json"
    path.write_text(text)
    with pytest.raises(ConfigError, match=r"s\.json:3: duplicate key 'name' \(first defined on line 2\)"):
        sim.load_scenario(path)
    assert "first defined on line 2" in _one_line_error(*_cli(["run", str(path), "-q"], capsys))


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_nesting_thousands_deep_is_one_error(tmp_path, capsys, suffix):
    """A file nested 5,000 levels deep is refused (no RecursionError) by validate, run and the API."""
    deep = "[" * 5000 + "]" * 5000
    path = tmp_path / f"deep{suffix}"
    path.write_text(f'{{"name": {deep}}}' if suffix == ".json" else f"name: {deep}\n")
    for args in (["validate", str(path)], ["run", str(path), "-q"]):
        assert "nested more than 64 levels" in _one_line_error(*_cli(args, capsys))
    with pytest.raises(ConfigError, match="nested more than 64 levels"):
        sim.load_scenario(path)
    nested: dict = {}
    node = nested
    for _ in range(3000):
        node["x"] = {}
        node = node["x"]
    with pytest.raises(ConfigError, match="nested more than 64 levels"):
        sim.scenario_from_dict({"deployment": nested})


@pytest.mark.parametrize(
    ("field", "value"),
    [("fleet.billing_granularity_s", ".inf"), ("workload.duration_s", ".inf"),
     ("sim.horizon_s", ".inf"), ("workload.rate_per_s", ".nan")],
)
def test_non_finite_numbers_rejected(tmp_path, capsys, field, value):
    """.inf and .nan are refused by validate and run, naming the field (no crash after the run)."""
    data = small_scenario("inf", workers=1, requests=5, mean_s=1)
    data["workload"] = {"kind": "poisson", "rate_per_s": 1.0, "duration_s": 10,
                        "prompt_tokens": 10, "output_tokens": 5}
    path = write_yaml(tmp_path / "s.yaml", data)
    for cmd in ("validate", "run"):
        code, err = _cli([cmd, str(path), "--set", f"{field}={value}", "--out", str(tmp_path / "o")]
                         if cmd == "run" else [cmd, str(path), "--set", f"{field}={value}"], capsys)
        line = _one_line_error(code, err)
        assert field in line and "finite" in line, line
    assert not (tmp_path / "o").exists()


def test_nul_in_names(tmp_path, capsys, monkeypatch):
    """A NUL in the scenario name cannot become a path (the folder name is slugified); a NUL
    in a file name is one error line."""
    monkeypatch.chdir(tmp_path)
    data = small_scenario("a\x00b/../../x", workers=1, requests=5, mean_s=1)
    path = write_yaml(tmp_path / "s.yaml", data)
    assert main(["run", str(path), "-q"]) == 0
    assert (tmp_path / "results" / "a-b-x" / "summary.json").exists()
    assert "NUL" in _one_line_error(*_cli(["run", "bad\x00.yaml", "-q"], capsys))
    with pytest.raises(TraceError, match="NUL"):
        load_trace("t\x00.csv")


@pytest.mark.parametrize("arg", [None, 3, "", b"s.yaml"])
def test_wrong_argument_types_raise_config_error(arg):
    """sim.load_scenario(None) and friends raise the documented ConfigError, not a TypeError."""
    with pytest.raises(ConfigError, match="expected the path of a scenario file"):
        sim.load_scenario(arg)


def test_quoted_numbers_in_api_bodies_are_refused():
    """Strict reading: "1" is not a whole number in a create body (the API's handling of it is
    undocumented); the message names the field and says to drop the quotes."""
    body = {"name": "x", "model": "m", "initial_worker_config": {"min_workers": "1"}}
    with pytest.raises(ConfigError, match=r"initial_worker_config\.min_workers.*without quotes"):
        parse_create(body)
    body = {"name": "x", "model": "m", "autoscaling_config": {"upper_allowed_latency_sec": "4"}}
    with pytest.raises(ConfigError, match=r"upper_allowed_latency_sec.*without quotes"):
        parse_create(body)


def test_scenario_not_utf8_names_line(tmp_path, capsys):
    """A Latin-1 byte in a scenario is an error naming its line, not a decode traceback."""
    path = tmp_path / "s.yaml"
    path.write_bytes(b"name: x\nsim: {seed: 1}\ndeployment: {name: caf\xe9}\n")
    assert "s.yaml:3: not UTF-8" in _one_line_error(*_cli(["run", str(path), "-q"], capsys))


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("huge.csv", HEADER + ROW.format(6, 10**19) + ROW.format(7, 10),
         r"huge\.csv:2: column 'ContextTokens': token count '10000000000000000000' is above"),
        ("latin.csv", HEADER + ROW.format(6, 10) + "2023-11-16 18:15:47.1,10,5\xff\n",
         r"latin\.csv:3: not UTF-8"),
        ("packed.csv", None, r"packed\.csv: is gz-compressed but its name does not say so"),
        ("folder.csv", "dir", r"folder\.csv: is a folder, expected a trace file"),
    ],
)
def test_trace_messages_say_what_is_wrong(tmp_path, name, content, message):
    """Each trace problem is named as what it is (not 'negative token count', 'missing
    columns' or 'file not found')."""
    path = tmp_path / name
    if content is None:
        path.write_bytes(gzip.compress((HEADER + ROW.format(6, 10)).encode()))
    elif content == "dir":
        path.mkdir()
    elif "\xff" in content:
        path.write_bytes(content.replace("\xff", "").encode()[:-1] + b"\xff\n")
    else:
        path.write_text(content)
    with pytest.raises(TraceError, match=message):
        load_trace(path, "azure")


def test_python_api_raises_only_typed_errors(tmp_path):
    """Every bad input above reaches Python callers as a SimError subclass."""
    for bad in (None, tmp_path, tmp_path / "missing.yaml"):
        with pytest.raises(SimError):
            sim.load_scenario(bad)  # type: ignore[arg-type]
    assert issubclass(TraceError, SimError) and Path(tmp_path).is_dir()


@pytest.mark.parametrize(
    ("value", "message"),
    [("[" * 3000 + "]" * 3000, "nested more than 64 levels"),
     ("{seed: 1, seed: 2}", "duplicate key 'seed'")],
)
def test_set_values_get_the_strict_reading(tmp_path, capsys, value, message):
    """--set values are read like files: deep nesting and duplicated keys are one error line."""
    path = write_yaml(tmp_path / "s.yaml", small_scenario("o", workers=1, requests=5, mean_s=1))
    line = _one_line_error(*_cli(["validate", str(path), "--set", f"sim={value}"], capsys))
    assert "--set: sim: cannot parse" in line and message in line


@pytest.mark.parametrize(
    ("value", "message"),
    [("nan", "expected a finite number, got 'nan'"),
     ("inf", "expected a finite number, got 'inf'"),
     ("1e300", "got '1e300', which YAML reads as text: write an exponent with a decimal point"),
     ("'5'", "got the string '5': write it without quotes")],
)
def test_number_like_text_gets_the_right_advice(tmp_path, capsys, value, message):
    """YAML 1.1 reads 1e300, nan and inf as text: "write it without quotes" would mislead, since
    the user wrote none; a quoted 5 still gets that advice."""
    path = write_yaml(tmp_path / "s.yaml", small_scenario("o", workers=1, requests=5, mean_s=1))
    field = "deployment.autoscaling_config.time_window_sec"
    line = _one_line_error(*_cli(["validate", str(path), "--set", f"{field}={value}"], capsys))
    assert message in line, line
