"""Numerically stable numpy functions, written once for the engine, the checks and the
widgets."""

from __future__ import annotations

import numpy as np


def stable_sigmoid(x: np.ndarray) -> np.ndarray:
    """``1 / (1 + exp(-x))`` elementwise, without overflow for large ``|x|``.

    Shape: any; the output has the input's shape.
    """
    x = np.asarray(x)
    z = np.exp(-np.abs(x))  # never overflows
    return np.where(x >= 0, 1 / (1 + z), z / (1 + z))


def log_softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """``x - log(sum(exp(x), axis))``, stable for large logits (the max is subtracted
    first, so ``exp`` never overflows).

    Shape: any; the output has the input's shape.
    """
    x = np.asarray(x)
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
