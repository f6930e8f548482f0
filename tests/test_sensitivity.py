"""Tests of sim/sensitivity.py and ``sim sensitivity``: variants, common random numbers, outputs.

Runs a 30-minute slice of the quickstart scenario (a fraction of a second per run).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from sim import sensitivity as S
from sim.cli import main
from sim.scenario import Scenario, load_scenario

REPO = Path(__file__).resolve().parents[1]
QUICKSTART = REPO / "scenarios" / "quickstart.yaml"
SHORT = ["workload.duration_s=1800", "workload.peak_at_s=900"]
STEMS = tuple(S.METRICS)


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    """Quickstart cut to 30 minutes around its peak."""
    return load_scenario(QUICKSTART, SHORT)


def test_no_effect_switch_has_zero_width(scenario: Scenario) -> None:
    """A variant equal to the baseline gives zero paired differences with a zero-width CI."""
    df = S.sensitivity(scenario, seeds=(1, 2, 3),
                       switches={"autoscaler.statistic": ["mean"],
                                 "autoscaler.timeout_semantics": ["cooldown", "sustained"]})
    assert len(df) == 1 + 3  # baseline + one row per variant
    same = df[(df["switch"] == "autoscaler.statistic") & (df["value"] == "mean")].iloc[0]
    for stem in STEMS:
        assert same[f"{stem}_diff"] == 0.0
        assert same[f"{stem}_diff_lo"] == 0.0 and same[f"{stem}_diff_hi"] == 0.0
        assert same[stem] == df.iloc[0][stem]
    base = df.iloc[0]
    assert base["switch"] == S.BASELINE
    assert all(base[f"{stem}_diff"] == 0.0 for stem in STEMS)


def test_default_table_has_one_row_per_variant(scenario: Scenario) -> None:
    """Default run: baseline plus every §4 alternative, sorted by absolute cost change."""
    variants = S.default_variants(scenario, include_exact=False)
    df = S.sensitivity(scenario, seeds=(1, 2), include_exact=False)
    assert len(df) == 1 + len(variants)
    names = set(zip(df["switch"], df["value"], strict=True))
    assert {(v.switch, v.value) for v in variants} <= names
    # Baseline values are not repeated as variants (quickstart: cooldown, ttft, mean, false).
    assert ("autoscaler.statistic", "mean") not in names
    assert ("autoscaler.metric", "ttft") not in names
    assert {s for s, _ in names} >= {"autoscaler.timeout_semantics", "autoscaler.metric",
                                     "autoscaler.statistic", "autoscaler.count_waiting",
                                     S.COLD_START}
    changes = df["cost_per_hour_usd_diff"].iloc[1:].abs().to_numpy()
    assert (changes[:-1] >= changes[1:]).all()
    # Paired differences are exactly variant mean minus baseline mean.
    for stem in STEMS:
        d = df[stem].iloc[1:] - df[stem].iloc[0]
        ok = d.isna() | ((d - df[f"{stem}_diff"].iloc[1:]).abs() < 1e-9)
        assert ok.all()


def test_slo_is_pinned_to_the_baseline(scenario: Scenario) -> None:
    """Switching the autoscaler's metric does not change what SLO attainment measures."""
    base = S._pinned_base(scenario)
    v = S._build(base, scenario, S.Variant("autoscaler.metric", "e2e", {"autoscaler.metric": "e2e"}))
    assert v.metric() == "e2e"
    assert v.slo_metric() == scenario.slo_metric() == "ttft"
    assert v.slo_threshold_s() == scenario.slo_threshold_s()


def test_cold_start_and_spot_variants(scenario: Scenario) -> None:
    """Cold-start factors scale every stage; spot factors appear only when spot is allowed."""
    names = {v.switch for v in S.default_variants(scenario)}
    assert S.SPOT_PREEMPTION not in names  # quickstart is on-demand only
    slow = next(v for v in S.default_variants(scenario) if v.switch == S.COLD_START
                and v.value == "x2")
    cs = scenario.fleet.cold_start
    assert slow.overrides["fleet.cold_start.provision_s.median"] == 2 * cs.provision_s.median
    assert slow.overrides["fleet.cold_start.weight_download_gb_per_s"] == (
        cs.weight_download_gb_per_s / 2)
    spot = load_scenario(QUICKSTART, [*SHORT, "deployment.allow_spot_instances=true"])
    spot_vs = [v for v in S.default_variants(spot) if v.switch == S.SPOT_PREEMPTION]
    mean = spot.fleet.spot.preemption.mean_time_to_preemption_s
    assert sorted(v.overrides[S.SPOT_PREEMPTION] for v in spot_vs) == [mean / 2, mean * 2]


def test_exact_mode_is_optional(scenario: Scenario) -> None:
    """serving.mode=exact is a variant only when asked for (or judged cheap)."""
    assert "serving.mode" not in {v.switch for v in S.default_variants(scenario)}
    assert "serving.mode" in {v.switch for v in S.default_variants(scenario, include_exact=True)}


def test_bad_factor_is_a_config_error(scenario: Scenario) -> None:
    """A non-positive factor names the switch."""
    from sim.errors import ConfigError

    with pytest.raises(ConfigError, match="fleet.cold_start"):
        S.variants_from_switches(scenario, {S.COLD_START: [0]})


def _short_scenario_file(tmp_path: Path) -> Path:
    data: dict[str, Any] = yaml.safe_load(QUICKSTART.read_text(encoding="utf-8"))
    data["workload"].update({"duration_s": 1800, "peak_at_s": 900})
    path = tmp_path / "short.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_cli_writes_table_csv_and_png(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``sim sensitivity`` prints the table and writes sensitivity.csv and sensitivity.png."""
    out = tmp_path / "sens"
    code = main(["sensitivity", str(_short_scenario_file(tmp_path)), "--seeds", "1-2",
                 "--set", "autoscaler.statistic=p90", "--out", str(out)])
    assert code == 0
    text = capsys.readouterr().out
    assert "baseline" in text and "cost $/h" in text and "autoscaler.statistic=mean" in text
    df = pd.read_csv(out / "sensitivity.csv")
    assert df["switch"].iloc[0] == S.BASELINE and len(df) > 5
    assert set(df["runs"]) == {2}
    assert not math.isnan(df["cost_per_hour_usd"].iloc[0])
    png = (out / "sensitivity.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


def test_cli_bad_seeds(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Bad --seeds: one line and exit status 2."""
    assert main(["sensitivity", str(_short_scenario_file(tmp_path)), "--seeds", "x"]) == 2
    assert "--seeds" in capsys.readouterr().err
