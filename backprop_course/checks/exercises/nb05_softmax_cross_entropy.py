"""Exercises of notebook 05: softmax and softmax cross-entropy."""

from __future__ import annotations

import numpy as np

from ...numerics import log_softmax
from ..diagnose import Mistake
from ..exercise import VJPExercise, register, small_ints
from ..kinds import Kind
from ..references import one_hot, torch_cross_entropy

NOTEBOOK = "05_softmax_cross_entropy"

#: Why a softmax gradient holds NaN or inf on the edge cases' logits of 1000.
OVERFLOW = ("np.exp overflows to inf above about 709, and inf / inf is NaN: subtract each "
            "row's max before exp, softmax(s) = softmax(s - s.max(axis=-1, keepdims=True))")



def _huge_logits(rng: np.random.Generator, n: int, c: int) -> np.ndarray:
    """Logits around +-1000, where a softmax without the max shift overflows; two of each
    row's logits share the top, so every row's softmax has more than one nonzero."""
    logits = np.full((n, c), -1000.0) + small_ints(rng, (n, c), -2, 2)
    for row in logits:
        row[rng.permutation(c)[:2]] = 1000.0 + float(small_ints(rng, (), -1, 1))
    return logits


# ------------------------------------------------------- softmax cross-entropy
def ce_forward(logits: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Mean over the batch of -log softmax(logits)[n, target[n]]; logits (N, C)."""
    logp = log_softmax(np.atleast_2d(logits))
    n = logp.shape[0]
    return -logp[np.arange(n), np.asarray(target).reshape(-1)].mean()



def _ce_given(rng: np.random.Generator) -> list[dict]:
    """Like the decks' scores of 3 classes for 2 examples."""
    return [{"logits": small_ints(rng, (2, 3), -3, 3) / 2, "target": rng.integers(0, 3, 2),
             "grad_out": 1.0}]


def _ce_random(rng: np.random.Generator) -> dict:
    n, c = int(rng.integers(2, 9)), int(rng.integers(2, 7))
    return {"logits": rng.normal(0, 2, (n, c)), "target": rng.integers(0, c, n),
            "grad_out": rng.normal(0, 2)}


def _ce_edge(rng: np.random.Generator) -> list[dict]:
    """Logits of 1000 (a naive softmax gives NaN), and a single example."""
    c = int(rng.integers(3, 6))
    return [{"logits": _huge_logits(rng, 2, 3), "target": rng.integers(0, 3, 2),
             "grad_out": 1.0},
            {"logits": np.zeros((1, c)), "target": rng.integers(0, c, 1),
             "grad_out": float(rng.uniform(0.1, 2))}]


def _ce_large(rng: np.random.Generator) -> dict:
    """500 examples of 2,000 classes: finite differences need a forward pass per logit."""
    return {"logits": rng.normal(0, 2, (500, 2000)), "target": rng.integers(0, 2000, 500),
            "grad_out": 1.0}


def _ce_mistakes(case: dict) -> list[Mistake]:
    logits, target = np.asarray(case["logits"]), np.asarray(case["target"])
    n, c = logits.shape
    p = np.exp(log_softmax(logits))
    g = np.asarray(case.get("grad_out", 1.0))
    found = [Mistake(Kind.ONE_HOT, "you returned p / N without subtracting the one-hot "
                     "targets y: dL/ds = (p - y) / N", (p / n * g,))]
    if c != n:
        found.append(Mistake(Kind.WRONG_COUNT_DIVISOR, "you divided by the number of classes "
                             "C instead of the batch size N", ((p - one_hot(target, c)) / c * g,)))
    return found


register(VJPExercise(
    id="softmax_cross_entropy_backward",
    notebook=NOTEBOOK,
    title="Softmax cross-entropy backward: dL/ds = (p - y) / N",
    answer="softmax_cross_entropy_backward",
    signature="softmax_cross_entropy_backward(logits, target, grad_out)",
    inputs=("logits", "target"),
    wrt=("logits",),
    forward=ce_forward,
    torch_forward=lambda logits, target: torch_cross_entropy(logits, target),
    given=_ce_given,
    random=_ce_random,
    edge=_ce_edge,
    large=_ce_large,
    mistakes=_ce_mistakes,
    nonfinite_hint=OVERFLOW,
))


# ---------------------------------------------------------------------- softmax
def softmax_forward(x: np.ndarray) -> np.ndarray:
    """Softmax over the last axis."""
    return np.exp(log_softmax(np.asarray(x, dtype=np.float64)))


def _torch_softmax(x):
    import torch

    return torch.softmax(x, dim=-1)


def _softmax_given(rng: np.random.Generator) -> list[dict]:
    return [{"x": small_ints(rng, (2, 3), -3, 3), "grad_out": small_ints(rng, (2, 3)) / 2}]


def _softmax_random(rng: np.random.Generator) -> dict:
    n, c = int(rng.integers(1, 6)), int(rng.integers(2, 7))
    x = rng.normal(0, 2, (n, c))
    return {"x": x, "grad_out": rng.standard_normal(x.shape)}


def _softmax_edge(rng: np.random.Generator) -> list[dict]:
    """Logits of +-1000."""
    return [{"x": _huge_logits(rng, 2, 3), "grad_out": small_ints(rng, (2, 3))}]


def _softmax_large(rng: np.random.Generator) -> dict:
    """500 rows of 2,000: the Jacobian of a row is 2,000 x 2,000, never built."""
    return {"x": rng.normal(0, 2, (500, 2000)), "grad_out": rng.standard_normal((500, 2000))}


def _softmax_mistakes(case: dict) -> list[Mistake]:
    p = softmax_forward(case["x"])
    g = np.asarray(case["grad_out"], dtype=np.float64)
    found = [Mistake(Kind.DIAGONAL, "you kept only the diagonal of the Jacobian, "
                     "p * (1 - p) * g; softmax's Jacobian diag(p) - p p^T is dense: every "
                     "output depends on every input, so subtract p * sum(g * p)",
                     (p * (1 - p) * g,))]
    if p.ndim == 2 and p.shape[0] > 1:
        total = (g * p).sum()  # summed over the whole batch instead of per row
        found.append(Mistake(Kind.ROWS, "you summed g * p over the whole batch; each row "
                             "(example) has its own softmax: sum over the last axis only "
                             "(axis=-1, keepdims=True)", (p * (g - total),)))
    return found


register(VJPExercise(
    id="softmax_backward",
    notebook=NOTEBOOK,
    title="Softmax backward: dL/dx = p * (g - sum(g * p))",
    answer="softmax_backward",
    signature="softmax_backward(x, grad_out)",
    inputs=("x",),
    wrt=("x",),
    forward=softmax_forward,
    torch_forward=_torch_softmax,
    given=_softmax_given,
    random=_softmax_random,
    edge=_softmax_edge,
    large=_softmax_large,
    mistakes=_softmax_mistakes,
    nonfinite_hint=OVERFLOW,
))
