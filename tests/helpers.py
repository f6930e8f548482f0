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


def bursty_llm_scenario(
    name: str, *, workers: int = 1, duration_s: float = 900, rate_per_s: float = 3,
    autoscaling: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A scenario dict on the LLM service model: bursty (gamma, CV 2) chat-like traffic on
    ``workers`` 1xA100 Llama-3-8B workers, autoscaled (so knobs change cost and latency)."""
    deployment: dict[str, Any] = {
        "name": name, "model": MODEL,
        "initial_worker_config": {"min_workers": workers, "initial_workers_gpu": "A100",
                                  "initial_workers_gpu_num": 1},
    }
    if autoscaling:
        deployment["autoscaling_config"] = autoscaling
    return {
        "name": name,
        "deployment": deployment,
        "workload": {"kind": "gamma", "rate_per_s": rate_per_s, "cv": 2, "duration_s": duration_s,
                     "prompt_tokens": {"dist": "lognormal", "mean": 800, "cv": 1},
                     "output_tokens": {"dist": "lognormal", "mean": 150, "cv": 1}},
    }
