"""Upper bounds of every numeric field, by what the field means (its unit, read from its name).

Every scenario section and API body checks each numeric field against the rule its name
matches (first match wins), so a new field is bounded the day it is added. The bounds are
far above any real deployment and far below what would hang the simulator or overflow:

=================  ==========================  =============================================
field name         bound                       why
=================  ==========================  =============================================
``*_per_s``        ≤ 1,000,000                 a rate (requests/s, GB/s): beyond any gateway
``*_s``, ``*_sec`` ≤ 315,360,000 (10 years)    a time: simulated time is float64 seconds
``*tokens*``       ≤ 1,000,000,000             100x the longest context of any model (10M)
``*workers*``      ≤ 10,000                    workers of one deployment (placement is O(n²))
``requests``       ≤ 10,000,000,000            a request count; the run's estimate then
                                               applies ``--max-requests``
``decision_interval_s``  ≥ 0.001               a control loop faster than 1 ms is no model
                                               of a real autoscaler (and 1e-9 s would tick
                                               10^10 times per simulated second)
=================  ==========================  =============================================

Non-finite numbers (``.inf``, ``.nan``) are refused everywhere by the section configs
(``allow_inf_nan=False``). Documented for users in ``docs/limits.md``.
"""

from __future__ import annotations

import math
from typing import Any

MAX_RATE_PER_S = 1_000_000.0
MAX_TIME_S = 10 * 365 * 86_400.0
MAX_TOKENS = 1_000_000_000
MAX_WORKERS = 10_000
MAX_REQUESTS = 10_000_000_000
MIN_DECISION_INTERVAL_S = 0.001

#: (test on the field name, upper bound, what the bound stands for), first match wins.
RULES: tuple[tuple[Any, float, str], ...] = (
    (lambda n: n.endswith("_per_s"), MAX_RATE_PER_S, "a rate above any real gateway"),
    (lambda n: n.endswith(("_s", "_sec")), MAX_TIME_S, "10 years of simulated time"),
    (lambda n: "tokens" in n, MAX_TOKENS, "100x the longest context of any model"),
    (lambda n: "workers" in n, MAX_WORKERS, "workers one deployment can run"),
    (lambda n: n == "requests", MAX_REQUESTS, "requests one run can hold"),
)


def _numbers(value: Any) -> list[float]:
    if isinstance(value, bool):
        return []
    if isinstance(value, int | float):
        return [value]
    if isinstance(value, list | tuple):
        return [v for item in value for v in _numbers(item)]
    return []


def check_field(name: str, value: Any) -> Any:
    """``value`` unchanged, or ValueError when a number in it is beyond its field's bound."""
    numbers = _numbers(value)
    if not numbers:
        return value
    if name == "decision_interval_s":
        low = min(numbers)
        if low < MIN_DECISION_INTERVAL_S:
            raise ValueError(
                f"got {low:g} s; the control loop runs at most every {MIN_DECISION_INTERVAL_S:g} s"
            )
    for test, bound, why in RULES:
        if test(name):
            high = max(numbers)
            if math.isfinite(high) and high > bound:
                raise ValueError(f"got {high:g}, above {bound:,.0f} ({why}; see docs/limits.md)")
            break
    return value
