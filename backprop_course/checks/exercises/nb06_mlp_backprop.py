"""Exercises of notebook 06: the MLP's backward pass (deep-learning-book algorithm 6.4)."""

from __future__ import annotations

import numpy as np

from ...numerics import log_softmax, stable_sigmoid
from ..diagnose import Mistake
from ..exercise import VJPExercise, register
from ..kinds import Kind

NOTEBOOK = "06_mlp_backprop"
MLP_INPUTS = ("x", "target", "W1", "b1", "W2", "b2", "lam")


# ------------------------------------------- two-layer ReLU MLP, L2-regularized
def mlp_forward(x, target, W1, b1, W2, b2, lam) -> np.ndarray:
    """J = mean_n CE(softmax(s_n), target_n) + lam / 2 (||W1||^2 + ||W2||^2), with
    a1 = x W1^T + b1 (N, H), h1 = relu(a1), s = h1 W2^T + b2 (N, C)."""
    h1 = np.maximum(x @ W1.T + b1, 0)
    logp = log_softmax(h1 @ W2.T + b2)
    n = x.shape[0]
    loss = -logp[np.arange(n), np.asarray(target)].mean()
    return loss + 0.5 * lam * (np.sum(W1 * W1) + np.sum(W2 * W2))


def mlp_gradients(x, target, W1, b1, W2, b2, lam, mean: bool = True,
                  reg_factor: float = 1.0, relu_mask: bool = True) -> tuple:
    """The backward pass, with switches that reproduce common mistakes."""
    n = x.shape[0]
    a1 = x @ W1.T + b1
    h1 = np.maximum(a1, 0)
    p = np.exp(log_softmax(h1 @ W2.T + b2))
    g = p - np.eye(p.shape[1])[np.asarray(target)]
    if mean:
        g = g / n
    reg = reg_factor * lam
    grad_W2 = g.T @ h1 + reg * W2
    grad_b2 = g.sum(axis=0)
    g = g @ W2
    g = g * (a1 > 0) if relu_mask else g
    grad_W1 = g.T @ x + reg * W1
    grad_b1 = g.sum(axis=0)
    return grad_W1, grad_b1, grad_W2, grad_b2


def _torch_mlp(x, target, W1, b1, W2, b2, lam):
    import torch

    h1 = torch.relu(x @ W1.T + b1)
    loss = torch.nn.functional.cross_entropy(h1 @ W2.T + b2, target.long())
    return loss + 0.5 * lam * ((W1 * W1).sum() + (W2 * W2).sum())


def _mlp_case(rng: np.random.Generator, n: int, d: int, h: int, c: int, lam: float) -> dict:
    W1 = rng.normal(0, 1 / np.sqrt(d), (h, d))
    x = rng.normal(0, 1, (n, d))
    # keep pre-activations away from ReLU's kink, where the numerical gradient is unreliable
    a1 = x @ W1.T
    b1 = rng.normal(0, 0.5, h)
    while (np.abs(a1 + b1) < 1e-2).any():
        b1 = b1 + 0.05
    return {"x": x, "target": rng.integers(0, c, n), "W1": W1, "b1": b1,
            "W2": rng.normal(0, 1 / np.sqrt(h), (c, h)), "b2": rng.normal(0, 0.5, c),
            "lam": lam, "grad_out": 1.0}


def _mlp_given(rng: np.random.Generator) -> list[dict]:
    """N = 4 examples, D = 3 inputs, H = 5 hidden units, C = 3 classes, lam = 0.1, with
    values rounded to two decimals."""
    case = _mlp_case(rng, 4, 3, 5, 3, 0.1)
    return [{k: np.round(v, 2) if isinstance(v, np.ndarray) and v.dtype.kind == "f" else v
             for k, v in case.items()}]


def _mlp_random(rng: np.random.Generator) -> dict:
    n, d, h, c = (int(v) for v in rng.integers((2, 2, 2, 2), (7, 6, 7, 5)))
    return _mlp_case(rng, n, d, h, c, float(rng.choice([0.05, 0.1, 0.5])))


def _mlp_large(rng: np.random.Generator) -> dict:
    """128 examples through 256 -> 384 -> 10: 103,000 parameters, so finite differences
    need 206,000 forward passes."""
    return _mlp_case(rng, 128, 256, 384, 10, 0.01)


def _mlp_mistakes(case: dict) -> list[Mistake]:
    args = tuple(case[k] for k in MLP_INPUTS)
    return [
        Mistake(Kind.BATCH_FACTOR, "you summed the loss over the batch instead of averaging "
                "it: the loss is the mean over N examples, so dL/ds = (p - y) / N",
                mlp_gradients(*args, mean=False)),
        Mistake(Kind.REGULARIZATION, "you left out the regularizer's gradient lam * W "
                "(J = L + lam * Omega, Omega = (||W1||^2 + ||W2||^2) / 2)",
                mlp_gradients(*args, reg_factor=0.0)),
        Mistake(Kind.REGULARIZATION, "you doubled the regularizer's gradient: "
                "Omega = (||W||^2) / 2 has the gradient W, so its term is lam * W, not "
                "2 lam * W", mlp_gradients(*args, reg_factor=2.0)),
        Mistake(Kind.RELU_MASK, "you did not multiply by ReLU's derivative [a1 > 0] on the "
                "way back", mlp_gradients(*args, relu_mask=False)),
    ]


register(VJPExercise(
    id="mlp_backward",
    notebook=NOTEBOOK,
    title="Backward pass of a 2-layer ReLU MLP with softmax cross-entropy and L2",
    answer="mlp_backward",
    signature="mlp_backward(x, target, W1, b1, W2, b2, lam)",
    inputs=MLP_INPUTS,
    wrt=("W1", "b1", "W2", "b2"),
    forward=mlp_forward,
    torch_forward=_torch_mlp,
    given=_mlp_given,
    random=_mlp_random,
    large=_mlp_large,
    call="grad",
    mistakes=_mlp_mistakes,
))


# ------------------------------------------- URI CSC561's numpy two-layer sigmoid network
def two_layer_forward(x, y, w1, w2) -> np.ndarray:
    """loss = sum((sigmoid(x w1) w2 - y)^2); x (N, D_in), w1 (D_in, H), w2 (H, D_out)."""
    return np.square(stable_sigmoid(x @ w1) @ w2 - y).sum()


def _torch_two_layer(x, y, w1, w2):
    import torch

    return ((torch.sigmoid(x @ w1) @ w2 - y) ** 2).sum()


def _two_layer_case(rng: np.random.Generator, n: int, d: int, h: int, c: int) -> dict:
    return {"x": rng.standard_normal((n, d)), "y": rng.standard_normal((n, c)),
            "w1": rng.standard_normal((d, h)) / np.sqrt(d),
            "w2": rng.standard_normal((h, c)) / np.sqrt(h), "grad_out": 1.0}


def _two_layer_given(rng: np.random.Generator) -> list[dict]:
    return [_two_layer_case(rng, 4, 5, 3, 2)]


def _two_layer_random(rng: np.random.Generator) -> dict:
    n, d, h, c = (int(v) for v in rng.integers((2, 2, 2, 1), (8, 9, 7, 5)))
    return _two_layer_case(rng, n, d, h, c)


def _two_layer_large(rng: np.random.Generator) -> dict:
    """128 examples, 256 inputs, 384 hidden units, 8 outputs: 101,000 weights."""
    return _two_layer_case(rng, 128, 256, 384, 8)


def _two_layer_mistakes(case: dict) -> list[Mistake]:
    x, y, w1, w2 = (np.asarray(case[k]) for k in ("x", "y", "w1", "w2"))
    h = stable_sigmoid(x @ w1)
    grad_y_pred = 2.0 * (h @ w2 - y)
    return [Mistake(Kind.CHAIN, "you forgot sigmoid's local gradient h * (1 - h) on the way "
                    "back to w1", (x.T @ (grad_y_pred @ w2.T), h.T @ grad_y_pred))]


register(VJPExercise(
    id="two_layer_backward",
    notebook=NOTEBOOK,
    title="URI CSC561's numpy two-layer network: gradients of the sum-of-squares loss",
    answer="two_layer_backward",
    signature="two_layer_backward(x, y, w1, w2)",
    inputs=("x", "y", "w1", "w2"),
    wrt=("w1", "w2"),
    forward=two_layer_forward,
    torch_forward=_torch_two_layer,
    given=_two_layer_given,
    random=_two_layer_random,
    large=_two_layer_large,
    call="grad",
    mistakes=_two_layer_mistakes,
))
