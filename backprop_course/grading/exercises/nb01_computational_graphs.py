"""Exercises of notebook 01: computational graphs and the chain rule."""

from __future__ import annotations

import numpy as np

from ...autograd import tensor
from ..exercise import ValueExercise, VJPExercise, random_shape, register

# ------------------------------------------------- f = (x + y) * z by hand


#: The deck's inputs.
DECK_XYZ = {"x": -2.0, "y": 5.0, "z": -4.0}


def _deck_graph_grads() -> dict[str, float]:
    """df/dx, df/dy, df/dz of f = (x + y) * z at the deck's x, y, z, from the engine."""
    x, y, z = (tensor(DECK_XYZ[k], requires_grad=True) for k in "xyz")
    ((x + y) * z).backward()
    return {"dfdx": x.grad.item(), "dfdy": y.grad.item(), "dfdz": z.grad.item()}


def _by_hand_mistakes() -> dict[str, dict[str, float]]:
    """The values the usual slips give, with q = x + y the add node."""
    add_local = ("chain: 1 is the add gate's local gradient dq/d{0} alone; the chain rule "
                 "multiplies it by the upstream df/dq = z")
    swap = ("no_swap: that is {0} itself; the mul gate hands each input the other one: "
            "df/d{0} = q = x + y")
    return {"dfdx": {add_local.format("x"): 1.0},
            "dfdy": {add_local.format("y"): 1.0},
            "dfdz": {swap.format("z"): DECK_XYZ["z"],
                     "chain: 1 is df/df alone; the mul gate multiplies it by its other "
                     "input, q = x + y": 1.0}}


register(ValueExercise(
    id="add_mul_by_hand",
    title="f = (x + y) * z at x=-2, y=5, z=-4: the gradients by hand",
    answers={name: (lambda name=name: _deck_graph_grads()[name])
             for name in ("dfdx", "dfdy", "dfdz")},
    mistakes=_by_hand_mistakes(),
))


# ------------------------------------------------------------ the mul gate
def _mul_random(rng: np.random.Generator) -> dict:
    shape = random_shape(rng)
    return {"a": rng.standard_normal(shape), "b": rng.standard_normal(shape),
            "grad_out": rng.standard_normal(shape)}


def _mul_mistakes(case: dict) -> dict[str, tuple]:
    a, b, g = (np.asarray(case[k], dtype=np.float64) for k in ("a", "b", "grad_out"))
    return {
        "no_swap: you multiplied the upstream gradient by the input itself; the mul gate "
        "swaps its inputs: dL/da = grad_out * b and dL/db = grad_out * a": (g * a, g * b),
    }


def _torch_mul(a, b):
    return a * b


register(VJPExercise(
    id="mul_backward",
    title="The multiply gate: z = a * b elementwise",
    signature="mul_backward(a, b, grad_out)",
    inputs=("a", "b"),
    wrt=("a", "b"),
    forward=lambda a, b: a * b,
    torch_forward=_torch_mul,
    given=(
        # the deck's mul node f = q * z with q = 3, z = -4, reached with df/df = 1
        {"a": 3.0, "b": -4.0, "grad_out": 1.0},
        {"a": [3.0, -2.0, 0.5], "b": [-4.0, 5.0, 2.0], "grad_out": [2.0, -1.0, 3.0]},
    ),
    random_case=_mul_random,
    edge=({"a": [0.0, 0.0, 1e6], "b": [0.0, 7.0, -1e-6], "grad_out": [5.0, -2.0, 1.0]},),
    mistakes=_mul_mistakes,
))


# ---------------------------------------------- e = (y - w^T x)^2 with respect to w
def _sq_random(rng: np.random.Generator) -> dict:
    d = int(rng.integers(2, 7))
    return {"w": rng.standard_normal(d), "x": rng.standard_normal(d),
            "y": float(rng.standard_normal() * 2), "grad_out": float(rng.standard_normal())}


def _sq_mistakes(case: dict) -> dict[str, tuple]:
    w, x = np.asarray(case["w"], dtype=np.float64), np.asarray(case["x"], dtype=np.float64)
    y, g = float(case["y"]), float(case["grad_out"])
    residual = y - w @ x
    return {
        "chain: you stopped at de/dh = -2 (y - h); multiply by the local gradient "
        "dh/dw = x": (np.full_like(w, -2 * residual * g),),
        "local: you returned dh/dw = x alone; multiply by the upstream de/dh = -2 (y - h)":
            (x * g,),
    }


def _torch_sq(w, x, y):
    return (y - w @ x) ** 2


register(VJPExercise(
    id="squared_error_grad_w",
    title="The chain rule: e = (y - w^T x)^2, de/dw",
    signature="squared_error_grad_w(w, x, y, grad_out)",
    inputs=("w", "x", "y"),
    wrt=("w",),
    forward=lambda w, x, y: (y - w @ x) ** 2,
    torch_forward=_torch_sq,
    given=({"w": [1.0, 2.0], "x": [3.0, -1.0], "y": 5.0, "grad_out": 1.0},
           {"w": [0.5, -1.0, 2.0], "x": [1.0, 2.0, -1.0], "y": -1.0, "grad_out": 3.0}),
    random_case=_sq_random,
    mistakes=_sq_mistakes,
))
