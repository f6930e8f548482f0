"""Large CSV and Parquet traces read batch by batch into arrays sized up front.

Reading a whole file first holds its typed table, the converted arrays and their copies at
once: about 70 bytes per request above the 24 the result needs (measured on a 10M-row Azure
trace, ``benchmarks/bench_trace_load.py``). Here a Parquet file's row count comes from its
metadata and a CSV file's from a first pass counting its lines (an upper bound: blank lines
count too), the arrays are allocated once, and each batch is parsed with the same declared
column types as the whole-file reader and converted by the same functions
(:mod:`sim.workload.trace_columns`), so both paths give identical arrays. Anything the
batch reader cannot settle (a value that does not parse as its declared type) returns None,
and the caller's whole-file path re-reads the file to find the row at fault.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from sim.errors import TraceError
from sim.workload.trace_columns import _BadValue, _to_time, _to_tokens
from sim.workload.trace_files import _stream

if TYPE_CHECKING:
    from sim.workload.traces import _Reader

#: Rows per Parquet batch, bytes per CSV block: large enough for arrow's vectorised parse,
#: small against the arrays (a 16 MB block is ~400k rows of an Azure trace).
PARQUET_BATCH_ROWS = 1 << 20
CSV_BLOCK_BYTES = 4 << 20

Arrays = tuple[np.ndarray, np.ndarray, np.ndarray]


def csv_column_types(
    cols: list[str], unit: str | None, text_columns: Sequence[str] = ()
) -> dict[str, pa.DataType]:
    """Declared arrow types of a trace's CSV columns: the first (arrival) as timestamp or
    float64 when ``unit`` is given, token columns as int64, ``text_columns`` as text.
    Declared types let arrow parse without inference (and in parallel)."""
    types: dict[str, pa.DataType] = {c: pa.int64() for c in cols}
    if unit == "datetime":
        types[cols[0]] = pa.timestamp("ns")
    elif unit is not None:
        types[cols[0]] = pa.float64()
    for col in text_columns:
        types.setdefault(col, pa.string())
    return types


def count_csv_rows(path: Path) -> int:
    """An upper bound on a CSV file's data rows: its lines (decompressed) less the header."""
    lines = 0
    last = b"\n"
    with _stream(path) as fh:
        while block := fh.read(CSV_BLOCK_BYTES):
            lines += block.count(b"\n")
            last = block[-1:]
    if last != b"\n":
        lines += 1  # a last line without its newline
    return max(lines - 1, 0)


def _batches(path: Path, container: str, cols: list[str], unit: str) -> Iterator[pa.RecordBatch]:
    if container == "parquet":
        yield from pq.ParquetFile(path).iter_batches(batch_size=PARQUET_BATCH_ROWS, columns=cols)
        return
    reader = pa_csv.open_csv(
        _stream(path),
        read_options=pa_csv.ReadOptions(block_size=CSV_BLOCK_BYTES, use_threads=False),
        convert_options=pa_csv.ConvertOptions(
            include_columns=cols, column_types=csv_column_types(cols, unit)
        ),
    )
    yield from reader


def read_chunked(reader: _Reader, names: dict[str, str], unit: str) -> Arrays | None:
    """Arrival times (seconds, or int64 ns for datetimes) and prompt/output token counts of
    ``reader``'s file, batch by batch; None where the whole-file path must take over.

    Raises:
        TraceError: a value is invalid (naming its line, or its row in Parquet), the file
            holds no request, or it cannot be read.
    """
    path, container = reader.path, reader.fmt.container
    cols = [names[r] for r in ("arrival", "prompt", "output") if r in names]
    try:
        rows = (pq.ParquetFile(path).metadata.num_rows if container == "parquet"
                else count_csv_rows(path))
    except (pa.ArrowInvalid, OSError):
        return None  # the whole-file path says what is wrong with the file
    arrival = np.empty(rows, dtype=np.int64 if unit == "datetime" else np.float64)
    prompt = np.empty(rows, dtype=np.int64)
    output = np.zeros(rows, dtype=np.int64)
    n = 0
    try:
        for batch in _batches(path, container, cols, unit):
            k = batch.num_rows
            if n + k > rows:
                return None  # more rows than counted: leave it to the whole-file path
            end = n + k
            try:
                arrival[n:end] = _to_time(_column(batch, names["arrival"]), unit, names["arrival"])
                prompt[n:end] = _to_tokens(_column(batch, names["prompt"]), names["prompt"])
                if "output" in names:
                    output[n:end] = _to_tokens(_column(batch, names["output"]), names["output"])
            except _BadValue as bad:
                bad.index += n
                raise reader._error_at(bad) from None
            n = end
    except pa.ArrowInvalid:
        return None  # a value that does not parse as its type: found and named by the caller
    except OSError as exc:
        raise TraceError(f"cannot read file: {exc}", path=str(path)) from None
    if n == 0:
        raise TraceError("empty file: no requests after the header", path=str(path))
    return arrival[:n], prompt[:n], output[:n]


def _column(batch: pa.RecordBatch, name: str) -> pa.ChunkedArray:
    return pa.chunked_array([batch.column(name)])
