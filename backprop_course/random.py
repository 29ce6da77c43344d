"""The package's random number generator (dropout masks, weight initialisation) and the
random factories ``randn``, ``rand``, ``randint``, ``randperm`` (torch's names)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .autograd import Tensor, _shape

_generator = np.random.default_rng()


def manual_seed(seed: int) -> None:
    """Seed the generator behind dropout, ``nn`` initialisation and the random factories
    (like ``torch.manual_seed``; the numbers differ from torch's)."""
    global _generator
    _generator = np.random.default_rng(seed)


def generator() -> np.random.Generator:
    """The current generator."""
    return _generator


def randn(*size: int, dtype: Any = np.float64, requires_grad: bool = False) -> Tensor:
    """Standard normal samples of shape ``size`` (``randn(2, 3)`` or ``randn((2, 3))``)."""
    values = _generator.standard_normal(_shape(size)).astype(dtype)
    return Tensor(values, requires_grad=requires_grad)


def rand(*size: int, dtype: Any = np.float64, requires_grad: bool = False) -> Tensor:
    """Uniform samples in [0, 1) of shape ``size``."""
    return Tensor(_generator.random(_shape(size)).astype(dtype), requires_grad=requires_grad)


def randint(*args: Any, dtype: Any = np.int64) -> Tensor:
    """Integers in [low, high): ``randint(high, size)`` or ``randint(low, high, size)``."""
    low, high, size = (0, *args) if len(args) == 2 else args
    return Tensor(_generator.integers(low, high, _shape((size,))).astype(dtype))


def randperm(n: int) -> Tensor:
    """The integers 0 .. n-1 in random order (int64)."""
    return Tensor(_generator.permutation(n).astype(np.int64))
