"""Tests of sim.workload: trace loaders, bad input, format detection, generators and specs."""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from sim.errors import ConfigError, TraceError
from sim.rng import Streams
from sim.workload import (
    GENERATORS,
    TRACE_FORMATS,
    DiurnalWorkload,
    PoissonWorkload,
    TraceWorkload,
    Workload,
    build_workload,
    detect_format,
    load_trace,
    parse_workload_spec,
)
from sim.workload.traces import read_token_column

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "azure_llm_2023"
if not DATA.is_dir():  # the repo may be checked out elsewhere; the brief's absolute location
    DATA = Path("/work/shared/data/azure_llm_2023")
CONV = DATA / "AzureLLMInferenceTrace_conv.csv"
CODE = DATA / "AzureLLMInferenceTrace_code.csv"
needs_data = pytest.mark.skipif(not CONV.is_file(), reason="shared Azure traces not available")


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def poisson_spec(**kw: object) -> PoissonWorkload:
    raw = {"kind": "poisson", "rate_per_s": 10.0, "prompt_tokens": 100, "output_tokens": 10}
    raw.update(kw)
    spec = parse_workload_spec(raw)
    assert isinstance(spec, PoissonWorkload)
    return spec


# --- Azure traces -----------------------------------------------------------------------------


@needs_data
def test_azure_conv_loads_all_rows():
    """The Azure conv trace loads 19,366 sorted requests over ~58 minutes, starting at t = 0."""
    wl = load_trace(CONV, format="azure")
    assert len(wl) == 19_366
    assert wl.arrival_s[0] == 0.0
    assert 57 * 60 <= wl.duration_s <= 59 * 60
    assert np.all(np.diff(wl.arrival_s) >= 0)
    assert wl.arrival_s.dtype == np.float64 and wl.prompt_tokens.dtype == np.int64
    assert (wl.prompt_tokens[0], wl.output_tokens[0]) == (374, 44)
    assert wl.arrival_s[1] == pytest.approx(4.314579, abs=1e-6)
    assert wl.warnings == ()
    assert wl.source == str(CONV)


@needs_data
def test_azure_code_loads_all_rows():
    """The Azure code trace loads 8,819 requests over ~57 minutes with prefill-heavy prompts."""
    wl = load_trace(CODE)
    assert len(wl) == 8_819
    assert 56 * 60 <= wl.duration_s <= 58 * 60
    assert (wl.prompt_tokens[0], wl.output_tokens[0]) == (4808, 10)
    assert np.median(wl.prompt_tokens) > 5 * np.median(wl.output_tokens)


@needs_data
def test_azure_detected_automatically():
    """An Azure header in a .csv file is detected as the azure format."""
    assert detect_format(CONV).name == "azure"


def test_azure_small_file_sub_microsecond(tmp_path):
    """Azure timestamps with 7 fractional digits keep 100 ns resolution relative to the first."""
    p = write(
        tmp_path / "a.csv",
        "TIMESTAMP,ContextTokens,GeneratedTokens\n"
        "2023-11-16 18:15:46.6805900,374,44\n"
        "2023-11-16 18:15:46.6806901,10,0\n"
        "2023-11-16 18:15:50.9951690,396,109\n",
    )
    wl = load_trace(p)
    np.testing.assert_allclose(wl.arrival_s, [0.0, 0.0001001, 4.314579], atol=1e-9)
    assert list(wl.output_tokens) == [44, 0, 109]


# --- generic formats --------------------------------------------------------------------------


def test_generic_csv_with_mapping_and_ms(tmp_path):
    """A generic CSV with a column mapping and millisecond times becomes seconds from t = 0."""
    p = write(tmp_path / "t.csv", "ts_ms,in,out,extra\n1000,5,7,x\n1500,6,8,y\n4000,7,0,z\n")
    wl = load_trace(
        p,
        format="csv",
        columns={"arrival": "ts_ms", "prompt": "in", "output": "out"},
        time_unit="ms",
    )
    np.testing.assert_allclose(wl.arrival_s, [0.0, 0.5, 3.0])
    assert list(wl.prompt_tokens) == [5, 6, 7]
    assert list(wl.output_tokens) == [7, 8, 0]


def test_generic_csv_default_columns_and_us(tmp_path):
    """Default column names (timestamp, input_length, output_length) and microseconds are read."""
    p = write(tmp_path / "t.csv", "timestamp,input_length,output_length\n10,1,2\n2000010,3,4\n")
    wl = load_trace(p, time_unit="us")
    np.testing.assert_allclose(wl.arrival_s, [0.0, 2.0])


def test_generic_csv_datetime_with_zone(tmp_path):
    """time_unit datetime parses ISO timestamps with zone offsets (normalised to UTC)."""
    p = write(
        tmp_path / "t.csv",
        "arrival,prompt,output\n2024-01-01T00:00:00Z,1,1\n2024-01-01T01:00:01+01:00,2,2\n",
    )
    wl = load_trace(p, time_unit="datetime")
    np.testing.assert_allclose(wl.arrival_s, [0.0, 1.0])


def test_generic_csv_float_token_counts(tmp_path):
    """Whole-number token counts written as floats (12.0) are accepted."""
    p = write(tmp_path / "t.csv", "arrival,prompt,output\n0,12.0,3\n1.5,4,5.0\n")
    wl = load_trace(p)
    assert list(wl.prompt_tokens) == [12, 4]
    assert list(wl.output_tokens) == [3, 5]


def test_jsonl_with_mapping_and_datetime(tmp_path):
    """JSONL with mapped keys and datetime strings loads relative to the first timestamp."""
    rows = [
        {"t": "2024-05-01T10:00:00.250", "p": 10, "o": 3},
        {"t": "2024-05-01T10:00:02.000", "p": 20, "o": 4},
    ]
    p = write(tmp_path / "t.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    wl = load_trace(p, columns={"arrival": "t", "prompt": "p", "output": "o"}, time_unit="datetime")
    np.testing.assert_allclose(wl.arrival_s, [0.0, 1.75])
    assert list(wl.prompt_tokens) == [10, 20]


def test_jsonl_ms_default_columns(tmp_path):
    """JSONL with default keys and ms times; blank lines are skipped."""
    text = '{"timestamp": 0, "input_length": 5, "output_length": 1}\n\n{"timestamp": 250, "input_length": 6, "output_length": 2}\n'
    wl = load_trace(write(tmp_path / "t.jsonl", text), time_unit="ms")
    np.testing.assert_allclose(wl.arrival_s, [0.0, 0.25])


def test_parquet_generic(tmp_path):
    """Parquet with a column mapping loads the mapped columns."""
    p = tmp_path / "t.parquet"
    pq.write_table(pa.table({"a": [3.0, 1.0, 2.0], "p": [1, 2, 3], "o": [4, 5, 6]}), p)
    wl = load_trace(p, columns={"arrival": "a", "prompt": "p", "output": "o"})
    np.testing.assert_allclose(wl.arrival_s, [0.0, 1.0, 2.0])
    assert list(wl.prompt_tokens) == [2, 3, 1]


def test_gzip_csv(tmp_path):
    """A gzip-compressed CSV is read transparently and detected by its inner extension."""
    p = tmp_path / "t.csv.gz"
    with gzip.open(p, "wt") as f:
        f.write("arrival,prompt,output\n0,1,2\n1,3,4\n")
    assert detect_format(p).name == "csv"
    assert len(load_trace(p)) == 2


# --- format detection -------------------------------------------------------------------------


def test_format_detection(tmp_path):
    """Detection uses the extension, then the header, then the content when the extension is unknown."""
    assert (
        detect_format(write(tmp_path / "a.csv", "TIMESTAMP,ContextTokens,GeneratedTokens\n")).name
        == "azure"
    )
    assert detect_format(write(tmp_path / "b.csv", "arrival,prompt,output\n")).name == "csv"
    assert detect_format(write(tmp_path / "c.jsonl", '{"arrival": 1}\n')).name == "jsonl"
    assert detect_format(write(tmp_path / "d.log", '{"arrival": 1}\n')).name == "jsonl"
    assert detect_format(write(tmp_path / "e.dat", "arrival,prompt,output\n")).name == "csv"
    pq.write_table(pa.table({"arrival": [0.0]}), tmp_path / "f.bin")
    assert detect_format(tmp_path / "f.bin").name == "parquet"


def test_registries_hold_builtin_names():
    """The registries list the built-in trace formats and generators by their YAML names."""
    assert {"azure", "csv", "jsonl", "parquet"} <= set(TRACE_FORMATS.names())
    assert {"poisson", "diurnal"} <= set(GENERATORS.names())


# --- bad input --------------------------------------------------------------------------------


def test_missing_file():
    """A missing file is a TraceError naming it."""
    with pytest.raises(TraceError, match="nope.csv: file not found"):
        load_trace("/tmp/definitely/nope.csv")


def test_empty_file(tmp_path):
    """A zero-byte file is a TraceError saying it is empty."""
    p = write(tmp_path / "e.csv", "")
    with pytest.raises(TraceError, match="empty file") as err:
        load_trace(p)
    assert err.value.path == str(p)


def test_header_only_file(tmp_path):
    """A header without rows is a TraceError saying there are no requests."""
    p = write(tmp_path / "h.csv", "TIMESTAMP,ContextTokens,GeneratedTokens\n")
    with pytest.raises(TraceError, match="empty file: no requests"):
        load_trace(p)


def test_missing_columns_lists_found_and_expected(tmp_path):
    """Missing columns: the error lists the expected names and the columns found in the file."""
    p = write(tmp_path / "m.csv", "when,prompt,foo\n1,2,3\n")
    with pytest.raises(TraceError) as err:
        load_trace(p)
    msg = str(err.value)
    assert str(p) in msg
    assert "arrival: arrival or arrival_s or timestamp" in msg
    assert "output: output or output_tokens or output_length" in msg
    assert "columns found: when, prompt, foo" in msg


def test_missing_mapped_column(tmp_path):
    """A mapped column that is absent is named in the error."""
    p = write(tmp_path / "m.csv", "a,b,c\n1,2,3\n")
    with pytest.raises(TraceError, match="prompt: nope.*columns found: a, b, c"):
        load_trace(p, columns={"arrival": "a", "prompt": "nope", "output": "c"})


def test_non_numeric_token_names_line(tmp_path):
    """A non-numeric token count is reported with its file and line (header = line 1)."""
    p = write(tmp_path / "n.csv", "arrival,prompt,output\n0,1,2\n1,3,4\n2,abc,5\n")
    with pytest.raises(TraceError, match=r"n\.csv:4: column 'prompt': not a number: 'abc'") as err:
        load_trace(p)
    assert err.value.line == 4


def test_negative_token_names_line(tmp_path):
    """A negative token count is reported with its line."""
    p = write(tmp_path / "n.csv", "arrival,prompt,output\n0,1,2\n1,3,-4\n")
    with pytest.raises(TraceError, match="negative token count -4") as err:
        load_trace(p)
    assert err.value.line == 3


def test_negative_arrival_names_line(tmp_path):
    """A negative numeric arrival time is reported with its line."""
    p = write(tmp_path / "n.csv", "arrival,prompt,output\n0,1,2\n-1,3,4\n")
    with pytest.raises(TraceError, match="arrival time must be a finite number >= 0") as err:
        load_trace(p)
    assert err.value.line == 3


def test_fractional_token_names_line(tmp_path):
    """A fractional token count is reported with its line."""
    p = write(tmp_path / "n.csv", "arrival,prompt,output\n0,1,2\n1,3.5,4\n")
    with pytest.raises(TraceError, match="whole number") as err:
        load_trace(p)
    assert err.value.line == 3


def test_missing_value_names_line(tmp_path):
    """An empty cell is reported as a missing value with its line."""
    p = write(tmp_path / "n.csv", "arrival,prompt,output\n0,1,2\n1,,4\n")
    with pytest.raises(TraceError, match="missing value") as err:
        load_trace(p)
    assert err.value.line == 3


def test_bad_line_counts_blank_lines(tmp_path):
    """Line numbers count blank lines that the reader skipped."""
    p = write(tmp_path / "n.csv", "arrival,prompt,output\n\n0,1,2\n\n1,x,4\n")
    with pytest.raises(TraceError) as err:
        load_trace(p)
    assert err.value.line == 5


def test_bad_row_found_across_batches(tmp_path, monkeypatch):
    """The diagnosing pass reads in batches and still reports the right line of a late bad row."""
    from sim.workload import traces

    monkeypatch.setattr(traces._Reader, "lenient_block_bytes", 64)
    rows = "".join(f"{i},{i + 1},{i + 2}\n" for i in range(200))
    p = write(tmp_path / "n.csv", "arrival,prompt,output\n" + rows + "200,1,x\n")
    with pytest.raises(TraceError, match="'x'") as err:
        load_trace(p)
    assert err.value.line == 202


def test_zoned_timestamps_across_batches(tmp_path, monkeypatch):
    """Zoned ISO timestamps (rejected by the fast parser) load correctly batch by batch."""
    from sim.workload import traces

    monkeypatch.setattr(traces._Reader, "lenient_block_bytes", 64)
    rows = "".join(f"2024-01-01T00:00:{i:02d}+00:00,1,1\n" for i in range(50))
    wl = load_trace(
        write(tmp_path / "z.csv", "arrival,prompt,output\n" + rows), time_unit="datetime"
    )
    np.testing.assert_allclose(wl.arrival_s, np.arange(50.0))


def test_unparseable_azure_timestamp(tmp_path):
    """An unparseable Azure timestamp is reported with file, line and the bad text."""
    p = write(
        tmp_path / "a.csv",
        "TIMESTAMP,ContextTokens,GeneratedTokens\n"
        "2023-11-16 18:15:46.6805900,374,44\n"
        "yesterday at noon,1,1\n",
    )
    with pytest.raises(TraceError, match=r"a\.csv:3: .*unparseable timestamp 'yesterday at noon'"):
        load_trace(p)


def test_numbers_with_datetime_unit(tmp_path):
    """Numeric arrivals with time_unit datetime are an error that says what was expected."""
    p = write(tmp_path / "t.jsonl", '{"arrival": 1, "prompt": 1, "output": 1}\n')
    with pytest.raises(TraceError, match="expects date-time text"):
        load_trace(p, time_unit="datetime")


def test_jsonl_bad_value_names_line(tmp_path):
    """A JSONL record with a non-numeric value is reported with its line."""
    text = (
        '{"arrival": 0, "prompt": 1, "output": 1}\n'
        '{"arrival": 1, "prompt": 2, "output": 1}\n'
        '{"arrival": 2, "prompt": "lots", "output": 1}\n'
    )
    with pytest.raises(TraceError, match="not a number") as err:
        load_trace(write(tmp_path / "b.jsonl", text))
    assert err.value.line == 3


def test_jsonl_invalid_json_names_line(tmp_path):
    """A line that is not JSON is reported with its line."""
    text = '{"arrival": 0, "prompt": 1, "output": 1}\n{"arrival": 1, "prompt": 2,\n'
    with pytest.raises(TraceError, match="invalid JSON") as err:
        load_trace(write(tmp_path / "b.jsonl", text))
    assert err.value.line == 2


def test_unknown_format_suggests():
    """An unknown format name is a TraceError suggesting the nearest registered name."""
    with pytest.raises(TraceError, match="did you mean 'azure'"):
        load_trace(CONV if CONV.is_file() else __file__, format="azur")


def test_unsorted_rows_sorted_with_warning(tmp_path):
    """Unsorted arrivals are sorted (tokens follow) and the out-of-order count is a warning."""
    p = write(tmp_path / "u.csv", "arrival,prompt,output\n5,1,1\n1,2,2\n3,3,3\n9,4,4\n2,5,5\n")
    wl = load_trace(p)
    np.testing.assert_allclose(wl.arrival_s, [0, 1, 2, 4, 8])
    assert list(wl.prompt_tokens) == [2, 5, 3, 1, 4]
    assert len(wl.warnings) == 1 and "3 out-of-order rows" in wl.warnings[0]


def test_duplicate_timestamps_allowed(tmp_path):
    """Duplicate arrival times are kept in file order without a warning."""
    p = write(tmp_path / "d.csv", "arrival,prompt,output\n1,1,1\n1,2,2\n1,3,3\n")
    wl = load_trace(p)
    assert list(wl.arrival_s) == [0, 0, 0] and list(wl.prompt_tokens) == [1, 2, 3]
    assert wl.warnings == ()


def test_zero_prompt_tokens_counted_as_one(tmp_path):
    """A zero-token prompt becomes one token, with a warning (the engine needs a prefill)."""
    wl = load_trace(write(tmp_path / "z.csv", "arrival,prompt,output\n0,0,1\n1,5,1\n"))
    assert list(wl.prompt_tokens) == [1, 5]
    assert "1 requests with 0 prompt tokens" in wl.warnings[0]


# --- Workload ---------------------------------------------------------------------------------


def test_workload_check_rejects_bad_columns():
    """Workload.check flags unsorted times, short prompts and mismatched lengths; construction does not."""
    ok = Workload(np.array([0.0, 1.0]), np.array([1, 2]), np.array([0, 3]), "x")
    assert ok.check() is ok and len(ok) == 2 and ok.duration_s == 1.0
    bad = Workload(np.array([1.0, 0.5]), np.array([1, 2]), np.array([0, 3]), "x")
    with pytest.raises(TraceError, match="request 1: arrival_s is not sorted"):
        bad.check()
    with pytest.raises(TraceError, match="prompt_tokens < 1"):
        Workload(np.array([0.0]), np.array([0]), np.array([0]), "x").check()
    with pytest.raises(TraceError, match="lengths differ"):
        Workload(np.array([0.0]), np.array([1, 1]), np.array([0]), "x").check()
    with pytest.raises(TraceError, match="dtype int64"):
        Workload(np.array([0.0]), np.array([1.0]), np.array([0]), "x").check()
    assert (
        Workload(np.array([]), np.array([], np.int64), np.array([], np.int64), "e").duration_s
        == 0.0
    )


# --- specs ------------------------------------------------------------------------------------


def test_spec_validation():
    """Specs are frozen, forbid unknown keys, and enforce exactly-one and range rules."""
    spec = poisson_spec(duration_s=10)
    with pytest.raises(ValidationError):
        spec.rate_per_s = 2  # type: ignore[misc]
    with pytest.raises(ValidationError, match="exactly one of duration_s and requests"):
        poisson_spec()
    with pytest.raises(ValidationError, match="exactly one"):
        poisson_spec(duration_s=1, requests=5)
    with pytest.raises(ValidationError, match="extra"):
        poisson_spec(duration_s=1, rate=3)
    with pytest.raises(ValidationError, match="prompt_tokens must be >= 1"):
        poisson_spec(duration_s=1, prompt_tokens=0)
    with pytest.raises(ValidationError):
        poisson_spec(duration_s=1, rate_per_s=0)
    with pytest.raises(ValidationError):
        parse_workload_spec({"kind": "trace", "path": "x.csv", "start_s": 5, "end_s": 1})
    with pytest.raises(ValidationError):
        parse_workload_spec({"kind": "poison", "rate_per_s": 1})
    trace = parse_workload_spec({"kind": "trace", "path": "x.csv", "format": "azure"})
    assert isinstance(trace, TraceWorkload) and trace.time_scale == 1.0


def test_every_spec_field_has_description():
    """Every field of every workload spec model carries help text."""
    from pydantic import BaseModel

    import sim.workload.spec as spec_mod

    models = [
        v
        for v in vars(spec_mod).values()
        if isinstance(v, type) and issubclass(v, BaseModel) and v.__module__ == spec_mod.__name__
    ]
    assert len(models) >= 10
    for model in models:
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name} has no description"


def test_token_dist_forms():
    """A token distribution is an int, or a constant, lognormal or trace mapping."""
    spec = poisson_spec(
        duration_s=1,
        prompt_tokens={"dist": "lognormal", "mean": 100, "cv": 0.5},
        output_tokens={"dist": "constant", "value": 0},
    )
    assert spec.prompt_tokens.dist == "lognormal"  # type: ignore[union-attr]
    with pytest.raises(ValidationError):
        poisson_spec(duration_s=1, output_tokens={"dist": "zipf", "a": 2})


# --- generators -------------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(
    rate=st.floats(0.05, 200.0),
    duration=st.floats(10.0, 5000.0),
    seed=st.integers(0, 2**31),
)
def test_poisson_count_within_sampling_error(rate, duration, seed):
    """A Poisson workload's count N satisfies |N − λT| <= 5·sqrt(λT) + 1 (a 5-sigma bound)."""
    wl = build_workload(poisson_spec(rate_per_s=rate, duration_s=duration), Streams(seed))
    lam_t = rate * duration
    assert abs(len(wl) - lam_t) <= 5 * math.sqrt(lam_t) + 1
    assert len(wl) == 0 or (wl.arrival_s[0] >= 0 and wl.arrival_s[-1] < duration)


def test_poisson_requests_and_gaps():
    """A request-count Poisson workload has exactly N requests with exponential gaps of mean 1/λ."""
    wl = build_workload(poisson_spec(rate_per_s=4.0, requests=200_000), Streams(3))
    gaps = np.diff(np.concatenate([[0.0], wl.arrival_s]))
    assert len(wl) == 200_000
    assert gaps.mean() == pytest.approx(0.25, rel=0.01)
    assert gaps.std() / gaps.mean() == pytest.approx(1.0, rel=0.02)


def test_poisson_time_scale_stretches():
    """time_scale multiplies the generated inter-arrival times."""
    a = build_workload(poisson_spec(requests=1000), Streams(5))
    b = build_workload(poisson_spec(requests=1000, time_scale=2.0), Streams(5))
    np.testing.assert_allclose(b.arrival_s, 2 * a.arrival_s)


@settings(max_examples=15, deadline=None)
@given(ratio=st.floats(1.0, 10.0), seed=st.integers(0, 2**31), peak_h=st.floats(0, 23))
def test_diurnal_mean_rate_and_peak_to_trough(ratio, seed, peak_h):
    """Diurnal arrivals: mean rate, peak/trough ratio and peak time match the spec within sampling error."""
    mean, period, days = 2.0, 86400.0, 7
    spec = parse_workload_spec(
        {
            "kind": "diurnal",
            "mean_rate_per_s": mean,
            "peak_to_trough": ratio,
            "peak_at_s": peak_h * 3600,
            "duration_s": days * period,
            "prompt_tokens": 10,
            "output_tokens": 1,
        }
    )
    assert isinstance(spec, DiurnalWorkload)
    wl = build_workload(spec, Streams(seed))
    lam_t = mean * days * period
    assert abs(len(wl) - lam_t) <= 5 * math.sqrt(lam_t)
    # First Fourier harmonic: E[sum cos(phase)] = m a T / 2, so a_hat = 2 mean(cos) estimates a.
    phase = 2 * np.pi * (wl.arrival_s - spec.peak_at_s) / period
    c, s = np.cos(phase).mean(), np.sin(phase).mean()
    a_hat = 2 * math.hypot(c, s)
    a = (ratio - 1) / (ratio + 1)
    assert a_hat == pytest.approx(a, abs=0.01)
    if ratio > 1.5:
        assert abs(math.atan2(s, c)) < 0.05  # the peak is where the spec puts it
        # Hourly phase bins: the busiest over the quietest hour approaches the ratio.
        hours = ((wl.arrival_s % period) // 3600).astype(int)
        counts = np.bincount(hours, minlength=24)
        assert counts.max() / counts.min() == pytest.approx(ratio, rel=0.15)


def test_same_seed_identical_and_seeds_differ():
    """The same seed gives identical arrays; another seed gives different ones."""
    spec = poisson_spec(
        duration_s=100,
        prompt_tokens={"dist": "lognormal", "mean": 100, "cv": 1},
        output_tokens={"dist": "lognormal", "mean": 50, "cv": 1},
    )
    a, b = build_workload(spec, Streams(7)), build_workload(spec, Streams(7))
    for col in ("arrival_s", "prompt_tokens", "output_tokens"):
        np.testing.assert_array_equal(getattr(a, col), getattr(b, col))
    c = build_workload(spec, Streams(8))
    assert not np.array_equal(a.arrival_s[:10], c.arrival_s[:10])


def test_streams_independent():
    """Token draws come from their own streams: changing a length model leaves arrivals unchanged."""
    base = poisson_spec(duration_s=100, prompt_tokens={"dist": "lognormal", "mean": 100, "cv": 1})
    other = poisson_spec(
        duration_s=100, prompt_tokens=5, output_tokens={"dist": "lognormal", "mean": 9, "cv": 2}
    )
    a, b = build_workload(base, Streams(1)), build_workload(other, Streams(1))
    np.testing.assert_array_equal(a.arrival_s, b.arrival_s)
    assert not np.array_equal(a.prompt_tokens, b.prompt_tokens)
    streams = Streams(1)
    x = streams.get("arrivals").random(1000)
    y = streams.get("prompt_tokens").random(1000)
    assert abs(np.corrcoef(x, y)[0, 1]) < 0.15 and not np.array_equal(x, y)


@pytest.mark.parametrize("mean,cv", [(200.0, 0.5), (1000.0, 1.5), (50.0, 0.2)])
def test_lognormal_tokens_mean_and_cv(mean, cv):
    """Lognormal token counts have the requested mean and coefficient of variation (within 3%)."""
    spec = poisson_spec(
        requests=400_000, prompt_tokens={"dist": "lognormal", "mean": mean, "cv": cv}
    )
    tokens = build_workload(spec, Streams(11)).prompt_tokens.astype(float)
    assert tokens.min() >= 1
    assert tokens.mean() == pytest.approx(mean, rel=0.03)
    assert tokens.std() / tokens.mean() == pytest.approx(cv, rel=0.03)


@needs_data
def test_trace_token_resampling_only_file_values():
    """Resampled token counts are drawn only from values present in the file's column."""
    spec = poisson_spec(
        requests=20_000,
        prompt_tokens={"dist": "trace", "path": CODE.name, "column": "prompt"},
        output_tokens={"dist": "trace", "path": CODE.name, "column": "GeneratedTokens"},
    )
    wl = build_workload(spec, Streams(2), base_dir=DATA)
    raw = load_trace(CODE)
    assert set(np.unique(wl.prompt_tokens)) <= set(np.unique(raw.prompt_tokens))
    assert set(np.unique(wl.output_tokens)) <= set(np.unique(raw.output_tokens))
    assert len(np.unique(wl.prompt_tokens)) > 100  # really resampled, not a constant
    np.testing.assert_array_equal(
        read_token_column(CODE, "ContextTokens"), load_trace(CODE).prompt_tokens
    )


def test_trace_token_unknown_column(tmp_path):
    """Resampling from a column the file lacks is a TraceError listing the columns found."""
    p = write(tmp_path / "t.csv", "arrival,prompt,output\n0,1,2\n")
    with pytest.raises(
        TraceError, match="missing column 'nope'; columns found: arrival, prompt, output"
    ):
        read_token_column(p, "nope")


# --- build ------------------------------------------------------------------------------------


@needs_data
def test_build_trace_relative_path_slice_scale_cap():
    """A trace spec resolves its path against base_dir, then slices, scales time and caps the count."""
    spec = parse_workload_spec(
        {
            "kind": "trace",
            "path": CONV.name,
            "start_s": 600,
            "end_s": 1200,
            "time_scale": 0.5,
        }
    )
    full = load_trace(CONV)
    wl = build_workload(spec, Streams(0), base_dir=DATA)
    in_window = (full.arrival_s >= 600) & (full.arrival_s < 1200)
    assert len(wl) == int(in_window.sum())
    np.testing.assert_allclose(wl.arrival_s, (full.arrival_s[in_window] - 600) * 0.5)
    capped = build_workload(spec.model_copy(update={"max_requests": 10}), Streams(0), base_dir=DATA)
    assert len(capped) == 10


def test_build_trace_generic_columns(tmp_path):
    """A trace spec passes its column mapping and time unit to the loader."""
    write(tmp_path / "t.csv", "ms,i,o\n0,1,2\n2500,3,4\n")
    spec = parse_workload_spec(
        {
            "kind": "trace",
            "path": "t.csv",
            "columns": {"arrival": "ms", "prompt": "i", "output": "o"},
            "time_unit": "ms",
        }
    )
    wl = build_workload(spec, Streams(0), base_dir=str(tmp_path))
    np.testing.assert_allclose(wl.arrival_s, [0.0, 2.5])


def test_build_rejects_non_spec():
    """build_workload raises ConfigError for an object that is not a workload spec."""
    with pytest.raises(ConfigError):
        build_workload(object(), Streams(0))  # type: ignore[arg-type]


# --- formats people hand around: time units, vLLM bench results, splitwise and length CSVs ----


def test_epoch_milliseconds_need_a_time_unit(tmp_path: Path) -> None:
    """Arrivals in epoch ms with no time_unit are an error naming ms; time_unit ms reads them; time_unit s forces seconds."""
    from sim.workload.traces import load_trace as lt

    path = tmp_path / "t.csv"
    path.write_text("ts,p,o\n" + "".join(f"{1_700_000_000_000 + 500 * i},10,5\n" for i in range(10)))
    cols = {"arrival": "ts", "prompt": "p", "output": "o"}
    with pytest.raises(TraceError, match=r"epoch milliseconds.*time_unit: ms"):
        lt(path, "csv", cols)
    assert lt(path, "csv", cols, "ms").arrival_s[-1] == pytest.approx(4.5)
    assert lt(path, "csv", cols, "s").arrival_s[-1] == pytest.approx(4500.0)
    us = tmp_path / "u.csv"
    us.write_text("ts,p,o\n1700000000000000,10,5\n1700000000500000,10,5\n")
    with pytest.raises(TraceError, match="epoch microseconds"):
        lt(us, "csv", cols)
    assert lt(us, "csv", cols, "us").arrival_s[-1] == pytest.approx(0.5)


@pytest.mark.parametrize(("rate", "last"), [(4.0, 0.5), ("inf", 0.0)])
def test_vllm_bench_result(tmp_path: Path, rate: object, last: float) -> None:
    """A vllm bench serve --save-result JSON is detected: lengths from input_lens/output_lens, arrivals at request_rate (or one burst), stated in a warning."""
    from sim.workload.traces import load_trace as lt

    path = tmp_path / "bench.json"
    path.write_text(json.dumps({"backend": "vllm", "request_rate": rate, "num_prompts": 3,
                                "input_lens": [100, 200, 300], "output_lens": [10, 20, 30]}))
    wl = lt(path)
    assert wl.prompt_tokens.tolist() == [100, 200, 300] and wl.output_tokens.tolist() == [10, 20, 30]
    assert wl.arrival_s[-1] == pytest.approx(last)
    assert any("vLLM bench result" in w for w in wl.warnings)


def test_splitwise_and_length_csvs_are_detected(tmp_path: Path) -> None:
    """splitwise-sim CSVs load without a format; Vidur/ShareGPT length CSVs are token distributions (a clear error as a trace)."""
    from sim.workload.traces import detect_format, read_token_pairs
    from sim.workload.traces import load_trace as lt

    sw = tmp_path / "splitwise.csv"
    sw.write_text("request_id,request_type,application_id,arrival_timestamp,batch_size,prompt_size,token_size\n"
                  "0,0,0,0.5,1,100,10\n1,0,0,1.5,1,200,20\n")
    assert detect_format(sw).name == "splitwise"
    wl = lt(sw)
    assert wl.arrival_s.tolist() == [0.0, 1.0] and wl.prompt_tokens.tolist() == [100, 200]
    lengths = tmp_path / "sharegpt_stats.csv"
    lengths.write_text("num_prefill_tokens,num_decode_tokens,pd_ratio\n100,10,10\n300,30,10\n")
    assert detect_format(lengths).name == "lengths"
    p, o = read_token_pairs(lengths)
    assert p.tolist() == [100, 300] and o.tolist() == [10, 30]
    with pytest.raises(TraceError, match="no arrival times"):
        lt(lengths)
