"""The functional interface, as ``torch.nn.functional``: one function per operation.

Each calls the :class:`~backprop_course.function.Function` of :mod:`backprop_course.ops`
that holds its forward and backward.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import random as _random
from .autograd import Tensor
from .ops import (
    Dropout,
    Exp,
    Linear,
    Log,
    LogSoftmax,
    MSELoss,
    ReLU,
    Sigmoid,
    Softmax,
    SoftmaxCrossEntropy,
    Tanh,
)


def relu(x: Tensor) -> Tensor:
    return ReLU.apply(x)


def sigmoid(x: Tensor) -> Tensor:
    return Sigmoid.apply(x)


def tanh(x: Tensor) -> Tensor:
    return Tanh.apply(x)


def exp(x: Tensor) -> Tensor:
    return Exp.apply(x)


def log(x: Tensor) -> Tensor:
    return Log.apply(x)


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``x @ weight.T + bias``; x (N, in), weight (out, in), bias (out,) -> (N, out)."""
    return Linear.apply(x, weight, bias)


def softmax(x: Tensor, dim: int = -1) -> Tensor:
    return Softmax.apply(x, dim)


def log_softmax(x: Tensor, dim: int = -1) -> Tensor:
    return LogSoftmax.apply(x, dim)


def cross_entropy(logits: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """Softmax cross-entropy of logits (N, C) against integer classes (N,)."""
    target = target.data if isinstance(target, Tensor) else np.asarray(target)
    if not np.issubdtype(target.dtype, np.integer):
        raise TypeError(f"cross_entropy expects integer class targets, got {target.dtype}")
    return SoftmaxCrossEntropy.apply(logits, target, reduction)


def mse_loss(input: Tensor, target: Any, reduction: str = "mean") -> Tensor:  # noqa: A002
    return MSELoss.apply(input, target, reduction)


def dropout(x: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    """Zero each element with probability ``p`` and scale the rest by 1/(1-p) (training
    only). The mask comes from ``bc.manual_seed``'s generator."""
    if not 0 <= p <= 1:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0:
        return x
    keep = _random.generator().random(x.shape) >= p
    mask = (keep / (1 - p) if p < 1 else keep * 0.0).astype(x.dtype)
    return Dropout.apply(x, mask)
