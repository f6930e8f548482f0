"""End-to-end fidelity against Argonne's vLLM measurements: every group within the doc's bound.

Validation layer: errors are recomputed from ``../shared/data/argonne_llm_inference_bench``
(skipped when absent) and the bounds are read from docs/fidelity.md itself.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from sim import fidelity_e2e as fe
from sim.cli import main
from sim.serving.profiles import Profile

DOC = Path(__file__).resolve().parents[1] / "docs" / "fidelity.md"
BOUND = re.compile(r"^- (?P<kind>e2e|calibrated) `(?P<model>\S+) (?P<gpu>\S+) TP(?P<tp>\d+)` (?P<q>latency|ttft|tpot): "
                   r"median \|error\| ≤ (?P<med>\d+)%, worst ≤ (?P<worst>\d+)%\s*$", re.M)

needs_data = pytest.mark.skipif(not (fe.DEFAULT_DATA / fe.ARGONNE).is_dir(),
                                reason="public measurements not found in ../shared/data")


def bounds(kind: str = "e2e") -> dict[tuple[str, str, int, str], tuple[float, float]]:
    return {(m["model"], m["gpu"], int(m["tp"]), m["q"]): (int(m["med"]) / 100,
                                                            int(m["worst"]) / 100)
            for m in BOUND.finditer(DOC.read_text(encoding="utf-8")) if m["kind"] == kind}


def _profile(kv: int) -> Profile:
    return Profile(model="m", gpu="A100", gpus=1, decode_base_s=0.01, decode_per_seq_s=0.001,
                   decode_per_ctx_token_s=1e-6, prefill_base_s=0.002, prefill_per_token_s=1e-4,
                   prefill_per_token2_s=0.0, embed_base_s=0.0, embed_per_token_s=0.0,
                   kv_capacity_tokens=kv, source="test")


def test_predict_batch_hand_computed() -> None:
    """2 requests of 10 in / 3 out: prefill 0.01 + 0.002 + 2 x 0.001 s, then 2 decode steps."""
    out = fe.predict_batch(_profile(10_000), 2, 10, 3)
    prefill = 0.01 + 0.002 + 2 * 10 * 1e-4
    steps = [0.01 + 0.001 * 2 + 1e-6 * 2 * (10 + k) for k in (1, 2)]
    assert out["ttft"] == pytest.approx(prefill)
    assert out["latency"] == pytest.approx(prefill + sum(steps))
    assert out["tpot"] == pytest.approx(sum(steps) / 2)


def test_predict_batch_runs_in_waves_when_kv_is_short() -> None:
    """KV room for one 13-token request at a time: two waves of one, twice one wave's time."""
    one = fe.predict_batch(_profile(13), 1, 10, 3)
    two = fe.predict_batch(_profile(13), 2, 10, 3)
    assert two["latency"] == pytest.approx(2 * one["latency"])


def test_doc_has_bounds() -> None:
    assert len(bounds()) >= 20


@needs_data
@pytest.mark.parametrize("kind", ["e2e", "calibrated"])
def test_every_group_within_documented_bound(kind: str) -> None:
    """Median and worst |error| of each (model, GPU, TP, quantity) within the doc's bound:
    the default engine, and sim calibrate fitted on half of each group's rows."""
    df = fe.argonne_errors(engine="vllm-0.14") if kind == "e2e" else fe.calibrated_holdout()
    summary = fe.group_summary(df)
    documented = bounds(kind)
    seen = set()
    for r in summary.itertuples():
        key = (str(r.model), str(r.gpu), int(r.tp), str(r.quantity))
        assert key in documented, f"group {key} has no bound in docs/fidelity.md"
        med, worst = documented[key]
        assert r.median_abs <= med + 1e-9, f"{key}: median |error| {r.median_abs:.1%} > {med:.0%}"
        assert r.worst_abs <= worst + 1e-9, f"{key}: worst |error| {r.worst_abs:.1%} > {worst:.0%}"
        seen.add(key)
    assert seen == set(documented), "a documented group is no longer computed"


@needs_data
def test_rows_cover_every_nvidia_vllm_row_of_known_models() -> None:
    """Nothing silently dropped: all NVIDIA vLLM rows except the models the doc names as
    outside the architecture table (DeciLM-7B and six single-row models)."""
    raw = pd.read_csv(fe.DEFAULT_DATA / fe.ARGONNE / "All_results.csv")
    raw = raw[(raw["Framework"] == "vLLM") & raw["Hardware"].isin(list(fe.GPU_MAP))]
    outside = ("DeciLM", "Aquila", "bloom", "gpt-j", "huggyllama", "opt-6.7b", "Qwen1.5")
    keep = ~raw["Model"].str.contains("|".join(outside), regex=True)
    assert len(fe.argonne_rows()) == int(keep.sum())


def test_profile_show_prints_the_error_group(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["profile", "show", "meta-llama/Meta-Llama-3-8B", "H100", "1"]) == 0
    out = capsys.readouterr().out
    assert "end-to-end error (vllm-0.14 vs Argonne vLLM, Llama-3-8B on 1 x H100" in out
    assert main(["profile", "show", "Qwen/Qwen2.5-32B", "H200", "1"]) == 0
    assert "not measured end to end" in capsys.readouterr().out
