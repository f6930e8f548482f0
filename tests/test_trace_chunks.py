"""Large traces are read batch by batch (sim/workload/trace_chunks.py): the arrays, warnings
and errors equal the whole-file reader's, for CSV and Parquet, whatever the batch size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import sim.workload.trace_chunks as chunks
from sim.errors import TraceError
from sim.workload.trace_chunks import count_csv_rows
from sim.workload.traces import _Reader, load_trace


def _both(monkeypatch, path: Path, **kwargs):
    """load_trace through the whole-file path and through tiny batches (several per file)."""
    monkeypatch.setattr(_Reader, "chunked_min_bytes", 1 << 62)
    whole = load_trace(path, **kwargs)
    monkeypatch.setattr(_Reader, "chunked_min_bytes", 0)
    monkeypatch.setattr(chunks, "CSV_BLOCK_BYTES", 256)
    monkeypatch.setattr(chunks, "PARQUET_BATCH_ROWS", 7)
    return whole, load_trace(path, **kwargs)


def _frame(n: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    t = np.cumsum(rng.exponential(0.5, n))
    t[[5, 40]] = t[[40, 5]]  # two rows out of order: sorted, with a warning
    return pd.DataFrame({"t": t, "prompt": rng.integers(0, 900, n), "out": rng.integers(0, 300, n)})


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_batches_give_the_whole_file_result(tmp_path, monkeypatch, suffix):
    path = tmp_path / f"trace{suffix}"
    df = _frame()
    df.to_csv(path, index=False) if suffix == ".csv" else df.to_parquet(path, index=False)
    cols = {"arrival": "t", "prompt": "prompt", "output": "out"}
    whole, batched = _both(monkeypatch, path, columns=cols, time_unit="ms")
    for name in ("arrival_s", "prompt_tokens", "output_tokens"):
        assert np.array_equal(getattr(whole, name), getattr(batched, name)), name
    assert whole.warnings == batched.warnings and any("out-of-order" in w for w in whole.warnings)


def test_datetime_arrivals_in_batches(tmp_path, monkeypatch):
    """Azure-style date-times (ns) converted in place give the same seconds."""
    stamps = pd.date_range("2023-11-16 18:15:46.1234567", periods=300, freq="37ms")
    df = pd.DataFrame({"TIMESTAMP": stamps.strftime("%Y-%m-%d %H:%M:%S.%f"),
                       "ContextTokens": np.arange(300) + 1, "GeneratedTokens": np.arange(300)})
    path = tmp_path / "azure.csv"
    df.to_csv(path, index=False)
    whole, batched = _both(monkeypatch, path)
    assert np.array_equal(whole.arrival_s, batched.arrival_s)
    assert batched.arrival_s[1] == pytest.approx(0.037)


def test_a_bad_value_is_named_by_its_line_either_way(tmp_path, monkeypatch):
    """A negative token count deep in the file: the same message and line from both paths."""
    df = _frame()
    df.loc[150, "prompt"] = -3
    path = tmp_path / "bad.csv"
    df.to_csv(path, index=False)
    cols = {"arrival": "t", "prompt": "prompt", "output": "out"}
    messages = []
    for min_bytes in (1 << 62, 0):
        monkeypatch.setattr(_Reader, "chunked_min_bytes", min_bytes)
        monkeypatch.setattr(chunks, "CSV_BLOCK_BYTES", 256)
        with pytest.raises(TraceError) as err:
            load_trace(path, columns=cols)
        messages.append(str(err.value))
    assert messages[0] == messages[1] and "bad.csv:152:" in messages[0] and "-3" in messages[0]


def test_row_count_is_an_upper_bound(tmp_path):
    """Lines less the header; a last line without a newline still counts; blank lines count
    too (the reader skips them, so the arrays are cut to the rows read)."""
    path = tmp_path / "t.csv"
    path.write_text("a,b\n1,2\n\n3,4")
    assert count_csv_rows(path) == 3
    path.write_text("a,b\n")
    assert count_csv_rows(path) == 0
