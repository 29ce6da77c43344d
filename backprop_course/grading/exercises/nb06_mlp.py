"""Exercises of notebook 06: the MLP's backward pass (deep-learning-book algorithm 6.4)."""

from __future__ import annotations

import numpy as np

from ..exercise import VJPExercise, register


def _log_softmax(s: np.ndarray) -> np.ndarray:
    shifted = s - s.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


# ------------------------------------------- two-layer ReLU MLP, L2-regularized
def mlp_forward(x, target, W1, b1, W2, b2, lam) -> np.ndarray:
    """J = mean_n CE(softmax(s_n), target_n) + lam / 2 (||W1||^2 + ||W2||^2), with
    a1 = x W1^T + b1 (N, H), h1 = relu(a1), s = h1 W2^T + b2 (N, C)."""
    h1 = np.maximum(x @ W1.T + b1, 0)
    logp = _log_softmax(h1 @ W2.T + b2)
    n = x.shape[0]
    loss = -logp[np.arange(n), np.asarray(target)].mean()
    return loss + 0.5 * lam * (np.sum(W1 * W1) + np.sum(W2 * W2))


def mlp_gradients(x, target, W1, b1, W2, b2, lam, mean: bool = True,
                  reg_factor: float = 1.0, relu_mask_from: str = "a1") -> tuple:
    """Reference backward pass, with switches that reproduce common mistakes."""
    n = x.shape[0]
    a1 = x @ W1.T + b1
    h1 = np.maximum(a1, 0)
    s = h1 @ W2.T + b2
    p = np.exp(_log_softmax(s))
    g = p - np.eye(s.shape[1])[np.asarray(target)]
    if mean:
        g = g / n
    reg = reg_factor * lam
    grad_W2 = g.T @ h1 + reg * W2
    grad_b2 = g.sum(axis=0)
    g = g @ W2
    g = g * (a1 > 0) if relu_mask_from == "a1" else g
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
    near = np.abs(a1 + b1) < 1e-2
    while near.any():
        b1 = b1 + 0.05
        near = np.abs(a1 + b1) < 1e-2
    return {"x": x, "target": rng.integers(0, c, n), "W1": W1, "b1": b1,
            "W2": rng.normal(0, 1 / np.sqrt(h), (c, h)), "b2": rng.normal(0, 0.5, c),
            "lam": lam, "grad_out": 1.0}


def _mlp_random(rng: np.random.Generator) -> dict:
    n, d, h, c = (int(v) for v in rng.integers((2, 2, 2, 2), (7, 6, 7, 5)))
    return _mlp_case(rng, n, d, h, c, float(rng.choice([0.05, 0.1, 0.5])))


def _mlp_given() -> dict:
    case = _mlp_case(np.random.default_rng(2024), 4, 3, 5, 3, 0.1)
    return {k: np.round(v, 2) if isinstance(v, np.ndarray) and v.dtype.kind == "f" else v
            for k, v in case.items()}


def _mlp_args(case: dict) -> tuple:
    return tuple(case[k] for k in ("x", "target", "W1", "b1", "W2", "b2", "lam"))


def _mlp_mistakes(case: dict) -> dict[str, tuple]:
    args = _mlp_args(case)
    return {
        "batch: you summed the loss over the batch instead of averaging it: the loss is "
        "the mean over N examples, so dL/ds = (p - y) / N":
            mlp_gradients(*args, mean=False),
        "regularization: you left out the regularizer's gradient lam * W (J = L + "
        "lam * Omega, Omega = (||W1||^2 + ||W2||^2) / 2)": mlp_gradients(*args, reg_factor=0.0),
        "regularization: you doubled the regularizer's gradient: Omega = (||W||^2) / 2 has "
        "the gradient W, so its term is lam * W, not 2 lam * W": mlp_gradients(
            *args, reg_factor=2.0),
        "relu: you did not multiply by ReLU's derivative [a1 > 0] on the way back":
            mlp_gradients(*args, relu_mask_from="none"),
    }


register(VJPExercise(
    id="mlp_backward",
    title="Backward pass of a 2-layer ReLU MLP with softmax cross-entropy and L2",
    signature="mlp_backward(x, target, W1, b1, W2, b2, lam)",
    inputs=("x", "target", "W1", "b1", "W2", "b2", "lam"),
    wrt=("W1", "b1", "W2", "b2"),
    forward=mlp_forward,
    torch_forward=_torch_mlp,
    given=(_mlp_given(),),
    random_case=_mlp_random,
    call=lambda student, case: student(*_mlp_args(case)),
    mistakes=_mlp_mistakes,
))


# ------------------------------------- deck 004's numpy two-layer sigmoid network
def two_layer_forward(x, y, w1, w2) -> np.ndarray:
    """loss = sum((sigmoid(x w1) w2 - y)^2); x (N, D_in), w1 (D_in, H), w2 (H, D_out)."""
    h = 1 / (1 + np.exp(-x @ w1))
    return np.square(h @ w2 - y).sum()


def _torch_two_layer(x, y, w1, w2):
    import torch

    return ((torch.sigmoid(x @ w1) @ w2 - y) ** 2).sum()


def _two_layer_case(rng: np.random.Generator, n: int, d: int, h: int, c: int) -> dict:
    return {"x": rng.standard_normal((n, d)), "y": rng.standard_normal((n, c)),
            "w1": rng.standard_normal((d, h)) / np.sqrt(d),
            "w2": rng.standard_normal((h, c)), "grad_out": 1.0}


def _two_layer_random(rng: np.random.Generator) -> dict:
    n, d, h, c = (int(v) for v in rng.integers((2, 2, 2, 1), (8, 9, 7, 5)))
    return _two_layer_case(rng, n, d, h, c)


def _two_layer_mistakes(case: dict) -> dict[str, tuple]:
    x, y, w1, w2 = (np.asarray(case[k]) for k in ("x", "y", "w1", "w2"))
    h = 1 / (1 + np.exp(-x @ w1))
    grad_y_pred = 2.0 * (h @ w2 - y)
    return {
        "sigmoid: you forgot sigmoid's local gradient h * (1 - h) on the way back to w1": (
            x.T @ (grad_y_pred @ w2.T), h.T @ grad_y_pred),
    }


register(VJPExercise(
    id="two_layer_backward",
    title="Deck 004's numpy two-layer network: gradients of the sum-of-squares loss",
    signature="two_layer_backward(x, y, w1, w2)",
    inputs=("x", "y", "w1", "w2"),
    wrt=("w1", "w2"),
    forward=two_layer_forward,
    torch_forward=_torch_two_layer,
    given=(_two_layer_case(np.random.default_rng(4), 4, 5, 3, 2),),
    random_case=_two_layer_random,
    call=lambda student, case: student(case["x"], case["y"], case["w1"], case["w2"]),
    mistakes=_two_layer_mistakes,
))
