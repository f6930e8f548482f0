"""sim calibrate: readers, the exact fit, and a round trip through vLLM-style result JSON.

The JSON files are written here from the simulator's own per-request output for bursts
(``--request-rate inf``) of several sizes and lengths; the fit on half of them must predict
the other half within the error it prints (its leave-one-out worst error).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sim import simulate
from sim.calibrate import FITTED, Run, calibrate, features, read_runs
from sim.cli import main
from sim.errors import ProfileError
from sim.serving.profiles import get_profile
from tests.test_engine import llm_scenario

TRUE = {"decode_base_s": 0.012, "decode_per_seq_s": 4e-5, "decode_per_ctx_token_s": 4e-8,
        "prefill_base_s": 1e-3, "prefill_per_token_s": 6e-5, "prefill_per_token2_s": 2e-9}


def test_features_reproduce_the_replay_arithmetic() -> None:
    """features @ coefficients equals fidelity_e2e.predict_batch for the same profile."""
    from sim.fidelity_e2e import predict_batch

    prof = get_profile("Llama-3-8B", "A100", 1)
    c = np.array([getattr(prof, k) for k in FITTED])
    for n, p, o in [(1, 128, 128), (16, 1024, 1024), (64, 2048, 2048)]:
        want = predict_batch(prof, n, p, o)
        f = features(Run(n, p, o), prof.kv_capacity_tokens)
        assert f["latency"] @ c == pytest.approx(want["latency"], rel=1e-12)
        assert f["tpot"] @ c == pytest.approx(want["tpot"], rel=1e-12)


def test_exact_data_give_back_the_coefficients() -> None:
    """Runs replayed from known coefficients are fitted back to them."""
    kv = 200_000
    runs = []
    c = np.array([TRUE[k] for k in FITTED])
    for n in (1, 4, 16, 64):
        for p in (128, 512, 2048):
            f = features(Run(n, p, 256), kv)
            runs.append(Run(n, p, 256, ttft=float(f["ttft"] @ c), tpot=float(f["tpot"] @ c),
                            latency=float(f["latency"] @ c)))
    cal = calibrate(runs, kv)
    for k in FITTED:
        assert cal.coefficients[k] == pytest.approx(TRUE[k], rel=1e-6)
    assert cal.in_sample["latency"]["worst_abs"] < 1e-9 and not cal.warnings


def _bench_json(tmp: Path, n: int, p: int, o: int) -> Path:
    """A vLLM bench-serve style result for a burst of n requests, from the simulator."""
    sc = llm_scenario({"kind": "poisson", "rate_per_s": 1e6, "requests": n, "prompt_tokens": p,
                       "output_tokens": o},
                      serving={"max_batch": 256, "kv_admission": "reserve"},
                      autoscaler={"policy": "fixed"}, gateway={"request_timeout_s": 1e6})
    r = simulate(sc, seed=1).requests
    start = float(r["arrival_s"].min())
    ttft = (r["first_token_s"] - r["arrival_s"]).to_numpy()
    tpot = ((r["completion_s"] - r["first_token_s"]) / max(o - 1, 1)).to_numpy()
    doc: dict[str, Any] = {
        "date": "20260101-000000", "backend": "vllm", "request_rate": "inf", "burstiness": 1.0,
        "max_concurrency": None, "duration": float(r["completion_s"].max() - start),
        "completed": n, "input_lens": [p] * n, "output_lens": [o] * n,
        "ttfts": ttft.tolist(), "itls": [[float(t)] * (o - 1) for t in tpot],
        "errors": [""] * n}
    path = tmp / f"burst-{n}-{p}-{o}.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def test_round_trip_from_bench_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Fit on half of the bursts, predict the other half within the printed LOO error."""
    paths = [_bench_json(tmp_path, n, p, o) for n in (1, 4, 8, 16, 32, 64) for p, o in
             ((256, 128), (1024, 256), (512, 512))]
    fit, held = paths[::2], paths[1::2]
    out = tmp_path / "profile.yaml"
    assert main(["calibrate", *map(str, fit), "--model", "meta-llama/Meta-Llama-3-8B",
                 "--gpu", "A100", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "leave-one-out" in printed and out.is_file()
    kv = get_profile("Llama-3-8B", "A100", 1).kv_capacity_tokens
    cal = calibrate(read_runs(fit), kv)
    for run in read_runs(held):
        pred = cal.predict(run, kv)
        for m in ("ttft", "tpot", "latency"):
            meas = getattr(run, m)
            bound = max(cal.loo[m]["worst_abs"], cal.in_sample[m]["worst_abs"])
            assert abs(pred[m] / meas - 1) <= bound + 0.02, (run.label, m)
    # The written profile runs a scenario.
    prof = get_profile("Llama-3-8B", "A100", 1, path=str(out))
    assert prof.source.startswith("sim calibrate")


def test_bad_inputs_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "runs.csv"
    bad.write_text("requests,prompt,output,ttft_s\n4,100,x,0.1\n")
    with pytest.raises(ProfileError, match=r"runs.csv, line 2: output must be a number"):
        read_runs([bad])
    rate = tmp_path / "r.json"
    rate.write_text(json.dumps({"input_lens": [1], "output_lens": [2], "ttfts": [0.1],
                                "request_rate": 4.0}))
    with pytest.raises(ProfileError, match="only bursts"):
        read_runs([rate])
    assert main(["calibrate", str(tmp_path / "missing.json"), "--model", "Llama-3-8B",
                 "--gpu", "A100"]) == 2
