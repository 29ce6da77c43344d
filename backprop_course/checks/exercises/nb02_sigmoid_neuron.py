"""Exercises of notebook 02: the sigmoid neuron worked example and the gate patterns."""

from __future__ import annotations

import numpy as np

from ...numerics import stable_sigmoid
from ..diagnose import Mistake
from ..exercise import VJPExercise, large_elementwise, random_shape, register, small_ints
from ..kinds import Kind
from ..references import torch_elementwise

NOTEBOOK = "02_sigmoid_neuron"


# ----------------------------------------------------- the sigmoid neuron
def _neuron_forward(w: np.ndarray, x: np.ndarray) -> np.ndarray:
    return stable_sigmoid(w[0] * x[0] + w[1] * x[1] + w[2])


def _torch_neuron(w, x):
    import torch

    return torch.sigmoid(w[0] * x[0] + w[1] * x[1] + w[2])


def _neuron_given(rng: np.random.Generator) -> list[dict]:
    """Like the deck's w = (2, -3, -3), x = (-1, -2): small integers, reached with
    df/df = 1 and with another upstream gradient."""
    w, x = small_ints(rng, 3, -3, 3), small_ints(rng, 2, -2, 2)
    return [{"w": w, "x": x, "grad_out": 1.0},
            {"w": w, "x": x, "grad_out": float(rng.choice([-2.5, -2.0, -1.5, 1.5, 2.0, 2.5]))}]


def _neuron_random(rng: np.random.Generator) -> dict:
    return {"w": rng.standard_normal(3), "x": rng.standard_normal(2),
            "grad_out": float(rng.standard_normal() * 2)}


def _neuron_mistakes(case: dict) -> list[Mistake]:
    w, x = np.asarray(case["w"], dtype=np.float64), np.asarray(case["x"], dtype=np.float64)
    g = float(case["grad_out"])
    f = float(_neuron_forward(w, x))
    ds = g * f * (1 - f)
    return [Mistake(Kind.CHAIN, "you skipped the sigmoid gate's local gradient f (1 - f) "
                    "(grad_s = grad_f * (1 - f) * f)", (g * np.array([x[0], x[1], 1.0]),
                                                         g * w[:2])),
            Mistake(Kind.NO_SWAP, "each mul gate must swap: grad_w0 = grad_s * x0 and "
                    "grad_x0 = grad_s * w0, you have them the other way round",
                    (ds * np.array([w[0], w[1], 1.0]), ds * x))]


register(VJPExercise(
    id="sigmoid_neuron_backward",
    notebook=NOTEBOOK,
    title="The sigmoid neuron f = sigma(w0 x0 + w1 x1 + w2), backward by hand",
    answer="sigmoid_neuron_backward",
    signature="sigmoid_neuron_backward(w, x, grad_out)",
    inputs=("w", "x"),
    wrt=("w", "x"),
    forward=_neuron_forward,
    torch_forward=_torch_neuron,
    given=_neuron_given,
    random=_neuron_random,
    mistakes=_neuron_mistakes,
))


# ----------------------------------------------------- the sigmoid gate
def _sigmoid_given(rng: np.random.Generator) -> list[dict]:
    return [{"x": small_ints(rng, 4, -2, 2), "grad_out": small_ints(rng, 4, -2, 2)}]


def _sigmoid_random(rng: np.random.Generator) -> dict:
    shape = random_shape(rng)
    return {"x": rng.standard_normal(shape) * 3, "grad_out": rng.standard_normal(shape)}


def _sigmoid_edge(rng: np.random.Generator) -> list[dict]:
    """Saturation: far from 0 the gradient all but vanishes (and exp(-x) overflows)."""
    far = rng.uniform(30, 800)
    return [{"x": [-far, far, 0.0, -rng.uniform(5, 10)],
             "grad_out": [1.0, 1.0, float(rng.integers(1, 5)), rng.uniform(50, 100)]}]


def _sigmoid_mistakes(case: dict) -> list[Mistake]:
    x, g = (np.asarray(case[k], dtype=np.float64) for k in ("x", "grad_out"))
    s = stable_sigmoid(x)
    return [Mistake(Kind.LOCAL_DERIVATIVE, "you multiplied by sigma(x) itself; the local "
                    "gradient is sigma(x) (1 - sigma(x))", (g * s,)),
            Mistake(Kind.LOCAL_DERIVATIVE, "you multiplied by 1 - sigma(x) only; the local "
                    "gradient is sigma(x) (1 - sigma(x))", (g * (1 - s),)),
            Mistake(Kind.INPUT_NOT_OUTPUT, "you computed x (1 - x) from the input; the local "
                    "gradient s (1 - s) takes s = sigma(x), the gate's output",
                    (g * x * (1 - x),))]



register(VJPExercise(
    id="sigmoid_backward",
    notebook=NOTEBOOK,
    title="The sigmoid gate: dL/dx = dL/dy * sigma(x) (1 - sigma(x))",
    answer="sigmoid_backward",
    signature="sigmoid_backward(x, grad_out)",
    inputs=("x",),
    wrt=("x",),
    forward=stable_sigmoid,
    torch_forward=torch_elementwise("sigmoid"),
    given=_sigmoid_given,
    random=_sigmoid_random,
    edge=_sigmoid_edge,
    large=large_elementwise("x", spread=3.0),
    mistakes=_sigmoid_mistakes,
))


# ----------------------------------------------------- the max gate
def _distinct(rng: np.random.Generator, shape: tuple) -> tuple[np.ndarray, np.ndarray]:
    a, b = small_ints(rng, shape), small_ints(rng, shape)
    b[a == b] += 1  # no ties in the given case
    return a, b


def _max_given(rng: np.random.Generator) -> list[dict]:
    a, b = _distinct(rng, (3,))
    return [{"a": a, "b": b, "grad_out": small_ints(rng, 3) / 2}]


def _max_random(rng: np.random.Generator) -> dict:
    shape = tuple(int(s) for s in rng.integers(2, 6, size=rng.integers(1, 3)))
    a = rng.standard_normal(shape)
    b = rng.standard_normal(shape)
    b[np.abs(a - b) < 1e-3] += 0.5  # no ties: the numerical gradient needs a gap
    return {"a": a, "b": b, "grad_out": rng.standard_normal(shape)}


def _max_edge(rng: np.random.Generator) -> list[dict]:
    """Ties: where a == b each input is the maximum."""
    a, b = _distinct(rng, (5,))
    ties = rng.permutation(5)[:3]
    b[ties] = a[ties]
    return [{"a": a, "b": b, "grad_out": small_ints(rng, 5)}]


def _max_mistakes(case: dict) -> list[Mistake]:
    a, b, g = (np.asarray(case[k], dtype=np.float64) for k in ("a", "b", "grad_out"))
    ties = ("where a == b both inputs are the maximum; give each half of the upstream "
            "gradient (torch's convention)")
    found = []
    if np.any(a == b):
        found = [Mistake(Kind.TIES, ties + " (you gave it to neither)",
                         (g * (a > b), g * (b > a))),
                 Mistake(Kind.TIES, ties + " (you gave all of it to a)",
                         (g * (a >= b), g * (b > a))),
                 Mistake(Kind.TIES, ties + " (you gave all of it to b)",
                         (g * (a > b), g * (b >= a)))]
    return found + [
        Mistake(Kind.ROUTE, "you passed the upstream gradient to both inputs (that is the add "
                "gate); the max gate routes it to the larger input only", (g, g)),
        Mistake(Kind.ROUTE, "you routed the gradient to the smaller input",
                (g * (a < b), g * (b < a))),
        Mistake(Kind.LOCAL_DERIVATIVE, "you multiplied by the values; the max gate's local "
                "gradient is 1 for the winner and 0 for the loser",
                (g * a * (a > b), g * b * (b > a)))]


def _torch_max(a, b):
    import torch

    return torch.maximum(a, b)


register(VJPExercise(
    id="max_backward",
    notebook=NOTEBOOK,
    title="The max gate: z = max(a, b) elementwise routes the gradient",
    answer="max_backward",
    signature="max_backward(a, b, grad_out)",
    inputs=("a", "b"),
    wrt=("a", "b"),
    forward=lambda a, b: np.maximum(a, b),
    torch_forward=_torch_max,
    given=_max_given,
    random=_max_random,
    edge=_max_edge,
    large=large_elementwise("a", "b"),
    edge_at_kink=True,
    mistakes=_max_mistakes,
))
