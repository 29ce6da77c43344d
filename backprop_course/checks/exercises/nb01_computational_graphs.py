"""Exercises of notebook 01: computational graphs and the chain rule."""

from __future__ import annotations

import numpy as np

from ...autograd import tensor
from ..diagnose import Mistake
from ..exercise import (
    ValueExercise,
    VJPExercise,
    large_elementwise,
    random_shape,
    register,
    small_ints,
)
from ..kinds import Kind

NOTEBOOK = "01_computational_graphs"


# ------------------------------------------------- f = (x + y) * z by hand
def _xyz(rng: np.random.Generator) -> dict[str, float]:
    """The student's x, y, z: small integers like the deck's (-2, 5, -4), chosen so that
    every known slip (and a wrong sign) gives a value different from the right one and
    from every other slip's: df/dx in {z, -z, 1}, df/dz in {q, -q, z, 1} all distinct;
    nor are the deck's answers (-4, -4, 3) right."""
    while True:
        x, y, z = (float(v) for v in small_ints(rng, 3, -6, 6))
        q = x + y
        if q not in (0.0, 1.0, -1.0, 3.0, z, -z) and z not in (1.0, -1.0, -4.0):
            return {"x": x, "y": y, "z": z}


def _by_hand(numbers: dict[str, float]) -> dict[str, float]:
    """df/dx, df/dy, df/dz of f = (x + y) * z at the student's numbers, from the engine."""
    x, y, z = (tensor(numbers[k], requires_grad=True) for k in "xyz")
    ((x + y) * z).backward()
    return {"dfdx": x.grad.item(), "dfdy": y.grad.item(), "dfdz": z.grad.item()}


def _by_hand_slips(numbers: dict[str, float]) -> dict[str, list[tuple[Kind, str, float]]]:
    """The values the usual slips give, with q = x + y the add node."""
    add_local = ("1 is the add gate's local gradient dq/d{0} alone; the chain rule "
                 "multiplies it by the upstream df/dq = z")
    return {"dfdx": [(Kind.CHAIN, add_local.format("x"), 1.0)],
            "dfdy": [(Kind.CHAIN, add_local.format("y"), 1.0)],
            "dfdz": [(Kind.NO_SWAP, "that is z itself; the mul gate hands each input the "
                                    "other one: df/dz = q = x + y", numbers["z"]),
                     (Kind.CHAIN, "1 is df/df alone; the mul gate multiplies it by its "
                                  "other input, q = x + y", 1.0)]}


register(ValueExercise(
    id="add_mul_by_hand",
    notebook=NOTEBOOK,
    title="f = (x + y) * z at your own x, y, z: the gradients by hand",
    provides=_xyz,
    solve=_by_hand,
    answer_names=("dfdx", "dfdy", "dfdz"),
    mistakes=_by_hand_slips,
))


# ------------------------------------------------------------ the mul gate
def _mul_given(rng: np.random.Generator) -> list[dict]:
    """Like the deck's mul node f = q * z reached with df/df = 1, then a vector."""
    q, z = small_ints(rng, 2)
    return [{"a": q, "b": z, "grad_out": 1.0},
            {"a": small_ints(rng, 3), "b": small_ints(rng, 3), "grad_out": small_ints(rng, 3)}]


def _mul_random(rng: np.random.Generator) -> dict:
    shape = random_shape(rng)
    return {"a": rng.standard_normal(shape), "b": rng.standard_normal(shape),
            "grad_out": rng.standard_normal(shape)}


def _mul_edge(rng: np.random.Generator) -> list[dict]:
    """Zeros, and magnitudes twelve orders apart."""
    big, tiny = 10.0 ** rng.integers(5, 8), 10.0 ** -rng.integers(5, 8)
    return [{"a": [0.0, 0.0, big], "b": [0.0, float(small_ints(rng, ())), -tiny],
             "grad_out": small_ints(rng, 3)}]


def _mul_mistakes(case: dict) -> list[Mistake]:
    a, b, g = (np.asarray(case[k], dtype=np.float64) for k in ("a", "b", "grad_out"))
    return [Mistake(Kind.NO_SWAP, "you multiplied the upstream gradient by the input itself; "
                    "the mul gate swaps its inputs: dL/da = grad_out * b and "
                    "dL/db = grad_out * a", (g * a, g * b))]


def _torch_mul(a, b):
    return a * b


register(VJPExercise(
    id="mul_backward",
    notebook=NOTEBOOK,
    title="The multiply gate: z = a * b elementwise",
    answer="mul_backward",
    signature="mul_backward(a, b, grad_out)",
    inputs=("a", "b"),
    wrt=("a", "b"),
    forward=lambda a, b: a * b,
    torch_forward=_torch_mul,
    given=_mul_given,
    random=_mul_random,
    edge=_mul_edge,
    large=large_elementwise("a", "b"),
    mistakes=_mul_mistakes,
))


# ---------------------------------------------- e = (y - w^T x)^2 with respect to w
def _sq_given(rng: np.random.Generator) -> list[dict]:
    return [{"w": small_ints(rng, 2, -3, 3), "x": small_ints(rng, 2, -3, 3),
             "y": float(small_ints(rng, ())), "grad_out": 1.0},
            {"w": small_ints(rng, 3, -3, 3), "x": small_ints(rng, 3, -3, 3),
             "y": float(small_ints(rng, ())), "grad_out": float(small_ints(rng, (), 1, 3))}]


def _sq_random(rng: np.random.Generator) -> dict:
    d = int(rng.integers(2, 7))
    return {"w": rng.standard_normal(d), "x": rng.standard_normal(d),
            "y": float(rng.standard_normal() * 2), "grad_out": float(rng.standard_normal())}


def _sq_large(rng: np.random.Generator) -> dict:
    """D = 1,000,000 weights: a backward pass is one product, finite differences need
    2,000,000 forward passes of 1,000,000 multiplications each."""
    d = 1_000_000
    return {"w": rng.standard_normal(d) / np.sqrt(d), "x": rng.standard_normal(d),
            "y": float(rng.standard_normal()), "grad_out": float(rng.standard_normal())}


def _sq_mistakes(case: dict) -> list[Mistake]:
    w, x = np.asarray(case["w"], dtype=np.float64), np.asarray(case["x"], dtype=np.float64)
    y, g = float(case["y"]), float(case["grad_out"])
    residual = y - w @ x
    return [Mistake(Kind.CHAIN, "you stopped at de/dh = -2 (y - h); multiply by the local "
                    "gradient dh/dw = x", (np.full_like(w, -2 * residual * g),)),
            Mistake(Kind.LOCAL, "you returned dh/dw = x alone; multiply by the upstream "
                    "de/dh = -2 (y - h)", (x * g,))]


def _torch_sq(w, x, y):
    return (y - w @ x) ** 2


register(VJPExercise(
    id="squared_error_grad_w",
    notebook=NOTEBOOK,
    title="The chain rule: e = (y - w^T x)^2, de/dw",
    answer="squared_error_grad_w",
    signature="squared_error_grad_w(w, x, y, grad_out)",
    inputs=("w", "x", "y"),
    wrt=("w",),
    forward=lambda w, x, y: (y - w @ x) ** 2,
    torch_forward=_torch_sq,
    given=_sq_given,
    random=_sq_random,
    large=_sq_large,
    mistakes=_sq_mistakes,
))
