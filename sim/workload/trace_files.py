"""Trace files: existence and compression checks, containers, headers and column resolution.

The file-level half of the trace loaders (:mod:`sim.workload.traces`): everything that looks
at a file before its columns are read, so that each mistake (a folder, a gzip file named
``.csv``, a missing column) gets its own message.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pyarrow as pa
import pyarrow.parquet as pq

from sim.errors import TraceError

if TYPE_CHECKING:
    from sim.workload.traces import TraceFormat

Container = Literal["csv", "jsonl", "parquet"]
#: The columns a trace maps, in order: arrival time, prompt tokens, output tokens.
ROLES = ("arrival", "prompt", "output")
_COMPRESSED = {".gz", ".bz2", ".zst", ".lz4"}


# --- files, headers and columns -------------------------------------------------------------------


#: First bytes of compressed files, to catch one whose name hides the compression.
_MAGIC = {b"\x1f\x8b": ".gz", b"BZh": ".bz2", b"\x28\xb5\x2f\xfd": ".zst", b"\x04\x22\x4d\x18": ".lz4"}


def _existing(path: str | Path) -> Path:
    p = Path(path)
    if "\x00" in str(p):
        raise TraceError("a file name cannot contain a NUL character", path=repr(str(p)))
    if p.is_dir():
        raise TraceError("is a folder, expected a trace file", path=str(p))
    if not p.is_file():
        raise TraceError("file not found", path=str(p))
    suffix = p.suffix.lower()
    if suffix not in _COMPRESSED:
        with p.open("rb") as fh:
            head = fh.read(4)
        for magic, ext in _MAGIC.items():
            if head.startswith(magic):
                raise TraceError(
                    f"is {ext[1:]}-compressed but its name does not say so: rename it to "
                    f"{p.name}{ext} (compression is detected from the extension)", path=str(p)
                )
    return p


def _first_undecodable_line(path: Path) -> int | None:
    """1-based number of the first line that is not valid UTF-8, or None."""
    with _stream(path) as raw:
        lineno = 0
        rest = b""
        while chunk := raw.read(1 << 20):
            lines = (rest + chunk).split(b"\n")
            rest = lines.pop()
            for line in lines:
                lineno += 1
                try:
                    line.decode("utf-8")
                except UnicodeDecodeError:
                    return lineno
        try:
            rest.decode("utf-8")
        except UnicodeDecodeError:
            return lineno + 1
    return None


def _stream(path: Path) -> Any:
    return pa.input_stream(str(path), compression="detect")


def _container_of(path: Path) -> Container:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in _COMPRESSED:
        suffixes = suffixes[:-1]
    ext = suffixes[-1] if suffixes else ""
    if ext in (".csv", ".txt"):
        return "csv"
    if ext in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    if ext in (".parquet", ".pq"):
        return "parquet"
    # No telling extension: sniff the first bytes.
    with _stream(path) as f:
        head = f.read(4)
    if head == b"PAR1":
        return "parquet"
    return "jsonl" if head.lstrip()[:1] == b"{" else "csv"


def _numbered_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(1-based line number, text) of every non-blank line."""
    with _stream(path) as raw, io.TextIOWrapper(raw, encoding="utf-8", errors="replace") as f:
        for lineno, line in enumerate(f, start=1):
            if line.strip():
                yield lineno, line


def _header(path: Path, container: Container) -> list[str]:
    """Column names: the CSV header, the keys of the first JSON record, or the Parquet schema."""
    if container == "parquet":
        try:
            return list(pq.read_schema(path).names)
        except (pa.ArrowInvalid, OSError) as exc:
            raise TraceError(f"not a readable Parquet file: {exc}", path=str(path)) from None
    first = next(_numbered_lines(path), None)
    if first is None:
        raise TraceError("empty file", path=str(path))
    lineno, text = first
    if container == "csv":
        # A UTF-8 byte-order mark (spreadsheet exports) is not part of the first name.
        return [c.strip() for c in next(csv.reader([text.lstrip("\ufeff")]))]
    try:
        rec = json.loads(text)
    except json.JSONDecodeError as err:
        raise TraceError(f"invalid JSON: {err.msg}", path=str(path), line=lineno) from None
    if not isinstance(rec, dict):
        raise TraceError("expected a JSON object per line", path=str(path), line=lineno)
    return list(rec)


def _resolve_columns(
    path: Path,
    fmt: TraceFormat,
    columns: Mapping[str, str | None] | None,
    roles: tuple[str, ...] = ROLES,
) -> dict[str, str]:
    """Map each role to a column present in the file, or raise listing found vs expected."""
    columns = dict(columns or {})
    unknown = set(columns) - set(ROLES)
    if unknown:
        raise TraceError(
            f"unknown column role(s) {sorted(unknown)}; expected {', '.join(ROLES)}", path=str(path)
        )
    header = _header(path, fmt.container)
    found: dict[str, str] = {}
    expected: list[str] = []
    for role in roles:
        wanted = columns.get(role)
        options = (wanted,) if wanted else fmt.candidates(role)
        hit = next((c for c in options if c in header), None)
        if hit is None:
            expected.append(f"{role}: {' or '.join(options)}")
        else:
            found[role] = hit
    if expected:
        raise TraceError(
            f"missing columns for format {fmt.name!r}; expected {'; '.join(expected)}; "
            f"columns found: {', '.join(header) or '(none)'}",
            path=str(path),
        )
    return found


def _missing(path: Path, found: list[str], missing: list[str]) -> TraceError:
    return TraceError(
        f"missing columns {', '.join(missing)}; columns found: {', '.join(found) or '(none)'}",
        path=str(path),
    )
