"""The functional interface, as ``torch.nn.functional``: one function per operation.

Each calls the :class:`~backprop_course.function.Function` of :mod:`backprop_course.ops`
that holds its forward and backward. ``(*)`` in a shape means any shape.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import ops
from . import random as _random
from .autograd import Tensor


def relu(x: Tensor) -> Tensor:
    """``max(0, x)`` elementwise.

    Shape
    -----
    x : (*);  out : (*), same as x
    """
    return ops.ReLU.apply(x)


def sigmoid(x: Tensor) -> Tensor:
    """``1 / (1 + exp(-x))`` elementwise.

    Shape
    -----
    x : (*);  out : (*), same as x
    """
    return ops.Sigmoid.apply(x)


def tanh(x: Tensor) -> Tensor:
    """``tanh(x)`` elementwise.

    Shape
    -----
    x : (*);  out : (*), same as x
    """
    return ops.Tanh.apply(x)


def exp(x: Tensor) -> Tensor:
    """``exp(x)`` elementwise.

    Shape
    -----
    x : (*);  out : (*), same as x
    """
    return ops.Exp.apply(x)


def log(x: Tensor) -> Tensor:
    """Natural logarithm, elementwise.

    Shape
    -----
    x : (*);  out : (*), same as x
    """
    return ops.Log.apply(x)


def sqrt(x: Tensor) -> Tensor:
    """Square root, elementwise.

    Shape
    -----
    x : (*);  out : (*), same as x
    """
    return ops.Sqrt.apply(x)


def clamp(x: Tensor, min: float | None = None, max: float | None = None) -> Tensor:  # noqa: A002
    """Limit the values to [min, max]; either bound may be None (``torch.clamp``).

    Shape
    -----
    x : (*);  out : (*), same as x
    """
    if min is None and max is None:
        raise RuntimeError("clamp: at least one of 'min' or 'max' must not be None")
    return ops.Clamp.apply(x, min, max)


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``x @ weight.T + bias``.

    Shape
    -----
    x : (N, in) or (*, in);  weight : (out, in);  bias : (out,);  out : (N, out) or (*, out)
    """
    return ops.Linear.apply(x, weight, bias)


def softmax(x: Tensor, dim: int = -1, *, axis: int | None = None) -> Tensor:
    """``exp(x) / exp(x).sum(dim)``, computed stably (``axis`` is numpy's name for ``dim``).

    Shape
    -----
    x : (*);  out : (*), same as x, summing to 1 along ``dim``
    """
    return ops.Softmax.apply(x, dim if axis is None else axis)


def log_softmax(x: Tensor, dim: int = -1, *, axis: int | None = None) -> Tensor:
    """``log(softmax(x, dim))``, computed stably.

    Shape
    -----
    x : (*);  out : (*), same as x
    """
    return ops.LogSoftmax.apply(x, dim if axis is None else axis)


def cross_entropy(logits: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """Softmax cross-entropy of logits against integer classes.

    Shape
    -----
    logits : (N, C);  target : (N,) integers in [0, C);  out : (), a number
    """
    target = target.data if isinstance(target, Tensor) else np.asarray(target)
    if not np.issubdtype(target.dtype, np.integer):
        raise TypeError(f"cross_entropy expects integer class targets, got {target.dtype}")
    return ops.SoftmaxCrossEntropy.apply(logits, target, reduction)


def mse_loss(input: Tensor, target: Any, reduction: str = "mean") -> Tensor:  # noqa: A002
    """Mean (or summed) squared difference.

    Shape
    -----
    input : (*);  target : (*), same as input;  out : (), a number
    """
    return ops.MSELoss.apply(input, target, reduction)


def dropout(x: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    """Zero each element with probability ``p`` and scale the rest by 1/(1-p) (training
    only). The mask comes from ``bc.manual_seed``'s generator.

    Shape
    -----
    x : (*);  out : (*), same as x
    """
    if not 0 <= p <= 1:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0:
        return x
    keep = _random.generator().random(x.shape) >= p
    mask = (keep / (1 - p) if p < 1 else keep * 0.0).astype(x.dtype)
    return ops.Dropout.apply(x, mask)
