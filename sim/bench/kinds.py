"""The kinds of worker the hindsight optimum may hold: the warm initial fleet's shape(s) and
the shapes the engine gives a scale-up (on-prem, cloud on-demand, spot), each with its price,
cold-start lead time, SLO-feasible capacity and availability.

The engine, not the policy, picks a new worker's shape (:meth:`sim.fleet.model.FleetModel.place`:
on-prem nodes first while they have room, then the cloud; spot once ``fleet.spot.on_demand_base``
on-demand workers run), and drains the dearest first, cloud before on-prem
(:meth:`sim.engine.pool.Pool.victims`). So the kinds are the shapes it would place:

- ``initial:<shape>``: the ``min_workers`` warm workers at t = 0 (placed as the engine places the
  initial fleet); the MILP may keep or retire them but cannot buy more of them unless a
  scale-up would get the same shape (then they are one kind).
- ``on_prem``: the scale-up shape on the deployment's on-prem nodes, at most the workers their
  free GPUs hold (``fleet.on_prem_gpu_hour_usd`` per GPU-hour).
- ``on_demand``: the cloud scale-up shape (with ``use_same_gpus_when_scaling: false`` the
  cheapest offer per rated throughput), when the deployment may use the cloud.
- ``spot``: the cloud spot shape when ``allow_spot_instances``, its capacity per bucket from the
  spot capacity trace when one is given (the least capacity inside the bucket, summed over zones).
  Without a trace the engine makes every scale-up above ``fleet.spot.on_demand_base`` spot, so
  the on-demand kind is then capped at that base; with a trace on-demand stays open (the
  engine falls back to it when spot capacity runs out).

Each kind's capacity is in its own workers: bucket b holds ``W_k,b`` worker-seconds of that
shape's full-batch work (:func:`sim.bench.demand.work_s_on`), and a worker keeps the SLO up to
``u*_k`` of its full-batch rate (:func:`sim.bench.demand.slo_utilisation`, probed on that shape),
so bucket b needs ``W_k,b / bucket_s / u*_k`` workers of kind k alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Kind:
    """One kind of worker: its shape, price, lead time, warm count and availability."""

    name: str  # "initial:<shape>" | "on_prem" | "on_demand" | "spot"
    shape: Any  # sim.fleet.model.WorkerShape
    price_per_hour_usd: float
    initial: int = 0  # warm workers of this kind at t = 0
    buyable: bool = True  # a scale-up can get this shape
    capacity: np.ndarray | None = None  # (buckets,) most workers of this kind; None = unbounded
    cap: int | None = None  # a constant bound (on-prem room), None = unbounded

    @property
    def label(self) -> str:
        """``<gpus>x<gpu>``: the key of the shape's SLO-feasible utilisation."""
        return shape_label(self.shape)


def shape_label(shape: Any) -> str:
    """``<gpus>x<gpu>`` of a worker shape (its performance profile's key)."""
    return f"{shape.gpus}x{shape.gpu}"


def _key(shape: Any) -> tuple[Any, ...]:
    return (shape.gpu, shape.gpus, shape.cloud, shape.zone, shape.spot, shape.on_prem,
            round(float(shape.price_per_hour_usd), 9))


def fleet_kinds(scenario: Any, buckets: int, bucket_s: float) -> list[Kind]:
    """The kinds of worker of ``scenario`` (see the module docstring), initial ones first.

    Raises RuntimeError when no worker at all can be placed.
    """
    from sim.fleet.model import FleetModel
    from sim.rng import Streams

    fleet = FleetModel(scenario, Streams(0))
    dep = scenario.deployment
    iwc = dep.initial_worker_config
    # The initial fleet, placed one by one as the engine does (claiming on-prem GPUs).
    init: dict[tuple[Any, ...], list[Any]] = {}
    n0 = 0 if scenario.sim.start == "cold" else int(iwc.min_workers)
    od = 0
    for _ in range(n0):
        s = fleet.place(dep, initial=True, on_demand_workers=od)
        if s is None:
            break
        od += int(not s.spot and not s.on_prem)
        init.setdefault(_key(s), [s, 0])[1] += 1
    buy: list[Kind] = []
    if iwc.use_on_prem:
        s = fleet.place(dep, initial=False, on_demand_workers=0, peek=True, allow_spot=False)
        if s is not None and s.on_prem:
            room = fleet.placeable(dep.model_copy(update={"initial_worker_config": iwc.model_copy(
                update={"use_cloudburst": False})}))
            buy.append(Kind("on_prem", s, s.price_per_hour_usd, cap=int(room)))
    if not iwc.use_on_prem or iwc.use_cloudburst:
        cloud = dep.model_copy(update={"initial_worker_config": iwc.model_copy(
            update={"use_on_prem": False})})
        s = fleet.place(cloud, initial=False, on_demand_workers=0, peek=True, allow_spot=False)
        if s is not None:
            buy.append(Kind("on_demand", s, s.price_per_hour_usd))
        if dep.allow_spot_instances:
            s = fleet.place(cloud, initial=False, on_demand_workers=1 << 20, peek=True)
            if s is not None and s.spot:
                cap = spot_capacity(fleet, buckets, bucket_s)
                buy.append(Kind("spot", s, s.price_per_hour_usd, capacity=cap))
                if cap is None and buy[-2].name == "on_demand":
                    # Without a capacity trace every scale-up above the on-demand base is spot:
                    # on-demand only up to the base (SkyServe's base_ondemand_fallback_replicas).
                    od_kind = buy[-2]
                    buy[-2] = Kind(od_kind.name, od_kind.shape, od_kind.price_per_hour_usd,
                                   cap=int(scenario.fleet.spot.on_demand_base))
    if not buy and not init:
        raise RuntimeError("no worker can be placed for this deployment")
    kinds: list[Kind] = []
    for key, (s, n) in init.items():
        same = next((i for i, k in enumerate(buy) if _key(k.shape) == key), None)
        if same is not None:
            k = buy.pop(same)
            cap = None if k.cap is None else k.cap + n  # on-prem: its room plus these
            kinds.append(Kind(k.name, s, k.price_per_hour_usd, n, True, k.capacity, cap))
        else:
            kinds.append(Kind(f"initial:{shape_label(s)}", s, s.price_per_hour_usd, n, False))
    return kinds + buy


def spot_capacity(fleet: Any, buckets: int, bucket_s: float) -> np.ndarray | None:
    """Spot workers available per bucket from the capacity trace (None without a trace)."""
    if fleet.market is None:
        return None
    starts = np.arange(buckets) * bucket_s
    cap = np.zeros(buckets)
    for zone in fleet.market.zones:
        # the least capacity inside each bucket (start and end sampled)
        tr = fleet.market.trace(zone)
        cap += np.minimum(tr.capacity_at_many(starts), tr.capacity_at_many(starts + bucket_s - 1e-6))
    return cap


def lead_time_s(scenario: Any, shape: Any, quantile: float = 0.5, draws: int = 201) -> float:
    """The ``quantile`` of a new worker's cold start on ``shape`` (provisioning + loading)."""
    from sim.fleet.model import FleetModel
    from sim.rng import Streams

    fleet = FleetModel(scenario, Streams(12345))
    warm = bool(scenario.deployment.autoscaling_config.enable_speedup_shared)
    totals = [sum(fleet.cold_start(shape, warm)) for _ in range(draws)]
    return float(np.quantile(totals, quantile)) if totals else 0.0


def lead_buckets(lead_s: float, bucket_s: float) -> int:
    """A lead time in whole buckets, rounded up."""
    return max(math.ceil(lead_s / bucket_s - 1e-9), 0)
