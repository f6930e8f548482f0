"""The hindsight optimum: the cheapest worker schedule that serves a known trace within the SLO.

Knowing every arrival in advance, split the run into buckets of ``bucket_s`` seconds; bucket b
needs ``need_b`` ready workers, its SLO-feasible demand (:mod:`sim.bench.demand`). Solve, as a
MILP with HiGHS (``scipy.optimize.milp``), for integers per worker kind k (on-demand, spot) and
bucket b: y[k,b] workers billed and z[k,b] workers started:

    minimise   sum_kb price_k * bucket_h * y[k,b]
    subject to z[k,b] >= y[k,b] - y[k,b-1]                    (y[k,-1] = the warm initial fleet)
               sum_k (y[k,b] - sum_{j=b-l+1..b} z[k,j]) + s_b >= need_b  (started workers serve
                                      after l buckets, the cold-start lead time; s_b >= 0 is a
                                      shortfall priced at 1000x the dearest worker-hour)
               y[k,b] >= sum_{j=b-m+1..b} z[k,j]              (minimum billing: m buckets)
               y[spot,b] <= spot capacity in bucket b         (when a capacity trace is given)
               sum_k y[k,b] <= max_workers

The lead time l is the median cold start (provisioning + image pull + weights + engine start)
rounded up to buckets; m is ``fleet.billing_granularity_s`` in buckets (at least 1). Spot
preemptions by a hazard model are not in the MILP (it knows capacity, not a random clock).

This is the optimum of a bucketed fluid model, not a bound on the simulator: replaying it
(``policy: hindsight``) shows the latency it really gets. The simple capacity bound,
:func:`capacity_bound`, is a bound: every request's prefill and decode tokens at the worker's
fastest per-token cost (full batch), priced at the cheapest worker-hour, least over the
shapes the deployment's workers take.

The MILP buys workers of the scale-up shape only (on-demand, spot): the warm initial fleet
counts at t = 0, but when the initial shape is the better buy (a measured A100 profile against
a scaled one), keeping it is not among the MILP's choices and the replay costs more than a
policy that never scales (the 70B scenario of the default bench).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sim.bench.demand import Demand, bound_cost_usd, bucket_demand, worker_offers

SHORTFALL_PENALTY = 1000.0  # x the dearest worker-hour, per worker-bucket of unmet need


@dataclass(frozen=True)
class Schedule:
    """A solved schedule: billed workers per kind per bucket, and how the solve went."""

    bucket_s: float
    kinds: tuple[str, ...]  # "on_demand" | "spot"
    prices: tuple[float, ...]  # USD per worker-hour, per kind
    billed: np.ndarray  # (kinds, buckets) int
    need: np.ndarray  # (buckets,) ready workers needed
    lead_buckets: int
    cost_usd: float
    status: str
    gap: float  # relative MIP gap reported by HiGHS (0 when proven optimal)
    wall_s: float
    shortfall_worker_buckets: float = 0.0  # need no schedule could meet (cold start, max_workers)
    notes: tuple[str, ...] = field(default=())

    def workers_at(self, t: float) -> int:
        """Workers billed (requested, starting or ready) in the bucket holding ``t``."""
        b = min(max(int(t // self.bucket_s), 0), self.billed.shape[1] - 1)
        return int(self.billed[:, b].sum())

    def summary(self) -> dict[str, Any]:
        """JSON-able facts of the solve."""
        return {
            "cost_usd": self.cost_usd, "status": self.status, "mip_gap": self.gap,
            "wall_s": self.wall_s, "shortfall_worker_buckets": self.shortfall_worker_buckets,
            "bucket_s": self.bucket_s, "lead_buckets": self.lead_buckets,
            "kinds": list(self.kinds), "prices_per_hour_usd": list(self.prices),
            "max_workers": int(self.billed.sum(axis=0).max()) if self.billed.size else 0,
            "notes": list(self.notes),
        }


def solve(scenario: Any, workload: Any, *, bucket_s: float = 60.0, time_limit_s: float = 30.0,
          mip_rel_gap: float = 1e-4, demand: Demand | None = None) -> Schedule:
    """The hindsight-optimal schedule for ``workload`` under ``scenario``'s world.

    Need that no schedule can meet (before the first cold start completes, above max_workers)
    becomes a priced shortfall, reported in ``shortfall_worker_buckets``. Raises RuntimeError
    when HiGHS returns no solution within the time limit.
    """
    from scipy.optimize import Bounds, LinearConstraint, milp
    from scipy.sparse import lil_matrix

    dem = demand if demand is not None else bucket_demand(scenario, workload, bucket_s)
    need = np.ceil(dem.need - 1e-9).astype(np.int64)
    nb = len(need)
    offers = worker_offers(scenario, nb, bucket_s)
    kinds = tuple(o.kind for o in offers)
    nk = len(kinds)
    lead = max(math.ceil(dem.lead_s / bucket_s - 1e-9), 0)
    m = max(math.ceil(float(scenario.fleet.billing_granularity_s) / bucket_s - 1e-9), 1)
    init = [0] * nk
    init[0] = int(scenario.deployment.initial_worker_config.min_workers)
    if scenario.sim.start == "cold":
        init[0] = 0

    nv = 2 * nk * nb + nb  # y then z (kind-major), then the shortfall of each bucket

    def y(k: int, b: int) -> int:
        return k * nb + b

    def z(k: int, b: int) -> int:
        return nk * nb + k * nb + b

    def short(b: int) -> int:
        return 2 * nk * nb + b

    rows: list[tuple[dict[int, float], float, float]] = []
    for k in range(nk):
        for b in range(nb):
            # z[k,b] - y[k,b] + y[k,b-1] >= 0 (or >= -init at b = 0)
            r = {z(k, b): 1.0, y(k, b): -1.0}
            first = -float(init[k]) if b == 0 else 0.0
            if b > 0:
                r[y(k, b - 1)] = 1.0
            rows.append((r, first, math.inf))
            # minimum billing: y[k,b] - sum z[k, b-m+1..b] >= 0
            r = {y(k, b): 1.0}
            for j in range(max(0, b - m + 1), b + 1):
                r[z(k, j)] = r.get(z(k, j), 0.0) - 1.0
            rows.append((r, 0.0, math.inf))
    for b in range(nb):
        r = {short(b): 1.0}
        for k in range(nk):
            r[y(k, b)] = 1.0
            for j in range(max(0, b - lead + 1), b + 1):
                r[z(k, j)] = r.get(z(k, j), 0.0) - 1.0
        rows.append((r, float(need[b]), math.inf))
        rows.append(({y(k, b): 1.0 for k in range(nk)}, 0.0, float(dem.max_workers)))
    a = lil_matrix((len(rows), nv))
    lo = np.empty(len(rows))
    hi = np.empty(len(rows))
    for i, (r, row_lo, row_hi) in enumerate(rows):
        for j, v in r.items():
            a[i, j] = v
        lo[i], hi[i] = row_lo, row_hi
    var_hi = np.full(nv, float(dem.max_workers))
    var_hi[2 * nk * nb:] = np.inf
    for k, o in enumerate(offers):
        if o.capacity is not None:
            var_hi[k * nb:(k + 1) * nb] = np.minimum(var_hi[k * nb:(k + 1) * nb], o.capacity)
    bucket_h = bucket_s / 3600.0
    c = np.zeros(nv)
    for k, o in enumerate(offers):
        c[k * nb:(k + 1) * nb] = o.price_per_hour_usd * bucket_h
    # Demand no schedule can meet (before the first cold start can finish, or above
    # max_workers) is a shortfall, priced far above any worker so it is used only when forced.
    c[2 * nk * nb:] = SHORTFALL_PENALTY * max(o.price_per_hour_usd for o in offers) * bucket_h
    integrality = np.ones(nv)
    integrality[2 * nk * nb:] = 0
    t0 = time.perf_counter()
    res = milp(
        c, constraints=LinearConstraint(a.tocsr(), lo, hi), integrality=integrality,
        bounds=Bounds(np.zeros(nv), var_hi),
        options={"time_limit": time_limit_s, "mip_rel_gap": mip_rel_gap, "disp": False},
    )
    wall = time.perf_counter() - t0
    if res.x is None:
        raise RuntimeError(f"hindsight MILP found no feasible schedule: {res.message}")
    x = np.rint(res.x[: 2 * nk * nb]).astype(np.int64)
    billed = x[: nk * nb].reshape(nk, nb)
    shortfall = float(res.x[2 * nk * nb:].sum())
    gap = float(getattr(res, "mip_gap", 0.0) or 0.0)
    status = "optimal" if res.status == 0 else f"time limit ({res.message})"
    return Schedule(
        bucket_s=bucket_s, kinds=kinds, prices=tuple(o.price_per_hour_usd for o in offers),
        billed=billed, need=dem.need, lead_buckets=lead, cost_usd=float(c[: 2 * nk * nb] @ x), status=status,
        gap=gap, wall_s=wall, shortfall_worker_buckets=shortfall, notes=dem.notes,
    )


def capacity_bound(scenario: Any, workload: Any) -> dict[str, float]:
    """The capacity lower bound: worker-hours of work at the fastest per-token cost
    (:func:`sim.bench.demand.bound_work_s`) × the worker-hour price, least over the shapes
    the deployment's workers take (initial and scale-up, on-demand and spot)."""
    cost, hours, price = bound_cost_usd(scenario, workload)
    return {"work_worker_hours": hours, "price_per_hour_usd": price, "cost_usd": cost}
