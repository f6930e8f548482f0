"""Validation of the engine against queueing theory (DESIGN §9).

Plain queueing service models (``serving.kind`` exponential / fixed, ``max_batch: 1``) on a
fixed fleet of ``c`` workers make the simulator an M/M/c or M/D/1 queue, whose mean wait and
probability of waiting are known in closed form (Erlang C, Pollaczek-Khinchine). Each check
uses a confidence interval from batch means over the run (not a hand-tuned tolerance): the
per-request waits in arrival order are cut into ``BATCHES`` consecutive batches after a
warm-up, and the batch means are treated as approximately independent normal samples.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sim import scenario_from_dict, simulate

pytestmark = pytest.mark.validation

BATCHES = 30
# Two-sided 99% Student t quantile with BATCHES - 1 = 29 degrees of freedom (t_{0.995, 29}),
# so that no scipy is needed at test time.
T_99_29 = 2.756386
WARMUP_SHARE = 0.05  # first 5% of requests dropped (the run starts empty)
# A request that found a free worker is dispatched in the arrival callback; its queue time is
# 0 up to the float error of the event clock.
ZERO_WAIT_S = 1e-9


def erlang_c(c: int, a: float) -> float:
    """Probability that an arrival waits in M/M/c with offered load ``a = lambda/mu`` (Erlang C)."""
    rho = a / c
    if not 0 < rho < 1:
        raise ValueError("unstable queue")
    term = 1.0  # a^k / k!, built iteratively to avoid factorial overflow
    total = 0.0
    for k in range(c):
        total += term
        term *= a / (k + 1)
    # term is now a^c / c!
    tail = term / (1 - rho)
    return tail / (total + tail)


def mmc_mean_wait(c: int, lam: float, mu: float) -> float:
    """Mean time in queue of M/M/c: C(c, a) / (c mu - lambda)."""
    return erlang_c(c, lam / mu) / (c * mu - lam)


def pk_mean_wait(lam: float, mean_s: float, second_moment: float) -> float:
    """Pollaczek-Khinchine mean time in queue of M/G/1: lambda E[S^2] / (2 (1 - rho))."""
    rho = lam * mean_s
    return lam * second_moment / (2 * (1 - rho))


def queue_scenario(
    c: int,
    lam: float,
    requests: int,
    kind: str = "exponential",
    mean_s: float = 1.0,
    **serving: Any,
) -> Any:
    """A fixed fleet of ``c`` single-server workers fed by Poisson arrivals at ``lam``."""
    return scenario_from_dict(
        {
            "name": f"m{kind[0]}{c}",
            "deployment": {
                "name": "queue",
                "model": "meta-llama/Meta-Llama-3-8B",
                "initial_worker_config": {
                    "min_workers": c,
                    "initial_workers_gpu": "A100",
                    "initial_workers_gpu_num": 1,
                },
            },
            "workload": {
                "kind": "poisson",
                "rate_per_s": lam,
                "requests": requests,
                "prompt_tokens": 10,
                "output_tokens": 10,
            },
            "serving": {"kind": kind, "mean_s": mean_s, "max_batch": 1, **serving},
            "autoscaler": {"policy": "fixed"},
            "gateway": {"request_timeout_s": 1e6},
        }
    )


def batch_means_ci(values: np.ndarray) -> tuple[float, float]:
    """(grand mean, 99% half-width) from BATCHES batch means of ``values`` (in arrival order)."""
    start = int(len(values) * WARMUP_SHARE)
    kept = values[start:]
    size = len(kept) // BATCHES
    means = kept[: size * BATCHES].reshape(BATCHES, size).mean(axis=1)
    grand = float(means.mean())
    half = T_99_29 * float(means.std(ddof=1)) / math.sqrt(BATCHES)
    return grand, half


def waits_of(res: Any) -> np.ndarray:
    """Per-request gateway waits in arrival order (all requests must have completed)."""
    req = res.requests
    assert res.summary["requests"]["completed"] == len(req)
    return req["queue_s"].to_numpy()


def test_erlang_c_formula_known_values() -> None:
    """The Erlang C helper reproduces textbook values (M/M/1: C = rho; c=2, a=1: C = 1/3)."""
    assert erlang_c(1, 0.5) == pytest.approx(0.5)
    assert erlang_c(2, 1.0) == pytest.approx(1 / 3)
    # M/M/1 mean wait rho / (mu - lambda).
    assert mmc_mean_wait(1, 0.8, 1.0) == pytest.approx(0.8 / 0.2)


MMC_CASES = [
    # (c, rho, requests): more requests where the queue relaxes slowly (rho near 1).
    (1, 0.5, 200_000),
    (4, 0.7, 200_000),
    (8, 0.8, 300_000),
    (16, 0.9, 500_000),
]


@pytest.mark.parametrize(("c", "rho", "n"), MMC_CASES)
def test_mmc_mean_wait_and_p_wait_match_erlang_c(c: int, rho: float, n: int) -> None:
    """M/M/c mean queueing delay and P(wait) each lie in their 99% batch-means CI around Erlang C."""
    lam = c * rho
    res = simulate(queue_scenario(c, lam, n), seed=11 + c)
    waits = waits_of(res)
    wq_theory = mmc_mean_wait(c, lam, 1.0)
    pw_theory = erlang_c(c, lam)
    wq, wq_half = batch_means_ci(waits)
    pw, pw_half = batch_means_ci((waits > ZERO_WAIT_S).astype(np.float64))
    print(
        f"\nM/M/{c} rho={rho}: Wq sim {wq:.4f} +- {wq_half:.4f} (99% CI, {100 * wq_half / wq_theory:.1f}%"
        f" of theory) vs Erlang C {wq_theory:.4f} (error {100 * (wq / wq_theory - 1):+.2f}%);"
        f" P(wait) sim {pw:.4f} +- {pw_half:.4f} vs {pw_theory:.4f}"
    )
    assert abs(wq - wq_theory) <= wq_half, (wq, wq_half, wq_theory)
    assert abs(pw - pw_theory) <= pw_half, (pw, pw_half, pw_theory)
    # The interval must be tight enough to mean something (waits are strongly autocorrelated
    # near saturation, hence the long runs there).
    assert wq_half < 0.2 * wq_theory
    assert pw_half < 0.03
    # Service is exponential with mean 1: the completed requests' service times say so too.
    req = res.requests
    service = (req["completion_s"] - req["dispatch_s"]).to_numpy()
    assert service.mean() == pytest.approx(1.0, rel=0.02)


def test_mmc_servers_as_workers_times_slots() -> None:
    """Two workers with max_batch 4 of plain queueing service are M/M/8: mean wait and P(wait) match Erlang C."""
    workers, slots, rho = 2, 4, 0.8
    c = workers * slots
    lam = c * rho
    base = queue_scenario(workers, lam, 300_000)
    sc = scenario_from_dict(
        {**base.model_dump(mode="json"), "serving": {"kind": "exponential", "max_batch": slots}}
    )
    waits = waits_of(simulate(sc, seed=21))
    wq, half = batch_means_ci(waits)
    pw, pw_half = batch_means_ci((waits > ZERO_WAIT_S).astype(np.float64))
    print(
        f"\n2 workers x 4 slots (M/M/8) rho=0.8: Wq {wq:.4f} +- {half:.4f} vs {mmc_mean_wait(c, lam, 1.0):.4f};"
        f" P(wait) {pw:.4f} +- {pw_half:.4f} vs {erlang_c(c, lam):.4f}"
    )
    assert abs(wq - mmc_mean_wait(c, lam, 1.0)) <= half
    assert abs(pw - erlang_c(c, lam)) <= pw_half


@pytest.mark.slow
def test_mm8_one_million_requests_within_5_percent_of_erlang_c() -> None:
    """Acceptance: one M/M/8 run at rho=0.8 with 1,000,000 requests has mean wait within 5% of Erlang C."""
    c, rho = 8, 0.8
    lam = c * rho
    res = simulate(queue_scenario(c, lam, 1_000_000), seed=2024)
    assert res.summary["requests"]["arrived"] == 1_000_000
    waits = waits_of(res)
    wq = float(waits.mean())
    theory = mmc_mean_wait(c, lam, 1.0)
    err = wq / theory - 1
    _, half = batch_means_ci(waits)
    print(
        f"\nM/M/8 rho=0.8, 1e6 requests: mean wait {wq:.5f} s vs Erlang C {theory:.5f} s,"
        f" error {100 * err:+.3f}% (99% batch-means half-width {100 * half / theory:.2f}%)"
    )
    assert abs(err) < 0.05


@pytest.mark.parametrize("rho", [0.5, 0.8])
def test_md1_mean_wait_matches_pollaczek_khinchine(rho: float) -> None:
    """M/D/1 (serving.kind fixed) mean wait lies in its 99% batch-means CI around Pollaczek-Khinchine."""
    s = 2.0
    lam = rho / s
    res = simulate(queue_scenario(1, lam, 200_000, kind="fixed", mean_s=s), seed=7)
    waits = waits_of(res)
    theory = pk_mean_wait(lam, s, s * s)
    wq, half = batch_means_ci(waits)
    print(
        f"\nM/D/1 rho={rho}: Wq sim {wq:.4f} +- {half:.4f} vs P-K {theory:.4f}"
        f" (error {100 * (wq / theory - 1):+.2f}%)"
    )
    assert abs(wq - theory) <= half
    assert half < 0.1 * theory
    req = res.requests
    # Deterministic service: every request takes exactly mean_s on its worker.
    np.testing.assert_allclose(req["completion_s"] - req["dispatch_s"], s, rtol=1e-9)


def test_mg1_lognormal_mean_wait_matches_pollaczek_khinchine() -> None:
    """M/G/1 with lognormal service (cv 2) has the P-K mean wait lambda E[S^2] / (2(1-rho))."""
    s, cv, rho = 1.0, 2.0, 0.6
    lam = rho / s
    res = simulate(queue_scenario(1, lam, 300_000, kind="lognormal", mean_s=s, cv=cv), seed=5)
    waits = waits_of(res)
    theory = pk_mean_wait(lam, s, s * s * (1 + cv * cv))
    wq, half = batch_means_ci(waits)
    print(f"\nM/G/1 lognormal cv=2 rho=0.6: Wq sim {wq:.4f} +- {half:.4f} vs P-K {theory:.4f}")
    assert abs(wq - theory) <= half


def test_littles_law_time_average_queue_length() -> None:
    """Little's law: time-average queue length equals arrival rate x mean wait (sample path and theory)."""
    c, rho = 8, 0.8
    lam = c * rho
    res = simulate(queue_scenario(c, lam, 200_000), seed=3)
    s = res.summary
    horizon = s["sim"]["horizon_s"]
    waits = waits_of(res)
    lq = s["queue"]["mean_len"]
    lam_hat = s["requests"]["arrived"] / horizon
    # On a run that starts and ends empty, the queue-length integral is exactly the sum of waits.
    err_path = lq / (lam_hat * waits.mean()) - 1
    err_theory = lq / (lam * mmc_mean_wait(c, lam, 1.0)) - 1
    print(
        f"\nLittle's law M/M/8 rho=0.8: L_q {lq:.5f} vs lambda_hat*W_q {lam_hat * waits.mean():.5f}"
        f" (error {100 * err_path:+.2e}%), vs lambda*W_q(Erlang C) {lam * mmc_mean_wait(c, lam, 1.0):.5f}"
        f" (error {100 * err_theory:+.2f}%)"
    )
    assert abs(err_path) < 1e-6
    # Against theory, through the batch-means CI of the wait.
    wq, half = batch_means_ci(waits)
    assert abs(lq - lam * mmc_mean_wait(c, lam, 1.0)) <= lam * half + abs(lq - lam_hat * wq)


def test_littles_law_with_timeouts_and_horizon() -> None:
    """The queue-length integral counts timed-out requests until arrival+timeout and waiting ones until the horizon."""
    # An overloaded M/M/2 (rho = 1.5) with a short timeout, cut by a horizon mid-run.
    timeout, horizon = 5.0, 2000.0
    base = queue_scenario(2, 3.0, 10_000)
    sc = scenario_from_dict(
        {
            **base.model_dump(mode="json"),
            "gateway": {"request_timeout_s": timeout},
            "sim": {"horizon_s": horizon},
        }
    )
    res = simulate(sc, seed=9)
    req = res.requests
    s = res.summary
    assert s["requests"]["failed_by_reason"]["timeout"] > 100
    assert s["sim"]["horizon_s"] == pytest.approx(horizon)
    dispatched = req["dispatch_s"].notna()
    timed_out = req["fail_reason"] == "timeout"
    waiting = ~dispatched & ~timed_out
    total_wait = (
        (req["dispatch_s"] - req["arrival_s"])[dispatched].sum()
        + timeout * timed_out.sum()
        + (horizon - req["arrival_s"][waiting]).sum()
    )
    assert s["queue"]["mean_len"] * horizon == pytest.approx(total_wait, rel=1e-9)
    # Timed-out requests fail exactly when their wait hits the limit.
    np.testing.assert_allclose(
        req.loc[timed_out, "completion_s"], req.loc[timed_out, "arrival_s"] + timeout, rtol=1e-12
    )


AZURE_CONV = (
    Path(__file__).resolve().parents[1]
    / ".."
    / "shared"
    / "data"
    / "azure_llm_2023"
    / "AzureLLMInferenceTrace_conv.csv"
)


@pytest.mark.skipif(not AZURE_CONV.exists(), reason="Azure LLM 2023 conv trace not available")
def test_littles_law_sample_path_llm_with_autoscaling() -> None:
    """Little's law on the gateway queue holds exactly for continuous batching with scale-ups (Azure conv)."""
    sc = scenario_from_dict(
        {
            "name": "az",
            "deployment": {
                "name": "az",
                "model": "meta-llama/Meta-Llama-3-8B",
                "initial_worker_config": {
                    "min_workers": 1,
                    "initial_workers_gpu": "A100",
                    "initial_workers_gpu_num": 1,
                },
                "autoscaling_config": {"scaling_up_timeout_sec": 60},
            },
            "workload": {"kind": "trace", "path": str(AZURE_CONV), "format": "azure"},
            "serving": {"kind": "llm", "max_batch": 16},
            "gateway": {"request_timeout_s": 1e6},
        }
    )
    res = simulate(sc, seed=1)
    s = res.summary
    assert s["workers"]["scale_ups"] > 0
    # Requests longer than Llama-3-8B's 8k context are rejected on arrival and never queue.
    r = s["requests"]
    assert r["completed"] + r["failed_by_reason"]["too_large"] == r["arrived"]
    waits = res.requests["queue_s"].dropna().to_numpy()
    assert waits.mean() > 1.0  # the queue matters in this run
    area = s["queue"]["mean_len"] * s["sim"]["horizon_s"]
    err = area / waits.sum() - 1
    print(
        f"\nLittle's law, Azure conv LLM run with {s['workers']['scale_ups']} scale-ups: error {err:+.2e}"
    )
    assert abs(err) < 1e-9


def test_llm_max_batch_1_is_md1() -> None:
    """An LLM worker with max_batch 1 and constant lengths is M/D/1: constant service time and P-K mean wait."""
    # Also a regression test for free prefills on queue refills (fixed in bc1e562).
    from sim.serving.profiles import get_profile

    prof = get_profile("meta-llama/Meta-Llama-3-8B", "A100", 1)
    p, out, rho = 1000, 20, 0.7
    s = prof.iteration_s(0, 0, [p]) + sum(prof.decode_step_s(1, p + k) for k in range(1, out))
    lam = rho / s
    sc = scenario_from_dict(
        {
            "name": "md1-llm",
            "deployment": {
                "name": "md1-llm",
                "model": "meta-llama/Meta-Llama-3-8B",
                "initial_worker_config": {
                    "min_workers": 1,
                    "initial_workers_gpu": "A100",
                    "initial_workers_gpu_num": 1,
                },
            },
            "workload": {
                "kind": "poisson",
                "rate_per_s": lam,
                "requests": 100_000,
                "prompt_tokens": p,
                "output_tokens": out,
            },
            "serving": {"kind": "llm", "max_batch": 1},
            "autoscaler": {"policy": "fixed"},
            "gateway": {"request_timeout_s": 1e6},
        }
    )
    res = simulate(sc, seed=1)
    req = res.requests
    service = (req["completion_s"] - req["dispatch_s"]).to_numpy()
    np.testing.assert_allclose(service, s, rtol=1e-9)
    waits = waits_of(res)
    theory = pk_mean_wait(lam, s, s * s)
    wq, half = batch_means_ci(waits)
    print(f"\nLLM max_batch 1 as M/D/1 rho=0.7: Wq sim {wq:.4f} +- {half:.4f} vs P-K {theory:.4f}")
    assert abs(wq - theory) <= half
