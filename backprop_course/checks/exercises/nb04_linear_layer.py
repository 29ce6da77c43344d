"""Exercises of notebook 04: the linear layer and matrix calculus."""

from __future__ import annotations

import numpy as np

from ..diagnose import Mistake
from ..exercise import VJPExercise, register, small_ints
from ..kinds import Kind

NOTEBOOK = "04_linear_layer"


# ------------------------------------------------------ y = x w (the decks' convention)
def _matmul_given(rng: np.random.Generator) -> list[dict]:
    """The decks' shapes: x (N=2, D=3), w (D=3, M=4), dL/dy (N, M), small integers."""
    return [{"x": small_ints(rng, (2, 3)), "w": small_ints(rng, (3, 4), -3, 3),
             "grad_out": small_ints(rng, (2, 4), -9, 9)}]


def _matmul_random(rng: np.random.Generator) -> dict:
    n, d, m = (int(v) for v in rng.integers(2, 7, size=3))
    return {"x": rng.standard_normal((n, d)), "w": rng.standard_normal((d, m)),
            "grad_out": rng.standard_normal((n, m))}


def _matmul_edge(rng: np.random.Generator) -> list[dict]:
    """One example (N = 1) and a square w, on which dL/dy w and dL/dy w^T differ (a
    symmetric w would pass the wrong order)."""
    d = int(rng.integers(2, 5))
    x = small_ints(rng, (1, d))
    while True:
        w, grad_out = small_ints(rng, (d, d)), small_ints(rng, (1, d))
        if not np.allclose(grad_out @ w, grad_out @ w.T):
            return [{"x": x, "w": w, "grad_out": grad_out}]


def _matmul_large(rng: np.random.Generator) -> dict:
    """300 x 300 by 300 x 300: a backward pass is two products, finite differences need
    360,000 forward products."""
    return {"x": rng.standard_normal((300, 300)), "w": rng.standard_normal((300, 300)),
            "grad_out": rng.standard_normal((300, 300))}


def _matmul_mistakes(case: dict) -> list[Mistake]:
    x, w, g = (np.asarray(case[k], dtype=np.float64) for k in ("x", "w", "grad_out"))
    if w.shape[0] != w.shape[1]:  # g @ w only has the right shape for a square w
        return []
    return [Mistake(Kind.ORDER, "dL/dx = dL/dy w^T; you used w instead of w^T",
                    (g @ w, x.T @ g))]


def _torch_matmul(x, w):
    return x @ w


register(VJPExercise(
    id="matmul_backward",
    notebook=NOTEBOOK,
    title="Matrix multiply y = x w: dL/dx = dL/dy w^T, dL/dw = x^T dL/dy",
    answer="matmul_backward",
    signature="matmul_backward(x, w, grad_out)",
    inputs=("x", "w"),
    wrt=("x", "w"),
    forward=lambda x, w: x @ w,
    torch_forward=_torch_matmul,
    given=_matmul_given,
    random=_matmul_random,
    edge=_matmul_edge,
    large=_matmul_large,
    mistakes=_matmul_mistakes,
))


# --------------------------------------------- bc / torch's linear: x weight^T + bias
def _linear_given(rng: np.random.Generator) -> list[dict]:
    """The decks' example in bc's convention: weight = w^T, shape (M, D) = (4, 3)."""
    return [{"x": small_ints(rng, (2, 3)), "weight": small_ints(rng, (4, 3), -3, 3),
             "bias": small_ints(rng, 4, -2, 2), "grad_out": small_ints(rng, (2, 4), -9, 9)}]


def _linear_random(rng: np.random.Generator) -> dict:
    n = int(rng.integers(3, 9))  # a batch: N > 1, so a missing sum over it shows
    d_in, d_out = (int(v) for v in rng.integers(2, 7, size=2))
    return {"x": rng.standard_normal((n, d_in)), "weight": rng.standard_normal((d_out, d_in)),
            "bias": rng.standard_normal(d_out), "grad_out": rng.standard_normal((n, d_out))}


def _linear_edge(rng: np.random.Generator) -> list[dict]:
    """One input feature; and a batch of one."""
    n, out = int(rng.integers(2, 5)), int(rng.integers(2, 4))
    return [{"x": small_ints(rng, (n, 1)), "weight": small_ints(rng, (out, 1)),
             "bias": small_ints(rng, out), "grad_out": small_ints(rng, (n, out))},
            {"x": small_ints(rng, (1, 3)), "weight": small_ints(rng, (2, 3)),
             "bias": small_ints(rng, 2), "grad_out": small_ints(rng, (1, 2))}]


def _linear_large(rng: np.random.Generator) -> dict:
    """A batch of 256 through a 512 -> 512 layer."""
    return {"x": rng.standard_normal((256, 512)), "weight": rng.standard_normal((512, 512)),
            "bias": rng.standard_normal(512), "grad_out": rng.standard_normal((256, 512))}


def _linear_mistakes(case: dict) -> list[Mistake]:
    x, weight, g = (np.asarray(case[k], dtype=np.float64) for k in ("x", "weight", "grad_out"))
    n = x.shape[0]
    right = (g @ weight, g.T @ x, g.sum(axis=0))
    return [
        Mistake(Kind.BIAS_MEAN, "dL/dbias is the SUM of the upstream gradient over the batch, "
                "not its mean", (right[0], right[1], g.mean(axis=0))),
        Mistake(Kind.BIAS_ROW, "dL/dbias sums the upstream gradient over ALL rows of the "
                "batch, not only the first", (right[0], right[1], g[0])),
        Mistake(Kind.BATCH_FACTOR, "you divided by the batch size N; the layer's gradients "
                "are plain sums (a mean, if any, belongs to the loss)",
                (right[0] / n, right[1] / n, right[2] / n)),
    ]


def _torch_linear(x, weight, bias):
    import torch

    return torch.nn.functional.linear(x, weight, bias)


register(VJPExercise(
    id="linear_backward",
    notebook=NOTEBOOK,
    title="The linear layer y = x weight^T + bias (weight shaped (out, in))",
    answer="linear_backward",
    signature="linear_backward(x, weight, bias, grad_out)",
    inputs=("x", "weight", "bias"),
    wrt=("x", "weight", "bias"),
    forward=lambda x, weight, bias: x @ weight.T + bias,
    torch_forward=_torch_linear,
    given=_linear_given,
    random=_linear_random,
    edge=_linear_edge,
    large=_linear_large,
    mistakes=_linear_mistakes,
))
