"""Trace columns → arrays: token counts, arrival times and the assembled :class:`Workload`.

Vectorised with pyarrow and numpy; the index of a bad value is looked up only on failure and
raised as :class:`_BadValue`, which the reader in :mod:`sim.workload.traces` turns into a
:class:`~sim.errors.TraceError` naming the file and line.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from sim.bounds import MAX_TOKENS  # most tokens one request may have (prompt or output)
from sim.errors import TraceError
from sim.workload.workload import Workload

# Epoch time stamps (2001-2286) by unit: seconds ~1e9, milliseconds ~1e12, and so on. A
# numeric arrival column at or above EPOCH_MS_MIN read as seconds would start >3,000 years
# after 1970, so it is (almost surely) epoch time in a finer unit.
EPOCH_MS_MIN = 1e11
_EPOCH_UNITS = (
    (1e14, "ms", "milliseconds"), (1e17, "us", "microseconds"), (math.inf, "ns", "nanoseconds")
)

#: Seconds per unit of a numeric arrival column.
_UNIT_SECONDS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}


class _BadValue(Exception):
    """Internal: the value at ``index`` (0-based data row) of a column is invalid."""

    def __init__(self, index: int, message: str) -> None:
        super().__init__(message)
        self.index = index
        self.message = message


# --- conversion (vectorised; the index of a bad value is looked up only on failure) ----------------




def _to_tokens(col: pa.ChunkedArray, name: str) -> np.ndarray:
    """An int64 array of whole token counts in [0, MAX_TOKENS], or _BadValue at the first bad row."""
    _no_nulls(col, name)
    t = col.type
    if pa.types.is_unsigned_integer(t):
        wide = col.to_numpy()
        big = wide > MAX_TOKENS
        if big.any():
            i = int(np.argmax(big))
            raise _BadValue(i, f"column {name!r}: token count {wide[i]} is above {MAX_TOKENS:,}")
        arr = wide.astype(np.int64)
    elif pa.types.is_integer(t):
        arr = col.to_numpy().astype(np.int64, copy=False)
    else:
        if pa.types.is_floating(t) or pa.types.is_boolean(t):
            values = col.to_numpy().astype(np.float64, copy=False)
        else:
            values = _numeric_text(col, name)
        bad = ~np.isfinite(values) | (values != np.floor(values))
        if bad.any():
            i = int(np.argmax(bad))
            raise _BadValue(
                i, f"column {name!r}: token count must be a whole number, got {_raw(col, i)}"
            )
        big = values > MAX_TOKENS  # before the cast: beyond 2**63 it would wrap negative
        if big.any():
            i = int(np.argmax(big))
            raise _BadValue(
                i, f"column {name!r}: token count {_raw(col, i)} is above {MAX_TOKENS:,}"
            )
        arr = values.astype(np.int64)
    neg = arr < 0
    if neg.any():
        i = int(np.argmax(neg))
        raise _BadValue(i, f"column {name!r}: negative token count {arr[i]}")
    big = arr > MAX_TOKENS
    if big.any():
        i = int(np.argmax(big))
        raise _BadValue(i, f"column {name!r}: token count {arr[i]} is above {MAX_TOKENS:,}")
    return arr


def _to_time(col: pa.ChunkedArray, unit: str, name: str) -> np.ndarray:
    """Arrival times: float64 seconds for numeric units, int64 ns since the epoch for datetimes."""
    _no_nulls(col, name)
    t = col.type
    if unit == "datetime":
        if pa.types.is_timestamp(t):
            return _timestamp_ns(col)
        if not (pa.types.is_string(t) or pa.types.is_large_string(t)):
            raise _BadValue(
                0, f"column {name!r}: time_unit datetime expects date-time text, got {t}"
            )
        text = col.to_numpy(zero_copy_only=False)
        # format="ISO8601" also accepts zone offsets; they are normalised to UTC.
        parsed = pd.to_datetime(text, format="ISO8601", utc=True, errors="coerce")
        bad = np.asarray(parsed.isna())
        if bad.any():
            i = int(np.argmax(bad))
            raise _BadValue(i, f"column {name!r}: unparseable timestamp {_raw(col, i)}")
        # Nanoseconds since 1970 in int64 reach only 1677-2262: later dates are data errors.
        lo, hi = pd.Timestamp.min.tz_localize("UTC"), pd.Timestamp.max.tz_localize("UTC")
        out = np.asarray((parsed < lo) | (parsed > hi))
        if out.any():
            i = int(np.argmax(out))
            raise _BadValue(i, f"column {name!r}: timestamp {_raw(col, i)} is outside 1677-2262")
        return np.asarray(parsed.tz_convert(None).as_unit("ns").asi8, dtype=np.int64)
    if pa.types.is_timestamp(t):
        raise _BadValue(0, f"column {name!r} holds date-times; use time_unit: datetime")
    if pa.types.is_integer(t) or pa.types.is_floating(t):
        values = col.to_numpy().astype(np.float64, copy=False)
    else:
        values = _numeric_text(col, name)
    bad = ~np.isfinite(values) | (values < 0)
    if bad.any():
        i = int(np.argmax(bad))
        raise _BadValue(
            i, f"column {name!r}: arrival time must be a finite number >= 0, got {_raw(col, i)}"
        )
    return values * _UNIT_SECONDS[unit]


def _timestamp_ns(col: pa.ChunkedArray) -> np.ndarray:
    scale = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}[col.type.unit]
    ints = col.cast(pa.int64()).to_numpy().astype(np.int64, copy=False)
    return ints * scale if scale != 1 else ints


def _numeric_text(col: pa.ChunkedArray, name: str) -> np.ndarray:
    text = col.to_numpy(zero_copy_only=False)
    values = np.asarray(pd.to_numeric(text, errors="coerce"), dtype=np.float64)
    bad = np.isnan(values)
    if bad.any():
        i = int(np.argmax(bad))
        raise _BadValue(i, f"column {name!r}: not a number: {_raw(col, i)}")
    return values


def _no_nulls(col: pa.ChunkedArray, name: str) -> None:
    if col.null_count:
        i = int(np.argmax(col.is_null().to_numpy(zero_copy_only=False)))
        raise _BadValue(i, f"column {name!r}: missing value")


def _raw(col: pa.ChunkedArray, i: int) -> str:
    return repr(col[i].as_py())


def _check_not_epoch(path: Path, column: str, arrival: np.ndarray) -> None:
    """Numeric arrivals with no time unit given must not look like epoch ms/us/ns."""
    if arrival.size == 0 or arrival.dtype != np.float64:
        return
    low = float(arrival.min())
    if low < EPOCH_MS_MIN:
        return
    code, name = next((c, n) for top, c, n in _EPOCH_UNITS if low < top)
    span = float(arrival.max() - low)
    raise TraceError(
        f"arrival column {column!r} holds values like {low:.4g}, which look like epoch "
        f"{name} (read as seconds, these {arrival.size:,} requests would span "
        f"{span / 86400:,.1f} days); set time_unit: {code} (sim run / sim trace stats: "
        f"--time-unit {code}), or time_unit: s if they really are seconds",
        path=str(path),
    )



# --- assembly -------------------------------------------------------------------------------------


def _assemble(
    path: Path,
    arrival: np.ndarray,
    prompt: np.ndarray,
    output: np.ndarray,
    warnings: list[str],
) -> Workload:
    # In place where the array is ours to change: a long trace's arrays are most of the memory.
    if not arrival.flags.writeable:
        arrival = arrival.copy()
    if arrival.dtype == np.int64:
        # Integer nanoseconds: subtract before converting so float rounding stays sub-microsecond.
        # The seconds are written over the nanoseconds (same buffer, element by element:
        # numpy allows an exactly aliased in-place ufunc); values equal astype(float64) * 1e-9.
        arrival -= arrival.min()
        t = arrival.view(np.float64)
        np.multiply(arrival, 1e-9, out=t, casting="unsafe")
    else:
        t = arrival
        t -= t.min()
    late = t[1:] < t[:-1]
    if late.any():
        # Out of order: rows earlier than some row before them (the running maximum).
        n_late = int(np.count_nonzero(t[1:] < np.maximum.accumulate(t)[:-1]))
        order = np.argsort(t, kind="stable")
        t, prompt, output = t[order], prompt[order], output[order]
        warnings.append(f"{path.name}: {n_late} out-of-order rows were sorted by arrival time")
    zero = prompt < 1
    if zero.any():
        # A request always carries at least one prompt token (the engine needs a prefill).
        n_zero = int(np.count_nonzero(zero))
        prompt = np.maximum(prompt, 1)
        warnings.append(f"{path.name}: {n_zero} requests with 0 prompt tokens were counted as 1")
    wl = Workload(
        arrival_s=np.ascontiguousarray(t, dtype=np.float64),
        prompt_tokens=np.ascontiguousarray(prompt, dtype=np.int64),
        output_tokens=np.ascontiguousarray(output, dtype=np.int64),
        source=str(path),
        warnings=tuple(warnings),
    )
    return wl.check()
