"""The offer catalog: cloud instance types with their GPUs and hourly on-demand and spot prices.

The built-in table ``sim/fleet/data/offers.csv`` is derived by ``scripts/derive_catalog.py``
from the SkyPilot catalog extracts in ``../shared/data/gpu_prices`` (source, snapshot note and
anomaly rules in ``offers.meta.json`` beside it and in ``docs/catalog.md``). Users replace it
with their own file (:meth:`Catalog.from_path`) or patch single entries
(:meth:`Catalog.with_overrides`).

Pricing rules of :meth:`Catalog.price_per_hour` (also in docs/catalog.md):

* Shape: an instance with exactly ``gpus`` GPUs of that type is used when listed; otherwise the
  per-GPU price of the nearest listed GPU count (smallest ``|count - gpus|``, ties to the
  smaller count) times ``gpus``, because clouds rent 1/2/4/8-GPU shapes at near-linear prices.
* Zone: with a zone, that zone's price. Otherwise each region's price is the median over its
  zones (on-demand prices are uniform within a region; spot prices differ by zone, and the
  median is what a zone-agnostic request can expect), and the cheapest region (then cloud)
  is taken.
* No row for the GPU at all (or none in the requested cloud/region, or no spot price when
  ``spot=True``) is a :class:`~sim.errors.ConfigError` that says what the catalog does have.
"""

from __future__ import annotations

import csv
import functools
import io
import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from importlib import resources
from pathlib import Path
from typing import Any

from sim.errors import ConfigError
from sim.hardware import canonical_gpu

COLUMNS: tuple[str, ...] = (
    "cloud",
    "region",
    "zone",
    "instance_type",
    "gpu",
    "gpus",
    "vcpus",
    "on_demand_usd_per_h",
    "spot_usd_per_h",
)
BUILTIN_SOURCE = "builtin (sim/fleet/data/offers.csv)"

# Other spellings of the catalog's cloud names (the API spells providers in upper case).
_CLOUD_ALIASES = {
    "AMAZON": "AWS",
    "GOOGLE": "GCP",
    "GOOGLE_CLOUD": "GCP",
    "GCE": "GCP",
    "LAMBDALABS": "LAMBDA",
    "LAMBDA_LABS": "LAMBDA",
    "LAMBDA-LABS": "LAMBDA",
}


def canonical_cloud(name: str) -> str:
    """Upper-case cloud name with common aliases folded (``lambda_labs`` -> ``LAMBDA``)."""
    up = name.strip().upper()
    return _CLOUD_ALIASES.get(up, up)


@dataclass(frozen=True)
class Offer:
    """One rentable instance type in one zone, with its GPUs and hourly prices (USD)."""

    cloud: str
    region: str
    zone: str
    instance_type: str
    gpu: str
    gpus: int
    vcpus: float
    on_demand_usd_per_h: float
    spot_usd_per_h: float | None

    def price(self, spot: bool = False) -> float | None:
        """Hourly price on spot or on-demand; None when ``spot`` and the zone has no spot."""
        return self.spot_usd_per_h if spot else self.on_demand_usd_per_h

    @property
    def key(self) -> tuple[str, str, str]:
        """Identity of the row: (cloud, zone, instance_type)."""
        return (self.cloud, self.zone, self.instance_type)


def _parse_price(value: Any, *, optional: bool, where: str, source: str) -> float | None:
    """A non-negative finite price from a CSV cell or YAML value."""
    if value is None or (isinstance(value, str) and not value.strip()):
        if optional:
            return None
        raise ConfigError(f"{where}: price is required", source=source)
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: {value!r} is not a number", source=source) from None
    if not math.isfinite(x) or x < 0:
        raise ConfigError(f"{where}: price must be a finite number >= 0, got {x}", source=source)
    return x


def offer_from_mapping(row: Mapping[str, Any], *, source: str, where: str) -> Offer:
    """Build an :class:`Offer` from one row of a user or built-in table (validated)."""
    if None in row:  # csv.DictReader files surplus cells under the key None
        raise ConfigError(f"{where}: more cells than header columns", source=source)
    unknown = sorted(str(k) for k in set(row) - set(COLUMNS))
    if unknown:
        raise ConfigError(
            f"{where}: unknown column(s) {unknown}; expected {list(COLUMNS)}", source=source
        )
    missing = [c for c in COLUMNS if c != "spot_usd_per_h" and row.get(c) in (None, "")]
    if missing:
        raise ConfigError(f"{where}: missing {missing}", source=source)
    try:
        gpus = int(float(row["gpus"]))
        vcpus = float(row["vcpus"])
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: gpus and vcpus must be numbers", source=source) from None
    if gpus < 1 or gpus != float(row["gpus"]):
        raise ConfigError(f"{where}: gpus must be a whole number >= 1", source=source)
    if not math.isfinite(vcpus) or vcpus < 0:
        raise ConfigError(f"{where}: vcpus must be a number >= 0", source=source)
    try:
        gpu = canonical_gpu(str(row["gpu"]))
    except ConfigError as e:
        raise ConfigError(f"{where}: {e.detail}", source=source) from None
    on_demand = _parse_price(row["on_demand_usd_per_h"], optional=False, where=where, source=source)
    assert on_demand is not None  # optional=False guarantees a value
    return Offer(
        cloud=canonical_cloud(str(row["cloud"])),
        region=str(row["region"]),
        zone=str(row["zone"]),
        instance_type=str(row["instance_type"]),
        gpu=gpu,
        gpus=gpus,
        vcpus=vcpus,
        on_demand_usd_per_h=on_demand,
        spot_usd_per_h=_parse_price(
            row.get("spot_usd_per_h"), optional=True, where=where, source=source
        ),
    )


def _read_csv_rows(text: str) -> list[dict[str, Any]]:
    """CSV rows as dicts; lines starting with ``#`` are comments."""
    lines = [ln for ln in text.splitlines() if not ln.lstrip().startswith("#")]
    return [dict(r) for r in csv.DictReader(io.StringIO("\n".join(lines)))]


@dataclass(frozen=True)
class Quote:
    """A price for a GPU shape derived from one listed offer (maybe scaled to another count)."""

    base: Offer
    usd_per_h: float


def nearest_count(counts: Iterable[int], gpus: int) -> int:
    """The listed GPU count closest to ``gpus`` (ties go to the smaller count)."""
    return min(counts, key=lambda c: (abs(c - gpus), c))


def quote_in_zone(offers: Sequence[Offer], gpus: int, spot: bool) -> Quote | None:
    """Cheapest price of ``gpus`` GPUs from ``offers`` (one zone, one GPU type) by the shape rule."""
    priced = [o for o in offers if o.price(spot) is not None]
    if not priced:
        return None
    count = nearest_count({o.gpus for o in priced}, gpus)
    best = min(
        (o for o in priced if o.gpus == count),
        key=lambda o: (o.price(spot), o.instance_type),
    )
    price = best.price(spot)
    assert price is not None  # filtered above
    return Quote(best, price / best.gpus * gpus)


class Catalog:
    """An immutable set of offers with price and shape queries."""

    __slots__ = ("_offers", "_by_gpu", "source")

    def __init__(self, offers: Iterable[Offer], *, source: str = "<memory>") -> None:
        """Index ``offers``; a repeated (cloud, zone, instance_type) is a ConfigError."""
        rows = tuple(offers)
        seen: dict[tuple[str, str, str], Offer] = {}
        for o in rows:
            if o.key in seen:
                raise ConfigError(f"duplicate offer {o.key} in the catalog", source=source)
            seen[o.key] = o
        self._offers: tuple[Offer, ...] = rows
        by_gpu: dict[str, list[Offer]] = defaultdict(list)
        for o in rows:
            by_gpu[o.gpu].append(o)
        self._by_gpu: dict[str, tuple[Offer, ...]] = {g: tuple(v) for g, v in by_gpu.items()}
        self.source = source

    # -- construction -------------------------------------------------------------------

    @classmethod
    def builtin(cls) -> Catalog:
        """The shipped catalog (read once, on first use, from the package data)."""
        return _builtin()

    @classmethod
    def from_rows(cls, rows: Iterable[Mapping[str, Any]], *, source: str = "<rows>") -> Catalog:
        """A catalog from mappings with the offers.csv columns."""
        return cls(
            (offer_from_mapping(r, source=source, where=f"row {i}") for i, r in enumerate(rows, 1)),
            source=source,
        )

    @classmethod
    def from_path(cls, path: str | Path) -> Catalog:
        """A user catalog from a CSV or YAML file with the offers.csv columns.

        YAML is either a list of rows or a mapping with an ``offers`` list.
        """
        p = Path(path)
        src = str(p)
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as e:
            raise ConfigError(f"cannot read catalog: {e.strerror}", source=src) from None
        if p.suffix.lower() in (".yaml", ".yml"):
            rows = _yaml_rows(text, src)
        elif p.suffix.lower() == ".csv":
            rows = _read_csv_rows(text)
        else:
            raise ConfigError("catalog must be a .csv, .yaml or .yml file", source=src)
        if not rows:
            raise ConfigError("catalog has no offers", source=src)
        return cls.from_rows(rows, source=src)

    @classmethod
    def load(cls, ref: str | Path | None, *, base_dir: str | Path | None = None) -> Catalog:
        """``builtin`` (or None) -> the shipped catalog; otherwise a path (relative to base_dir)."""
        if ref is None or str(ref) == "builtin":
            return cls.builtin()
        p = Path(ref)
        if base_dir is not None and not p.is_absolute():
            p = Path(base_dir) / p
        return cls.from_path(p)

    def with_overrides(self, rows: Iterable[Mapping[str, Any]]) -> Catalog:
        """A new catalog with user overrides applied in order.

        Each row names ``cloud`` and ``instance_type`` and optionally ``region``/``zone`` to
        select existing offers (all zones when omitted) and gives the columns to replace, e.g.
        ``{cloud: AWS, instance_type: p4d.24xlarge, spot_usd_per_h: 9.5}``; a null
        ``spot_usd_per_h`` removes spot. A row that matches nothing is added as a new offer
        and must then have every column.
        """
        offers = list(self._offers)
        for i, row in enumerate(rows, 1):
            where = f"override {i}"
            unknown = sorted(str(k) for k in set(row) - set(COLUMNS))
            if unknown:
                raise ConfigError(
                    f"{where}: unknown column(s) {unknown}; expected {list(COLUMNS)}",
                    source=self.source,
                )
            if not row.get("cloud") or not row.get("instance_type"):
                raise ConfigError(f"{where}: needs cloud and instance_type", source=self.source)
            cloud = canonical_cloud(str(row["cloud"]))
            sel = [
                j
                for j, o in enumerate(offers)
                if o.cloud == cloud
                and o.instance_type == str(row["instance_type"])
                and (row.get("region") is None or o.region == str(row["region"]))
                and (row.get("zone") is None or o.zone == str(row["zone"]))
            ]
            if not sel:
                offers.append(offer_from_mapping(row, source=self.source, where=where))
                continue
            for j in sel:
                merged = {f.name: getattr(offers[j], f.name) for f in fields(Offer)}
                merged.update(row)
                offers[j] = offer_from_mapping(merged, source=self.source, where=where)
        return Catalog(offers, source=f"{self.source} + overrides")

    # -- queries ------------------------------------------------------------------------

    def __iter__(self) -> Iterator[Offer]:
        """All offers in table order."""
        return iter(self._offers)

    def __len__(self) -> int:
        """Number of offers."""
        return len(self._offers)

    def __repr__(self) -> str:
        """Short description with the source."""
        return f"Catalog({len(self._offers)} offers from {self.source})"

    @property
    def clouds(self) -> tuple[str, ...]:
        """Cloud names present, sorted."""
        return tuple(sorted({o.cloud for o in self._offers}))

    @property
    def gpus(self) -> tuple[str, ...]:
        """GPU types present, sorted."""
        return tuple(sorted(self._by_gpu))

    @property
    def instance_types(self) -> tuple[str, ...]:
        """Instance types present, sorted."""
        return tuple(sorted({o.instance_type for o in self._offers}))

    def _check_clouds(self, clouds: Iterable[str]) -> set[str]:
        """Canonical cloud names; ConfigError naming the known clouds if one is absent."""
        wanted = {canonical_cloud(c) for c in clouds}
        unknown = sorted(wanted - set(self.clouds))
        if unknown:
            raise ConfigError(
                f"cloud(s) {unknown} not in the catalog (has: {', '.join(self.clouds)})",
                source=self.source,
                field="cloud_providers",
            )
        return wanted

    def _check_types(self, instance_types: Iterable[str]) -> set[str]:
        """Instance type names; ConfigError if one is not in the catalog."""
        wanted = set(instance_types)
        unknown = sorted(wanted - set(self.instance_types))
        if unknown:
            raise ConfigError(
                f"instance type(s) {unknown} not in the catalog "
                f"(has: {', '.join(self.instance_types)})",
                source=self.source,
                field="instance_types",
            )
        return wanted

    def _gpu_offers(self, gpu: str) -> tuple[Offer, ...]:
        """Offers of one GPU type; ConfigError if the catalog has none."""
        name = canonical_gpu(gpu)
        rows = self._by_gpu.get(name)
        if not rows:
            raise ConfigError(
                f"no offer with GPU {name!r} in the catalog "
                f"(GPUs with prices: {', '.join(self.gpus)})",
                source=self.source,
            )
        return rows

    def offers(
        self,
        gpu: str | None = None,
        gpus: int | None = None,
        clouds: Iterable[str] | None = None,
        instance_types: Iterable[str] | None = None,
    ) -> tuple[Offer, ...]:
        """Listed offers matching every given filter (None or empty = no filter).

        Unknown clouds and instance types are ConfigErrors (a typo should not silently
        select nothing); a known GPU with no offer gives an empty result.
        """
        rows: Iterable[Offer] = self._offers
        if gpu is not None:
            name = canonical_gpu(gpu)
            rows = self._by_gpu.get(name, ())
        if gpus is not None:
            rows = [o for o in rows if o.gpus == gpus]
        if clouds:
            cs = self._check_clouds(clouds)
            rows = [o for o in rows if o.cloud in cs]
        if instance_types:
            ts = self._check_types(instance_types)
            rows = [o for o in rows if o.instance_type in ts]
        return tuple(rows)

    def price_per_hour(
        self,
        gpu: str,
        gpus: int,
        cloud: str | None = None,
        region: str | None = None,
        spot: bool = False,
        zone: str | None = None,
    ) -> float:
        """Hourly USD price of a worker with ``gpus`` GPUs of type ``gpu`` (module rules)."""
        return self.price_quote(gpu, gpus, cloud=cloud, region=region, spot=spot, zone=zone)[0]

    def price_quote(
        self,
        gpu: str,
        gpus: int,
        cloud: str | None = None,
        region: str | None = None,
        spot: bool = False,
        zone: str | None = None,
    ) -> tuple[float, Offer]:
        """Like :meth:`price_per_hour`, also returning the listed offer the price came from."""
        if gpus < 1:
            raise ConfigError(f"GPU count must be >= 1, got {gpus}", source=self.source)
        rows: Sequence[Offer] = self._gpu_offers(gpu)
        scope = []
        if cloud is not None:
            c = canonical_cloud(cloud)
            rows = [o for o in rows if o.cloud == c]
            scope.append(f"cloud {c}")
        if region is not None:
            rows = [o for o in rows if o.region == region]
            scope.append(f"region {region}")
        if zone is not None:
            rows = [o for o in rows if o.zone == zone]
            scope.append(f"zone {zone}")
        where = " in " + ", ".join(scope) if scope else ""
        name = canonical_gpu(gpu)
        if not rows:
            have = sorted({o.cloud for o in self._by_gpu[name]})
            raise ConfigError(
                f"no {name} offer{where} (clouds with {name}: {', '.join(have)})",
                source=self.source,
            )
        zones: dict[tuple[str, str, str], list[Offer]] = defaultdict(list)
        for o in rows:
            zones[(o.cloud, o.region, o.zone)].append(o)
        regions: dict[tuple[str, str], list[Quote]] = defaultdict(list)
        for (c, r, _z), zrows in zones.items():
            q = quote_in_zone(zrows, gpus, spot)
            if q is not None:
                regions[(c, r)].append(q)
        if not regions:
            raise ConfigError(
                f"no spot price for {name}{where} (the zones there sell it on-demand only)",
                source=self.source,
            )
        best: tuple[float, str, str, Offer] | None = None
        for (c, r), quotes in regions.items():
            # The median zone's base offer is reported; for an even count the lower middle.
            quotes.sort(key=lambda q: (q.usd_per_h, q.base.zone))
            med = statistics.median(q.usd_per_h for q in quotes)
            cand = (med, c, r, quotes[(len(quotes) - 1) // 2].base)
            if best is None or cand[:3] < best[:3]:
                best = cand
        assert best is not None
        return best[0], best[3]


def _yaml_rows(text: str, source: str) -> list[dict[str, Any]]:
    """Rows of a YAML catalog (a list, or a mapping with an ``offers`` list)."""
    import yaml  # imported here: only user catalogs in YAML need it

    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"invalid YAML: {e}", source=source) from None
    if isinstance(doc, Mapping):
        doc = doc.get("offers")
    if not isinstance(doc, list) or not all(isinstance(r, Mapping) for r in doc):
        raise ConfigError("expected a list of offer rows (or 'offers: [...]')", source=source)
    return [dict(r) for r in doc]


@functools.cache
def _builtin() -> Catalog:
    """Parse the shipped table once per process."""
    text = resources.files("sim.fleet").joinpath("data/offers.csv").read_text(encoding="utf-8")
    return Catalog.from_rows(_read_csv_rows(text), source=BUILTIN_SOURCE)
