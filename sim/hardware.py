"""GPU types the simulator knows: memory, memory bandwidth and dense FP16/BF16 throughput.

Names follow the price catalog (`../shared/data/gpu_prices`, SkyPilot spelling). Memory is the
per-GPU size the clouds report (the catalog's ``MemoryInfo.SizeInMiB``, e.g. 40,960 MiB for an
A100-40GB), converted to GB of 1e9 bytes, since model weights and KV bytes are counted in
bytes; A40 (not in the catalog) is nvidia-smi's 46,068 MiB. Bandwidth and FLOPs are vendor
datasheet values (NVIDIA product briefs; SXM variants for A100/H100/H200, where the clouds'
8-GPU instances use SXM). They are used to check that a model fits a worker shape, to size the
KV cache, and to scale performance profiles to GPUs that were not profiled.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from sim.errors import ConfigError

_MIB = 1024 * 1024 / 1e9  # GB per MiB


@dataclass(frozen=True)
class GpuSpec:
    """One GPU type."""

    name: str
    memory_gb: float  # memory per GPU, GB (1e9 bytes)
    hbm_gbps: float  # memory bandwidth, GB/s
    fp16_tflops: float  # dense FP16/BF16 tensor throughput, TFLOP/s


GPU_SPECS: dict[str, GpuSpec] = {
    g.name: g
    for g in (
        GpuSpec("T4", 16384 * _MIB, 320, 65),
        GpuSpec("V100", 16384 * _MIB, 900, 125),
        GpuSpec("V100-32GB", 32768 * _MIB, 900, 125),
        GpuSpec("A10G", 22888 * _MIB, 600, 70),
        GpuSpec("A10", 24576 * _MIB, 600, 125),
        GpuSpec("L4", 22888 * _MIB, 300, 121),
        GpuSpec("L40S", 45776 * _MIB, 864, 362),
        GpuSpec("A40", 46068 * _MIB, 696, 150),
        GpuSpec("A6000", 49152 * _MIB, 768, 155),
        GpuSpec("A100", 40960 * _MIB, 1555, 312),
        GpuSpec("A100-80GB", 81920 * _MIB, 2039, 312),
        GpuSpec("H100", 81920 * _MIB, 3350, 989),
        GpuSpec("H200", 144384 * _MIB, 4800, 989),
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
