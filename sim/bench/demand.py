"""SLO-feasible demand per time bucket, worker offers and lead times, for the hindsight optimum.

A request of ``isl`` prompt and ``osl`` output tokens costs ``w = isl / P + osl / D``
worker-seconds at full batch (:func:`sim.policies.capacity.full_batch`). A worker loaded to
utilisation u of that rate still meets the SLO up to some u*; u* is found on the service model
itself: one worker, arrivals at rate r with the trace's token lengths resampled and its
inter-arrival gaps inside a bucket rescaled to mean 1/r (:func:`unit_gaps`: the burstiness
within a minute, which the per-bucket need cannot see), bisection on r for the highest rate whose SLO attainment (DESIGN §6) is at least
``attainment`` (default 0.95), then u* = r × mean(w). Bucket b then needs
``sum_{r in b} w_r / bucket_s / u*`` ready workers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from sim.bench.kinds import Kind, fleet_kinds, shape_label, spot_capacity
from sim.bench.kinds import lead_time_s as kind_lead_time_s
from sim.policies.capacity import (
    WorkerCapacity,
    full_batch,
    queueing,
    scale_up_shape,
    worker_profile,
)


@dataclass(frozen=True)
class Demand:
    """Per-bucket need (ready workers, fractional) and the facts it was derived from.

    ``need`` counts workers of the reference kind (the on-demand scale-up shape); with
    ``kinds`` given, ``need_by_kind[k]`` is the need in workers of kind k alone and
    ``lead_s_by_kind[k]`` its cold start. Without ``kinds`` the MILP buys the scale-up shape
    (on-demand, and spot when allowed) against ``need`` with lead ``lead_s``.
    """

    bucket_s: float
    need: np.ndarray  # (buckets,)
    utilisation: float  # u*: the SLO-feasible share of full-batch throughput (reference kind)
    min_work_s: float  # worker-seconds no schedule goes below (the capacity bound)
    lead_s: float  # median cold start of a new worker (reference kind)
    max_workers: int
    notes: tuple[str, ...] = ()
    kinds: tuple[Kind, ...] = ()
    need_by_kind: np.ndarray | None = None  # (kinds, buckets)
    lead_s_by_kind: tuple[float, ...] = ()
    utilisation_by_kind: tuple[float, ...] = ()


@dataclass(frozen=True)
class Offer:
    """One kind of worker the MILP may buy: its price and, for traced spot, capacity per bucket."""

    kind: str
    price_per_hour_usd: float
    capacity: np.ndarray | None = None


def _capacity(profile: Any, scenario: Any, isl: float, osl: float) -> WorkerCapacity:
    if profile is None:
        return queueing(float(scenario.serving.mean_s), int(scenario.serving.max_batch))
    return full_batch(profile, max(isl, 1.0), max(osl, 1.0), int(scenario.serving.max_batch))


def work_s(scenario: Any, workload: Any) -> np.ndarray:
    """Worker-seconds per request at full batch on the scale-up shape (mean lengths set the
    batch size)."""
    return work_s_on(worker_profile(scenario), scenario, workload)


def work_s_on(profile: Any, scenario: Any, workload: Any) -> np.ndarray:
    """Worker-seconds per request at full batch on a worker of ``profile`` (None: the plain
    queueing models), shape (requests,)."""
    isl = workload.prompt_tokens.astype(np.float64)
    osl = workload.output_tokens.astype(np.float64)
    cap = _capacity(profile, scenario, float(isl.mean()) if len(isl) else 1.0,
                    float(osl.mean()) if len(osl) else 1.0)
    return cap.per_request_s + isl / cap.prefill_tokens_per_s + osl / cap.decode_tokens_per_s


def bound_work_s(scenario: Any, workload: Any) -> float:
    """Worker-seconds of the scale-up shape no schedule can go below: per request its prefill (a·isl + c·isl²) and
    each decode step's own share at the largest batch (base / max_batch + per-sequence +
    per-context-token × its own context, isl + (osl − 1) / 2 on average over its steps).

    Under the service model's iteration time (decode step + prefills) a worker's busy time is
    at least this sum over the requests it serves; the shared per-iteration prefill base is left
    out, so the sum stays a lower bound. Queueing models: mean_s / max_batch per request.
    """
    return _bound_work_s(worker_profile(scenario), scenario, workload)


def _bound_work_s(profile: Any, scenario: Any, workload: Any) -> float:
    isl = workload.prompt_tokens.astype(np.float64)
    osl = workload.output_tokens.astype(np.float64)
    mb = int(scenario.serving.max_batch)
    if profile is None:
        return float(len(isl) * float(scenario.serving.mean_s) / mb)
    p = profile
    prefill = p.prefill_per_token_s * isl + p.prefill_per_token2_s * isl * isl
    step = p.decode_base_s / mb + p.decode_per_seq_s + p.decode_per_ctx_token_s * (
        isl + np.maximum(osl - 1, 0) / 2)
    return float((prefill + osl * step).sum())


def one_worker(scenario: Any, shape: Any = None) -> Any:
    """``scenario`` as one warm on-demand worker of ``shape`` (default: the scale-up shape)
    under the fixed policy, no updates."""
    dep = scenario.deployment
    shape = scale_up_shape(scenario) if shape is None else shape
    update: dict[str, Any] = {"min_workers": 1}
    if shape is not None and not shape.on_prem:
        # probe the worker the autoscaler would add, not necessarily the initial shape
        update |= {"initial_workers_gpu": shape.gpu, "initial_workers_gpu_num": shape.gpus,
                   "instance_types": [], "use_on_prem": False}
        dep = dep.model_copy(update={"cloud_providers": [shape.cloud]})
    iwc = dep.initial_worker_config.model_copy(update=update)
    dep = dep.model_copy(update={"initial_worker_config": iwc, "allow_spot_instances": False})
    asc = scenario.autoscaler.model_copy(update={"policy": "fixed", "params": {"workers": 1}})
    sim = scenario.sim.model_copy(update={"horizon_s": None, "warmup_s": 0.0, "start": "warm"})
    return scenario.model_copy(update={"deployment": dep, "autoscaler": asc, "updates": [],
                                       "sim": sim})


def unit_gaps(workload: Any, n: int, rng: Any, bucket_s: float = 60.0) -> np.ndarray:
    """``n`` inter-arrival gaps of mean 1 with the trace's own burstiness inside a bucket.

    Each gap between consecutive arrivals in the same ``bucket_s`` bucket is divided by that
    bucket's mean gap, so the rate changes between buckets (which the per-bucket need already
    follows) are taken out and the clustering within a bucket is kept; a contiguous run of
    ``n`` of them (from a random start, wrapping) keeps their order. A Poisson workload gives
    exponential gaps; fewer than 100 such gaps falls back to exponential ones.
    """
    t = np.asarray(workload.arrival_s, dtype=np.float64)
    if len(t) > 1:
        b = (t // bucket_s).astype(np.int64)
        same = b[1:] == b[:-1]
        g = np.diff(t)[same]
        gb = b[1:][same]
        if len(g) >= 100:
            total = np.bincount(gb, weights=g)
            count = np.bincount(gb)
            mean = np.divide(total, count, out=np.zeros_like(total), where=count > 0)[gb]
            ok = mean > 0
            u = g[ok] / mean[ok]
            if len(u) >= 100:
                start = int(rng.integers(0, len(u)))
                return np.resize(np.roll(u, -start), n)
    return rng.exponential(1.0, size=n)


def slo_utilisation(scenario: Any, workload: Any, *, attainment: float = 0.95,
                    requests: int = 2000, steps: int = 7, seed: int = 0,
                    shape: Any = None, bucket_s: float = 60.0) -> float:
    """u*: the highest share of full-batch throughput at which one worker of ``shape``
    (default: the scale-up shape) keeps SLO attainment >= ``attainment`` (bisection over
    rates, arrivals with the trace's own within-bucket burstiness, :func:`unit_gaps`; see the
    module docstring).

    Returns a small floor (0.05) when even light load misses the SLO.
    """
    from sim.run import simulate
    from sim.workload.workload import Workload

    shape = scale_up_shape(scenario) if shape is None else shape
    w = work_s_on(None if shape is None else shape.profile, scenario, workload)
    mean_w = float(w.mean()) if len(w) else 1.0
    one = one_worker(scenario, shape)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(workload.prompt_tokens), size=requests) if len(w) else None
    gaps = unit_gaps(workload, requests, rng, bucket_s)

    def ok(u: float) -> bool:
        rate = u / mean_w
        arrivals = np.cumsum(gaps) / rate
        arrivals -= arrivals[0]
        wl = Workload(arrivals, workload.prompt_tokens[idx].astype(np.int64),
                      workload.output_tokens[idx].astype(np.int64), "slo-capacity probe")
        s = simulate(one, seed=seed, workload=wl).summary
        return float(s["slo"]["attainment"]) >= attainment

    lo, hi = 0.05, 1.6  # u* can pass 1: the full-batch rate uses the mean context
    if not ok(lo):
        return lo
    for _ in range(steps):
        mid = (lo + hi) / 2
        if ok(mid):
            lo = mid
        else:
            hi = mid
    return lo


def shape_utilisations(scenario: Any, workload: Any, bucket_s: float = 60.0,
                       **probe: Any) -> dict[str, float]:
    """u* of every distinct worker shape the hindsight MILP may hold (key ``<gpus>x<gpu>``,
    :func:`sim.bench.kinds.shape_label`), one bisection per shape."""
    out: dict[str, float] = {}
    for k in fleet_kinds(scenario, 1, bucket_s):
        if k.label not in out:
            out[k.label] = slo_utilisation(scenario, workload, shape=k.shape, **probe)
    return out


def lead_time_s(scenario: Any, quantile: float = 0.5, draws: int = 201) -> float:
    """The ``quantile`` of a new worker's cold start (provisioning + loading), sampled."""
    from sim.fleet.model import FleetModel
    from sim.rng import Streams

    fleet = FleetModel(scenario, Streams(12345))
    shape = fleet.place(scenario.deployment, initial=False, on_demand_workers=0, peek=True)
    if shape is None:
        return 0.0
    return kind_lead_time_s(scenario, shape, quantile, draws)


def bucket_demand(scenario: Any, workload: Any, bucket_s: float, *,
                  utilisation: float | None = None,
                  utilisations: Mapping[str, float] | None = None) -> Demand:
    """Per-bucket need of ready workers over [0, horizon), per kind of worker (see the module
    docstring and :mod:`sim.bench.kinds`).

    ``utilisations`` gives u* per shape label, ``utilisation`` for every shape it does not
    name; a shape named by neither is probed (:func:`slo_utilisation`).
    """
    horizon = scenario.sim.horizon_s or (
        float(workload.arrival_s[-1]) + 1.0 if len(workload.arrival_s) else 1.0)
    nb = max(math.ceil(horizon / bucket_s - 1e-9), 1)
    b = np.minimum((workload.arrival_s // bucket_s).astype(np.int64), nb - 1)
    kinds = tuple(fleet_kinds(scenario, nb, bucket_s))
    ref_shape = scale_up_shape(scenario)
    ref = next((i for i, k in enumerate(kinds)
                if ref_shape is not None and k.label == shape_label(ref_shape) and k.buyable
                and not k.shape.spot), next((i for i, k in enumerate(kinds) if k.buyable), 0))
    given = dict(utilisations or {})
    us: dict[str, float] = {}
    needs, leads, notes = [], [], []
    for k in kinds:
        if k.label not in us:
            u = given.get(k.label, utilisation)
            us[k.label] = u if u is not None else slo_utilisation(scenario, workload, shape=k.shape)
            notes.append(f"{k.label}: SLO-feasible utilisation u* = {us[k.label]:.3f} of "
                         "full-batch throughput (one-worker bisection)")
        w = work_s_on(k.shape.profile, scenario, workload)
        needs.append(np.bincount(b, weights=w, minlength=nb)[:nb] / bucket_s / us[k.label])
        leads.append(kind_lead_time_s(scenario, k.shape) if k.buyable else 0.0)
    need_by_kind = np.array(needs)
    return Demand(
        bucket_s=bucket_s, need=need_by_kind[ref], utilisation=us[kinds[ref].label],
        min_work_s=bound_work_s(scenario, workload), lead_s=leads[ref],
        max_workers=int(scenario.autoscaler.max_workers), notes=tuple(notes), kinds=kinds,
        need_by_kind=need_by_kind, lead_s_by_kind=tuple(leads),
        utilisation_by_kind=tuple(us[k.label] for k in kinds),
    )


def worker_offers(scenario: Any, buckets: int, bucket_s: float) -> list[Offer]:
    """The scale-up shape on-demand, and spot when allowed (capacity per bucket from the trace
    when given): what the MILP buys when no kinds are given."""
    from sim.fleet.model import FleetModel
    from sim.rng import Streams

    fleet = FleetModel(scenario, Streams(0))
    dep = scenario.deployment
    od = fleet.place(dep, initial=False, on_demand_workers=0, peek=True, allow_spot=False)
    if od is None:
        raise RuntimeError("no worker can be placed for this deployment")
    offers = [Offer("on_demand", od.price_per_hour_usd)]
    if dep.allow_spot_instances:
        spot = fleet.place(dep, initial=False, on_demand_workers=1 << 20, peek=True)
        if spot is not None and spot.spot:
            offers.append(Offer("spot", spot.price_per_hour_usd,
                                spot_capacity(fleet, buckets, bucket_s)))
    return offers


def bound_cost_usd(scenario: Any, workload: Any) -> tuple[float, float, float]:
    """(USD, worker-hours, USD per worker-hour) of the cheapest way to do the work: the least,
    over the initial shape and the scale-up shape (each at its cheapest price, spot when
    allowed), of :func:`bound_work_s` on that shape's profile × that price."""
    from sim.fleet.model import FleetModel
    from sim.rng import Streams

    fleet = FleetModel(scenario, Streams(0))
    dep = scenario.deployment
    best = (math.inf, math.nan, math.nan)
    for initial in (True, False):
        shapes = [fleet.place(dep, initial=initial, on_demand_workers=0, peek=True,
                              allow_spot=False)]
        if dep.allow_spot_instances:
            shapes.append(fleet.place(dep, initial=initial, on_demand_workers=1 << 20, peek=True))
        for shape in shapes:
            if shape is None:
                continue
            hours = _bound_work_s(shape.profile, scenario, workload) / 3600.0
            cost = hours * shape.price_per_hour_usd
            if cost < best[0]:
                best = (cost, hours, shape.price_per_hour_usd)
    return best
