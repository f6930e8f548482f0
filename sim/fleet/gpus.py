"""GPU types the simulator knows: memory, memory bandwidth and dense FP16/BF16 throughput.

Names follow the price catalog (`../shared/data/gpu_prices`, SkyPilot spelling). Figures are
vendor datasheet values (NVIDIA product briefs; SXM variants for A100/H100/H200, where the
clouds' 8-GPU instances use SXM). They are used to check that a model fits a worker shape
and to scale performance profiles to GPUs that were not profiled.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from sim.errors import ConfigError


@dataclass(frozen=True)
class GpuSpec:
    """One GPU type."""

    name: str
    memory_gb: float  # usable HBM/GDDR per GPU, GB (1e9 bytes)
    hbm_gbps: float  # memory bandwidth, GB/s
    fp16_tflops: float  # dense FP16/BF16 tensor throughput, TFLOP/s


GPU_SPECS: dict[str, GpuSpec] = {
    g.name: g
    for g in (
        GpuSpec("T4", 16, 320, 65),
        GpuSpec("V100", 16, 900, 125),
        GpuSpec("V100-32GB", 32, 900, 125),
        GpuSpec("A10G", 24, 600, 70),
        GpuSpec("A10", 24, 600, 125),
        GpuSpec("L4", 24, 300, 121),
        GpuSpec("L40S", 48, 864, 362),
        GpuSpec("A40", 48, 696, 150),
        GpuSpec("A6000", 48, 768, 155),
        GpuSpec("A100", 40, 1555, 312),
        GpuSpec("A100-80GB", 80, 2039, 312),
        GpuSpec("H100", 80, 3350, 989),
        GpuSpec("H200", 141, 4800, 989),
    )
}

# Spellings users type for the same hardware.
_ALIASES = {
    "A100-40GB": "A100",
    "A100_40GB": "A100",
    "A100-80G": "A100-80GB",
    "A100_80GB": "A100-80GB",
    "H100-80GB": "H100",
    "H100-SXM": "H100",
    "RTXA6000": "A6000",
    "RTX-A6000": "A6000",
}


def canonical_gpu(name: str) -> str:
    """The catalog spelling of ``name`` (case-insensitive, common aliases); ConfigError if unknown."""
    if name in GPU_SPECS:
        return name
    upper = name.upper()
    for known in GPU_SPECS:
        if known.upper() == upper:
            return known
    for alias, known in _ALIASES.items():
        if alias.upper() == upper:
            return known
    close = difflib.get_close_matches(name, list(GPU_SPECS), n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise ConfigError(f"unknown GPU {name!r}{hint} (known: {', '.join(GPU_SPECS)})")


def gpu_spec(name: str) -> GpuSpec:
    """The spec of GPU ``name`` (any accepted spelling)."""
    return GPU_SPECS[canonical_gpu(name)]
