"""Unit tests for sim/serving/models.py: the model catalog, name resolution and memory fit."""

from __future__ import annotations

import pytest

from sim.errors import ProfileError
from sim.serving.models import (
    MIN_KV_TOKENS,
    MODELS,
    memory_shortfall_gb,
    min_gpus_to_fit,
    resolve_model,
)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("meta-llama/Llama-2-7b-hf", "Llama-2-7B"),
        ("meta-llama/Llama-2-7b", "Llama-2-7B"),
        ("meta-llama/Meta-Llama-3-8B", "Llama-3-8B"),
        ("meta-llama/Llama-3.1-8B", "Llama-3-8B"),
        ("meta-llama/Llama-2-70b-hf", "Llama-2-70B"),
        ("meta-llama/Llama-2-70b", "Llama-2-70B"),
        ("meta-llama/Llama-2-13b-hf", "Llama-2-13B"),
        ("meta-llama/Meta-Llama-3-70B-Instruct", "Llama-3-70B"),
        ("mistralai/Mistral-7B-Instruct-v0.2", "Mistral-7B"),
        ("mistralai/Mixtral-8x7B-Instruct-v0.1", "Mixtral-8x7B"),
        ("BAAI/bge-large-en-v1.5", "bge-large-en"),
        ("BAAI/bge-large-en", "bge-large-en"),
        ("sentence-transformers/all-MiniLM-L6-v2", "all-MiniLM-L6-v2"),
    ],
)
def test_resolves_hf_ids(name: str, expected: str) -> None:
    """Each Hugging Face id spelling (with/without -hf, Meta- prefix, 3.1) maps to its catalog entry."""
    assert resolve_model(name).name == expected


@pytest.mark.parametrize(
    "name",
    ["META-LLAMA/LLAMA-2-7B-HF", "llama-2-7b", "Llama-2-7b-chat-hf", "meta-llama/Llama-2-7b-chat",
     "llama2-7b", "Llama-2-7B"],
)
def test_resolution_case_org_and_suffix_insensitive(name: str) -> None:
    """Case, the organisation prefix and -chat/-hf suffixes do not change the resolved model."""
    assert resolve_model(name) is MODELS["Llama-2-7B"]


@pytest.mark.parametrize(
    ("name", "expected"),
    [("meta-llama/Meta-Llama-3-8B-Instruct", "Llama-3-8B"),
     ("meta-llama/Llama-3.1-8B-Instruct", "Llama-3-8B"),
     ("meta-llama/Llama-2-70b-chat-hf", "Llama-2-70B")],
)
def test_instruct_and_chat_map_to_base(name: str, expected: str) -> None:
    """Instruct/chat fine-tunes use their base architecture's spec."""
    assert resolve_model(name).name == expected


def test_kv_bytes_per_token_hand_computed() -> None:
    """KV bytes/token = 2 * layers * kv_heads * head_dim * 2 B (MHA 7B, GQA 8B and 70B)."""
    assert MODELS["Llama-2-7B"].kv_bytes_per_token == 2 * 32 * 32 * 128 * 2 == 524_288
    assert MODELS["Llama-3-8B"].kv_bytes_per_token == 2 * 32 * 8 * 128 * 2 == 131_072
    assert MODELS["Llama-2-70B"].kv_bytes_per_token == 2 * 80 * 8 * 128 * 2 == 327_680


def test_weights_gb_is_params_times_dtype() -> None:
    """Weights memory is parameters x 2 bytes (FP16) in GB of 1e9 bytes."""
    assert MODELS["Llama-2-7B"].weights_gb == pytest.approx(13.48)
    assert MODELS["Llama-2-70B"].weights_gb == pytest.approx(137.96)


def test_unknown_model_size_inferred_from_name() -> None:
    """An unknown '34b' model gets 34B parameters, a Llama-like shape and a note saying so."""
    spec = resolve_model("acme/SuperLM-34b-Instruct")
    assert spec.params_b == pytest.approx(34.0)
    assert spec.weights_gb == pytest.approx(68.0)
    assert spec.kind == "decoder" and spec.n_kv_heads == 8
    assert "assumed" in spec.note and "34" in spec.note


def test_unknown_model_millions_suffix() -> None:
    """A '125m' size is read as 0.125B parameters."""
    assert resolve_model("facebook/opt-125m").params_b == pytest.approx(0.125)


def test_unknown_moe_size_matches_mixtral_rule() -> None:
    """'8x7b' infers 7*(0.22+0.78*8) = 45.2B total, 12.5B active: within 5% of Mixtral's 46.7/12.9."""
    spec = resolve_model("someone/NewMoE-8x7b")
    assert spec.params_b == pytest.approx(45.22)
    assert spec.active_params_b == pytest.approx(12.46)
    assert spec.params_b == pytest.approx(46.7, rel=0.05)
    assert spec.active_params_b == pytest.approx(12.9, rel=0.05)
    assert "MoE" in spec.note


def test_unknown_model_without_size_raises_naming_serving_profile() -> None:
    """A model with no size in its name fails with a message naming serving.profile and the size format."""
    with pytest.raises(ProfileError) as err:
        resolve_model("acme/mystery-model")
    msg = str(err.value)
    assert "serving.profile" in msg
    assert "'7b'" in msg and "acme/mystery-model" in msg


def test_70b_does_not_fit_one_a100_and_shortfall_is_right() -> None:
    """70B on 1 x A100-40GB (40,960 MiB) misses 137.96 + 4096*327680/1e9 - 42.95*0.9 = 100.65 GB."""
    spec = MODELS["Llama-2-70B"]
    expected = 137.96 + MIN_KV_TOKENS * 327_680 / 1e9 - 40960 * 2**20 / 1e9 * 0.9
    assert memory_shortfall_gb(spec, "A100", 1) == pytest.approx(expected)
    assert expected == pytest.approx(100.647, abs=1e-3)
    assert memory_shortfall_gb(spec, "A100", 4) == 0.0


@pytest.mark.parametrize(
    ("model", "gpu", "n"),
    [("Llama-2-7B", "A100", 1), ("Llama-2-70B", "A100", 4), ("Llama-2-70B", "A100-80GB", 2),
     ("Llama-2-70B", "H100", 2), ("Llama-3-8B", "T4", 2), ("bge-large-en", "T4", 1)],
)
def test_min_gpus_to_fit(model: str, gpu: str, n: int) -> None:
    """Smallest of 1/2/4/8 GPUs holding weights plus one 4k-token KV context (encoders: weights)."""
    assert min_gpus_to_fit(MODELS[model], gpu) == n


def test_min_gpus_to_fit_raises_with_shortfall_when_nothing_fits() -> None:
    """A 400B model on T4s fails at 8 GPUs with a 'needs X GB more' message."""
    with pytest.raises(ProfileError, match=r"needs [\d.]+ GB more"):
        min_gpus_to_fit(resolve_model("big/model-400b"), "T4")
