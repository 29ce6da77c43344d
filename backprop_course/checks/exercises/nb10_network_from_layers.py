"""Exercises of notebook 10: a network built from the student's own layers.

Each layer is a forward/backward pair with a cache (CS231n's modular form), in the decks'
layout ``out = x w + b`` with ``w`` shaped (in, out). The two-layer network stacks the
student's layers; when its check fails, each layer is checked on its own at the
network's values and the wrong ones are named (:class:`~..exercise.Layer`). Last, the
student's network is trained with SGD on scikit-learn's digits.
"""

from __future__ import annotations

import numpy as np

from ...data import load_digits
from ...numerics import log_softmax, stable_sigmoid
from ..diagnose import Mistake
from ..exercise import (
    Layer,
    TrainingExercise,
    VJPExercise,
    large_elementwise,
    random_shape,
    register,
    small_ints,
)
from ..kinds import Kind
from ..references import one_hot, torch_cross_entropy, torch_elementwise
from .nb05_softmax_cross_entropy import OVERFLOW, ce_forward
from .nb06_mlp_backprop import mlp_forward, mlp_gradients

NOTEBOOK = "10_network_from_layers"
LAYERS = ("affine_layer", "relu_layer", "softmax_cross_entropy_layer")


# ------------------------------------------------------------- affine: x w + b
def _affine_given(rng: np.random.Generator) -> list[dict]:
    """UCLA CS M146's shapes, x (N=2, D=3) and w (D=3, M=4), with a bias (4,): small
    integers."""
    return [{"x": small_ints(rng, (2, 3)), "w": small_ints(rng, (3, 4), -3, 3),
             "b": small_ints(rng, 4, -2, 2), "grad_out": small_ints(rng, (2, 4), -9, 9)}]


def _affine_random(rng: np.random.Generator) -> dict:
    n = int(rng.integers(3, 9))  # a batch: N > 1, so a missing sum over it shows
    d, m = (int(v) for v in rng.integers(2, 7, size=2))
    return {"x": rng.standard_normal((n, d)), "w": rng.standard_normal((d, m)),
            "b": rng.standard_normal(m), "grad_out": rng.standard_normal((n, m))}


def _affine_edge(rng: np.random.Generator) -> list[dict]:
    """A batch of one through a square w, on which dout w and dout w^T differ, and
    x^T dout is not symmetric (so its transpose differs too)."""
    d = int(rng.integers(2, 5))
    while True:
        x, w, grad_out = small_ints(rng, (1, d)), small_ints(rng, (d, d)), small_ints(rng, (1, d))
        if not (np.allclose(grad_out @ w, grad_out @ w.T)
                or np.allclose(x.T @ grad_out, grad_out.T @ x)):
            return [{"x": x, "w": w, "b": small_ints(rng, d), "grad_out": grad_out}]


def _affine_large(rng: np.random.Generator) -> dict:
    """A batch of 256 through a 512 -> 512 layer."""
    return {"x": rng.standard_normal((256, 512)), "w": rng.standard_normal((512, 512)),
            "b": rng.standard_normal(512), "grad_out": rng.standard_normal((256, 512))}


def _affine_mistakes(case: dict) -> list[Mistake]:
    x, w, g = (np.asarray(case[k], dtype=np.float64) for k in ("x", "w", "grad_out"))
    n, (dx, dw, db) = x.shape[0], (g @ w.T, x.T @ g, g.sum(axis=0))
    found = [Mistake(Kind.BATCH_FACTOR, "you divided by the batch size N; the layer's "
                     "gradients are plain sums (the mean belongs to the loss layer)",
                     (dx / n, dw / n, db / n)),
             Mistake(Kind.BIAS_MEAN, "db is the SUM of dout over the batch, not its mean",
                     (dx, dw, g.mean(axis=0))),
             Mistake(Kind.BIAS_ROW, "db sums dout over ALL rows of the batch, not only the "
                     "first", (dx, dw, g[0]))]
    if w.shape[0] == w.shape[1]:  # dout w only has the right shape for a square w
        found.append(Mistake(Kind.ORDER, "dx = dout w^T; you used w instead of w^T",
                             (g @ w, dw, db)))
    return found


def _torch_affine(x, w, b):
    return x @ w + b


register(VJPExercise(
    id="affine_layer",
    notebook=NOTEBOOK,
    title="The affine layer out = x w + b (w shaped (in, out)), forward and backward",
    answer=("affine_forward", "affine_backward"),
    signature="affine_forward(x, w, b) and affine_backward(dout, cache)",
    inputs=("x", "w", "b"),
    wrt=("x", "w", "b"),
    forward=lambda x, w, b: x @ w + b,
    torch_forward=_torch_affine,
    given=_affine_given,
    random=_affine_random,
    edge=_affine_edge,
    large=_affine_large,
    call="layer",
    mistakes=_affine_mistakes,
))


# ------------------------------------------------------------------------ ReLU
def _away_from_kink(x: np.ndarray) -> np.ndarray:
    """``x`` with entries near 0 moved to 0.5: the numerical gradient needs a gap."""
    return np.where(np.abs(x) < 1e-3, 0.5, x)


def _upstream_against_the_mask(rng: np.random.Generator, x: np.ndarray) -> np.ndarray:
    """Nonzero small integers of ``x``'s shape, positive at one negative input (so that a
    mask taken from the upstream gradient's sign, or from x >= 0, shows)."""
    grad_out = small_ints(rng, x.shape, -9, 9)
    grad_out.flat[rng.choice(np.flatnonzero(x < 0))] = float(rng.integers(1, 10))
    return grad_out


def _relu_given(rng: np.random.Generator) -> list[dict]:
    """UCLA CS M146's pattern x = (1, -2, 3, -1), dL/dy = (4, -1, 5, 9) for a batch of
    two: nonzero small integers, half of them negative, and a positive upstream gradient
    at a negative input (the deck's 9)."""
    x = np.abs(small_ints(rng, (2, 4))) * rng.permutation([1.0, -1.0] * 4).reshape(2, 4)
    return [{"x": x, "grad_out": _upstream_against_the_mask(rng, x)}]


def _relu_random(rng: np.random.Generator) -> dict:
    n, h = (int(v) for v in rng.integers(1, 7, size=2))
    return {"x": _away_from_kink(rng.standard_normal((n, h))),
            "grad_out": rng.standard_normal((n, h))}


def _relu_edge(rng: np.random.Generator) -> list[dict]:
    """Inputs exactly at the kink x = 0, next to positive and negative ones (two each)."""
    x = rng.permutation(np.abs(small_ints(rng, 6)) * [0, 0, 1, 1, -1, -1]).reshape(2, 3)
    return [{"x": x, "grad_out": _upstream_against_the_mask(rng, x)}]


def _relu_mistakes(case: dict) -> list[Mistake]:
    x, g = (np.asarray(case[k], dtype=np.float64) for k in ("x", "grad_out"))
    return [Mistake(Kind.KINK, "at x = 0 ReLU's gradient is 0 (torch's convention): mask "
                    "with x > 0, not x >= 0", (g * (x >= 0),)),
            Mistake(Kind.UPSTREAM_MASK, "you masked by the sign of dout (or applied ReLU to "
                    "it); the mask is [x > 0], where the layer's INPUT was positive: cache x "
                    "in the forward pass", (g * (g > 0),)),
            Mistake(Kind.RELU_MASK, "you passed dout through without ReLU's mask [x > 0] "
                    "(note out >= 0 holds everywhere: the mask needs x > 0, or out > 0)",
                    (g,)),
            Mistake(Kind.LOCAL_DERIVATIVE, "you multiplied dout by the output max(0, x); "
                    "ReLU's local gradient is 1 where x > 0 and 0 elsewhere",
                    (g * np.maximum(x, 0),))]



register(VJPExercise(
    id="relu_layer",
    notebook=NOTEBOOK,
    title="The ReLU layer out = max(0, x), forward and backward",
    answer=("relu_forward", "relu_backward"),
    signature="relu_forward(x) and relu_backward(dout, cache)",
    inputs=("x",),
    wrt=("x",),
    forward=lambda x: np.maximum(x, 0),
    torch_forward=torch_elementwise("relu"),
    given=_relu_given,
    random=_relu_random,
    edge=_relu_edge,
    large=large_elementwise("x"),
    call="layer",
    edge_at_kink=True,
    mistakes=_relu_mistakes,
))


# --------------------------------------------------------------------- sigmoid
def _sigmoid_given(rng: np.random.Generator) -> list[dict]:
    return [{"x": small_ints(rng, (2, 3), -2, 2), "grad_out": small_ints(rng, (2, 3), -3, 3)}]


def _sigmoid_random(rng: np.random.Generator) -> dict:
    shape = random_shape(rng, max_size=6)
    return {"x": rng.standard_normal(shape) * 3, "grad_out": rng.standard_normal(shape)}


def _sigmoid_edge(rng: np.random.Generator) -> list[dict]:
    """Saturation: far from 0 the gradient all but vanishes, and beyond 709.78 exp
    overflows (e^x / (1 + e^x) is then inf / inf)."""
    far = rng.uniform(710, 800)
    return [{"x": [[-far, far], [0.0, -rng.uniform(30, 40)]],
             "grad_out": [[1.0, 1.0], [float(rng.integers(1, 5)), rng.uniform(50, 100)]]}]


def _sigmoid_mistakes(case: dict) -> list[Mistake]:
    x, g = (np.asarray(case[k], dtype=np.float64) for k in ("x", "grad_out"))
    s = stable_sigmoid(x)
    return [Mistake(Kind.LOCAL_DERIVATIVE, "you multiplied dout by s itself; the local "
                    "gradient is s (1 - s)", (g * s,)),
            Mistake(Kind.LOCAL_DERIVATIVE, "you multiplied dout by 1 - s only; the local "
                    "gradient is s (1 - s)", (g * (1 - s),)),
            Mistake(Kind.INPUT_NOT_OUTPUT, "you computed x (1 - x) from the input; the local "
                    "gradient s (1 - s) takes the layer's OUTPUT s: cache s in the forward "
                    "pass", (g * x * (1 - x),))]



register(VJPExercise(
    id="sigmoid_layer",
    notebook=NOTEBOOK,
    title="The sigmoid layer out = 1 / (1 + exp(-x)), forward and backward",
    answer=("sigmoid_forward", "sigmoid_backward"),
    signature="sigmoid_forward(x) and sigmoid_backward(dout, cache)",
    inputs=("x",),
    wrt=("x",),
    forward=stable_sigmoid,
    torch_forward=torch_elementwise("sigmoid"),
    given=_sigmoid_given,
    random=_sigmoid_random,
    edge=_sigmoid_edge,
    large=large_elementwise("x", spread=3.0),
    call="layer",
    mistakes=_sigmoid_mistakes,
))


# ------------------------------------------------------- softmax cross-entropy
def _softmax(scores: np.ndarray) -> np.ndarray:
    return np.exp(log_softmax(np.asarray(scores, dtype=np.float64)))




def _ce_given(rng: np.random.Generator) -> list[dict]:
    """Scores of 3 classes for 2 examples, halves of small integers."""
    return [{"scores": small_ints(rng, (2, 3), -3, 3) / 2, "y": rng.integers(0, 3, 2),
             "grad_out": 1.0}]


def _ce_random(rng: np.random.Generator) -> dict:
    n, c = int(rng.integers(2, 9)), int(rng.integers(2, 7))
    return {"scores": rng.normal(0, 2, (n, c)), "y": rng.integers(0, c, n), "grad_out": 1.0}


def _ce_edge(rng: np.random.Generator) -> list[dict]:
    """Scores around +1000 and -1000 (a naive softmax gives NaN), and a single example."""
    c = int(rng.integers(3, 6))
    scores = np.array([[1000.0], [-1000.0]]) + small_ints(rng, (2, 4), -2, 2)
    return [{"scores": scores, "y": rng.integers(0, 4, 2), "grad_out": 1.0},
            {"scores": rng.normal(0, 1, (1, c)), "y": rng.integers(0, c, 1), "grad_out": 1.0}]


def _ce_large(rng: np.random.Generator) -> dict:
    """500 examples of 2,000 classes: finite differences need a forward pass per score."""
    return {"scores": rng.normal(0, 2, (500, 2000)), "y": rng.integers(0, 2000, 500),
            "grad_out": 1.0}


def _ce_mistakes(case: dict) -> list[Mistake]:
    scores, y = np.asarray(case["scores"]), np.asarray(case["y"])
    n, c = scores.shape
    p = _softmax(scores)
    found = [Mistake(Kind.ONE_HOT, "you returned p / N without subtracting the one-hot "
                     "labels Y: dscores = (P - Y) / N", (p / n,))]
    if c != n:
        found.append(Mistake(Kind.WRONG_COUNT_DIVISOR, "you divided by the number of classes "
                             "C instead of the batch size N", ((p - one_hot(y, c)) / c,)))
    return found


register(VJPExercise(
    id="softmax_cross_entropy_layer",
    notebook=NOTEBOOK,
    title="Softmax cross-entropy as a loss layer: the mean loss and dscores = (P - Y) / N",
    answer="softmax_cross_entropy",
    signature="softmax_cross_entropy(scores, y)",
    inputs=("scores", "y"),
    wrt=("scores",),
    forward=lambda scores, y: ce_forward(scores, y),
    torch_forward=lambda scores, y: torch_cross_entropy(scores, y),
    given=_ce_given,
    random=_ce_random,
    edge=_ce_edge,
    large=_ce_large,
    call="loss",
    mistakes=_ce_mistakes,
    nonfinite_hint=OVERFLOW,
))


# ------------------------------------------------ the two-layer network, with L2
NET_INPUTS = ("x", "y", "w1", "b1", "w2", "b2", "lam")


def net_forward(x, y, w1, b1, w2, b2, lam) -> np.ndarray:
    """J = mean_n CE(softmax(s_n), y_n) + lam / 2 (||w1||^2 + ||w2||^2) with
    h = x w1 + b1 (N, H), a = max(0, h), s = a w2 + b2 (N, C); w1 (D, H), w2 (H, C)."""
    return mlp_forward(x, y, w1.T, b1, w2.T, b2, lam)


def net_gradients(x, y, w1, b1, w2, b2, lam, **mistake: bool | float) -> tuple:
    """(dw1, db1, dw2, db2); ``mistake`` takes :func:`.mlp_gradients`'s switches."""
    dW1, db1, dW2, db2 = mlp_gradients(x, y, w1.T, b1, w2.T, b2, lam, **mistake)
    return dW1.T, db1, dW2.T, db2


def _torch_net(x, y, w1, b1, w2, b2, lam):
    import torch

    scores = torch.relu(x @ w1 + b1) @ w2 + b2
    loss = torch.nn.functional.cross_entropy(scores, y.long())
    return loss + 0.5 * lam * ((w1 * w1).sum() + (w2 * w2).sum())


def _net_case(rng: np.random.Generator, n: int, d: int, h: int, c: int, lam: float,
              decimals: int | None = None) -> dict:
    """Weights scaled by 1/sqrt(fan-in); with ``decimals``, values rounded (the given
    case); pre-activations kept away from ReLU's kink, where the numerical gradient is
    no reference."""
    def draw(*shape: int, scale: float = 1.0) -> np.ndarray:
        values = rng.normal(0, scale, shape)
        return values if decimals is None else np.round(values, decimals)

    x, w1, b1 = draw(n, d), draw(d, h, scale=1 / np.sqrt(d)), draw(h, scale=0.5)
    while (near := (np.abs(x @ w1 + b1) < 1e-2).any(axis=0)).any():
        b1 = b1 + 0.05 * near  # move the hidden units with an input near the kink
    return {"x": x, "y": rng.integers(0, c, n), "w1": w1, "b1": b1,
            "w2": draw(h, c, scale=1 / np.sqrt(h)), "b2": draw(c, scale=0.5), "lam": lam,
            "grad_out": 1.0}


def _net_given(rng: np.random.Generator) -> list[dict]:
    """N = 4 examples, D = 3 inputs, H = 5 hidden units, C = 3 classes, lam = 0.1, values
    rounded to two decimals."""
    return [_net_case(rng, 4, 3, 5, 3, 0.1, decimals=2)]


def _net_random(rng: np.random.Generator) -> dict:
    n, d, h, c = (int(v) for v in rng.integers((2, 2, 2, 2), (8, 6, 7, 5)))
    return _net_case(rng, n, d, h, c, float(rng.choice([0.05, 0.1, 0.5])))


def _net_large(rng: np.random.Generator) -> dict:
    """128 examples through 256 -> 256 -> 10: 68,000 parameters."""
    return _net_case(rng, 128, 256, 256, 10, 0.01)


def _net_layers(case: dict) -> list[Layer]:
    """Each layer of the network where the case puts it, met in backward order: its
    inputs from the reference forward pass, its upstream gradient from the reference
    backward pass (the regularizer sends no gradient through the layers)."""
    x, y, w1, b1, w2, b2 = (case[k] for k in NET_INPUTS[:-1])
    h = x @ w1 + b1
    a = np.maximum(h, 0)
    scores = a @ w2 + b2
    dscores = (_softmax(scores) - one_hot(y, scores.shape[1])) / x.shape[0]
    da = dscores @ w2.T
    return [
        Layer("softmax_cross_entropy_layer", "the loss layer, L = softmax cross-entropy(s, y)",
              {"scores": scores, "y": y, "grad_out": 1.0}),
        Layer("affine_layer", "the second affine layer, s = a w2 + b2",
              {"x": a, "w": w2, "b": b2, "grad_out": dscores}),
        Layer("relu_layer", "the ReLU, a = max(0, h)", {"x": h, "grad_out": da}),
        Layer("affine_layer", "the first affine layer, h = x w1 + b1",
              {"x": x, "w": w1, "b": b1, "grad_out": da * (h > 0)}),
    ]


def _net_mistakes(case: dict) -> list[Mistake]:
    args = tuple(case[k] for k in NET_INPUTS)
    return [
        Mistake(Kind.REGULARIZATION, "you left out the regularizer's gradient lam * w: the "
                "layers give the data loss's gradients, then add lam * w1 to dw1 and lam * w2 "
                "to dw2", net_gradients(*args, reg_factor=0.0)),
        Mistake(Kind.REGULARIZATION, "you doubled the regularizer's gradient: lam / 2 "
                "||w||^2 has the gradient lam * w, not 2 lam * w",
                net_gradients(*args, reg_factor=2.0)),
        Mistake(Kind.RELU_MASK, "you skipped relu_backward on the way back: dh = "
                "relu_backward(da, cache), not da", net_gradients(*args, relu_mask=False)),
        Mistake(Kind.BATCH_FACTOR, "the data loss is the MEAN over the N examples, so "
                "dscores = (P - Y) / N", net_gradients(*args, mean=False)),
    ]


register(VJPExercise(
    id="two_layer_net",
    notebook=NOTEBOOK,
    title="A two-layer network from your layers: loss and gradients, with L2",
    answer="two_layer_net",
    signature="two_layer_net(x, y, w1, b1, w2, b2, lam)",
    inputs=NET_INPUTS,
    wrt=("w1", "b1", "w2", "b2"),
    forward=net_forward,
    torch_forward=_torch_net,
    given=_net_given,
    random=_net_random,
    large=_net_large,
    call="loss",
    requires=LAYERS,
    mistakes=_net_mistakes,
    layers=_net_layers,
))


# ------------------------------------------------------------- training it
def _digits(rng: np.random.Generator) -> tuple[dict, np.ndarray]:
    """scikit-learn's digits, split as in notebooks 08 and 10 (1,347 training and 450 test
    images of 64 standardised pixels, labels 0-9), each set in an order drawn from
    ``rng``. The images are the same for everyone: splits differ in difficulty (on some,
    a network that reaches 97.5% on average gets below 95%), and no student should meet
    a harder one."""
    x_train, y_train, x_test, y_test = load_digits(test_size=0.25, seed=0)
    train, test = rng.permutation(len(y_train)), rng.permutation(len(y_test))
    return {"X_train": x_train[train], "y_train": y_train[train], "X_test": x_test[test]}, \
        y_test[test]


#: the widest hidden layer the training exercise accepts
MAX_HIDDEN = 256


def predict_digits(params: tuple[np.ndarray, ...], x: np.ndarray) -> np.ndarray:
    """The grader's forward pass of the trained two-layer network: the class of the
    largest score of relu(x w1 + b1) w2 + b2.

    Shape
    -----
    params : w1 (D, H), b1 (H,), w2 (H, C), b2 (C,) with H <= 256, C = 10;  x : (M, D);
    out : (M,)
    """
    w1, b1, w2, b2 = params
    d, classes = x.shape[1], 10
    if w1.ndim != 2 or w1.shape[0] != d or not 1 <= w1.shape[1] <= MAX_HIDDEN \
            or b1.shape != w1.shape[1:] or w2.shape != (w1.shape[1], classes) \
            or b2.shape != (classes,):
        shapes = ", ".join(f"{name} {p.shape}" for name, p in zip(("w1", "b1", "w2", "b2"),
                                                                  params, strict=True))
        raise ValueError(f"got {shapes}; expected w1 ({d}, H), b1 (H,), w2 (H, {classes}), "
                         f"b2 ({classes},) with H from 1 to {MAX_HIDDEN}")
    return (np.maximum(x @ w1 + b1, 0) @ w2 + b2).argmax(axis=1)


register(TrainingExercise(
    id="train_digits",
    notebook=NOTEBOOK,
    title="Train your network with SGD on the digits: at least 95% test accuracy",
    answer="train",
    signature="train(X_train, y_train) -> (w1, b1, w2, b2)",
    data=_digits,
    predict=predict_digits,
    threshold=0.95,
    wrt=("w1", "b1", "w2", "b2"),
    budget=30.0,
    requires=(*LAYERS, "two_layer_net"),
))
