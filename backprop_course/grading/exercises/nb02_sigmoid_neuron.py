"""Exercises of notebook 02: the sigmoid neuron worked example and the gate patterns."""

from __future__ import annotations

import numpy as np

from ..exercise import VJPExercise, random_shape, register


def stable_sigmoid(s: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-s)) without overflow for large |s|."""
    s = np.asarray(s, dtype=np.float64)
    z = np.exp(-np.abs(s))
    return np.where(s >= 0, 1 / (1 + z), z / (1 + z))


# ----------------------------------------------------- the sigmoid neuron
def _neuron_forward(w: np.ndarray, x: np.ndarray) -> np.ndarray:
    return stable_sigmoid(w[0] * x[0] + w[1] * x[1] + w[2])


def _torch_neuron(w, x):
    import torch

    return torch.sigmoid(w[0] * x[0] + w[1] * x[1] + w[2])


def _neuron_random(rng: np.random.Generator) -> dict:
    return {"w": rng.standard_normal(3), "x": rng.standard_normal(2),
            "grad_out": float(rng.standard_normal() * 2)}


def _neuron_mistakes(case: dict) -> dict[str, tuple]:
    w, x = np.asarray(case["w"], dtype=np.float64), np.asarray(case["x"], dtype=np.float64)
    g = float(case["grad_out"])
    f = float(_neuron_forward(w, x))
    ds = g * f * (1 - f)
    return {
        "sigmoid: you skipped the sigmoid gate's local gradient f (1 - f) "
        "(grad_s3 = grad_f * (1 - f) * f)": (g * np.array([x[0], x[1], 1.0]), g * w[:2]),
        "swap: each mul gate must swap: grad_w0 = grad_s0 * x0 and grad_x0 = grad_s0 * w0, "
        "you have them the other way round": (ds * np.array([w[0], w[1], 1.0]), ds * x),
    }


register(VJPExercise(
    id="sigmoid_neuron_backward",
    title="The sigmoid neuron f = sigma(w0 x0 + w1 x1 + w2), backward by hand",
    signature="sigmoid_neuron_backward(w, x, grad_out)",
    inputs=("w", "x"),
    wrt=("w", "x"),
    forward=_neuron_forward,
    torch_forward=_torch_neuron,
    given=({"w": [2.0, -3.0, -3.0], "x": [-1.0, -2.0], "grad_out": 1.0},
           {"w": [2.0, -3.0, -3.0], "x": [-1.0, -2.0], "grad_out": -2.5}),
    random_case=_neuron_random,
    mistakes=_neuron_mistakes,
))


# ----------------------------------------------------- the sigmoid gate
def _sigmoid_random(rng: np.random.Generator) -> dict:
    shape = random_shape(rng)
    return {"x": rng.standard_normal(shape) * 3, "grad_out": rng.standard_normal(shape)}


def _sigmoid_mistakes(case: dict) -> dict[str, tuple]:
    x, g = (np.asarray(case[k], dtype=np.float64) for k in ("x", "grad_out"))
    s = stable_sigmoid(x)
    return {
        "output: you multiplied by sigma(x) itself; the local gradient is "
        "sigma(x) (1 - sigma(x))": (g * s,),
        "one_minus: you multiplied by 1 - sigma(x) only; the local gradient is "
        "sigma(x) (1 - sigma(x))": (g * (1 - s),),
        "input: you computed x (1 - x) from the input; the local gradient s (1 - s) "
        "takes s = sigma(x), the gate's output": (g * x * (1 - x),),
    }


def _torch_sigmoid(x):
    import torch

    return torch.sigmoid(x)


register(VJPExercise(
    id="sigmoid_backward",
    title="The sigmoid gate: dL/dx = dL/dy * sigma(x) (1 - sigma(x))",
    signature="sigmoid_backward(x, grad_out)",
    inputs=("x",),
    wrt=("x",),
    forward=lambda x: stable_sigmoid(x),
    torch_forward=_torch_sigmoid,
    given=({"x": [1.0, 0.0, -1.0, 2.0], "grad_out": [1.0, 2.0, -1.0, 0.5]},),
    random_case=_sigmoid_random,
    # saturation: far from 0 the gradient all but vanishes
    edge=({"x": [-30.0, 30.0, 0.0, -8.0], "grad_out": [1.0, 1.0, 4.0, 100.0]},),
    mistakes=_sigmoid_mistakes,
))


# ----------------------------------------------------- the max gate
def _max_random(rng: np.random.Generator) -> dict:
    shape = tuple(int(s) for s in rng.integers(2, 6, size=rng.integers(1, 3)))
    a = rng.standard_normal(shape)
    b = rng.standard_normal(shape)
    b[np.abs(a - b) < 1e-3] += 0.5  # no ties: the numerical gradient needs a gap
    return {"a": a, "b": b, "grad_out": rng.standard_normal(shape)}


def _max_mistakes(case: dict) -> dict[str, tuple]:
    a, b, g = (np.asarray(case[k], dtype=np.float64) for k in ("a", "b", "grad_out"))
    tie_hint = ("ties: where a == b both inputs are the maximum; give each half of the "
                "upstream gradient (torch's convention)")
    ties = {}
    if np.any(a == b):
        ties = {tie_hint + " (you gave it to neither)": (g * (a > b), g * (b > a)),
                tie_hint + " (you gave all of it to a)": (g * (a >= b), g * (b > a)),
                tie_hint + " (you gave all of it to b)": (g * (a > b), g * (b >= a))}
    return {
        **ties,
        "both: you passed the upstream gradient to both inputs (that is the add gate); "
        "the max gate routes it to the larger input only": (g, g),
        "reversed: you routed the gradient to the smaller input": (g * (a < b), g * (b < a)),
        "values: you multiplied by the values; the max gate's local gradient is 1 for "
        "the winner and 0 for the loser": (g * a * (a > b), g * b * (b > a)),
    }


def _torch_max(a, b):
    import torch

    return torch.maximum(a, b)


register(VJPExercise(
    id="max_backward",
    title="The max gate: z = max(a, b) elementwise routes the gradient",
    signature="max_backward(a, b, grad_out)",
    inputs=("a", "b"),
    wrt=("a", "b"),
    forward=lambda a, b: np.maximum(a, b),
    torch_forward=_torch_max,
    given=({"a": [4.0, -1.0, 2.0], "b": [2.0, 5.0, -3.0], "grad_out": [2.0, 3.0, -1.5]},),
    random_case=_max_random,
    # ties: each input gets half (torch's convention, and the average of both slopes)
    edge=({"a": [1.0, 3.0, -2.0], "b": [1.0, 0.0, -2.0], "grad_out": [2.0, 5.0, -4.0]},),
    edge_at_kink=True,
    mistakes=_max_mistakes,
))
