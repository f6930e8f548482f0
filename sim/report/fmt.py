"""Number formatting shared by the terminal headline, single-run and replication reports, so a
figure reads the same wherever it is shown: dollars with cents, seconds to 3 significant
digits, percentages to 0.1, counts with thousands separators; ``n/a`` when undefined."""

from __future__ import annotations

import math
from typing import Any

NA = "n/a"


def _missing(x: Any) -> bool:
    return x is None or (isinstance(x, float) and not math.isfinite(x))


def usd(x: Any, suffix: str = "") -> str:
    """``$1,234.57`` (below $0.10: 3 significant digits, e.g. ``$0.0123``)."""
    if _missing(x):
        return NA + suffix
    return (f"${x:,.3g}" if 0 < abs(x) < 0.1 else f"${x:,.2f}") + suffix


def seconds(x: Any) -> str:
    """``6.12 s``, ``0.126 s``, ``1.09e+03 s``: 3 significant digits."""
    return NA if _missing(x) else f"{x:.3g} s"


def pct(x: Any) -> str:
    """A fraction as ``73.7%``."""
    return NA if _missing(x) else f"{100 * x:.1f}%"


def count(x: Any) -> str:
    """``42,954``; non-integers to 2 decimals (``3.47``)."""
    if _missing(x):
        return NA
    return f"{x:,}" if isinstance(x, int) else f"{x:,.2f}"


def plus_minus(kind: str, mean: Any, half: Any) -> str:
    """``mean ± half-width`` in one of the units above (``usd``, ``seconds``, ``pct``, ``count``)."""
    fmt = {"usd": usd, "seconds": seconds, "pct": pct, "count": count}[kind]
    if _missing(mean):
        return NA
    return f"{fmt(mean)} ± {fmt(half)}"
