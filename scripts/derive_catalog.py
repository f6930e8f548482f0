"""Derive the built-in offer table ``sim/fleet/data/offers.csv`` from the raw price extracts.

Reads the three SkyPilot-catalog extracts in ``../shared/data/gpu_prices`` (AWS per-zone
on-demand + spot, GCP host rows + GPU rows per zone, Lambda on-demand) and writes one row per
(cloud, region, zone, instance type) with the GPU type and count, vCPUs and the hourly
on-demand and spot prices, plus ``offers.meta.json`` (source, snapshot note, rules, anomaly
counts). The raw files are never copied into the repository; only this derived table ships.

Run from the repository root::

    python scripts/derive_catalog.py              # write offers.csv + meta, print summary
    python scripts/derive_catalog.py --check      # exit 1 if the shipped files are stale
    python scripts/derive_catalog.py --write-docs # also refresh the table in docs/catalog.md

Rules (the same text is in docs/catalog.md and in the meta file):

* GCP: a VM's price is the host row (machine type, no accelerator) plus the GPU row of the
  same zone; both on-demand and spot are summed this way. The pairing of machine type and GPU
  row is fixed in ``GCP_SHAPES``.
* ``missing_on_demand``: a row without an on-demand price is dropped (a worker must be billable
  on-demand, which is also the spot fallback).
* ``missing_spot``: a row without a spot price is kept with an empty spot price (no spot there).
* ``spot_not_below_on_demand``: a spot price >= the on-demand price (AWS publishes the cap when
  a zone has no spot capacity) is cleared, so the row has no spot offer.
* ``gcp_unjoined_host`` / ``gcp_unjoined_gpu``: a GCP host row with no GPU row in its zone, or
  a GPU row with no host row, is dropped (its VM price cannot be formed).
* ``gcp_gpu_spot_above_on_demand``: informational; a GCP GPU *component* whose spot price
  exceeds its on-demand price. The VM total is what is billed, so the row is kept and the
  ``spot_not_below_on_demand`` rule is applied to the totals.
* ``unknown_gpu``: a GPU name that ``sim.hardware.canonical_gpu`` does not know is dropped.
* ``on_demand_outlier``: informational; a row whose on-demand price per GPU is outside
  [0.5x, 2x] the median of the same (cloud, instance type) across zones. Kept as published:
  prices are facts from the source, the flag only warns the reader.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import statistics
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # allow `python scripts/derive_catalog.py` without installing
    sys.path.insert(0, str(REPO))

from sim.errors import ConfigError  # noqa: E402
from sim.fleet.catalog import COLUMNS, Offer  # noqa: E402
from sim.hardware import canonical_gpu  # noqa: E402

DEFAULT_SOURCE = REPO.parent / "shared" / "data" / "gpu_prices"
OUT_CSV = REPO / "sim" / "fleet" / "data" / "offers.csv"
OUT_META = REPO / "sim" / "fleet" / "data" / "offers.meta.json"
DOCS = REPO / "docs" / "catalog.md"

AWS_FILE = "aws_vms_gpu_us_extract.csv"
GCP_FILE = "gcp_vms_a100_h100_extract.csv"
LAMBDA_FILE = "lambda_vms_gpu_us-east-1_extract.csv"


# GCP machine type -> (GPU row name, GPU count) whose prices are added to the host row's.
GCP_SHAPES: dict[str, tuple[str, int]] = {
    "a2-highgpu-1g": ("A100", 1),
    "a2-highgpu-8g": ("A100", 8),
    "a2-ultragpu-1g": ("A100-80GB", 1),
    "a2-ultragpu-8g": ("A100-80GB", 8),
    "a3-highgpu-1g": ("H100", 1),
}

SOURCE = {
    "repository": "github.com/skypilot-org/skypilot-catalog",
    "files": {
        "AWS": "catalogs/v8/aws/vms.csv @ 00148f2af3672e2229b4f7bf8157d5a3f36e3c35 "
        "(US regions us-east-1/us-east-2/us-west-1/us-west-2, selected GPU types, per zone)",
        "GCP": "catalogs/v8/gcp/vms.csv @ 006059e0f18acb1341e22a27751e9f80df6ba92f "
        "(a2-highgpu-1g/8g, a2-ultragpu-1g/8g, a3-highgpu-1g host rows + A100/A100-80GB/H100 "
        "GPU rows; some A100x1 and H100x1 zones were not extracted)",
        "LAMBDA": "catalogs/v8/lambda/vms.csv @ 0f4070387edc953d7004cff197940e1918a1d6aa "
        "(us-east-1 rows; Lambda prices are identical across regions; no spot)",
    },
    "license": "none stated in the source repository; provider list prices "
    "collected by SkyPilot's fetchers",
}
SNAPSHOT_NOTE = (
    "Provider list prices as published in the SkyPilot catalog snapshot above; exact fetch "
    "date unknown, 2025 or later (it lists p5.4xlarge, p5en, g6f). Extract read 2026-11. "
    "USD per instance-hour, US regions for AWS, all extracted regions for GCP."
)
RULES = [
    "GCP VM price = host row + GPU row of the same zone (on-demand and spot alike).",
    "missing_on_demand: row dropped.",
    "missing_spot: row kept, spot empty.",
    "spot_not_below_on_demand: spot cleared (no spot offer in that zone).",
    "gcp_unjoined_host / gcp_unjoined_gpu: row dropped (VM price cannot be formed).",
    "gcp_gpu_spot_above_on_demand: informational, kept (the VM total is billed).",
    "unknown_gpu: row dropped (GPU not in sim.hardware.GPU_SPECS).",
    "on_demand_outlier: informational, kept (per-GPU on-demand outside 0.5x-2x the "
    "median of the same cloud+instance type).",
    "Lambda has no zones: zone = region.",
    "Prices rounded to 6 decimals; rows sorted by cloud, gpu, gpus, instance_type, region, zone.",
]


def sort_key(o: Offer) -> tuple[str, str, int, str, str, str]:
    """Order used in the shipped file (stable diffs)."""
    return (o.cloud, o.gpu, o.gpus, o.instance_type, o.region, o.zone)


@dataclass
class Derived:
    """Result of a derivation: rows, anomaly counts and details, and the meta document."""

    rows: list[Offer]
    anomalies: Counter[str] = field(default_factory=Counter)
    details: list[str] = field(default_factory=list)

    def meta(self) -> dict[str, object]:
        """The companion ``offers.meta.json`` content (deterministic: no timestamps)."""
        per_cloud = Counter(r.cloud for r in self.rows)
        return {
            "source": SOURCE,
            "snapshot": SNAPSHOT_NOTE,
            "derivation": "scripts/derive_catalog.py",
            "columns": list(COLUMNS),
            "units": "USD per instance-hour",
            "rules": RULES,
            "rows_per_cloud": dict(sorted(per_cloud.items())),
            "anomalies": dict(sorted(self.anomalies.items())),
            "anomaly_details": self.details,
        }


def _price(text: str | None) -> float | None:
    """Parse a price cell; empty means unknown."""
    text = (text or "").strip()
    return float(text) if text else None


def _read(path: Path) -> list[dict[str, str]]:
    """All rows of a CSV file as dicts."""
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


class _Builder:
    """Applies the anomaly rules while rows are collected."""

    def __init__(self) -> None:
        self.out = Derived(rows=[])

    def flag(self, kind: str, what: str) -> None:
        """Count one anomaly and remember which row it was."""
        self.out.anomalies[kind] += 1
        self.out.details.append(f"{kind}: {what}")

    def gpu(self, name: str, what: str) -> str | None:
        """Canonical GPU name, or None (flagged) when the simulator does not know it."""
        try:
            return canonical_gpu(name)
        except ConfigError:
            self.flag("unknown_gpu", f"{what} ({name})")
            return None

    def add(
        self,
        *,
        cloud: str,
        region: str,
        zone: str,
        instance_type: str,
        gpu: str,
        gpus: int,
        vcpus: float,
        on_demand: float | None,
        spot: float | None,
        has_spot_market: bool = True,
    ) -> None:
        """Apply the price rules to one row and keep it if it is usable."""
        what = f"{cloud} {zone} {instance_type}"
        if on_demand is None:
            self.flag("missing_on_demand", what)
            return
        if spot is None and has_spot_market:
            self.flag("missing_spot", what)
        elif spot is not None and spot >= on_demand:
            self.flag("spot_not_below_on_demand", f"{what} (spot {spot} >= {on_demand})")
            spot = None
        self.out.rows.append(
            Offer(
                cloud=cloud,
                region=region,
                zone=zone,
                instance_type=instance_type,
                gpu=gpu,
                gpus=gpus,
                vcpus=vcpus,
                on_demand_usd_per_h=round(on_demand, 6),
                spot_usd_per_h=None if spot is None else round(spot, 6),
            )
        )


def _aws(b: _Builder, rows: Iterable[dict[str, str]]) -> None:
    """AWS rows are already one per (instance type, zone)."""
    for r in rows:
        what = f"AWS {r['AvailabilityZone']} {r['InstanceType']}"
        gpu = b.gpu(r["AcceleratorName"], what)
        if gpu is None:
            continue
        b.add(
            cloud="AWS",
            region=r["Region"],
            zone=r["AvailabilityZone"],
            instance_type=r["InstanceType"],
            gpu=gpu,
            gpus=int(float(r["AcceleratorCount"])),
            vcpus=float(r["vCPUs"]),
            on_demand=_price(r["Price"]),
            spot=_price(r["SpotPrice"]),
        )


def _gcp(b: _Builder, rows: Iterable[dict[str, str]]) -> None:
    """Join each GCP host row with the GPU row of the same zone (VM = host + GPU)."""
    hosts: dict[tuple[str, str], dict[str, str]] = {}
    gpus: dict[tuple[str, int, str], dict[str, str]] = {}
    for r in rows:
        if r["InstanceType"]:
            hosts[(r["InstanceType"], r["AvailabilityZone"])] = r
        else:
            gpus[
                (r["AcceleratorName"], int(float(r["AcceleratorCount"])), r["AvailabilityZone"])
            ] = r
    used: set[tuple[str, int, str]] = set()
    for (itype, zone), host in sorted(hosts.items()):
        if itype not in GCP_SHAPES:
            b.flag("gcp_unjoined_host", f"GCP {zone} {itype} (no GPU pairing known)")
            continue
        gpu_name, count = GCP_SHAPES[itype]
        key = (gpu_name, count, zone)
        grow = gpus.get(key)
        if grow is None:
            b.flag("gcp_unjoined_host", f"GCP {zone} {itype} (no {gpu_name}x{count} row)")
            continue
        used.add(key)
        gpu = b.gpu(gpu_name, f"GCP {zone} {itype}")
        if gpu is None:
            continue
        g_od, g_spot = _price(grow["Price"]), _price(grow["SpotPrice"])
        h_od, h_spot = _price(host["Price"]), _price(host["SpotPrice"])
        if g_od is not None and g_spot is not None and g_spot > g_od:
            b.flag(
                "gcp_gpu_spot_above_on_demand",
                f"GCP {zone} {gpu_name}x{count} (GPU spot {g_spot} > {g_od})",
            )
        on_demand = None if g_od is None or h_od is None else h_od + g_od
        spot = None if g_spot is None or h_spot is None else h_spot + g_spot
        b.add(
            cloud="GCP",
            region=host["Region"],
            zone=zone,
            instance_type=itype,
            gpu=gpu,
            gpus=count,
            vcpus=float(host["vCPUs"]),
            on_demand=on_demand,
            spot=spot,
        )
    for key in sorted(set(gpus) - used):
        gpu_name, count, zone = key
        b.flag("gcp_unjoined_gpu", f"GCP {zone} {gpu_name}x{count} (no host row)")


def _lambda(b: _Builder, rows: Iterable[dict[str, str]]) -> None:
    """Lambda rows: on-demand only, one region, no zones (zone = region)."""
    for r in rows:
        what = f"LAMBDA {r['Region']} {r['InstanceType']}"
        gpu = b.gpu(r["AcceleratorName"], what)
        if gpu is None:
            continue
        b.add(
            cloud="LAMBDA",
            region=r["Region"],
            zone=r["Region"],
            instance_type=r["InstanceType"],
            gpu=gpu,
            gpus=int(float(r["AcceleratorCount"])),
            vcpus=float(r["vCPUs"]),
            on_demand=_price(r["Price"]),
            spot=None,
            has_spot_market=False,  # Lambda sells no spot: an empty cell is not an anomaly
        )


def _flag_outliers(b: _Builder) -> None:
    """Flag on-demand prices far from their instance type's median (informational only)."""
    groups: dict[tuple[str, str], list[Offer]] = defaultdict(list)
    for r in b.out.rows:
        groups[(r.cloud, r.instance_type)].append(r)
    for (_cloud, _itype), rows in sorted(groups.items()):
        med = statistics.median(r.on_demand_usd_per_h for r in rows)
        for r in sorted(rows, key=sort_key):
            ratio = r.on_demand_usd_per_h / med
            if not 0.5 <= ratio <= 2.0:
                b.flag(
                    "on_demand_outlier",
                    f"{r.cloud} {r.zone} {r.instance_type} "
                    f"({r.on_demand_usd_per_h} vs median {round(med, 6)})",
                )


def derive(source_dir: Path = DEFAULT_SOURCE) -> Derived:
    """Read the three extracts in ``source_dir`` and return the derived rows and anomalies."""
    b = _Builder()
    _aws(b, _read(source_dir / AWS_FILE))
    _gcp(b, _read(source_dir / GCP_FILE))
    _lambda(b, _read(source_dir / LAMBDA_FILE))
    b.out.rows.sort(key=sort_key)
    keys = Counter((r.cloud, r.zone, r.instance_type) for r in b.out.rows)
    dupes = [k for k, n in keys.items() if n > 1]
    if dupes:  # the extracts have one row per zone and type; a repeat means a bad extract
        raise ValueError(f"duplicate (cloud, zone, instance_type) rows: {dupes}")
    _flag_outliers(b)
    return b.out


def _num(x: float) -> str:
    """Shortest fixed-point spelling of a price or count (no float noise, no exponent)."""
    text = f"{x:.6f}".rstrip("0").rstrip(".")
    return text or "0"


def render_csv(rows: Sequence[Offer]) -> str:
    """The offers.csv text for ``rows`` (LF line ends, fixed column order)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(COLUMNS)
    for r in rows:
        w.writerow(
            [
                r.cloud,
                r.region,
                r.zone,
                r.instance_type,
                r.gpu,
                r.gpus,
                _num(r.vcpus),
                _num(r.on_demand_usd_per_h),
                "" if r.spot_usd_per_h is None else _num(r.spot_usd_per_h),
            ]
        )
    return buf.getvalue()


def render_meta(d: Derived) -> str:
    """The offers.meta.json text."""
    return json.dumps(d.meta(), indent=2, sort_keys=False) + "\n"


def _fmt(x: float | None) -> str:
    """A price cell for the markdown table."""
    return "–" if x is None else f"{x:.2f}"


def render_table(rows: Sequence[Offer]) -> str:
    """Markdown table: per GPU type, median on-demand / spot $ per GPU-hour in each cloud."""
    clouds = sorted({r.cloud for r in rows})
    gpus = sorted({r.gpu for r in rows})
    head = "| GPU | " + " | ".join(f"{c} on-demand | {c} spot" for c in clouds) + " |"
    sep = "|---|" + "---:|---:|" * len(clouds)
    lines = [head, sep]
    for g in gpus:
        cells = []
        for c in clouds:
            sel = [r for r in rows if r.cloud == c and r.gpu == g]
            od = [r.on_demand_usd_per_h / r.gpus for r in sel]
            sp = [r.spot_usd_per_h / r.gpus for r in sel if r.spot_usd_per_h is not None]
            cells.append(_fmt(statistics.median(od) if od else None))
            cells.append(_fmt(statistics.median(sp) if sp else None))
        lines.append(f"| {g} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


HEADLINE_GPUS = ("A100", "A100-80GB", "H100")


def render_headline(rows: Sequence[Offer]) -> str:
    """Markdown table of Catalog.price_per_hour for one GPU of the headline types, per cloud."""
    from sim.fleet.catalog import Catalog, Offer  # the query rules live there, not here

    cat = Catalog(Offer(**asdict(r)) for r in rows)
    clouds = cat.clouds
    cols = [(c, spot) for c in clouds for spot in (False, True)]
    head = "| GPU x1 | " + " | ".join(f"{c} {'spot' if s else 'on-demand'}" for c, s in cols)
    lines = [head + " |", "|---|" + "---|" * len(cols)]
    for g in HEADLINE_GPUS:
        cells = []
        for c, spot in cols:
            try:
                price, base = cat.price_quote(g, 1, cloud=c, spot=spot)
            except ConfigError:
                cells.append("–")
                continue
            shape = "" if base.gpus == 1 else f" 1/{base.gpus}"
            cells.append(f"{price:.2f} ({base.region}, {base.instance_type}{shape})")
        lines.append(f"| {g} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _marker(name: str) -> tuple[str, str]:
    """The begin/end comment lines around a generated block of docs/catalog.md."""
    return (
        f"<!-- BEGIN {name}: generated by scripts/derive_catalog.py --write-docs -->",
        f"<!-- END {name} -->",
    )


def update_docs(text: str, blocks: Mapping[str, str]) -> str:
    """Replace each named generated block of docs/catalog.md with its new content."""
    for name, content in blocks.items():
        begin, end = _marker(name)
        start = text.index(begin) + len(begin)
        stop = text.index(end)
        text = text[:start] + "\n" + content + text[stop:]
    return text


def render_counts(d: Derived) -> str:
    """Markdown list of rows per cloud and anomaly counts."""
    per_cloud = Counter(r.cloud for r in d.rows)
    clouds = ", ".join(f"{c} {n}" for c, n in sorted(per_cloud.items()))
    lines = [f"- offers: **{len(d.rows)}** ({clouds})"]
    lines += [f"- `{k}`: {n}" for k, n in sorted(d.anomalies.items())]
    return "\n".join(lines) + "\n"


def doc_blocks(d: Derived) -> dict[str, str]:
    """The generated blocks of docs/catalog.md."""
    return {
        "counts": render_counts(d),
        "medians": render_table(d.rows),
        "headline": render_headline(d.rows),
    }


def summary(d: Derived) -> str:
    """Human summary printed by the script: rows per cloud and anomaly counts."""
    per_cloud = Counter(r.cloud for r in d.rows)
    lines = [f"offers: {len(d.rows)} rows"]
    lines += [f"  {c}: {n}" for c, n in sorted(per_cloud.items())]
    lines.append("anomalies:")
    lines += [f"  {k}: {n}" for k, n in sorted(d.anomalies.items())]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", type=Path, default=DEFAULT_SOURCE, help="gpu_prices directory")
    ap.add_argument("--check", action="store_true", help="fail if shipped files are stale")
    ap.add_argument("--write-docs", action="store_true", help="refresh docs/catalog.md table")
    ap.add_argument("--details", action="store_true", help="list every anomaly")
    args = ap.parse_args(argv)

    d = derive(args.source)
    csv_text, meta_text = render_csv(d.rows), render_meta(d)
    blocks = doc_blocks(d)
    print(summary(d))
    if args.details:
        print("\n".join(d.details))
    for content in blocks.values():
        print()
        print(content, end="")
    if args.check:
        stale = [
            p.name
            for p, text in ((OUT_CSV, csv_text), (OUT_META, meta_text))
            if not p.exists() or p.read_text(encoding="utf-8") != text
        ]
        if stale:
            print(f"stale: {', '.join(stale)} (run scripts/derive_catalog.py)", file=sys.stderr)
            return 1
        return 0
    OUT_CSV.parent.mkdir(parents=True, exist_ok=True)
    OUT_CSV.write_text(csv_text, encoding="utf-8")
    OUT_META.write_text(meta_text, encoding="utf-8")
    print(f"wrote {OUT_CSV.relative_to(REPO)} and {OUT_META.relative_to(REPO)}")
    if args.write_docs:
        DOCS.write_text(update_docs(DOCS.read_text(encoding="utf-8"), blocks), encoding="utf-8")
        print(f"updated {DOCS.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
