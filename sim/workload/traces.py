"""Trace loaders: request logs in CSV, JSONL or Parquet → :class:`Workload`.

Each format is a :class:`TraceFormat` in the ``TRACE_FORMATS`` registry: which container it
is stored in, the candidate names of its arrival / prompt / output columns, and its time unit.
One loader reads them all with pyarrow (multi-threaded, columnar), so the good path costs a
few vectorised passes; only when something is wrong does it fall back to a slower path that
finds the first bad row and its line number.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.json as pa_json
import pyarrow.parquet as pq

from sim.errors import TraceError
from sim.registry import Registry
from sim.workload.trace_chunks import csv_column_types, read_chunked
from sim.workload.trace_columns import (
    _UNIT_SECONDS,
    _assemble,
    _BadValue,
    _check_not_epoch,
    _no_nulls,
    _numeric_text,
    _to_time,
    _to_tokens,
)
from sim.workload.trace_files import (
    ROLES,
    Container,
    _container_of,
    _existing,
    _first_undecodable_line,
    _header,
    _missing,
    _numbered_lines,
    _resolve_columns,
    _stream,
)
from sim.workload.workload import Workload


@dataclass(frozen=True)
class TraceFormat:
    """How one trace format stores requests: container, candidate column names and time unit."""

    name: str
    container: Container
    arrival: tuple[str, ...]
    prompt: tuple[str, ...]
    output: tuple[str, ...]
    # None: the caller's time_unit applies (generic formats); otherwise fixed by the format.
    time_unit: str | None = None
    # Header columns that identify the format during auto-detection (empty: never detected).
    signature: frozenset[str] = frozenset()
    description: str = ""
    # What a 0 in the output column means in this format, worth a warning when kept.
    zero_output_note: str | None = None

    def candidates(self, role: str) -> tuple[str, ...]:
        """Candidate column names for ``role`` (arrival, prompt or output)."""
        return {"arrival": self.arrival, "prompt": self.prompt, "output": self.output}[role]


TRACE_FORMATS: Registry[TraceFormat] = Registry("trace format")

_GENERIC_COLUMNS = {
    "arrival": ("arrival", "arrival_s", "timestamp"),
    "prompt": ("prompt", "prompt_tokens", "input_length"),
    "output": ("output", "output_tokens", "output_length"),
}


def register_format(fmt: TraceFormat) -> TraceFormat:
    """Add ``fmt`` to ``TRACE_FORMATS`` under its name."""
    return TRACE_FORMATS.register(fmt.name)(fmt)


register_format(
    TraceFormat(
        "azure",
        "csv",
        arrival=("TIMESTAMP",),
        prompt=("ContextTokens",),
        output=("GeneratedTokens",),
        time_unit="datetime",
        signature=frozenset({"TIMESTAMP", "ContextTokens", "GeneratedTokens"}),
        description="Azure LLM inference traces 2023/2024 (Splitwise): TIMESTAMP, ContextTokens, GeneratedTokens.",
    )
)
register_format(
    TraceFormat(
        "mooncake",
        "jsonl",
        arrival=("timestamp",),
        prompt=("input_length",),
        output=("output_length",),
        time_unit="ms",
        signature=frozenset({"timestamp", "input_length", "output_length"}),
        description="Mooncake (FAST'25) JSONL: timestamp (ms), input_length, output_length, optional hash_ids.",
    )
)
register_format(
    TraceFormat(
        "burstgpt",
        "csv",
        arrival=("Timestamp",),
        prompt=("Request tokens",),
        output=("Response tokens",),
        time_unit="s",
        signature=frozenset({"Timestamp", "Model", "Request tokens", "Response tokens"}),
        description="BurstGPT CSV: Timestamp (s), Model, Request tokens, Response tokens, Total tokens, Log Type.",
        zero_output_note="failed responses (0 response tokens) kept as prompt-only requests",
    )
)
register_format(
    TraceFormat(
        "vidur",
        "csv",
        arrival=("arrived_at",),
        prompt=("num_prefill_tokens",),
        output=("num_decode_tokens",),
        time_unit="s",
        signature=frozenset({"arrived_at", "num_prefill_tokens", "num_decode_tokens"}),
        description="Vidur / Splitwise processed CSV: arrived_at (s), num_prefill_tokens, num_decode_tokens.",
    )
)
register_format(
    TraceFormat(
        "splitwise",
        "csv",
        arrival=("arrival_timestamp",),
        prompt=("prompt_size",),
        output=("token_size",),
        time_unit="s",
        signature=frozenset({"arrival_timestamp", "prompt_size", "token_size"}),
        description="splitwise-sim trace CSV: arrival_timestamp (s), prompt_size, token_size.",
    )
)
register_format(
    TraceFormat(
        "lengths",
        "csv",
        arrival=(),
        prompt=("num_prefill_tokens",),
        output=("num_decode_tokens",),
        signature=frozenset({"num_prefill_tokens", "num_decode_tokens"}),
        description="Vidur / ShareGPT length CSVs: num_prefill_tokens, num_decode_tokens, no arrival "
        "times (a token distribution: {dist: trace, path: FILE}).",
    )
)
register_format(
    TraceFormat(
        "vllm_bench",
        "jsonl",
        arrival=(),
        prompt=("input_lens",),
        output=("output_lens",),
        description="vLLM `bench serve --save-result` JSON: input_lens, output_lens, request_rate; "
        "arrivals evenly spaced at request_rate (one burst at t = 0 when it is inf).",
    )
)
for _name, _container in (("csv", "csv"), ("jsonl", "jsonl"), ("parquet", "parquet")):
    register_format(
        TraceFormat(
            _name,
            _container,  # type: ignore[arg-type]
            arrival=_GENERIC_COLUMNS["arrival"],
            prompt=_GENERIC_COLUMNS["prompt"],
            output=_GENERIC_COLUMNS["output"],
            description=f"Generic {_name.upper()} with a column mapping and a time unit.",
        )
    )


# --- public entry points --------------------------------------------------------------------------


def load_trace(
    path: str | Path,
    format: str = "auto",
    columns: Mapping[str, str | None] | None = None,
    time_unit: str | None = None,
    *,
    filters: Mapping[str, str | Sequence[str]] | None = None,
    zero_output: str = "keep",
    prompt_only: bool = False,
) -> Workload:
    """Load a trace file into a checked :class:`Workload` with arrivals shifted to start at t = 0.

    ``columns`` maps ``arrival``/``prompt``/``output`` to column names (generic formats);
    ``time_unit`` (s, ms, us, ns, datetime) applies to formats that do not fix their own unit;
    when it is not given, numeric arrivals are seconds, unless they look like epoch time in a
    finer unit (>= 1e11): then a TraceError names the likely unit and the setting to use;
    ``filters`` keeps rows whose raw column equals a value (or one of a list); ``zero_output``
    ("keep" or "drop") decides the fate of requests with 0 output tokens; ``prompt_only``
    reads no output column (embeddings). Unsorted arrivals are sorted and counted in
    ``Workload.warnings``.
    """
    p = _existing(path)
    if format in ("auto", "vllm_bench"):
        bench = _vllm_bench(p, required=format == "vllm_bench")
        if bench is not None:
            return bench
    fmt = detect_format(p) if format == "auto" else get_format(format, p)
    if not fmt.arrival and not (columns or {}).get("arrival"):
        raise TraceError(
            f"a {fmt.name} file holds token lengths but no arrival times; use it as a token "
            "distribution (prompt_tokens: {dist: trace, path: FILE}) with a generator's "
            "arrivals, or name an arrival column with columns.arrival",
            path=str(p),
        )
    unit = fmt.time_unit or time_unit or "s"
    if unit not in (*_UNIT_SECONDS, "datetime"):
        raise TraceError(
            f"unknown time unit {unit!r}; expected s, ms, us, ns or datetime", path=str(p)
        )
    if zero_output not in ("keep", "drop"):
        raise TraceError(f"zero_output must be keep or drop, got {zero_output!r}", path=str(p))
    roles = ROLES[:2] if prompt_only else ROLES
    names = _resolve_columns(p, fmt, columns, roles=roles)
    reader = _Reader(p, fmt, filters)
    arrival_raw, prompt, output = reader.read(names, unit)
    if fmt.time_unit is None and time_unit is None and unit == "s":
        _check_not_epoch(p, names["arrival"], arrival_raw)
    warnings = list(reader.warnings)
    zero = output == 0
    if not prompt_only and zero.any():
        n_zero = int(np.count_nonzero(zero))
        if zero_output == "drop":
            keep = ~zero
            arrival_raw, prompt, output = arrival_raw[keep], prompt[keep], output[keep]
            warnings.append(f"{p.name}: dropped {n_zero} requests with 0 output tokens")
            if arrival_raw.shape[0] == 0:
                raise TraceError("no requests left after dropping 0-output rows", path=str(p))
        elif fmt.zero_output_note:
            warnings.append(f"{p.name}: {n_zero} {fmt.zero_output_note}")
    return _assemble(p, arrival_raw, prompt, output, warnings)


def _vllm_bench(path: Path, *, required: bool) -> Workload | None:
    """A ``vllm bench serve --save-result`` JSON file as a workload, or None if it is not one.

    The file keeps per-request ``input_lens`` and ``output_lens`` and the ``request_rate`` of
    the run, not the arrival times (vLLM drew them from a gamma process with its
    ``burstiness``): arrivals are spaced evenly at ``request_rate``, or all at t = 0 when the
    rate is ``inf`` (vLLM's default, one burst); a warning states which.
    """
    if path.suffix.lower() != ".json":
        if required:
            raise TraceError("a vLLM bench result is a .json file", path=str(path))
        return None
    try:
        with _stream(path) as f:
            doc = json.loads(f.read())
    except (OSError, ValueError):
        if required:
            raise TraceError("not a JSON document (vLLM bench --save-result)", path=str(path)) from None
        return None
    if not isinstance(doc, dict) or "input_lens" not in doc or "output_lens" not in doc:
        if required:
            raise TraceError(
                "expected a vLLM bench result with input_lens and output_lens", path=str(path)
            )
        return None
    prompt = np.asarray(doc["input_lens"], dtype=np.int64)
    output = np.asarray(doc["output_lens"], dtype=np.int64)
    if prompt.shape != output.shape or prompt.ndim != 1 or prompt.size == 0:
        raise TraceError(
            f"input_lens ({prompt.size}) and output_lens ({output.size}) must be equal-length, "
            "non-empty lists", path=str(path),
        )
    rate = doc.get("request_rate", "inf")
    try:
        rate_f = float(rate)
    except (TypeError, ValueError):
        raise TraceError(f"request_rate must be a number or inf, got {rate!r}", path=str(path)) from None
    if math.isfinite(rate_f) and rate_f > 0:
        arrival = np.arange(prompt.size, dtype=np.float64) / rate_f
        how = f"evenly spaced at its request_rate {rate_f:g}/s"
    else:
        arrival = np.zeros(prompt.size)
        how = "all at t = 0 (request_rate inf: one burst)"
    note = (f"{path.name}: vLLM bench result: {prompt.size:,} requests {how}; the file keeps "
            "no arrival times")
    return _assemble(path, arrival, prompt, output, [note])


def read_token_column(path: str | Path, column: str, format: str = "auto") -> np.ndarray:
    """Token counts (int64 >= 0) of one column: ``prompt``/``output`` via the format, else a raw name."""
    p = _existing(path)
    fmt = detect_format(p) if format == "auto" else get_format(format, p)
    if column in ("prompt", "output"):
        role_col = _resolve_columns(p, fmt, None, roles=(column,))[column]
    else:
        header = _header(p, fmt.container)
        if column not in header:
            raise TraceError(
                f"missing column {column!r}; columns found: {', '.join(header)}", path=str(p)
            )
        role_col = column
    return _Reader(p, fmt).read_tokens([role_col])[0]


def read_token_pairs(
    path: str | Path, format: str = "auto", columns: Mapping[str, str | None] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Row-aligned (prompt, output) token counts of a trace file, for joint resampling."""
    p = _existing(path)
    fmt = detect_format(p) if format == "auto" else get_format(format, p)
    names = _resolve_columns(p, fmt, columns, roles=("prompt", "output"))
    prompt, output = _Reader(p, fmt).read_tokens([names["prompt"], names["output"]])
    return prompt, output


def get_format(name: str, path: Path | None = None) -> TraceFormat:
    """The registered format ``name``; an unknown name is a TraceError with the nearest suggested."""
    try:
        return TRACE_FORMATS.get(name)
    except KeyError as exc:
        raise TraceError(str(exc.args[0]), path=str(path) if path else None) from None


def detect_format(path: str | Path) -> TraceFormat:
    """Guess the format from the extension (csv/jsonl/parquet) and then the header's columns."""
    p = Path(path)
    container = _container_of(p)
    header = set(_header(p, container))
    # The most specific signature wins so a format whose columns include another's is preferred.
    best: TraceFormat | None = None
    for name in TRACE_FORMATS:
        fmt = TRACE_FORMATS.get(name)
        if (
            fmt.container == container
            and fmt.signature
            and fmt.signature <= header
            and (best is None or len(fmt.signature) > len(best.signature))
        ):
            best = fmt
    return best or TRACE_FORMATS.get(container)


# --- reading --------------------------------------------------------------------------------------


class _Reader:
    """Reads the columns of one file, fast path first, and turns bad rows into TraceErrors."""

    # Block size of the slow (diagnosing) CSV pass; small enough to bound its memory.
    lenient_block_bytes = 8 << 20
    # Files at least this large (on disk) are read batch by batch (sim/workload/trace_chunks.py):
    # below it, the whole-file read is as fast and its extra memory does not matter.
    chunked_min_bytes = 32 << 20

    def __init__(
        self, path: Path, fmt: TraceFormat, filters: Mapping[str, str | Sequence[str]] | None = None
    ) -> None:
        self.path = path
        self.fmt = fmt
        self.filters = {
            k: [v] if isinstance(v, str) else list(v) for k, v in (filters or {}).items()
        }
        self.warnings: list[str] = []
        # Original row of each kept row when filters dropped some (for line numbers).
        self._rows: np.ndarray | None = None

    def read(self, names: dict[str, str], unit: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Arrival times (seconds, or int64 ns for datetimes) and prompt/output token counts."""
        cols = [names[r] for r in ROLES if r in names]
        if (
            self.fmt.container in ("csv", "parquet")
            and not self.filters
            and self.path.stat().st_size >= self.chunked_min_bytes
        ):
            self._check_header(cols)
            arrays = read_chunked(self, names, unit)
            if arrays is not None:
                return arrays
        table = self._table(cols, unit)

        def convert() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            arrival = _to_time(table.column(names["arrival"]), unit, names["arrival"])
            prompt = _to_tokens(table.column(names["prompt"]), names["prompt"])
            if "output" in names:
                output = _to_tokens(table.column(names["output"]), names["output"])
            else:
                output = np.zeros(prompt.shape[0], dtype=np.int64)
            return arrival, prompt, output

        result: tuple[np.ndarray, np.ndarray, np.ndarray] = self._guard(convert)
        return result

    def read_tokens(self, columns: list[str]) -> list[np.ndarray]:
        """Token columns as int64 arrays, row-aligned."""
        table = self._table(columns, None)
        result: list[np.ndarray] = self._guard(
            lambda: [_to_tokens(table.column(c), c) for c in columns]
        )
        return result

    def _guard(self, convert: Callable[[], Any]) -> Any:
        try:
            return convert()
        except _BadValue as bad:
            raise self._error_at(bad) from None

    def _table(self, cols: list[str], unit: str | None) -> pa.Table:
        container = self.fmt.container
        wanted = list(dict.fromkeys(cols + list(self.filters)))
        if container != "jsonl":
            self._check_header(wanted)
        try:
            if container == "csv":
                table = self._csv_fast(cols, unit)
            elif container == "jsonl":
                table = pa_json.read_json(_stream(self.path))
            else:
                table = pq.read_table(self.path, columns=wanted)
        except pa.ArrowInvalid as exc:
            # The fast typed parse failed somewhere: re-read leniently to find the row at fault.
            table = self._lenient(cols, unit, exc)
        except OSError as exc:
            raise TraceError(f"cannot read file: {exc}", path=str(self.path)) from None
        missing = [c for c in wanted if c not in table.column_names]
        if missing:
            raise _missing(self.path, table.column_names, missing)
        if table.num_rows == 0:
            raise TraceError("empty file: no requests after the header", path=str(self.path))
        if self.filters:
            table = self._apply_filters(table)
        return table.select(cols)

    def _check_header(self, wanted: list[str]) -> None:
        # Checked up front: arrow's own error for an absent column does not list the others.
        header = _header(self.path, self.fmt.container)
        absent = [c for c in wanted if c not in header]
        if absent:
            raise _missing(self.path, header, absent)

    def _apply_filters(self, table: pa.Table) -> pa.Table:
        mask = np.ones(table.num_rows, dtype=bool)
        for col, values in self.filters.items():
            text = pc.cast(table.column(col), pa.string())
            hit = pc.is_in(text, value_set=pa.array(values, pa.string()))
            mask &= pc.fill_null(hit, False).to_numpy(zero_copy_only=False)
        kept = int(mask.sum())
        if kept == 0:
            raise TraceError(f"no rows match the filters {self.filters}", path=str(self.path))
        self.warnings.append(f"{self.path.name}: filters kept {kept} of {table.num_rows} rows")
        self._rows = np.flatnonzero(mask)
        return table.filter(pa.array(mask))

    def _csv_fast(self, cols: list[str], unit: str | None) -> pa.Table:
        # Declared types let arrow parse in parallel without inference; a failure falls back.
        types = csv_column_types(cols, unit, list(self.filters))
        convert = pa_csv.ConvertOptions(
            include_columns=list(dict.fromkeys(cols + list(self.filters))), column_types=types
        )
        return pa_csv.read_csv(_stream(self.path), convert_options=convert)

    def _lenient(self, cols: list[str], unit: str | None, exc: Exception) -> pa.Table:
        if self.fmt.container == "csv":
            try:
                return self._csv_streaming(cols, unit)
            except _BadValue as bad:
                raise self._error_at(bad) from None
            except pa.ArrowInvalid as exc2:
                if "UTF8" in str(exc2) or "UTF-8" in str(exc2):
                    line = _first_undecodable_line(self.path)
                    raise TraceError("not UTF-8 text (save the file as UTF-8)",
                                     path=str(self.path), line=line) from None
                raise TraceError(f"malformed CSV: {exc2}", path=str(self.path)) from None
        if self.fmt.container == "jsonl":
            return self._jsonl_python()
        raise TraceError(f"cannot read Parquet file: {exc}", path=str(self.path))

    def _csv_streaming(self, cols: list[str], unit: str | None) -> pa.Table:
        # Batch by batch as text, converting each batch at once: memory stays near the typed
        # result (a whole file of Python-level strings would need several times more), and the
        # first bad value stops the scan with its row number.
        names = list(dict.fromkeys(cols + list(self.filters)))
        convert = pa_csv.ConvertOptions(
            include_columns=names, column_types={c: pa.string() for c in names}
        )
        reader = pa_csv.open_csv(
            _stream(self.path),
            read_options=pa_csv.ReadOptions(block_size=self.lenient_block_bytes),
            convert_options=convert,
        )
        offset = 0
        batches: list[pa.RecordBatch] = []
        for batch in reader:
            arrays = []
            for name in names:
                col = pa.chunked_array([batch.column(name)])
                try:
                    arrays.append(self._typed(col, name, cols, unit))
                except _BadValue as bad:
                    bad.index += offset
                    raise
            batches.append(pa.record_batch(arrays, names=names))
            offset += batch.num_rows
        if not batches:
            return pa.table({n: pa.array([], pa.string()) for n in names})
        return pa.Table.from_batches(batches)

    @staticmethod
    def _typed(col: pa.ChunkedArray, name: str, cols: list[str], unit: str | None) -> pa.Array:
        """A text column converted to the type the fast path would have produced."""
        if name not in cols:
            return col.chunk(0)  # a filter column stays text
        # Most batches are clean: arrow's own cast is fast; pandas/numpy only where it fails.
        target = pa.int64()
        if unit is not None and name == cols[0]:
            target = pa.timestamp("ns") if unit == "datetime" else pa.float64()
        try:
            return pc.cast(col, target).chunk(0)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
        if unit is not None and name == cols[0]:
            if unit == "datetime":
                ns = _to_time(col, "datetime", name)
                return pa.array(ns.view("datetime64[ns]"))
            _no_nulls(col, name)
            return pa.array(_numeric_text(col, name))
        return pa.array(_to_tokens(col, name))

    def _jsonl_python(self) -> pa.Table:
        # Mixed types across records defeat arrow's JSON reader; parse line by line instead,
        # keeping every value as an object so the converters locate the bad one.
        rows: list[dict[str, Any]] = []
        for lineno, line in _numbered_lines(self.path):
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as err:
                raise TraceError(
                    f"invalid JSON: {err.msg}", path=str(self.path), line=lineno
                ) from None
            if not isinstance(rec, dict):
                raise TraceError(
                    "expected a JSON object per line", path=str(self.path), line=lineno
                )
            rows.append(rec)
        keys = list(dict.fromkeys(k for r in rows for k in r))
        data = {k: pa.array([_as_text(r.get(k)) for r in rows], pa.string()) for k in keys}
        return pa.table(data)

    def _error_at(self, bad: _BadValue) -> TraceError:
        if self._rows is not None:
            bad.index = int(self._rows[bad.index])
        if self.fmt.container == "parquet":
            return TraceError(f"row {bad.index + 1}: {bad.message}", path=str(self.path))
        return TraceError(bad.message, path=str(self.path), line=self._line_of(bad.index))

    def _line_of(self, index: int) -> int | None:
        # Readers skip blank lines, so count non-blank lines; the CSV header is line 1.
        skip = 1 if self.fmt.container == "csv" else 0
        for k, (lineno, _) in enumerate(_numbered_lines(self.path)):
            if k == index + skip:
                return lineno
        return None


def _as_text(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value)
