"""Hostile Hugging Face config.json files (serving.model_config) are ProfileErrors naming the
file and field, never a ZeroDivisionError or TypeError from the shape arithmetic."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sim.errors import ProfileError
from sim.serving.architectures import spec_from_config

LLAMA_8B: dict[str, Any] = {
    "num_hidden_layers": 32, "hidden_size": 4096, "num_attention_heads": 32,
    "num_key_value_heads": 8, "intermediate_size": 14336, "vocab_size": 128256,
}


def write(tmp_path: Path, **changes: Any) -> Path:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({**LLAMA_8B, **changes}))
    return path


def test_a_good_config_reads(tmp_path):
    """The reference shape reads to Llama-3-8B's parameter count (8.03B)."""
    spec = spec_from_config(write(tmp_path))
    assert spec.params_b == pytest.approx(8.03, abs=0.01)


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"num_attention_heads": 0}, "heads"),
        ({"hidden_size": "4096"}, "hidden"),
        ({"num_hidden_layers": 1e12}, "layers"),
        ({"num_key_value_heads": 0}, "kv"),
        ({"num_key_value_heads": 3}, "num_key_value_heads"),
        ({"num_local_experts": "eight"}, "num_experts"),
        ({"num_local_experts": 8, "num_experts_per_tok": "two"}, "num_experts_per_tok"),
        ({"num_attention_heads": True}, "heads"),
    ],
)
def test_bad_fields_are_profile_errors_naming_them(tmp_path, changes, field):
    with pytest.raises(ProfileError, match=f"config.json: .*{field}"):
        spec_from_config(write(tmp_path, **changes))
