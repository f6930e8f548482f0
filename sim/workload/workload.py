"""The :class:`Workload`: what arrives, as three aligned numpy columns."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.errors import TraceError


@dataclass(frozen=True)
class Workload:
    """Requests sorted by arrival: arrival time (s from t = 0), prompt and output token counts.

    Construction does not validate (so loaders and transforms can build intermediate values
    cheaply); call :meth:`check` once the workload is final.
    """

    arrival_s: np.ndarray
    prompt_tokens: np.ndarray
    output_tokens: np.ndarray
    source: str
    warnings: tuple[str, ...] = ()

    def __len__(self) -> int:
        return int(self.arrival_s.shape[0])

    @property
    def duration_s(self) -> float:
        """Time of the last arrival measured from t = 0 (0.0 for an empty workload)."""
        return float(self.arrival_s[-1]) if len(self) else 0.0

    def check(self) -> Workload:
        """Raise :class:`TraceError` unless every invariant holds; return ``self`` for chaining."""
        cols = {
            "arrival_s": (self.arrival_s, np.float64),
            "prompt_tokens": (self.prompt_tokens, np.int64),
            "output_tokens": (self.output_tokens, np.int64),
        }
        for name, (arr, dtype) in cols.items():
            if not isinstance(arr, np.ndarray) or arr.ndim != 1:
                raise TraceError(f"{name} must be a 1-D numpy array", path=self.source)
            if arr.dtype != dtype:
                raise TraceError(
                    f"{name} must have dtype {np.dtype(dtype).name}, got {arr.dtype}",
                    path=self.source,
                )
        n = len(self)
        if self.prompt_tokens.shape[0] != n or self.output_tokens.shape[0] != n:
            raise TraceError(
                f"column lengths differ: arrival_s {n}, prompt_tokens "
                f"{self.prompt_tokens.shape[0]}, output_tokens {self.output_tokens.shape[0]}",
                path=self.source,
            )
        if n == 0:
            return self
        a = self.arrival_s
        _first_bad(~np.isfinite(a), "arrival_s is not finite", self.source)
        _first_bad(a < 0, "arrival_s is negative", self.source)
        _first_bad(a[1:] < a[:-1], "arrival_s is not sorted ascending", self.source, offset=1)
        _first_bad(self.prompt_tokens < 1, "prompt_tokens < 1", self.source)
        _first_bad(self.output_tokens < 0, "output_tokens < 0", self.source)
        return self


def _first_bad(mask: np.ndarray, what: str, source: str, offset: int = 0) -> None:
    # A vectorised test first; the index is looked up only when something is wrong.
    if mask.any():
        i = int(np.argmax(mask)) + offset
        raise TraceError(f"request {i}: {what}", path=source)
