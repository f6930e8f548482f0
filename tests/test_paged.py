"""The paged-KV scheduler (vLLM's): chunked prefill, recompute preemption, fast == exact.

Conformance cases with hand-computed timelines (docs/conformance.md style): a service-level
host drives ``PagedLlmService`` with a profile whose iteration times are round numbers.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import simpy

from sim import simulate
from sim.engine.paged import PagedLlmService, default_batched_tokens
from sim.serving.profiles import Profile
from tests.test_engine import llm_scenario


class Host:
    """The engine as the service sees it: a clock, token lengths, and two callbacks."""

    def __init__(self, prompts: list[int], outputs: list[int]) -> None:
        self.env = simpy.Environment()
        self.prompt, self.output = prompts, outputs
        self.service_time = [0.0] * len(prompts)
        self.first: dict[int, float] = {}
        self.done: dict[int, float] = {}

    @property
    def now(self) -> float:
        return float(self.env.now)

    def schedule(self, delay: float, callback: Any) -> None:
        self.env.timeout(delay).callbacks.append(callback)

    def schedule_at(self, time: float, callback: Any) -> None:
        self.schedule(max(0.0, time - self.env.now), callback)

    def first_token(self, rid: int, t: float) -> None:
        assert rid not in self.first, "a first token is produced once"
        self.first[rid] = t

    def completed(self, worker_id: int, rids: list[int], t: float) -> None:
        for rid in rids:
            self.done[rid] = t


def profile(kv: int, per_token: float) -> Profile:
    """1 s per iteration, + ``per_token`` s per prefilled token; no other terms."""
    return Profile(model="m", gpu="A100", gpus=1, decode_base_s=1.0, decode_per_seq_s=0.0,
                   decode_per_ctx_token_s=0.0, prefill_base_s=0.0, prefill_per_token_s=per_token,
                   prefill_per_token2_s=0.0, embed_base_s=0.0, embed_per_token_s=0.0,
                   kv_capacity_tokens=kv, source="test")


def run(host: Host, svc: PagedLlmService, rids: list[int]) -> None:
    for rid in rids:
        assert svc.can_accept(rid)
        svc.accept(rid)
    host.env.run()


@pytest.mark.parametrize("exact", [False, True])
def test_chunked_prefill_ttft_is_the_end_of_the_last_chunk(exact: bool) -> None:
    """A 250-token prompt with a 100-token budget: chunks of 100, 100, 50.

    Iterations take 1 s + 0.01 s per prefilled token: 2.0, 2.0, 1.5 s, so the first token
    is at 5.5 s; the second (last) output token one decode step later, at 6.5 s.
    """
    host = Host([250], [2])
    svc = PagedLlmService(host, 0, profile(10_000, 0.01), 8, exact, 100)
    run(host, svc, [0])
    assert host.first[0] == pytest.approx(5.5)
    assert host.done[0] == pytest.approx(6.5)


@pytest.mark.parametrize("exact", [False, True])
def test_recompute_preemption_timeline(exact: bool) -> None:
    """KV room for 20 tokens; two requests of 5 prompt + 10 output tokens, both at t = 0.

    A prefills in iteration 0 (first token at 1 s), B joins at the next boundary (first
    token at 2 s). During iteration i their KV is (5 + i) + (5 + i - 1) = 9 + 2i tokens,
    which overflows 20 at i = 6: B, the newest, is preempted after 5 tokens and waits until
    its 10-token recompute (prompt + 5 generated) fits. A finishes its 10 tokens at the end
    of iteration 9 (t = 10); B recomputes in iteration 10 (its 6th token) and produces the
    last 4 in iterations 11..14: done at t = 15. B's first token is not produced again.
    """
    host = Host([5, 5], [10, 10])
    svc = PagedLlmService(host, 0, profile(20, 0.0), 8, exact, 100)
    run(host, svc, [0, 1])
    assert host.first == {0: pytest.approx(1.0), 1: pytest.approx(2.0)}
    assert host.done[0] == pytest.approx(10.0)
    assert host.done[1] == pytest.approx(15.0)
    assert svc.preemptions == 1 and svc.load == 0 and svc.pf_kv == 0


def test_max_num_seqs_caps_running_requests() -> None:
    """With max_num_seqs 1 the second request waits at the gateway until the first ends."""
    host = Host([5, 5], [3, 3])
    svc = PagedLlmService(host, 0, profile(1000, 0.0), 1, False, 100)
    svc.accept(0)
    assert not svc.can_accept(1)


def test_default_batched_tokens_follows_vllm() -> None:
    assert default_batched_tokens("H100") == 8192
    assert default_batched_tokens("A100-80GB") == 2048
    assert default_batched_tokens("L40S") == 2048


def _pressure(mode: str, admission: str) -> Any:
    """Long prompts (chunked) and long outputs on half the memory: preemptions happen."""
    return llm_scenario(
        {"kind": "poisson", "rate_per_s": 2.0, "requests": 400,
         "prompt_tokens": {"dist": "lognormal", "mean": 2500, "cv": 0.8},
         "output_tokens": {"dist": "lognormal", "mean": 1200, "cv": 0.8}},
        mode=mode, serving={"max_batch": 256, "kv_admission": admission,
                            "gpu_memory_utilization": 0.5},
        autoscaler={"policy": "fixed"}, gateway={"request_timeout_s": 1e6})


@pytest.mark.validation
def test_fast_and_exact_agree_under_preemption_and_chunking() -> None:
    """Per-request times equal to 1e-9 relative with chunked prefills and preemptions."""
    fast = simulate(_pressure("fast", "paged"), seed=5).requests
    exact = simulate(_pressure("exact", "paged"), seed=5).requests
    np.testing.assert_array_equal(fast["status"], exact["status"])
    for col in ("first_token_s", "completion_s"):
        np.testing.assert_allclose(fast[col], exact[col], rtol=1e-9, atol=0, err_msg=col)


def test_pressure_drops_nothing_and_preempts() -> None:
    """Under KV pressure every request still ends (the same ones as with reserve admission)."""
    paged = simulate(_pressure("fast", "paged"), seed=5).requests
    reserve = simulate(_pressure("fast", "reserve"), seed=5).requests
    np.testing.assert_array_equal(paged["status"], reserve["status"])
    assert set(paged["status"]) <= {"completed", "failed"}
