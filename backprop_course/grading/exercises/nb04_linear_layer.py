"""Exercises of notebook 04: the linear layer and matrix calculus."""

from __future__ import annotations

import numpy as np

from ..exercise import VJPExercise, register

# The decks' example: x (N=2, D=3), w (D=3, M=4), y = x w, dL/dy (N, M).
DECK_X = [[2.0, 1.0, -3.0], [-3.0, 4.0, 2.0]]
DECK_W = [[3.0, 2.0, 1.0, -1.0], [2.0, 1.0, 3.0, 2.0], [3.0, 2.0, 1.0, -2.0]]
DECK_DY = [[2.0, 3.0, -3.0, 9.0], [-8.0, 1.0, 4.0, 6.0]]


# ------------------------------------------------------ y = x w (the decks' convention)
def _matmul_random(rng: np.random.Generator) -> dict:
    n, d, m = (int(v) for v in rng.integers(2, 7, size=3))
    return {"x": rng.standard_normal((n, d)), "w": rng.standard_normal((d, m)),
            "grad_out": rng.standard_normal((n, m))}


def _matmul_mistakes(case: dict) -> dict[str, tuple]:
    x, w, g = (np.asarray(case[k], dtype=np.float64) for k in ("x", "w", "grad_out"))
    if w.shape[0] != w.shape[1]:  # g @ w only has the right shape for a square w
        return {}
    return {"order: dL/dx = dL/dy w^T; you used w instead of w^T": (g @ w, x.T @ g)}


def _torch_matmul(x, w):
    return x @ w


register(VJPExercise(
    id="matmul_backward",
    title="Matrix multiply y = x w: dL/dx = dL/dy w^T, dL/dw = x^T dL/dy",
    signature="matmul_backward(x, w, grad_out)",
    inputs=("x", "w"),
    wrt=("x", "w"),
    forward=lambda x, w: x @ w,
    torch_forward=_torch_matmul,
    given=({"x": DECK_X, "w": DECK_W, "grad_out": DECK_DY},),
    random_case=_matmul_random,
    # one example (N = 1) and a square weight matrix
    edge=({"x": [[1.0, -2.0]], "w": [[0.5, 2.0], [-1.0, 3.0]], "grad_out": [[1.0, -1.0]]},),
    mistakes=_matmul_mistakes,
))


# --------------------------------------------- bc / torch's linear: x weight^T + bias
def _linear_random(rng: np.random.Generator) -> dict:
    n = int(rng.integers(3, 9))  # a batch: N > 1, so a missing sum over it shows
    d_in, d_out = (int(v) for v in rng.integers(2, 7, size=2))
    return {"x": rng.standard_normal((n, d_in)), "weight": rng.standard_normal((d_out, d_in)),
            "bias": rng.standard_normal(d_out), "grad_out": rng.standard_normal((n, d_out))}


def _linear_mistakes(case: dict) -> dict[str, tuple]:
    x, weight, g = (np.asarray(case[k], dtype=np.float64) for k in ("x", "weight", "grad_out"))
    n = x.shape[0]
    right = (g @ weight, g.T @ x, g.sum(axis=0))
    return {
        "mean: dL/dbias is the SUM of the upstream gradient over the batch, not its mean":
            (right[0], right[1], g.mean(axis=0)),
        "first_row: dL/dbias sums the upstream gradient over ALL rows of the batch, not "
        "only the first": (right[0], right[1], g[0]),
        f"scaled: you divided by the batch size N = {n}; the layer's gradients are plain "
        "sums (a mean, if any, belongs to the loss)":
            (right[0] / n, right[1] / n, right[2] / n),
    }


def _torch_linear(x, weight, bias):
    import torch

    return torch.nn.functional.linear(x, weight, bias)


register(VJPExercise(
    id="linear_backward",
    title="The linear layer y = x weight^T + bias (weight shaped (out, in))",
    signature="linear_backward(x, weight, bias, grad_out)",
    inputs=("x", "weight", "bias"),
    wrt=("x", "weight", "bias"),
    forward=lambda x, weight, bias: x @ weight.T + bias,
    torch_forward=_torch_linear,
    # the decks' example in bc's convention: weight = w^T, shape (M, D) = (4, 3)
    given=({"x": DECK_X, "weight": np.array(DECK_W).T.tolist(), "bias": [1.0, 0.0, -1.0, 2.0],
            "grad_out": DECK_DY},),
    random_case=_linear_random,
    # a batch of one, and one input feature
    edge=({"x": [[1.5], [-2.0], [0.5]], "weight": [[2.0], [-1.0]], "bias": [0.0, 3.0],
           "grad_out": [[1.0, 2.0], [3.0, -1.0], [0.5, 0.5]]},
          {"x": [[1.0, -1.0, 2.0]], "weight": [[1.0, 0.0, 2.0], [0.5, -1.0, 1.0]],
           "bias": [0.1, -0.2], "grad_out": [[2.0, -3.0]]}),
    mistakes=_linear_mistakes,
))
