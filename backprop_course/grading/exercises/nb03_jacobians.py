"""Exercises of notebook 03: vectors, Jacobians and ReLU."""

from __future__ import annotations

import numpy as np

from ..exercise import VJPExercise, random_shape, register


def _relu_random(rng: np.random.Generator) -> dict:
    shape = tuple(int(s) for s in rng.integers(1, 7, size=rng.integers(1, 3)))
    x = rng.standard_normal(shape)
    x[np.abs(x) < 1e-3] = 0.5  # keep away from the kink for the numerical gradient
    return {"x": x, "grad_out": rng.standard_normal(shape)}


def _relu_mistakes(case: dict) -> dict[str, tuple]:
    x, g = (np.asarray(case[k], dtype=np.float64) for k in ("x", "grad_out"))
    return {
        "kink: at x = 0 ReLU's gradient is 0 (torch's convention): use x > 0, not x >= 0":
            (g * (x >= 0),),
        "upstream_mask: you masked by the sign of the upstream gradient; the mask is "
        "[x > 0], where the input was positive": (g * (g > 0),),
        "relu_of_grad: you applied ReLU to the upstream gradient; keep grad_out where "
        "x > 0 (whatever its sign) and 0 elsewhere": (np.maximum(g, 0),),
    }


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
    mistakes=_relu_mistakes,
))


# ------------------------------------------------------------------ tanh
def _tanh_random(rng: np.random.Generator) -> dict:
    shape = random_shape(rng)
    return {"x": rng.standard_normal(shape) * 2, "grad_out": rng.standard_normal(shape)}


def _tanh_mistakes(case: dict) -> dict[str, tuple]:
    x, g = (np.asarray(case[k], dtype=np.float64) for k in ("x", "grad_out"))
    t = np.tanh(x)
    return {
        "input: you used x where the local gradient needs tanh(x): 1 - tanh(x)**2":
            (g * (1 - x**2),),
        "square: you forgot the square: the local gradient is 1 - tanh(x)**2":
            (g * (1 - t),),
        "output: you multiplied by tanh(x)**2; the local gradient is 1 - tanh(x)**2":
            (g * t**2,),
    }


def _torch_tanh(x):
    import torch

    return torch.tanh(x)


register(VJPExercise(
    id="tanh_backward",
    title="tanh backward: a diagonal Jacobian, applied as an elementwise product",
    signature="tanh_backward(x, grad_out)",
    inputs=("x",),
    wrt=("x",),
    forward=lambda x: np.tanh(x),
    torch_forward=_torch_tanh,
    given=({"x": [1.0, -2.0, 3.0, -1.0], "grad_out": [4.0, -1.0, 5.0, 9.0]},),
    random_case=_tanh_random,
    # saturation (|x| large: gradient ~ 0) and a 2-D input
    edge=({"x": [[0.0, 25.0], [-25.0, 0.5]], "grad_out": [[3.0, 1.0], [1.0, -2.0]]},),
    mistakes=_tanh_mistakes,
))
