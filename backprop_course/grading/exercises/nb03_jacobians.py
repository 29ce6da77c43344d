"""Exercises of notebook 03: vectors, Jacobians and ReLU."""

from __future__ import annotations

import numpy as np

from ..exercise import VJPExercise, register


def _relu_random(rng: np.random.Generator) -> dict:
    shape = tuple(rng.integers(1, 7, size=rng.integers(1, 3)))
    x = rng.standard_normal(shape)
    x[np.abs(x) < 1e-3] = 0.5  # keep away from the kink for the numerical gradient
    return {"x": x}


def _torch_relu(x):  # imported lazily: torch is only needed when checking
    import torch

    return torch.relu(x)


register(VJPExercise(
    id="relu_backward",
    title="ReLU backward: dL/dx = dL/dy * [x > 0]",
    signature="relu_backward(x, grad_out)",
    inputs=("x",),
    wrt=("x",),
    forward=lambda x: np.maximum(x, 0),
    torch_forward=_torch_relu,
    given=({"x": [1.0, -2.0, 3.0, -1.0], "grad_out": [4.0, -1.0, 5.0, 9.0]},),
    random_case=_relu_random,
    edge=({"x": [0.0, 0.0, 2.0, -2.0], "grad_out": [1.0, -3.0, 2.0, 5.0]},),
    edge_at_kink=True,
))
