"""The hindsight optimum: the cheapest worker schedule that serves a known trace within the SLO.

Knowing every arrival in advance, split the run into buckets of ``bucket_s`` seconds. The
fleet holds kinds of worker k (:mod:`sim.bench.kinds`: the warm initial fleet's shape, on-prem,
cloud on-demand, spot), each with its price, cold-start lead l_k buckets and SLO-feasible
capacity; bucket b needs ``need_b`` ready workers of the reference kind (the on-demand
scale-up shape), and one worker of kind k counts as ``c[k,b] = need_b / need[k,b]`` of them
(``need[k,b]``: the bucket's need in kind-k workers alone, :mod:`sim.bench.demand`). Solve, as a
MILP with HiGHS (``scipy.optimize.milp``), for integers y[k,b] workers billed and z[k,b] workers
started:

    minimise   sum_kb price_k * bucket_h * y[k,b]
    subject to z[k,b] >= y[k,b] - y[k,b-1]                  (y[k,-1] = the warm initial fleet)
               sum_k c[k,b] (y[k,b] - sum_{j=b-l_k+1..b} z[k,j]) + s_b >= need_b
                                     (a started worker serves after its cold start; s_b >= 0 is
                                      a shortfall priced at 1000x the dearest worker-hour)
               y[k,b] >= sum_{j=b-m+1..b} z[k,j]            (minimum billing: m buckets)
               z[k,b] = 0 for the initial shape when no scale-up gets it (keep or retire only)
               y[k,b] <= spot capacity in bucket b           (when a capacity trace is given)
               y[k,b] <= on-prem room                        (on-prem nodes' free GPUs)
               sum_k y[k,b] <= max_workers

l_k is the median cold start of kind k (provisioning + image pull + weights + engine start)
rounded up to buckets; m is ``fleet.billing_granularity_s`` in buckets (at least 1). Spot
preemptions by a hazard model are not in the MILP (it knows capacity, not a random clock).

This is the optimum of a bucketed fluid model, not a bound on the simulator: replaying it
(``policy: hindsight``) shows the latency it really gets. The replay sets the worker count per
bucket; the engine places each new worker (on-prem first, spot above the on-demand base) and
drains the dearest first, which is the MILP's choice whenever a kind is both dearer per hour
and no cheaper per unit of SLO-feasible throughput. Where the engine would place or drain
otherwise, the replay's fleet differs from the plan (``Schedule.notes`` says so).
The simple capacity bound, :func:`capacity_bound`, is a bound: every request's prefill and
decode tokens at the worker's fastest per-token cost (full batch), priced at the cheapest
worker-hour, least over the shapes the deployment's workers take.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sim.bench.demand import Demand, bound_cost_usd, bucket_demand, worker_offers
from sim.bench.kinds import lead_buckets

SHORTFALL_PENALTY = 1000.0  # x the dearest worker-hour, per worker-bucket of unmet need


@dataclass(frozen=True)
class Schedule:
    """A solved schedule: billed workers per kind per bucket, and how the solve went."""

    bucket_s: float
    kinds: tuple[str, ...]  # kind names (sim.bench.kinds), e.g. "on_demand", "spot"
    prices: tuple[float, ...]  # USD per worker-hour, per kind
    billed: np.ndarray  # (kinds, buckets) int
    need: np.ndarray  # (buckets,) ready workers needed (reference kind)
    lead_buckets: int  # of the reference kind
    cost_usd: float
    status: str
    gap: float  # relative MIP gap reported by HiGHS (0 when proven optimal)
    wall_s: float
    shortfall_worker_buckets: float = 0.0  # need no schedule could meet (cold start, max_workers)
    notes: tuple[str, ...] = field(default=())
    time_limit_s: float = math.nan
    shapes: tuple[str, ...] = ()  # "<gpus>x<gpu>" per kind
    lead_buckets_by_kind: tuple[int, ...] = ()

    def workers_at(self, t: float) -> int:
        """Workers billed (requested, starting or ready) in the bucket holding ``t``."""
        b = min(max(int(t // self.bucket_s), 0), self.billed.shape[1] - 1)
        return int(self.billed[:, b].sum())

    def summary(self) -> dict[str, Any]:
        """JSON-able facts of the solve."""
        hours = (self.billed.sum(axis=1) * self.bucket_s / 3600.0).tolist()
        return {
            "cost_usd": self.cost_usd, "status": self.status, "mip_gap": self.gap,
            "time_limit_s": self.time_limit_s,
            "wall_s": self.wall_s, "shortfall_worker_buckets": self.shortfall_worker_buckets,
            "bucket_s": self.bucket_s, "lead_buckets": self.lead_buckets,
            "kinds": list(self.kinds), "shapes": list(self.shapes),
            "prices_per_hour_usd": list(self.prices), "worker_hours_by_kind": hours,
            "lead_buckets_by_kind": list(self.lead_buckets_by_kind),
            "max_workers": int(self.billed.sum(axis=0).max()) if self.billed.size else 0,
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class _Model:
    """The MILP's per-kind data (see the module docstring)."""

    names: tuple[str, ...]
    shapes: tuple[str, ...]
    prices: np.ndarray  # (K,)
    coef: np.ndarray  # (K, B) reference workers per worker of kind k
    lead: tuple[int, ...]
    init: tuple[int, ...]
    buyable: tuple[bool, ...]
    upper: np.ndarray  # (K, B) most workers of kind k


def _model(scenario: Any, dem: Demand, nb: int, bucket_s: float) -> _Model:
    """Kinds, coefficients, leads and bounds from the demand (or, without kinds, the
    scale-up shape's on-demand and spot offers, as every coefficient 1)."""
    cap = float(dem.max_workers)
    if not dem.kinds or dem.need_by_kind is None:
        offers = worker_offers(scenario, nb, bucket_s)
        init = [0] * len(offers)
        if scenario.sim.start != "cold":
            init[0] = int(scenario.deployment.initial_worker_config.min_workers)
        upper = np.full((len(offers), nb), cap)
        for k, o in enumerate(offers):
            if o.capacity is not None:
                upper[k] = np.minimum(upper[k], o.capacity)
        return _Model(tuple(o.kind for o in offers), tuple("" for _ in offers),
                      np.array([o.price_per_hour_usd for o in offers]), np.ones((len(offers), nb)),
                      tuple(lead_buckets(dem.lead_s, bucket_s) for _ in offers), tuple(init),
                      tuple(True for _ in offers), upper)
    need_k = np.asarray(dem.need_by_kind, dtype=np.float64)
    ref = np.asarray(dem.need, dtype=np.float64)
    coef = np.ones_like(need_k)
    for k in range(len(dem.kinds)):
        # Buckets without work constrain nothing; their coefficient is the run's ratio.
        tot = float(need_k[k].sum())
        whole = float(ref.sum()) / tot if tot > 0 else 1.0
        with np.errstate(divide="ignore", invalid="ignore"):
            coef[k] = np.where(need_k[k] > 0, ref / need_k[k], whole)
    upper = np.full((len(dem.kinds), nb), cap)
    for k, kind in enumerate(dem.kinds):
        if kind.capacity is not None:
            upper[k] = np.minimum(upper[k], kind.capacity[:nb])
        if kind.cap is not None:
            upper[k] = np.minimum(upper[k], float(kind.cap))
        if not kind.buyable:
            upper[k] = np.minimum(upper[k], float(kind.initial))
    return _Model(
        tuple(k.name for k in dem.kinds), tuple(k.label for k in dem.kinds),
        np.array([k.price_per_hour_usd for k in dem.kinds]), coef,
        tuple(lead_buckets(x, bucket_s) for x in dem.lead_s_by_kind),
        tuple(k.initial for k in dem.kinds), tuple(k.buyable for k in dem.kinds), upper)


def solve(scenario: Any, workload: Any, *, bucket_s: float = 60.0, time_limit_s: float = 30.0,
          mip_rel_gap: float = 1e-4, demand: Demand | None = None) -> Schedule:
    """The hindsight-optimal schedule for ``workload`` under ``scenario``'s world.

    Need that no schedule can meet (before the first cold start completes, above max_workers)
    becomes a priced shortfall, reported in ``shortfall_worker_buckets`` (reference workers).
    Raises RuntimeError when HiGHS returns no solution within the time limit.
    """
    from scipy.optimize import Bounds, LinearConstraint, milp
    from scipy.sparse import coo_matrix

    dem = demand if demand is not None else bucket_demand(scenario, workload, bucket_s)
    need = np.maximum(np.asarray(dem.need, dtype=np.float64) - 1e-9, 0.0)
    nb = len(need)
    md = _model(scenario, dem, nb, bucket_s)
    nk = len(md.names)
    m = max(math.ceil(float(scenario.fleet.billing_granularity_s) / bucket_s - 1e-9), 1)
    nv = 2 * nk * nb + nb  # y then z (kind-major), then the shortfall of each bucket

    def y(k: int, b: int) -> int:
        return k * nb + b

    def z(k: int, b: int) -> int:
        return nk * nb + k * nb + b

    def short(b: int) -> int:
        return 2 * nk * nb + b

    ri: list[int] = []
    ci: list[int] = []
    vals: list[float] = []
    lo: list[float] = []
    hi: list[float] = []

    def row(entries: dict[int, float], row_lo: float, row_hi: float) -> None:
        i = len(lo)
        for j, v in entries.items():
            ri.append(i)
            ci.append(j)
            vals.append(v)
        lo.append(row_lo)
        hi.append(row_hi)

    for k in range(nk):
        for b in range(nb):
            # z[k,b] - y[k,b] + y[k,b-1] >= 0 (or >= -init at b = 0)
            r = {z(k, b): 1.0, y(k, b): -1.0}
            if b > 0:
                r[y(k, b - 1)] = 1.0
            row(r, -float(md.init[k]) if b == 0 else 0.0, math.inf)
            if md.buyable[k]:
                # minimum billing: y[k,b] - sum z[k, b-m+1..b] >= 0
                r = {y(k, b): 1.0}
                for j in range(max(0, b - m + 1), b + 1):
                    r[z(k, j)] = r.get(z(k, j), 0.0) - 1.0
                row(r, 0.0, math.inf)
    for b in range(nb):
        r = {short(b): 1.0}
        for k in range(nk):
            cf = float(md.coef[k, b])
            r[y(k, b)] = cf
            for j in range(max(0, b - md.lead[k] + 1), b + 1):
                r[z(k, j)] = r.get(z(k, j), 0.0) - cf
        row(r, float(need[b]), math.inf)
        row({y(k, b): 1.0 for k in range(nk)}, 0.0, float(dem.max_workers))
    a = coo_matrix((vals, (ri, ci)), shape=(len(lo), nv)).tocsr()
    var_hi = np.full(nv, float(dem.max_workers))
    var_hi[2 * nk * nb:] = np.inf
    for k in range(nk):
        var_hi[k * nb:(k + 1) * nb] = md.upper[k]
        if not md.buyable[k]:
            var_hi[nk * nb + k * nb: nk * nb + (k + 1) * nb] = 0.0
    bucket_h = bucket_s / 3600.0
    c = np.zeros(nv)
    for k in range(nk):
        c[k * nb:(k + 1) * nb] = md.prices[k] * bucket_h
    # Demand no schedule can meet (before the first cold start can finish, or above
    # max_workers) is a shortfall, priced far above any worker so it is used only when forced.
    c[2 * nk * nb:] = SHORTFALL_PENALTY * float(md.prices.max()) * bucket_h
    integrality = np.ones(nv)
    integrality[2 * nk * nb:] = 0
    t0 = time.perf_counter()
    res = milp(
        c, constraints=LinearConstraint(a, np.array(lo), np.array(hi)), integrality=integrality,
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
    ref = next((k for k in range(nk) if md.buyable[k]), 0)
    return Schedule(
        bucket_s=bucket_s, kinds=md.names, prices=tuple(float(p) for p in md.prices),
        billed=billed, need=dem.need, lead_buckets=md.lead[ref],
        cost_usd=float(c[: 2 * nk * nb] @ x), status=status, gap=gap, wall_s=wall,
        shortfall_worker_buckets=shortfall, notes=dem.notes, time_limit_s=time_limit_s,
        shapes=md.shapes, lead_buckets_by_kind=md.lead,
    )


def capacity_bound(scenario: Any, workload: Any) -> dict[str, float]:
    """The capacity lower bound: worker-hours of work at the fastest per-token cost
    (:func:`sim.bench.demand.bound_work_s`) × the worker-hour price, least over the shapes
    the deployment's workers take (initial and scale-up, on-demand and spot)."""
    cost, hours, price = bound_cost_usd(scenario, workload)
    return {"work_worker_hours": hours, "price_per_hour_usd": price, "cost_usd": cost}
