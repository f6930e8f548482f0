"""Tests of the offer catalog: derivation from the raw extracts, price rules, offer selection."""

from __future__ import annotations

import csv
import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from sim.errors import ConfigError
from sim.fleet.catalog import Catalog, Offer, nearest_count
from sim.fleet.offers import ChosenOffer, cheapest_offer, fits_memory, shape_offer

REPO = Path(__file__).resolve().parents[1]
RAW = REPO.parent / "shared" / "data" / "gpu_prices"
needs_raw = pytest.mark.skipif(not RAW.is_dir(), reason="raw price extracts not checked out")


def _load_script() -> ModuleType:
    """Import scripts/derive_catalog.py as a module (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location(
        "derive_catalog", REPO / "scripts" / "derive_catalog.py"
    )
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("derive_catalog", mod)
    spec.loader.exec_module(mod)
    return mod


dc = _load_script()


def _raw(name: str) -> list[dict[str, str]]:
    """Rows of one raw extract."""
    with (RAW / name).open(newline="") as fh:
        return list(csv.DictReader(fh))


def _offer(**kw: object) -> Offer:
    """An offer with defaults for the fields a test does not care about."""
    base: dict[str, object] = dict(
        cloud="AWS", region="r1", zone="z1", instance_type="t1", gpu="A100", gpus=1,
        vcpus=8.0, on_demand_usd_per_h=2.0, spot_usd_per_h=None,
    )  # fmt: skip
    base.update(kw)
    return Offer(**base)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def builtin() -> Catalog:
    """The shipped catalog."""
    return Catalog.builtin()


# -- derivation -------------------------------------------------------------------------


@needs_raw
def test_gcp_join_hand_picked_zone(builtin: Catalog) -> None:
    """GCP a2-highgpu-1g and a2-ultragpu-8g in us-central1-a = host row + GPU row of that zone."""
    rows = _raw(dc.GCP_FILE)
    zone = "us-central1-a"

    def pick(itype: str, gpu: str, count: str) -> tuple[float, float]:
        host = next(r for r in rows if r["InstanceType"] == itype and r["AvailabilityZone"] == zone)
        g = next(
            r for r in rows
            if not r["InstanceType"] and r["AcceleratorName"] == gpu
            and r["AcceleratorCount"] == count and r["AvailabilityZone"] == zone
        )  # fmt: skip
        return (
            float(host["Price"]) + float(g["Price"]),
            float(host["SpotPrice"]) + float(g["SpotPrice"]),
        )

    for itype, gpu, count, n in (
        ("a2-highgpu-1g", "A100", "1", 1),
        ("a2-ultragpu-8g", "A100-80GB", "8", 8),
    ):
        od, spot = pick(itype, gpu, count)
        (offer,) = [
            o for o in builtin.offers(clouds=["GCP"], instance_types=[itype]) if o.zone == zone
        ]
        assert (offer.gpu, offer.gpus, offer.region) == (gpu, n, "us-central1")
        assert offer.on_demand_usd_per_h == pytest.approx(od, abs=1e-6)
        assert offer.spot_usd_per_h == pytest.approx(spot, abs=1e-6)
    # 0.73948 + 2.93391, typed from the raw file, as a guard against the lookup itself.
    assert pick("a2-highgpu-1g", "A100", "1")[0] == pytest.approx(3.67339)


@needs_raw
def test_aws_spot_is_per_zone(builtin: Catalog) -> None:
    """Every AWS g5.xlarge zone keeps its own spot price from the raw extract."""
    raw = {
        r["AvailabilityZone"]: float(r["SpotPrice"])
        for r in _raw(dc.AWS_FILE)
        if r["InstanceType"] == "g5.xlarge"
    }
    got = {o.zone: o.spot_usd_per_h for o in builtin.offers(instance_types=["g5.xlarge"])}
    assert got == pytest.approx(raw)
    assert len(set(got.values())) > 1  # really per zone, not one regional figure


@needs_raw
def test_shipped_table_equals_fresh_derivation() -> None:
    """sim/fleet/data/offers.csv and offers.meta.json are exactly what the script derives now."""
    d = dc.derive(RAW)
    assert dc.OUT_CSV.read_text(encoding="utf-8") == dc.render_csv(d.rows)
    assert dc.OUT_META.read_text(encoding="utf-8") == dc.render_meta(d)
    assert dc.render_csv(dc.derive(RAW).rows) == dc.render_csv(d.rows)  # deterministic


@needs_raw
def test_docs_table_is_current() -> None:
    """The generated blocks of docs/catalog.md match the tables the script prints."""
    text = dc.DOCS.read_text(encoding="utf-8")
    assert dc.update_docs(text, dc.doc_blocks(dc.derive(RAW))) == text


def _write(path: Path, header: str, *lines: str) -> None:
    """Write a small CSV file."""
    path.write_text("\n".join((header, *lines)) + "\n", encoding="utf-8")


def test_anomaly_rules(tmp_path: Path) -> None:
    """Spot >= on-demand clears spot, missing prices/unjoinable rows/unknown GPUs are dropped, all counted."""
    aws_h = "InstanceType,AcceleratorName,AcceleratorCount,vCPUs,MemoryGiB,GpuInfo,Price,SpotPrice,Region,AvailabilityZone,Arch"
    _write(
        tmp_path / dc.AWS_FILE, aws_h,
        "g5.xlarge,A10G,1.0,4.0,16.0,,1.0,1.0,us-east-1,use1-az1,x86_64",  # spot == on-demand
        "g5.xlarge,A10G,1.0,4.0,16.0,,1.0,0.4,us-east-1,use1-az2,x86_64",  # fine
        "g5.xlarge,A10G,1.0,4.0,16.0,,1.0,,us-east-1,use1-az3,x86_64",  # no spot: kept
        "p5e.48xlarge,H200,8.0,192.0,2048.0,,,19.5,us-east-2,use2-az1,x86_64",  # no on-demand
    )  # fmt: skip
    gcp_h = "InstanceType,vCPUs,MemoryGiB,AcceleratorName,AcceleratorCount,GpuInfo,Region,AvailabilityZone,Price,SpotPrice"
    _write(
        tmp_path / dc.GCP_FILE, gcp_h,
        "a2-highgpu-1g,12.0,85.0,,,,us-central1,us-central1-a,0.5,0.2",
        "a2-highgpu-1g,12.0,85.0,,,,us-central1,us-central1-b,0.5,0.2",  # no GPU row here
        ",,,A100,1,,us-central1,us-central1-a,2.0,2.1",  # GPU spot > on-demand, total fine
        ",,,H100,1,,us-east4,us-east4-a,9.0,2.0",  # no host row
    )  # fmt: skip
    lam_h = "InstanceType,AcceleratorName,AcceleratorCount,vCPUs,MemoryGiB,Price,Region,GpuInfo,SpotPrice"
    _write(
        tmp_path / dc.LAMBDA_FILE, lam_h,
        "gpu_1x_a10,A10,1.0,30.0,200.0,1.29,us-east-1,,",
        "gpu_1x_rtx6000,RTX6000,1.0,14.0,46.0,0.69,us-east-1,,",  # GPU unknown to the sim
    )  # fmt: skip
    d = dc.derive(tmp_path)
    assert dict(d.anomalies) == {
        "spot_not_below_on_demand": 1,
        "missing_spot": 1,
        "missing_on_demand": 1,
        "gcp_unjoined_host": 1,
        "gcp_unjoined_gpu": 1,
        "gcp_gpu_spot_above_on_demand": 1,
        "unknown_gpu": 1,
    }
    by_key = {(r.cloud, r.zone): r for r in d.rows}
    assert set(by_key) == {
        ("AWS", "use1-az1"), ("AWS", "use1-az2"), ("AWS", "use1-az3"),
        ("GCP", "us-central1-a"), ("LAMBDA", "us-east-1"),
    }  # fmt: skip
    assert by_key[("AWS", "use1-az1")].spot_usd_per_h is None
    assert by_key[("AWS", "use1-az2")].spot_usd_per_h == 0.4
    gcp = by_key[("GCP", "us-central1-a")]
    assert (gcp.on_demand_usd_per_h, gcp.spot_usd_per_h) == (2.5, 2.3)  # totals: spot < on-demand
    assert by_key[("LAMBDA", "us-east-1")].spot_usd_per_h is None


# -- price rules ------------------------------------------------------------------------


def test_price_for_unlisted_gpu_count_uses_nearest_shape() -> None:
    """A100x2 / x4 / x6 are priced per GPU from the nearest listed count (x1 or x8)."""
    cat = Catalog([
        _offer(instance_type="one", gpus=1, on_demand_usd_per_h=2.0),
        _offer(instance_type="eight", gpus=8, on_demand_usd_per_h=12.0),
    ])  # fmt: skip
    assert cat.price_per_hour("A100", 1) == 2.0
    assert cat.price_per_hour("A100", 8) == 12.0
    assert cat.price_per_hour("A100", 2) == pytest.approx(4.0)  # nearest x1: 2 * 2.0
    assert cat.price_per_hour("A100", 4) == pytest.approx(8.0)  # |4-1| < |4-8|
    assert cat.price_per_hour("A100", 6) == pytest.approx(9.0)  # nearest x8: 6 * 1.5
    assert cat.price_per_hour("A100", 16) == pytest.approx(24.0)
    assert nearest_count([2, 6], 4) == 2  # ties go to the smaller count


@needs_raw
def test_builtin_gcp_a100x2_follows_rule(builtin: Catalog) -> None:
    """GCP A100x2 = 2 x the a2-highgpu-1g price of the cheapest region (no 2-GPU type listed)."""
    cheapest_1g = min(
        o.on_demand_usd_per_h for o in builtin.offers(instance_types=["a2-highgpu-1g"])
    )
    assert builtin.price_per_hour("A100", 2, cloud="gcp") == pytest.approx(2 * cheapest_1g)


def test_spot_price_is_median_over_zones_of_cheapest_region() -> None:
    """Spot = median over the region's zones; the cheaper region wins; a zone pins its own price."""
    cat = Catalog([
        _offer(region="r1", zone="a", spot_usd_per_h=1.0),
        _offer(region="r1", zone="b", spot_usd_per_h=0.2),
        _offer(region="r1", zone="c", spot_usd_per_h=0.9),
        _offer(region="r2", zone="d", spot_usd_per_h=0.8),
    ])  # fmt: skip
    assert cat.price_per_hour("A100", 1, spot=True) == pytest.approx(0.8)  # r1 median 0.9 > 0.8
    assert cat.price_per_hour("A100", 1, region="r1", spot=True) == pytest.approx(0.9)
    assert cat.price_per_hour("A100", 1, zone="b", spot=True) == pytest.approx(0.2)


def test_unknown_or_unlisted_gpu_is_a_clear_error(builtin: Catalog) -> None:
    """A GPU name the sim does not know, or one with no offer, raises ConfigError naming it."""
    with pytest.raises(ConfigError, match="unknown GPU 'B300'"):
        builtin.price_per_hour("B300", 1)
    with pytest.raises(ConfigError, match="no offer with GPU 'H200'.*GPUs with prices: .*A100"):
        builtin.price_per_hour("H200", 1)
    with pytest.raises(ConfigError, match="no T4 offer in cloud GCP"):
        builtin.price_per_hour("T4", 1, cloud="GCP")
    with pytest.raises(ConfigError, match="no spot price for A10 in cloud LAMBDA"):
        builtin.price_per_hour("A10", 1, cloud="lambda", spot=True)


def test_override_replaces_a_price(builtin: Catalog) -> None:
    """with_overrides changes the selected entries only, can drop spot, adds new rows, and leaves the original alone."""
    before = {o.key: o for o in builtin}
    cat = builtin.with_overrides([
        {"cloud": "aws", "instance_type": "g5.xlarge", "zone": "use1-az1", "on_demand_usd_per_h": 0.5},
        {"cloud": "AWS", "instance_type": "g6.xlarge", "spot_usd_per_h": None},
        {"cloud": "ACME", "region": "x", "zone": "x-1", "instance_type": "acme-h100", "gpu": "H100",
         "gpus": 1, "vcpus": 16, "on_demand_usd_per_h": 1.0},
    ])  # fmt: skip
    after = {o.key: o for o in cat}
    assert after[("AWS", "use1-az1", "g5.xlarge")].on_demand_usd_per_h == 0.5
    assert after[("AWS", "use1-az2", "g5.xlarge")] == before[("AWS", "use1-az2", "g5.xlarge")]
    assert all(o.spot_usd_per_h is None for o in cat.offers(instance_types=["g6.xlarge"]))
    assert cat.price_per_hour("H100", 1) == 1.0
    assert len(cat) == len(builtin) + 1
    assert builtin.price_per_hour("A10G", 1, zone="use1-az1") == 1.006  # original untouched
    with pytest.raises(ConfigError, match="unknown column"):
        builtin.with_overrides([{"cloud": "AWS", "instance_type": "g5.xlarge", "price": 1}])
    with pytest.raises(ConfigError, match="missing"):
        builtin.with_overrides(
            [{"cloud": "AWS", "instance_type": "nope", "on_demand_usd_per_h": 1}]
        )


def test_user_catalog_from_csv_and_yaml(tmp_path: Path) -> None:
    """A user catalog loads from CSV or YAML with the same columns; a bad column is a ConfigError with the file."""
    (tmp_path / "c.csv").write_text(
        "cloud,region,zone,instance_type,gpu,gpus,vcpus,on_demand_usd_per_h,spot_usd_per_h\n"
        "onprem,dc,dc-1,box,a100-40gb,4,64,6.0,\n",
        encoding="utf-8",
    )
    (tmp_path / "c.yaml").write_text(
        "offers:\n- {cloud: onprem, region: dc, zone: dc-1, instance_type: box, gpu: A100,"
        " gpus: 4, vcpus: 64, on_demand_usd_per_h: 6.0}\n",
        encoding="utf-8",
    )
    a = Catalog.from_path(tmp_path / "c.csv")
    b = Catalog.load("c.yaml", base_dir=tmp_path)
    assert list(a) == list(b) == [Offer("ONPREM", "dc", "dc-1", "box", "A100", 4, 64.0, 6.0, None)]
    (tmp_path / "bad.csv").write_text("cloud,region,zone,gpu\nx,y,z,A100\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="bad.csv.*missing"):
        Catalog.from_path(tmp_path / "bad.csv")


def test_builtin_is_lazy_and_cached() -> None:
    """Importing the catalog module reads no file; Catalog.builtin() parses once and is reused."""
    code = (
        "import sim.fleet.catalog as c, sim.fleet.offers\n"
        "assert c._builtin.cache_info().currsize == 0\n"
        "assert c.Catalog.builtin() is c.Catalog.builtin()\n"
        "assert c._builtin.cache_info().misses == 1\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


# -- offer selection --------------------------------------------------------------------


def _small() -> Catalog:
    """Three clouds, two GPU types, one zone without spot."""
    return Catalog([
        _offer(cloud="AWS", zone="a1", instance_type="small", gpu="L4", gpus=1, on_demand_usd_per_h=0.8, spot_usd_per_h=0.3),
        _offer(cloud="AWS", zone="a1", instance_type="big", gpu="A100", gpus=8, on_demand_usd_per_h=20.0, spot_usd_per_h=6.0),
        _offer(cloud="GCP", zone="g1", instance_type="a2", gpu="A100", gpus=1, on_demand_usd_per_h=3.5, spot_usd_per_h=1.5),
        _offer(cloud="LAMBDA", zone="l1", instance_type="lam", gpu="A100", gpus=1, on_demand_usd_per_h=2.0),
    ])  # fmt: skip


def test_cheapest_offer_respects_filters_and_spot() -> None:
    """cheapest_offer honours fits, clouds, instance_types and zone exclusion, and uses spot only when allowed."""
    cat = _small()
    anything = fits_memory(1.0)
    big_model = fits_memory(30.0)  # > 24 GB * 0.9: L4 is out
    assert cheapest_offer(cat, fits=anything, allow_spot=False).offer.instance_type == "small"
    pick = cheapest_offer(cat, fits=anything, allow_spot=True)
    assert (pick.offer.instance_type, pick.spot, pick.usd_per_h) == ("small", True, 0.3)
    pick = cheapest_offer(cat, fits=big_model, allow_spot=False)
    assert (pick.offer.cloud, pick.spot, pick.usd_per_h) == ("LAMBDA", False, 2.0)
    pick = cheapest_offer(cat, fits=big_model, allow_spot=True)
    assert (pick.offer.cloud, pick.spot, pick.usd_per_h) == ("GCP", True, 1.5)
    pick = cheapest_offer(cat, fits=big_model, clouds=["aws"], allow_spot=False)
    assert pick.offer.instance_type == "big"
    pick = cheapest_offer(cat, fits=anything, instance_types=["a2", "big"], allow_spot=True)
    assert (pick.offer.instance_type, pick.spot) == ("a2", True)
    pick = cheapest_offer(cat, fits=big_model, allow_spot=True, exclude_zones={"g1"})
    assert (pick.offer.cloud, pick.spot) == ("LAMBDA", False)
    with pytest.raises(ConfigError, match="holds the model.*largest is big"):
        cheapest_offer(cat, fits=fits_memory(500.0), allow_spot=True)
    with pytest.raises(ConfigError, match="not in the catalog"):
        cheapest_offer(cat, fits=anything, clouds=["AZURE"], allow_spot=True)


def test_cheapest_offer_tie_break_is_deterministic() -> None:
    """Equal prices resolve to on-demand before spot, then fewer GPUs, then cloud name, whatever the table order."""
    rows = [
        _offer(cloud="GCP", zone="g", instance_type="x", on_demand_usd_per_h=1.0),
        _offer(cloud="AWS", zone="a", instance_type="y", on_demand_usd_per_h=2.0, spot_usd_per_h=1.0),
        _offer(cloud="AWS", zone="b", instance_type="z", gpus=2, on_demand_usd_per_h=1.0),
        _offer(cloud="AWS", zone="c", instance_type="w", on_demand_usd_per_h=1.0),
    ]  # fmt: skip
    expected = ("AWS", "w", False)
    for order in (rows, rows[::-1]):
        pick = cheapest_offer(Catalog(order), fits=fits_memory(1.0), allow_spot=True)
        assert (pick.offer.cloud, pick.offer.instance_type, pick.spot) == expected


def test_shape_offer_exact_and_scaled() -> None:
    """shape_offer uses an exact listed count when there is one, else a scaled copy of the nearest shape."""
    cat = _small()
    exact = shape_offer(cat, "A100", 1, allow_spot=False)
    assert (exact.offer.cloud, exact.usd_per_h, exact.derived_from) == ("LAMBDA", 2.0, None)
    scaled = shape_offer(cat, "a100", 2, clouds=["AWS"], allow_spot=True)
    assert scaled.offer.instance_type == "big[2/8]"
    assert (scaled.offer.gpus, scaled.spot) == (2, True)
    assert scaled.usd_per_h == pytest.approx(1.5)  # 2/8 of the 6.0 spot price
    assert scaled.offer.on_demand_usd_per_h == pytest.approx(5.0)
    assert scaled.derived_from is not None and scaled.derived_from.instance_type == "big"
    assert isinstance(scaled, ChosenOffer)
    with pytest.raises(ConfigError, match="no L4 offer in clouds \\['GCP'\\]"):
        shape_offer(cat, "L4", 1, clouds=["gcp"])


@needs_raw
def test_builtin_cheapest_offers_are_sane(builtin: Catalog) -> None:
    """On the shipped table a 16 GB model lands on a 24 GB GPU and spot beats on-demand."""
    od = cheapest_offer(builtin, fits=fits_memory(16.0, 2.0), allow_spot=False)
    sp = cheapest_offer(builtin, fits=fits_memory(16.0, 2.0), allow_spot=True)
    assert od.offer.gpu == "L4" and not od.spot
    assert sp.spot and sp.usd_per_h < od.usd_per_h
