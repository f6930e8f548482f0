"""Token-length distributions: sample prompt or output token counts for generated requests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sim.paths import resolve_path as _resolve_path
from sim.workload.spec import ConstantTokens, LognormalTokens, TraceTokens
from sim.workload.traces import read_token_column

TokenDistSpec = int | ConstantTokens | LognormalTokens | TraceTokens

_BLOCK = 1 << 20  # draws per block for large n


def lognormal_params(mean: float, cv: float) -> tuple[float, float]:
    """(mu, sigma) of the underlying normal for a lognormal with this mean and coefficient of variation."""
    sigma2 = float(np.log1p(cv * cv))
    return float(np.log(mean) - sigma2 / 2.0), float(np.sqrt(sigma2))


def resolve_path(path: str, base_dir: Path) -> Path:
    """``path`` resolved as scenarios resolve paths (see :func:`sim.paths.resolve_path`)."""
    return _resolve_path(path, base_dir)


def sample_tokens(
    dist: TokenDistSpec, n: int, rng: np.random.Generator, base_dir: Path, minimum: int = 0
) -> np.ndarray:
    """``n`` int64 token counts drawn from ``dist`` (values below ``minimum`` are raised to it)."""
    if isinstance(dist, int):
        out = np.full(n, dist, dtype=np.int64)
    elif isinstance(dist, ConstantTokens):
        out = np.full(n, dist.value, dtype=np.int64)
    elif isinstance(dist, LognormalTokens):
        if dist.cv == 0:
            out = np.full(n, round(dist.mean), dtype=np.int64)
        else:
            mu, sigma = lognormal_params(dist.mean, dist.cv)
            # In blocks: the float draws never span all n (numpy draws the same numbers).
            out = np.empty(n, dtype=np.int64)
            for i in range(0, n, _BLOCK):
                k = min(_BLOCK, n - i)
                out[i : i + k] = np.rint(rng.lognormal(mu, sigma, k))
        if dist.max is not None:  # a cap, e.g. to fit the model's context: clipped, not redrawn
            out = np.minimum(out, dist.max)
        # The spec promises at least one token per draw for lognormal lengths.
        minimum = max(minimum, 1)
    else:
        values = read_token_column(resolve_path(dist.path, base_dir), dist.column, dist.format)
        # Resampling with replacement: every draw is a value that occurs in the file.
        out = values[rng.integers(0, values.shape[0], n)]
    # ``out`` is always a fresh array here, so raising it in place is safe.
    return np.maximum(out, minimum, out=out) if minimum > 0 else out
