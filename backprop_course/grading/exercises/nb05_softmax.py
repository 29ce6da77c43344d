"""Exercises of notebook 05: softmax and softmax cross-entropy."""

from __future__ import annotations

import numpy as np

from ..exercise import VJPExercise, register


def _log_softmax(s: np.ndarray) -> np.ndarray:
    shifted = s - s.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


#: Why a softmax gradient holds NaN or inf on the edge cases' logits of 1000.
OVERFLOW = ("np.exp overflows to inf above about 709, and inf / inf is NaN: subtract each "
            "row's max before exp, softmax(s) = softmax(s - s.max(axis=-1, keepdims=True))")


def _one_hot(target: np.ndarray, classes: int) -> np.ndarray:
    return np.eye(classes)[np.asarray(target).reshape(-1)]


# ------------------------------------------------------- softmax cross-entropy
def ce_forward(logits: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Mean over the batch of -log softmax(logits)[n, target[n]]; logits (N, C)."""
    logp = _log_softmax(np.atleast_2d(logits))
    n = logp.shape[0]
    return -logp[np.arange(n), np.asarray(target).reshape(-1)].mean()


def _torch_ce(logits, target):
    import torch

    return torch.nn.functional.cross_entropy(logits, target.long())


def _ce_random(rng: np.random.Generator) -> dict:
    n, c = int(rng.integers(2, 9)), int(rng.integers(2, 7))
    return {"logits": rng.normal(0, 2, (n, c)), "target": rng.integers(0, c, n),
            "grad_out": rng.normal(0, 2)}


def _ce_mistakes(case: dict) -> dict[str, tuple]:
    logits, target = np.asarray(case["logits"]), np.asarray(case["target"])
    n, c = logits.shape
    p = np.exp(_log_softmax(logits))
    g = np.asarray(case.get("grad_out", 1.0))
    out = {"one_hot: you returned p / N without subtracting the one-hot targets y: "
           "dL/ds = (p - y) / N": (p / n * g,)}
    if c != n:
        out["batch: you divided by the number of classes C instead of the batch size N"] = (
            (p - _one_hot(target, c)) / c * g,)
    return out


register(VJPExercise(
    id="softmax_cross_entropy_backward",
    title="Softmax cross-entropy backward: dL/ds = (p - y) / N",
    signature="softmax_cross_entropy_backward(logits, target, grad_out)",
    inputs=("logits", "target"),
    wrt=("logits",),
    forward=ce_forward,
    torch_forward=_torch_ce,
    given=({"logits": [[2.0, 1.0, 0.1], [0.5, 2.5, -1.0]], "target": [0, 2],
            "grad_out": 1.0},),
    random_case=_ce_random,
    edge=(
        {"logits": [[1000.0, 1001.0, 999.0], [-1000.0, 0.0, 1000.0]], "target": [1, 0],
         "grad_out": 1.0},
        {"logits": [[0.0, 0.0, 0.0, 0.0]], "target": [3], "grad_out": 0.5},
    ),
    mistakes=_ce_mistakes,
    nonfinite_hint=OVERFLOW,
))


# ---------------------------------------------------------------------- softmax
def softmax_forward(x: np.ndarray) -> np.ndarray:
    """Softmax over the last axis."""
    return np.exp(_log_softmax(np.asarray(x, dtype=np.float64)))


def _torch_softmax(x):
    import torch

    return torch.softmax(x, dim=-1)


def _softmax_random(rng: np.random.Generator) -> dict:
    n, c = int(rng.integers(1, 6)), int(rng.integers(2, 7))
    x = rng.normal(0, 2, (n, c))
    return {"x": x, "grad_out": rng.standard_normal(x.shape)}


def _softmax_mistakes(case: dict) -> dict[str, tuple]:
    p = softmax_forward(case["x"])
    g = np.asarray(case["grad_out"], dtype=np.float64)
    out = {
        "diagonal: you kept only the diagonal of the Jacobian, p * (1 - p) * g; softmax's "
        "Jacobian diag(p) - p p^T is dense: every output depends on every input, so "
        "subtract p * sum(g * p)": (p * (1 - p) * g,),
    }
    if p.ndim == 2 and p.shape[0] > 1:
        total = (g * p).sum()  # summed over the whole batch instead of per row
        out["rows: you summed g * p over the whole batch; each row (example) has its own "
            "softmax: sum over the last axis only (axis=-1, keepdims=True)"] = (
                p * (g - total),)
    return out


register(VJPExercise(
    id="softmax_backward",
    title="Softmax backward: dL/dx = p * (g - sum(g * p))",
    signature="softmax_backward(x, grad_out)",
    inputs=("x",),
    wrt=("x",),
    forward=softmax_forward,
    torch_forward=_torch_softmax,
    given=({"x": [[1.0, 2.0, 3.0], [0.0, 0.0, 1.0]],
            "grad_out": [[0.5, -1.0, 2.0], [1.0, 3.0, -2.0]]},),
    random_case=_softmax_random,
    edge=({"x": [[1000.0, 1000.0, 999.0], [-1000.0, 0.0, 1000.0]],
           "grad_out": [[1.0, -2.0, 0.5], [3.0, 1.0, -1.0]]},),
    mistakes=_softmax_mistakes,
    nonfinite_hint=OVERFLOW,
))

