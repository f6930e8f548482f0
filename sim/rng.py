"""Named, independent random streams spawned from one seed.

Each sub-model draws from its own child of a :class:`numpy.random.SeedSequence`, keyed by a
stable name, so changing how one sub-model draws never shifts the numbers another one sees
(common random numbers across configurations). Global random state is never touched.
"""

from __future__ import annotations

import hashlib

import numpy as np

from sim.errors import ConfigError


def _name_key(name: str) -> int:
    # A stable 32-bit key per stream name (Python's hash() is salted per process).
    return int.from_bytes(hashlib.blake2s(name.encode(), digest_size=4).digest(), "little")


class Streams:
    """Factory of named generators for one run: ``Streams(seed).get("arrivals")``."""

    def __init__(self, seed: int) -> None:
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
            raise ConfigError(
                f"expected an integer seed >= 0, got {seed!r}", field="sim.seed"
            )
        if seed < 0:
            raise ConfigError(f"expected a seed >= 0, got {seed}", field="sim.seed")
        self.seed = int(seed)

    def get(self, name: str) -> np.random.Generator:
        """A fresh generator for stream ``name``; the same (seed, name) always gives the same numbers."""
        seq = np.random.SeedSequence(entropy=self.seed, spawn_key=(_name_key(name),))
        return np.random.Generator(np.random.PCG64(seq))
