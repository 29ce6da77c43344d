"""The package's random number generator (dropout masks, weight initialisation)."""

from __future__ import annotations

import numpy as np

_generator = np.random.default_rng()


def manual_seed(seed: int) -> None:
    """Seed the generator behind dropout and ``nn`` initialisation (like ``torch.manual_seed``)."""
    global _generator
    _generator = np.random.default_rng(seed)


def generator() -> np.random.Generator:
    """The current generator."""
    return _generator
