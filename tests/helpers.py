"""Small scenario builders shared by the CLI and input-validation tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

MODEL = "meta-llama/Meta-Llama-3-8B"


def small_scenario(
    name: str, *, workers: int, requests: int, mean_s: float, **extra: Any
) -> dict[str, Any]:
    """A fast scenario dict: Poisson arrivals (1/s) on ``workers`` A100 workers with an
    exponential service time of mean ``mean_s`` (plain queueing, no token model)."""
    data: dict[str, Any] = {
        "name": name,
        "deployment": {
            "name": name,
            "model": MODEL,
            "initial_worker_config": {
                "min_workers": workers,
                "initial_workers_gpu": "A100",
                "initial_workers_gpu_num": 1,
            },
        },
        "workload": {
            "kind": "poisson",
            "rate_per_s": 1.0,
            "requests": requests,
            "prompt_tokens": 100,
            "output_tokens": 20,
        },
        "serving": {"kind": "exponential", "mean_s": mean_s, "max_batch": 1},
    }
    data.update(extra)
    return data


def write_yaml(path: Path, data: dict[str, Any]) -> Path:
    """Write ``data`` as YAML to ``path``."""
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path
