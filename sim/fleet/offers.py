"""Choosing the offer a new worker runs on: cheapest feasible offer, or the cheapest zone for a fixed shape.

``use_same_gpus_when_scaling: false`` -> :func:`ranked_offers` (any GPU type and listed
instance that holds the model and meets the SLO alone, in the allowed clouds, spot when
allowed, ranked by price per unit of rated throughput at the SLO);
``instance_types`` -> :func:`cheapest_offer` (the cheapest per hour of those types).
``use_same_gpus_when_scaling: true`` -> :func:`shape_offer` (the initial GPU type x count,
placed in the cheapest zone; a count no instance lists is priced by the catalog's shape rule).

Tie-break (both functions), so a choice never depends on table order: lower hourly price, then
on-demand before spot (same price, no preemption risk), then fewer GPUs, then cloud, region,
zone and instance type in alphabetical order.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Sequence, Set
from dataclasses import dataclass, replace

from sim.errors import ConfigError
from sim.fleet.catalog import Catalog, Offer, canonical_cloud, quote_in_zone
from sim.hardware import canonical_gpu, gpu_spec

Fits = Callable[[str, int], bool]
# (gpu, gpus) -> (rated throughput at the SLO, or None when a lone request misses it; why)
Rate = Callable[[str, int], tuple[float | None, str]]


@dataclass(frozen=True)
class ChosenOffer:
    """The offer a worker is placed on, whether it runs on spot, and its hourly price (USD)."""

    offer: Offer
    spot: bool
    usd_per_h: float
    derived_from: Offer | None = None  # the listed instance a scaled shape was priced from

    def sort_key(self) -> tuple[float, bool, int, str, str, str, str]:
        """The documented tie-break order."""
        o = self.offer
        return (self.usd_per_h, self.spot, o.gpus, o.cloud, o.region, o.zone, o.instance_type)


def fits_memory(weights_gb: float, kv_min_gb: float = 0.0, utilization: float = 0.9) -> Fits:
    """A ``fits(gpu, gpus)`` test: weights plus minimum KV room within ``utilization`` of memory."""
    need = weights_gb + kv_min_gb

    def fits(gpu: str, gpus: int) -> bool:
        """True when ``gpus`` GPUs of type ``gpu`` hold the model."""
        return gpu_spec(gpu).memory_gb * gpus * utilization >= need

    return fits


def spot_zone_rule(choices: list[ChosenOffer], rule: str) -> list[ChosenOffer]:
    """Keep the on-demand choices and, per instance type, the spot choice ``rule`` names.

    ``cheapest`` keeps every spot zone (the cheapest wins later); ``median`` keeps the zone
    at the median spot price of that instance type (the lower middle of an even count), so one
    outlier zone does not decide the answer; any other value is a zone id and keeps only
    that zone's spot price.
    """
    if rule == "cheapest":
        return choices
    out = [c for c in choices if not c.spot]
    groups: dict[tuple[str, str], list[ChosenOffer]] = defaultdict(list)
    for c in choices:
        if c.spot:
            groups[(c.offer.cloud, c.offer.instance_type)].append(c)
    for group in groups.values():
        if rule == "median":
            ordered = sorted(group, key=ChosenOffer.sort_key)
            out.append(ordered[(len(ordered) - 1) // 2])
        else:
            out.extend(c for c in group if c.offer.zone == rule)
    return out


def _options(offer: Offer, allow_spot: bool) -> list[ChosenOffer]:
    """The on-demand choice and, when allowed and priced, the spot choice of one offer."""
    out = [ChosenOffer(offer, False, offer.on_demand_usd_per_h)]
    if allow_spot and offer.spot_usd_per_h is not None:
        out.append(ChosenOffer(offer, True, offer.spot_usd_per_h))
    return out


def cheapest_offer(
    catalog: Catalog,
    *,
    fits: Fits,
    clouds: Sequence[str] = (),
    instance_types: Sequence[str] = (),
    allow_spot: bool,
    exclude_zones: Set[str] = frozenset(),
) -> ChosenOffer:
    """The cheapest listed offer per hour that ``fits`` the model (empty filters = all).

    Only listed instances are candidates (a heterogeneous fleet rents real instance types);
    ``exclude_zones`` removes zones by name, e.g. ones whose spot capacity is exhausted.
    """
    pool = catalog.offers(clouds=clouds or None, instance_types=instance_types or None)
    pool = tuple(o for o in pool if o.zone not in exclude_zones)
    scope = _scope(clouds, instance_types, exclude_zones)
    if not pool:
        raise ConfigError(f"no offer{scope}", source=catalog.source)
    feasible = [o for o in pool if fits(o.gpu, o.gpus)]
    if not feasible:
        biggest = max(pool, key=lambda o: (gpu_spec(o.gpu).memory_gb * o.gpus, o.instance_type))
        raise ConfigError(
            f"no offer{scope} holds the model; the largest is {biggest.instance_type} "
            f"({biggest.gpus}x{biggest.gpu}, {gpu_spec(biggest.gpu).memory_gb * biggest.gpus:g} GB)",
            source=catalog.source,
        )
    return min((c for o in feasible for c in _options(o, allow_spot)), key=ChosenOffer.sort_key)


@dataclass(frozen=True)
class RankedOffers:
    """Offers by price per unit of rated throughput (best first), and the ones left out."""

    ranked: list[tuple[ChosenOffer, float]]  # (choice, rated throughput), best first
    infeasible: list[tuple[Offer, str]]  # hold the model but miss the SLO alone, with why
    slo_met: bool = True  # False: no offer meets the SLO alone; ranked by hourly price instead

    @staticmethod
    def cost_per_unit(choice: ChosenOffer, rate: float) -> float:
        """USD per hour per unit of rated throughput."""
        return choice.usd_per_h / rate if rate > 0 else math.inf


def ranked_offers(
    catalog: Catalog,
    *,
    fits: Fits,
    rate: Rate,
    clouds: Sequence[str] = (),
    allow_spot: bool,
    exclude_zones: Set[str] = frozenset(),
    spot_zone: str = "cheapest",
) -> RankedOffers:
    """Listed offers that hold the model, ranked by USD/h per unit of ``rate`` (best first).

    Offers whose ``rate`` is None (a lone request misses the SLO on them) are left out and
    reported; when every offer is left out, they are ranked anyway (by their rate where one
    was computed, else by hourly price), so a deployment whose SLO no offer meets still
    scales. Ties break by :meth:`ChosenOffer.sort_key`.
    """
    pool = catalog.offers(clouds=clouds or None)
    pool = tuple(o for o in pool if o.zone not in exclude_zones)
    if not pool:
        raise ConfigError(f"no offer{_scope(clouds, (), exclude_zones)}", source=catalog.source)
    fitting = [o for o in pool if fits(o.gpu, o.gpus)]
    if not fitting:
        return RankedOffers([(cheapest_offer(
            catalog, fits=fits, clouds=clouds, allow_spot=allow_spot, exclude_zones=exclude_zones,
        ), 1.0)], [], slo_met=False)
    rated = [(o, *rate(o.gpu, o.gpus)) for o in fitting]
    feasible = [(o, r) for o, r, _ in rated if r is not None]
    infeasible = [(o, why) for o, r, why in rated if r is None]
    slo_met = bool(feasible)
    if not slo_met:  # nothing meets the SLO alone: the best of the rest, by hourly price
        feasible = [(o, 1.0) for o, _ in infeasible]
    rates = {id(o): r for o, r in feasible}
    kept = spot_zone_rule([c for o, _ in feasible for c in _options(o, allow_spot)], spot_zone)
    choices = [(c, rates[id(c.offer)]) for c in kept]
    choices.sort(key=lambda cr: (RankedOffers.cost_per_unit(*cr), *cr[0].sort_key()))
    return RankedOffers(choices, infeasible, slo_met)


def shape_offer(
    catalog: Catalog,
    gpu: str,
    gpus: int,
    clouds: Sequence[str] = (),
    allow_spot: bool = False,
    exclude_zones: Set[str] = frozenset(),
    spot_zone: str = "cheapest",
) -> ChosenOffer:
    """The cheapest zone for a worker of exactly ``gpus`` x ``gpu`` in the allowed clouds.

    Per zone, an instance listing exactly that count is used; otherwise the catalog's shape
    rule prices it from the nearest listed count and the returned offer is a scaled copy
    (instance type ``"<base>[<gpus>/<base gpus>]"``, vCPUs pro rata, ``derived_from`` set).
    """
    name = canonical_gpu(gpu)
    if gpus < 1:
        raise ConfigError(f"GPU count must be >= 1, got {gpus}", source=catalog.source)
    pool = catalog.offers(gpu=name, clouds=clouds or None)
    pool = tuple(o for o in pool if o.zone not in exclude_zones)
    if not pool:
        have = sorted({o.cloud for o in catalog.offers(gpu=name)})
        raise ConfigError(
            f"no {name} offer{_scope(clouds, (), exclude_zones)} "
            f"(clouds with {name}: {', '.join(have) or 'none'})",
            source=catalog.source,
        )
    zones: dict[tuple[str, str, str], list[Offer]] = defaultdict(list)
    for o in pool:
        zones[(o.cloud, o.region, o.zone)].append(o)
    choices: list[ChosenOffer] = []
    for zrows in zones.values():
        for spot in (False, True) if allow_spot else (False,):
            q = quote_in_zone(zrows, gpus, spot)
            if q is not None:
                choices.append(_as_shape(q.base, gpus, spot, q.usd_per_h))
    return min(spot_zone_rule(choices, spot_zone), key=ChosenOffer.sort_key)


def _as_shape(base: Offer, gpus: int, spot: bool, usd_per_h: float) -> ChosenOffer:
    """A choice for ``gpus`` GPUs priced from ``base`` (a scaled copy if the counts differ)."""
    if base.gpus == gpus:
        return ChosenOffer(base, spot, usd_per_h)
    k = gpus / base.gpus
    scaled = replace(
        base,
        instance_type=f"{base.instance_type}[{gpus}/{base.gpus}]",
        gpus=gpus,
        vcpus=base.vcpus * k,
        on_demand_usd_per_h=base.on_demand_usd_per_h * k,
        spot_usd_per_h=None if base.spot_usd_per_h is None else base.spot_usd_per_h * k,
    )
    return ChosenOffer(scaled, spot, usd_per_h, derived_from=base)


def _scope(clouds: Sequence[str], instance_types: Sequence[str], exclude: Set[str]) -> str:
    """Words describing the filters, for error messages."""
    parts = []
    if clouds:
        parts.append(f"clouds {sorted(canonical_cloud(c) for c in clouds)}")
    if instance_types:
        parts.append(f"instance types {sorted(instance_types)}")
    if exclude:
        parts.append(f"outside zones {sorted(exclude)}")
    return " in " + ", ".join(parts) if parts else " in the catalog"
