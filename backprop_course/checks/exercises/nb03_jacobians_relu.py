"""Exercises of notebook 03: vectors, Jacobians and ReLU."""

from __future__ import annotations

import numpy as np

from ..diagnose import Mistake
from ..exercise import VJPExercise, large_elementwise, random_shape, register, small_ints
from ..kinds import Kind
from ..references import torch_elementwise

NOTEBOOK = "03_jacobians_relu"


def _relu_given(rng: np.random.Generator) -> list[dict]:
    """Like the deck's x = (1, -2, 3, -1): nonzero small integers, some negative."""
    x = np.abs(small_ints(rng, 4)) * rng.permutation([1.0, -1.0, 1.0, -1.0])
    return [{"x": x, "grad_out": small_ints(rng, 4, -9, 9)}]


def _relu_random(rng: np.random.Generator) -> dict:
    shape = tuple(int(s) for s in rng.integers(1, 7, size=rng.integers(1, 3)))
    x = rng.standard_normal(shape)
    x[np.abs(x) < 1e-3] = 0.5  # keep away from the kink for the numerical gradient
    return {"x": x, "grad_out": rng.standard_normal(shape)}


def _relu_edge(rng: np.random.Generator) -> list[dict]:
    """Inputs exactly at the kink x = 0, next to two positive and two negative ones."""
    magnitudes = np.abs(small_ints(rng, 6))
    x = rng.permutation(np.array([1.0, 1.0, -1.0, -1.0, 0.0, 0.0]) * magnitudes)
    return [{"x": x, "grad_out": small_ints(rng, 6)}]


def _relu_mistakes(case: dict) -> list[Mistake]:
    x, g = (np.asarray(case[k], dtype=np.float64) for k in ("x", "grad_out"))
    return [Mistake(Kind.KINK, "at x = 0 ReLU's gradient is 0 (torch's convention): use "
                    "x > 0, not x >= 0", (g * (x >= 0),)),
            Mistake(Kind.UPSTREAM_MASK, "you masked by the sign of the upstream gradient; the "
                    "mask is [x > 0], where the input was positive", (g * (g > 0),)),
            Mistake(Kind.ACTIVATION_OF_GRAD, "you applied ReLU to the upstream gradient; keep "
                    "grad_out where x > 0 (whatever its sign) and 0 elsewhere",
                    (np.maximum(g, 0),))]



register(VJPExercise(
    id="relu_backward",
    notebook=NOTEBOOK,
    title="ReLU backward: dL/dx = dL/dy * [x > 0]",
    answer="relu_backward",
    signature="relu_backward(x, grad_out)",
    inputs=("x",),
    wrt=("x",),
    forward=lambda x: np.maximum(x, 0),
    torch_forward=torch_elementwise("relu"),
    given=_relu_given,
    random=_relu_random,
    edge=_relu_edge,
    large=large_elementwise("x"),
    edge_at_kink=True,
    mistakes=_relu_mistakes,
))


# ------------------------------------------------------------------ tanh
def _tanh_given(rng: np.random.Generator) -> list[dict]:
    return [{"x": small_ints(rng, 4, -3, 3), "grad_out": small_ints(rng, 4, -9, 9)}]


def _tanh_random(rng: np.random.Generator) -> dict:
    shape = random_shape(rng)
    return {"x": rng.standard_normal(shape) * 2, "grad_out": rng.standard_normal(shape)}


def _tanh_edge(rng: np.random.Generator) -> list[dict]:
    """Saturation (|x| large: gradient ~ 0) in a 2-D input."""
    far = rng.uniform(20, 40)
    return [{"x": [[0.0, far], [-far, rng.uniform(0.1, 1)]],
             "grad_out": small_ints(rng, (2, 2))}]


def _tanh_mistakes(case: dict) -> list[Mistake]:
    x, g = (np.asarray(case[k], dtype=np.float64) for k in ("x", "grad_out"))
    t = np.tanh(x)
    return [Mistake(Kind.INPUT_NOT_OUTPUT, "you used x where the local gradient needs "
                    "tanh(x): 1 - tanh(x)**2", (g * (1 - x**2),)),
            Mistake(Kind.LOCAL_DERIVATIVE, "you forgot the square: the local gradient is "
                    "1 - tanh(x)**2", (g * (1 - t),)),
            Mistake(Kind.LOCAL_DERIVATIVE, "you multiplied by tanh(x)**2; the local gradient "
                    "is 1 - tanh(x)**2", (g * t**2,))]



register(VJPExercise(
    id="tanh_backward",
    notebook=NOTEBOOK,
    title="tanh backward: a diagonal Jacobian, applied as an elementwise product",
    answer="tanh_backward",
    signature="tanh_backward(x, grad_out)",
    inputs=("x",),
    wrt=("x",),
    forward=lambda x: np.tanh(x),
    torch_forward=torch_elementwise("tanh"),
    given=_tanh_given,
    random=_tanh_random,
    edge=_tanh_edge,
    large=large_elementwise("x", spread=2.0),
    mistakes=_tanh_mistakes,
))
