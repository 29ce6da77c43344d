"""Every registered exercise: a correct solution passes every part, and each seeded mistake
fails its part with the right :class:`Kind` and a message that names it (ARENA's lesson:
a checker must be shown to reject wrong answers, not only to accept right ones).

Checks run as the student's ``check`` runs them, in this process (``run_in_kernel``),
with the real engine for the notebook-07 exercises. Also here: the large cases reject
numerical differentiation (Kind.TOO_SLOW) while a backward pass makes them easily, and a
central difference at ReLU's kink is not torch's convention.
"""

from __future__ import annotations

import re
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import backprop_course as bc
from backprop_course.backward import topological_order
from backprop_course.checks import REGISTRY, Kind, ValueExercise, VJPExercise, get
from backprop_course.checks.exercises.nb06_mlp_backprop import mlp_gradients
from backprop_course.checks.exercises.nb07_autograd_engine import (
    depth_first_order,
    reference_backward,
)
from backprop_course.checks.harness import call_engine_backward

pytest.importorskip("torch")  # the references of the checks
get("relu_backward")  # imports every exercise module: REGISTRY is complete from here on
#: the exercises of notebooks 01-07 (later notebooks test theirs in their own files)
ALL = sorted(e for e in REGISTRY if REGISTRY[e].notebook[:2] in {f"0{n}" for n in range(1, 8)})
VJP = sorted(e for e in ALL if isinstance(REGISTRY[e], VJPExercise))
RANDOM_SEEDS = (0, 1, 2, 3, 4)
OTHER_SEEDS = (0, 1, 2)
BUG_SEEDS = (11, 12, 13)


# ------------------------------------------------------------ correct solutions
def _sigmoid(s):
    return 1 / (1 + np.exp(-s))


def _softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def neuron(w, x, g):
    f = _sigmoid(w[0] * x[0] + w[1] * x[1] + w[2])
    ds = g * (1 - f) * f
    return np.array([ds * x[0], ds * x[1], ds]), np.array([ds * w[0], ds * w[1]])


def max_backward(a, b, g):
    tie = 0.5 * (a == b)
    return g * ((a > b) + tie), g * ((b > a) + tie)


def ce_backward(logits, target, g):
    n = logits.shape[0]
    return (_softmax(logits) - np.eye(logits.shape[1])[target]) / n * g


def softmax_backward(x, g):
    p = _softmax(x)
    return p * (g - (g * p).sum(axis=-1, keepdims=True))


def two_layer(x, y, w1, w2):
    h = 1 / (1 + np.exp(-x.dot(w1)))
    grad_y_pred = 2.0 * (h.dot(w2) - y)
    return x.T.dot(grad_y_pred.dot(w2.T) * h * (1 - h)), h.T.dot(grad_y_pred)


def engine_backward(output, grad_output):
    """The loop the notebook asks for (a recursive depth-first search, as a student
    would write it)."""
    order, seen = [], set()

    def visit(node):
        if id(node) in seen:
            return
        seen.add(id(node))
        for inp in node.inputs:
            if isinstance(inp, bc.Tensor) and inp.grad_fn is not None:
                visit(inp.grad_fn)
        order.append(node)

    visit(output.grad_fn)
    upstream = {id(output.grad_fn): grad_output}
    for node in reversed(order):
        grads = node.function.backward(node, upstream.pop(id(node)))
        grads = grads if isinstance(grads, tuple) else (grads,)
        for inp, g, needed in zip(node.inputs, grads, node.needs_input_grad, strict=False):
            if not needed or g is None:
                continue
            if inp.grad_fn is None:
                inp.grad = bc.Tensor(g) if inp.grad is None else bc.Tensor(inp.grad.data + g)
            else:
                key = id(inp.grad_fn)
                upstream[key] = upstream[key] + g if key in upstream else g


class Tanh(bc.Function):
    @staticmethod
    def forward(ctx, x):
        y = np.tanh(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return g * (1 - y * y)


def by_hand(numbers: dict) -> dict:
    """f = (x + y) * z at the student's own numbers."""
    x, y, z = numbers["x"], numbers["y"], numbers["z"]
    return {"dfdx": z, "dfdy": z, "dfdz": x + y}


CORRECT: dict[str, Any] = {
    "add_mul_by_hand": by_hand,
    "mul_backward": lambda a, b, g: (g * b, g * a),
    "squared_error_grad_w": lambda w, x, y, g: -2 * (y - w @ x) * x * g,
    "sigmoid_neuron_backward": neuron,
    "sigmoid_backward": lambda x, g: g * _sigmoid(x) * (1 - _sigmoid(x)),
    "max_backward": max_backward,
    "relu_backward": lambda x, g: g * (x > 0),
    "tanh_backward": lambda x, g: g * (1 - np.tanh(x) ** 2),
    "matmul_backward": lambda x, w, g: (g @ w.T, x.T @ g),
    "linear_backward": lambda x, W, b, g: (g @ W, g.T @ x, g.sum(axis=0)),
    "softmax_cross_entropy_backward": ce_backward,
    "softmax_backward": softmax_backward,
    "mlp_backward": lambda *args: mlp_gradients(*args),
    "two_layer_backward": two_layer,
    "engine_backward": engine_backward,
    "tanh_function": Tanh,
}


def run(exercise_id: str, answer: Any, part: str, seed: int):
    """One check as the notebook's ``check`` runs it, on the cases of ``seed``. A by-hand
    answer is a function of the student's numbers (drawn from the same seed)."""
    exercise = get(exercise_id)
    if isinstance(exercise, ValueExercise) and callable(answer):
        answer = answer(exercise.provides(np.random.default_rng(seed)))
    return exercise.run_in_kernel(answer, part, np.random.default_rng(seed))


def test_every_exercise_of_notebooks_01_to_07_is_tested() -> None:
    assert sorted(CORRECT) == ALL
    assert len(ALL) >= 16
    assert {get(e).notebook[:2] for e in ALL} == {f"0{n}" for n in range(1, 8)}


@pytest.mark.parametrize("exercise_id", ALL)
def test_correct_solution_passes_every_part(exercise_id: str) -> None:
    exercise = get(exercise_id)
    assert len(exercise.parts) >= 3
    for part in exercise.parts:
        for seed in RANDOM_SEEDS if part == "random" else OTHER_SEEDS:
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # a correct answer warns about nothing
                result = run(exercise_id, CORRECT[exercise_id], part, seed)
            assert result.passed, result.report()
            assert result.kinds == [] and result.report().startswith("[PASS]")


@pytest.mark.parametrize("exercise_id", ALL)
def test_every_students_given_cases_pass_a_correct_solution(exercise_id: str) -> None:
    """The given (and by-hand) numbers are drawn per student: every draw must work."""
    exercise = get(exercise_id)
    part = exercise.parts[0] if isinstance(exercise, ValueExercise) else "given"
    for seed in range(100, 130):
        result = run(exercise_id, CORRECT[exercise_id], part, seed)
        assert result.passed, (seed, result.report())


# --------------------------------------------------------------- seeded bugs
def ce_no_mean(logits, target, g):
    return ce_backward(logits, target, g) * logits.shape[0]


def ce_naive_softmax(logits, target, g):
    e = np.exp(logits)
    return (e / e.sum(axis=1, keepdims=True) - np.eye(logits.shape[1])[target]) / len(target) * g


def softmax_naive(x, g):
    e = np.exp(x)
    p = e / e.sum(axis=-1, keepdims=True)
    return p * (g - (g * p).sum(axis=-1, keepdims=True))


def mlp_transposed(*args):
    g = list(mlp_gradients(*args))
    g[0] = g[0].T
    return tuple(g)


def mlp_no_bias_sum(x, target, W1, b1, W2, b2, lam):
    grads = list(mlp_gradients(x, target, W1, b1, W2, b2, lam))
    s = np.maximum(x @ W1.T + b1, 0) @ W2.T + b2
    grads[3] = (_softmax(s) - np.eye(s.shape[1])[target]) / x.shape[0]  # one row per example
    return tuple(grads)


def two_layer_w2_per_example(x, y, w1, w2):
    h = _sigmoid(x @ w1)
    grad_y_pred = 2.0 * (h @ w2 - y)
    return two_layer(x, y, w1, w2)[0], np.einsum("nh,nc->nhc", h, grad_y_pred)


def engine_overwrite_nodes(output, grad_output):
    reference_backward(output, grad_output, overwrite_nodes=True)


def engine_overwrite_nodes_depth_first(output, grad_output):
    """The same bug in a loop that sorts the nodes as the notebook's plan does."""
    reference_backward(output, grad_output, overwrite_nodes=True, order=depth_first_order)


def engine_overwrite_leaves(output, grad_output):
    reference_backward(output, grad_output, overwrite_leaves=True)


def engine_overwrite_across_calls(output, grad_output):
    for node in topological_order(output.grad_fn):  # "start fresh": wipes earlier .grad
        for inp in node.inputs:
            if isinstance(inp, bc.Tensor) and inp.grad_fn is None:
                inp.grad = None
    engine_backward(output, grad_output)


def engine_forward_order(output, grad_output):
    """Visits nodes in forward (not reverse) order: a node passes its gradient on before
    all of its users have added theirs."""
    upstream = {id(output.grad_fn): grad_output}
    for node in topological_order(output.grad_fn):
        if id(node) not in upstream:
            continue
        grads = node.function.backward(node, upstream[id(node)])
        grads = grads if isinstance(grads, tuple) else (grads,)
        for inp, g, needed in zip(node.inputs, grads, node.needs_input_grad, strict=False):
            if needed and g is not None:
                if inp.grad_fn is None:
                    inp.grad = bc.Tensor(g) if inp.grad is None else bc.Tensor(inp.grad.data + g)
                else:
                    key = id(inp.grad_fn)
                    upstream[key] = upstream[key] + g if key in upstream else g


def engine_forward_order_pop(output, grad_output):
    """Forward order with the notebook's ``upstream.pop``: the first node has nothing yet."""
    upstream = {id(output.grad_fn): grad_output}
    for node in topological_order(output.grad_fn):
        grads = node.function.backward(node, upstream.pop(id(node)))
        for inp, g in zip(node.inputs, grads if isinstance(grads, tuple) else (grads,),
                          strict=False):
            if getattr(inp, "grad_fn", None) is not None:
                upstream[id(inp.grad_fn)] = g


def engine_calls_backward(output, grad_output):
    output.backward(grad_output)


class TanhFromInput(Tanh):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(np.tanh(x))
        ctx.x = x
        return np.tanh(x)

    @staticmethod
    def backward(ctx, g):
        return g * (1 - ctx.x * ctx.x)


class TanhNoSquare(Tanh):
    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return g * (1 - y)


class TanhNaive(Tanh):
    @staticmethod
    def forward(ctx, x):
        y = (np.exp(x) - np.exp(-x)) / (np.exp(x) + np.exp(-x))
        ctx.save_for_backward(y)
        return y


class TanhSign(Tanh):
    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return -g * (1 - y * y)


class TanhNoUpstream(Tanh):
    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return 1 - y * y


class TanhTransposed(Tanh):
    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return (g * (1 - y * y)).T


def _per_example(a, b):
    """The outer products a[n] b[n]^T, one per example: x^T g without the sum over n."""
    return np.einsum("ni,nj->nij", a, b)


def _neg(answer: Callable) -> Callable:
    """The answer with every gradient's sign flipped."""
    def wrong(*args):
        out = answer(*args)
        return tuple(-g for g in out) if isinstance(out, tuple) else -out
    return wrong


def _transposed(answer: Callable) -> Callable:
    """The answer with every gradient transposed (a 1-D one stays as it is)."""
    def wrong(*args):
        out = answer(*args)
        return tuple(g.T for g in out) if isinstance(out, tuple) else out.T
    return wrong


K = Kind
# (exercise, wrong answer, part, the kind(s) every failure must have, a phrase of the report)
# By-hand answers are functions of the student's numbers x, y, z.
BUGS: list[tuple[str, Any, str, Kind | tuple[Kind, ...], str]] = [
    # ---- 01: f = (x + y) * z by hand
    ("add_mul_by_hand", lambda n: {"dfdx": -n["z"]}, "dfdx", K.SIGN, "wrong sign"),
    ("add_mul_by_hand", lambda n: {"dfdy": -n["z"]}, "dfdy", K.SIGN, "wrong sign"),
    ("add_mul_by_hand", lambda n: {"dfdz": -(n["x"] + n["y"])}, "dfdz", K.SIGN, "wrong sign"),
    # a wrong single number that is no known slip is just wrong (no "factor" between numbers)
    ("add_mul_by_hand", lambda n: {"dfdz": n["x"] + n["y"] + 0.5}, "dfdz", K.VALUES,
     "wrong values"),
    ("add_mul_by_hand", lambda n: {"dfdx": 1.0}, "dfdx", K.CHAIN, "upstream df/dq = z"),
    ("add_mul_by_hand", lambda n: {"dfdy": 1.0}, "dfdy", K.CHAIN, "upstream df/dq = z"),
    ("add_mul_by_hand", lambda n: {"dfdz": n["z"]}, "dfdz", K.NO_SWAP, "other one"),
    ("add_mul_by_hand", lambda n: {"dfdz": 1.0}, "dfdz", K.CHAIN, "df/df alone"),
    ("add_mul_by_hand", lambda n: {"dfdx": ...}, "dfdx", K.UNANSWERED, "not answered yet"),
    ("add_mul_by_hand", lambda n: {"dfdx": None}, "dfdx", K.UNANSWERED, "not answered yet"),
    ("add_mul_by_hand", lambda n: {"dfdy": n["z"]}, "dfdx", K.UNANSWERED, "'dfdx'"),
    ("add_mul_by_hand", lambda n: {"dfdx": "minus four"}, "dfdx", K.TYPE, "numeric"),
    # ---- 01: the mul gate
    ("mul_backward", lambda a, b, g: (g * a, g * b), "given", K.NO_SWAP, "swaps its inputs"),
    ("mul_backward", lambda a, b, g: (b, a), "random", K.UPSTREAM, "upstream gradient"),
    ("mul_backward", _neg(CORRECT["mul_backward"]), "random", K.SIGN, "wrong sign"),
    ("mul_backward", _transposed(CORRECT["mul_backward"]), "random", K.TRANSPOSED,
     "transpose"),
    ("mul_backward", lambda a, b, g: g * b, "given", K.COUNT, "return 2 gradients"),
    ("mul_backward", lambda a, b, g: None, "given", K.COUNT, "got NoneType"),
    ("mul_backward", lambda a, b, g: (None, g * a), "given", K.MISSING, "returned None"),
    ("mul_backward", lambda a, b, g: ("a", g * a), "given", K.TYPE, "numeric array"),
    ("mul_backward", lambda a, b, g: (g * b, np.full_like(a, np.nan)), "given", K.NAN, "NaN"),
    # ---- 01: e = (y - w^T x)^2
    ("squared_error_grad_w", lambda w, x, y, g: 2 * (y - w @ x) * x * g, "random", K.SIGN,
     "wrong sign"),
    ("squared_error_grad_w", lambda w, x, y, g: -(y - w @ x) * x * g, "random", K.FACTOR,
     "factor of 2"),
    ("squared_error_grad_w", lambda w, x, y, g: -2 * (y - w @ x) * x, "random", K.UPSTREAM,
     "upstream gradient"),
    ("squared_error_grad_w", lambda w, x, y, g: x * g, "random", K.LOCAL, "dh/dw = x alone"),
    ("squared_error_grad_w", lambda w, x, y, g: np.full_like(w, -2 * (y - w @ x) * g),
     "random", K.CHAIN, "local gradient dh/dw = x"),
    ("squared_error_grad_w", lambda w, x, y, g: np.outer(x, -2 * (y - w @ x) * g), "shape",
     K.SHAPE, "shape of its input"),
    # ---- 02: the sigmoid neuron
    ("sigmoid_neuron_backward", lambda w, x, g: (g * np.array([x[0], x[1], 1.0]), g * w[:2]),
     "given", K.CHAIN, "f (1 - f)"),
    ("sigmoid_neuron_backward", _neg(neuron), "random", K.SIGN, "wrong sign"),
    ("sigmoid_neuron_backward", lambda w, x, g: neuron(w, x, 1.0), "random", K.UPSTREAM,
     "upstream gradient"),
    ("sigmoid_neuron_backward",
     lambda w, x, g: (neuron(w, x, g)[0] * np.array([w[0] / x[0], w[1] / x[1], 1.0]),
                      neuron(w, x, g)[1] * x / w[:2]), "random", K.NO_SWAP, "must swap"),
    ("sigmoid_neuron_backward", lambda w, x, g: neuron(w, x, g)[0], "given", K.COUNT,
     "return 2 gradients"),
    # ---- 02: the sigmoid gate
    ("sigmoid_backward", lambda x, g: g * _sigmoid(x), "random", K.LOCAL_DERIVATIVE,
     "sigma(x) itself"),
    ("sigmoid_backward", lambda x, g: g * (1 - _sigmoid(x)), "random", K.LOCAL_DERIVATIVE,
     "1 - sigma(x) only"),
    ("sigmoid_backward", lambda x, g: _sigmoid(x) * (1 - _sigmoid(x)), "random", K.UPSTREAM,
     "upstream gradient"),
    ("sigmoid_backward", lambda x, g: 2 * g * _sigmoid(x) * (1 - _sigmoid(x)), "given",
     K.FACTOR, "factor of 2"),
    ("sigmoid_backward", lambda x, g: g * x * (1 - x), "random", K.INPUT_NOT_OUTPUT,
     "from the input"),
    ("sigmoid_backward", lambda x, g: -g * _sigmoid(x) * (1 - _sigmoid(x)), "random", K.SIGN,
     "wrong sign"),
    ("sigmoid_backward", lambda x, g: (g * _sigmoid(x) * (1 - _sigmoid(x))).T, "random",
     K.TRANSPOSED, "transpose"),
    # ---- 02: the max gate
    ("max_backward", lambda a, b, g: (g, g), "random", K.ROUTE, "add gate"),
    ("max_backward", lambda a, b, g: (g * (a < b), g * (b < a)), "random", K.ROUTE,
     "smaller input"),
    ("max_backward", lambda a, b, g: ((a > b) * 1.0, (b > a) * 1.0), "random", K.UPSTREAM,
     "upstream gradient"),
    ("max_backward", lambda a, b, g: (g * a * (a > b), g * b * (b > a)), "random",
     K.LOCAL_DERIVATIVE, "multiplied by the values"),
    ("max_backward", _neg(max_backward), "random", K.SIGN, "wrong sign"),
    ("max_backward", _transposed(max_backward), "random", K.TRANSPOSED, "transpose"),
    ("max_backward", lambda a, b, g: (g * (a >= b), g * (b > a)), "edge", K.TIES,
     "all of it to a"),
    ("max_backward", lambda a, b, g: (g * (a > b), g * (b >= a)), "edge", K.TIES,
     "all of it to b"),
    ("max_backward", lambda a, b, g: (g * (a > b), g * (b > a)), "edge", K.TIES,
     "gave it to neither"),
    ("max_backward", lambda a, b, g: (g, g), "edge", K.ROUTE, "add gate"),
    # ---- 03: ReLU
    ("relu_backward", lambda x, g: (x > 0) * 1.0, "given", K.UPSTREAM, "upstream gradient"),
    ("relu_backward", lambda x, g: g * (g > 0), "random", K.UPSTREAM_MASK,
     "sign of the upstream"),
    # ReLU applied to the upstream gradient IS the upstream gradient masked by its sign
    ("relu_backward", lambda x, g: np.maximum(g, 0), "random",
     (K.UPSTREAM_MASK, K.ACTIVATION_OF_GRAD), "upstream gradient"),
    ("relu_backward", lambda x, g: g * (x >= 0), "edge", K.KINK, "x > 0, not x >= 0"),
    ("relu_backward", lambda x, g: -g * (x > 0), "random", K.SIGN, "wrong sign"),
    ("relu_backward", lambda x, g: (g * (x > 0)).T, "random", K.TRANSPOSED, "transpose"),
    ("relu_backward", lambda x, g: g * (x > 0) * 2, "given", K.FACTOR, "factor of 2"),
    ("relu_backward", lambda x, g: (g * (x > 0))[:, None], "shape", K.SHAPE, "shape of its"),
    ("relu_backward", lambda x, g: (g * (x > 0)).tolist(), "given", None, "correct"),
    # ---- 03: tanh
    ("tanh_backward", lambda x, g: g * (1 - x**2), "random", K.INPUT_NOT_OUTPUT,
     "needs tanh(x)"),
    ("tanh_backward", lambda x, g: g * (1 - np.tanh(x)), "random", K.LOCAL_DERIVATIVE,
     "forgot the square"),
    ("tanh_backward", lambda x, g: g * np.tanh(x) ** 2, "random", K.LOCAL_DERIVATIVE,
     "multiplied by tanh(x)**2"),
    ("tanh_backward", lambda x, g: 1 - np.tanh(x) ** 2, "random", K.UPSTREAM,
     "upstream gradient"),
    ("tanh_backward", lambda x, g: -g * (1 - np.tanh(x) ** 2), "random", K.SIGN, "wrong sign"),
    ("tanh_backward", lambda x, g: (g * (1 - np.tanh(x) ** 2)).T, "random", K.TRANSPOSED,
     "transpose"),
    # ---- 04: y = x w
    ("matmul_backward", lambda x, w, g: (g @ w.T, g.T @ x), "given", K.TRANSPOSED,
     "transpose of the correct gradient"),
    ("matmul_backward", lambda x, w, g: (g @ w.T, g.T @ x), "random", K.TRANSPOSED,
     "transpose"),
    ("matmul_backward", _neg(CORRECT["matmul_backward"]), "random", K.SIGN, "wrong sign"),
    ("matmul_backward", lambda x, w, g: (np.ones_like(g) @ w.T, x.T @ np.ones_like(g)),
     "random", K.UPSTREAM, "upstream gradient"),
    ("matmul_backward", lambda x, w, g: (g @ w, x.T @ g), "edge", K.ORDER, "w instead of w^T"),
    ("matmul_backward", lambda x, w, g: (g @ w.T, _per_example(x, g)), "shape", K.BATCH_SUM,
     "sum over the batch"),
    ("matmul_backward", lambda x, w, g: (g @ w.T, _per_example(x, g)), "given", K.BATCH_SUM,
     "sum over the batch"),
    ("matmul_backward", lambda x, w, g: (g @ w.T / len(x), x.T @ g / len(x)), "random",
     K.BATCH_FACTOR, "batch size once too often"),
    # ---- 04: the linear layer
    ("linear_backward", lambda x, W, b, g: (g @ W, g.T @ x, g), "random", K.BATCH_SUM,
     "sum over the batch"),
    ("linear_backward", lambda x, W, b, g: (g @ W, _per_example(g, x), g.sum(0)), "shape",
     K.BATCH_SUM, "one row per example"),
    ("linear_backward", lambda x, W, b, g: (g @ W, x.T @ g, g.sum(0)), "random",
     K.TRANSPOSED, "transpose"),
    ("linear_backward", lambda x, W, b, g: (g @ W, g.T @ x, g.mean(0)), "random",
     K.BIAS_MEAN, "not its mean"),
    ("linear_backward", lambda x, W, b, g: (g @ W, g.T @ x, g[0]), "random", K.BIAS_ROW,
     "not only the first"),
    ("linear_backward", lambda x, W, b, g: (-g @ W, -g.T @ x, -g.sum(0)), "random", K.SIGN,
     "wrong sign"),
    ("linear_backward", lambda x, W, b, g: (g @ W / len(x), g.T @ x / len(x),
                                            g.sum(0) / len(x)), "random", K.BATCH_FACTOR,
     "divided by the batch size"),
    ("linear_backward", lambda x, W, b, g: (np.ones_like(g) @ W, np.ones_like(g).T @ x,
                                            np.full(W.shape[0], float(len(x)))),
     "random", K.UPSTREAM, "upstream gradient"),
    ("linear_backward", lambda x, W, b, g: (g @ W, g.T @ x), "given", K.COUNT,
     "return 3 gradients (x, weight, bias), got 2 values"),
    # ---- 05: softmax cross-entropy
    ("softmax_cross_entropy_backward", ce_no_mean, "given", K.BATCH_FACTOR, "batch size N=2"),
    ("softmax_cross_entropy_backward", ce_no_mean, "random", K.BATCH_FACTOR, "batch size"),
    ("softmax_cross_entropy_backward", lambda s, t, g: ce_backward(s, t, 1.0), "random",
     K.UPSTREAM, "upstream"),
    ("softmax_cross_entropy_backward", lambda s, t, g: ce_backward(s, t, 1.0), "edge",
     K.UPSTREAM, "upstream"),
    ("softmax_cross_entropy_backward", _neg(ce_backward), "given", K.SIGN, "sign"),
    ("softmax_cross_entropy_backward", lambda s, t, g: ce_backward(s, t, g).T, "given",
     K.TRANSPOSED, "transpose"),
    ("softmax_cross_entropy_backward", lambda s, t, g: _softmax(s) / len(s) * g, "given",
     K.ONE_HOT, "one-hot"),
    ("softmax_cross_entropy_backward", lambda s, t, g: ce_backward(s, t, g) * len(s) / s.shape[1],
     "random", K.WRONG_COUNT_DIVISOR, "number of classes"),
    ("softmax_cross_entropy_backward", ce_naive_softmax, "edge", K.NAN,
     "subtract each row's max"),
    # ---- 05: softmax
    ("softmax_backward", softmax_naive, "edge", K.NAN, "np.exp overflows"),
    ("softmax_backward", lambda x, g: _softmax(x) * (1 - _softmax(x)) * g, "given",
     K.DIAGONAL, "dense"),
    ("softmax_backward", lambda x, g: _softmax(x) * (g - (g * _softmax(x)).sum()), "given",
     K.ROWS, "last axis"),
    ("softmax_backward", _neg(softmax_backward), "random", K.SIGN, "sign"),
    ("softmax_backward", lambda x, g: softmax_backward(x, np.ones_like(g)), "random",
     K.UPSTREAM, "upstream"),
    ("softmax_backward", lambda x, g: softmax_backward(x, g).T, "shape", K.TRANSPOSED,
     "transpose"),
    ("softmax_backward", lambda x, g: softmax_backward(x, g) / len(x), "given",
     K.BATCH_FACTOR, "1/N with N=2"),
    # ---- 06: the MLP
    ("mlp_backward", mlp_transposed, "shape", K.TRANSPOSED, "transpose"),
    ("mlp_backward", mlp_transposed, "random", K.TRANSPOSED, "transpose"),
    ("mlp_backward", lambda *a: mlp_gradients(*a, mean=False), "given", K.BATCH_FACTOR,
     "mean over N"),
    ("mlp_backward", lambda *a: mlp_gradients(*a, mean=False), "random", K.BATCH_FACTOR,
     "/ N"),
    ("mlp_backward", lambda *a: mlp_gradients(*a, reg_factor=0.0), "random",
     K.REGULARIZATION, "lam * W"),
    ("mlp_backward", lambda *a: mlp_gradients(*a, reg_factor=2.0), "given",
     K.REGULARIZATION, "doubled"),
    ("mlp_backward", lambda *a: mlp_gradients(*a, relu_mask=False), "random", K.RELU_MASK,
     "ReLU"),
    ("mlp_backward", _neg(mlp_gradients), "given", K.SIGN, "sign"),
    ("mlp_backward", mlp_no_bias_sum, "shape", K.BATCH_SUM, "sum over the batch"),
    ("mlp_backward", mlp_no_bias_sum, "random", K.BATCH_SUM, "sum over the batch"),
    # ---- 06: URI's two-layer network
    ("two_layer_backward", lambda *a: (two_layer(*a)[0].T, two_layer(*a)[1]), "shape",
     K.TRANSPOSED, "transpose"),
    ("two_layer_backward", lambda *a: (two_layer(*a)[0].T, two_layer(*a)[1]), "random",
     K.TRANSPOSED, "transpose"),
    ("two_layer_backward", lambda *a: tuple(g / 2 for g in two_layer(*a)), "given", K.FACTOR,
     "factor of 2"),
    ("two_layer_backward", _neg(two_layer), "random", K.SIGN, "sign"),
    ("two_layer_backward", lambda *a: tuple(g / len(a[0]) for g in two_layer(*a)), "given",
     K.BATCH_FACTOR, "1/N with N=4"),
    ("two_layer_backward", two_layer_w2_per_example, "random", K.BATCH_SUM,
     "sum over the batch"),
    ("two_layer_backward",
     lambda x, y, w1, w2: (x.T @ (2 * (_sigmoid(x @ w1) @ w2 - y) @ w2.T),
                           two_layer(x, y, w1, w2)[1]), "random", K.CHAIN,
     "sigmoid's local gradient"),
    # ---- 07: the engine's backward loop
    ("engine_backward", engine_overwrite_nodes, "given", K.OVERWRITE, "instead of accumulate"),
    ("engine_backward", engine_overwrite_nodes, "random", K.OVERWRITE,
     "instead of accumulate"),
    ("engine_backward", engine_overwrite_nodes_depth_first, "given", K.OVERWRITE,
     "at an intermediate node"),
    ("engine_backward", engine_overwrite_nodes_depth_first, "random", K.OVERWRITE,
     "at an intermediate node"),
    ("engine_backward", engine_overwrite_leaves, "given", K.OVERWRITE, "instead of accumulate"),
    ("engine_backward", engine_overwrite_leaves, "edge", K.OVERWRITE, "instead of accumulate"),
    ("engine_backward", engine_overwrite_across_calls, "edge", K.OVERWRITE, "second backward"),
    ("engine_backward", lambda o, g: engine_backward(o, np.ones_like(g)), "random", K.UPSTREAM,
     "upstream"),
    ("engine_backward", engine_forward_order, "given", (K.VALUES, K.OVERWRITE, K.MISSING),
     "dL/d"),
    ("engine_backward", engine_forward_order_pop, "given", K.ERROR, "reverse topological"),
    ("engine_backward", engine_calls_backward, "given", K.ERROR, "write the loop yourself"),
    ("engine_backward", lambda o, g: engine_backward(o, -g), "random", K.SIGN, "sign"),
    ("engine_backward", lambda o, g: None, "given", K.MISSING, "returned None"),
    # ---- 07: a custom Function
    ("tanh_function", TanhFromInput, "given", K.INPUT_NOT_OUTPUT, "1 - y**2"),
    ("tanh_function", TanhNoSquare, "random", K.LOCAL_DERIVATIVE, "tanh(x)**2"),
    ("tanh_function", TanhNaive, "edge", K.FORWARD, "forward is wrong"),
    ("tanh_function", TanhSign, "given", K.SIGN, "sign"),
    ("tanh_function", TanhNoUpstream, "random", K.UPSTREAM, "upstream"),
    ("tanh_function", TanhTransposed, "random", K.TRANSPOSED, "transpose"),
    ("tanh_function", type("NotAFunction", (), {"apply": staticmethod(lambda x: np.tanh(x.data))}),
     "given", K.ERROR, "subclass bc.Function"),
]


def _bug_id(bug: tuple) -> str:
    kind = bug[3]
    name = "pass" if kind is None else kind.value if isinstance(kind, Kind) else \
        "|".join(k.value for k in kind)
    return f"{bug[0]}-{bug[2]}-{name}"


@pytest.mark.parametrize(("exercise_id", "wrong", "part", "kinds", "phrase"), BUGS,
                         ids=[f"{i}-{_bug_id(b)}" for i, b in enumerate(BUGS)])
def test_seeded_bug_fails_its_part_with_its_kind(exercise_id, wrong, part, kinds,
                                                  phrase) -> None:
    expected = {kinds} if isinstance(kinds, Kind) else set(kinds or ())
    for seed in BUG_SEEDS:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the naive softmax overflows, on purpose
            result = run(exercise_id, wrong, part, seed)
        report = result.report()
        if kinds is None:  # not a bug: a list is an array of numbers
            assert result.passed, report
        else:
            assert not result.passed, f"{exercise_id}: a seeded bug passed {part}:\n{report}"
            assert result.kinds and set(result.kinds) <= expected, (result.kinds, report)
            assert report.startswith("[FAIL]")
        assert phrase in report, report


@pytest.mark.parametrize("exercise_id", VJP)
def test_every_vjp_exercise_rejects_a_sign_flip(exercise_id: str) -> None:
    """The one mistake every exercise must name, on every part."""
    exercise = get(exercise_id)
    correct = CORRECT[exercise_id]
    if exercise.call == "function":
        wrong = TanhSign
    elif exercise.call == "engine_backward":
        def wrong(output, grad_output):
            engine_backward(output, -grad_output)
    else:
        wrong = _neg(correct)
    for part in exercise.parts:
        result = run(exercise_id, wrong, part, 5)
        if part == "shape":  # shapes alone: a sign does not show there
            assert result.passed, result.report()
            continue
        assert not result.passed and set(result.kinds) == {Kind.SIGN}, result.report()
        assert "wrong sign" in result.report()


def test_the_bug_list_covers_the_usual_mistakes_of_every_vjp_exercise() -> None:
    """Transposed, sign, missing sum over the batch, forgot the upstream gradient and
    off by the batch size, wherever they make sense."""
    covered: dict[str, set[Kind]] = {}
    for exercise_id, _, _, kinds, _ in BUGS:
        found = {kinds} if isinstance(kinds, Kind) else set(kinds or ())
        covered.setdefault(exercise_id, set()).update(found)
    matrices = {"matmul_backward", "linear_backward", "softmax_cross_entropy_backward",
                "softmax_backward", "mlp_backward", "two_layer_backward"}
    with_parameters = {"matmul_backward", "linear_backward", "mlp_backward",
                       "two_layer_backward"}
    elementwise = {"mul_backward", "sigmoid_backward", "max_backward", "relu_backward",
                   "tanh_backward", "tanh_function"}
    for exercise_id in VJP:
        exercise = get(exercise_id)
        want = {Kind.SIGN}
        if exercise.call != "grad":  # grad: the loss is the output, upstream is 1
            want.add(Kind.UPSTREAM)
        if exercise_id in matrices | elementwise:
            want.add(Kind.TRANSPOSED)
        if exercise_id in with_parameters:
            want.add(Kind.BATCH_SUM)
        if exercise_id in matrices:
            want.add(Kind.BATCH_FACTOR)
        if exercise.call == "engine_backward":
            want.add(Kind.OVERWRITE)
        assert want <= covered.get(exercise_id, set()), (exercise_id, want - covered[exercise_id])


# ------------------------------------------------------- answers that do not run
@pytest.mark.parametrize("exercise_id", VJP)
def test_unimplemented_is_reported_not_crashed(exercise_id: str) -> None:
    def todo(*args):
        raise NotImplementedError()

    answer = type("T", (bc.Function,), {}) if exercise_id == "tanh_function" else todo
    for part in get(exercise_id).parts:
        result = run(exercise_id, answer, part, 0)
        assert not result.passed and result.kinds == [Kind.NOT_IMPLEMENTED], result.report()
        assert "not implemented yet" in result.report()


def test_an_exception_is_reported_with_its_hint() -> None:
    result = run("engine_backward", lambda o, g: {}[id(o)], "given", 0)
    assert result.kinds == [Kind.ERROR]
    assert "raised KeyError" in result.report() and "reverse topological" in result.report()


def test_by_hand_answers_must_come_as_a_dict() -> None:
    result = get("add_mul_by_hand").run_in_kernel(3.0, "dfdx", np.random.default_rng(0))
    assert not result.passed and result.kinds == [Kind.UNANSWERED]
    with pytest.raises(ValueError, match="parts"):
        get("add_mul_by_hand").run_in_kernel({"dfdx": 1.0}, "dfdw", np.random.default_rng(0))


def test_by_hand_slips_are_told_apart_for_every_student() -> None:
    """Each student's numbers must keep the slips apart: e.g. with z = -1 a sign error in
    df/dx (-z) would equal the chain-rule slip (1) and be named as that."""
    exercise = get("add_mul_by_hand")
    for seed in range(300):
        numbers = exercise.provides(np.random.default_rng(seed))
        right = by_hand(numbers)
        slips = exercise.mistakes(numbers)
        for part, value in right.items():
            candidates = [value, -value] + [v for _, _, v in slips[part]]
            assert len(set(candidates)) == len(candidates), (seed, numbers, part, candidates)


# A student's own cases are small integers: a mistake can coincide with the right answer
# at some students' numbers. These are the mistakes a part's cases are there to show:
# every student's cases must show them.
FOR_EVERY_STUDENT = [
    ("matmul_backward", lambda x, w, g: (g @ w, x.T @ g), "edge", Kind.ORDER),  # w symmetric
    ("engine_backward", engine_overwrite_nodes, "given", Kind.OVERWRITE),  # q + c = 0
    ("engine_backward", engine_overwrite_nodes_depth_first, "given", Kind.OVERWRITE),
    ("engine_backward", engine_overwrite_leaves, "given", Kind.OVERWRITE),  # 2 q + c = 0
    ("tanh_function", TanhNaive, "edge", Kind.FORWARD),  # np.exp overflows above 709.78
    ("max_backward", lambda a, b, g: (g * (a >= b), g * (b > a)), "edge", Kind.TIES),
    ("relu_backward", lambda x, g: g * (x >= 0), "edge", Kind.KINK),
    ("mul_backward", lambda a, b, g: (g * a, g * b), "given", Kind.NO_SWAP),
]


@pytest.mark.parametrize(("exercise_id", "wrong", "part", "kind"), FOR_EVERY_STUDENT,
                         ids=[f"{b[0]}-{b[3].value}" for b in FOR_EVERY_STUDENT])
def test_every_students_cases_show_the_mistakes_they_are_for(exercise_id, wrong, part,
                                                              kind) -> None:
    for seed in range(150):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = run(exercise_id, wrong, part, seed)
        assert not result.passed and kind in result.kinds, (seed, result.report())


# ------------------------------------------------------ the design of the cases
def test_linear_random_cases_use_batches() -> None:
    """A missing sum over the batch can only show with N > 1."""
    exercise = get("linear_backward")
    for seed in range(5):
        for case in exercise.cases("random", np.random.default_rng(seed)):
            assert np.asarray(case.values["x"]).shape[0] > 1


def test_overwrite_bugs_pass_graphs_without_fan_out() -> None:
    """The reason for the fan-out graphs: on the decks' f = (x + y) z alone (no value used
    twice), an engine that overwrites gets every gradient right."""
    exercise = get("engine_backward")
    case = exercise.cases("given", np.random.default_rng(0))[0]
    assert int(case.values["graph"]) == 0
    expected = exercise.reference(case)
    for buggy in (engine_overwrite_nodes, engine_overwrite_leaves):
        grads = call_engine_backward(buggy, case.values, exercise.inputs, exercise.wrt, bc)
        for got, want in zip(grads, expected, strict=True):
            np.testing.assert_allclose(got, want)
    # ... while every graph of the other checks has a value used twice
    for part in ("random", "edge"):
        for seed in range(3):
            for case in exercise.cases(part, np.random.default_rng(seed)):
                assert int(case.values["graph"]) in (1, 2)


def test_the_parts_draw_different_cases() -> None:
    """A part's cases come from its generator: another seed, other cases."""
    for exercise_id in VJP:
        exercise = get(exercise_id)
        for part in ("given", "random"):
            one, two = (exercise.cases(part, np.random.default_rng(s)) for s in (1, 2))
            assert any(not np.array_equal(np.asarray(a.values[k]), np.asarray(b.values[k]))
                       for a, b in zip(one, two, strict=False) for k in a.values), \
                (exercise_id, part)


# -------------------------------------------- the large cases and numerical gradients
SLOW = ["matmul_backward", "linear_backward", "softmax_backward",
        "softmax_cross_entropy_backward", "mlp_backward", "two_layer_backward",
        "squared_error_grad_w"]


def finite_differences(exercise: VJPExercise, give_up_after: float, progress: dict):
    """An answer that differentiates numerically, as a student who skips the backward
    pass would: a central difference of sum(forward * grad_out) per input number, with
    the exercise's own numpy forward. ``give_up_after`` seconds into a call it records how
    far it got and returns what it has (the rest zeros), so that the test stays fast: the
    check's verdict on a late answer is the time, whatever the values."""

    def answer(*args):
        start = time.perf_counter()
        names = exercise.inputs + (("grad_out",) if exercise.call == "vjp" else ())
        values = dict(zip(names, args, strict=True))
        grad_out = values.pop("grad_out", 1.0)
        grads = [np.zeros(np.shape(values[name])) for name in exercise.wrt]
        for name, grad in zip(exercise.wrt, grads, strict=True):
            x = np.array(values[name], dtype=np.float64)
            for done, index in enumerate(np.ndindex(x.shape)):
                if time.perf_counter() - start > give_up_after:  # late: the rest stays 0
                    size = sum(np.size(values[n]) for n in exercise.wrt)  # every number
                    progress.update(done=done, size=size, seconds=time.perf_counter() - start)
                    return tuple(grads) if len(grads) > 1 else grads[0]
                old = x[index]
                x[index] = old + 1e-5
                plus = exercise.forward(**{**values, name: x})
                x[index] = old - 1e-5
                minus = exercise.forward(**{**values, name: x})
                x[index] = old
                grad[index] = np.sum((plus - minus) * grad_out) / 2e-5
        return tuple(grads) if len(grads) > 1 else grads[0]

    return answer


@pytest.mark.parametrize("exercise_id", SLOW)
def test_numerical_differentiation_misses_the_large_cases_budget(exercise_id, monkeypatch):
    exercise = get(exercise_id)
    real_budget = exercise.budget
    assert exercise.large is not None and real_budget <= 10

    # the honest answer: the large case takes a small fraction of the real budget
    large = exercise.large_case(np.random.default_rng(0))
    assert large.budget == real_budget
    start = time.perf_counter()
    outcome = exercise.run(CORRECT[exercise_id], large)
    honest = time.perf_counter() - start
    assert "returned" in outcome and honest < real_budget / 3, (honest, outcome)
    assert exercise.judge("random", [large], [outcome]).passed

    # numerical differentiation: right on the small cases, too slow on the large one
    small = 0.2
    monkeypatch.setattr(exercise, "budget", small)
    progress: dict = {}
    answer = finite_differences(exercise, 2 * small, progress)
    for case in exercise.cases("random", np.random.default_rng(0)):
        assert exercise.judge("random", [case], [exercise.run(answer, case)]).passed
    result = exercise.run_in_kernel(answer, "random", np.random.default_rng(0))
    assert not result.passed and result.kinds == [Kind.TOO_SLOW], result.report()
    assert "large case" in result.report() and "numerical differentiation" in result.report()
    # ... and it would miss the real budget by far: its rate, extrapolated to all numbers
    assert progress["done"] > 0
    whole = progress["seconds"] / progress["done"] * progress["size"]
    assert whole > 10 * real_budget, (progress, whole)


def test_a_slow_answer_that_returns_right_values_still_fails(monkeypatch) -> None:
    """The verdict is the time: right values returned late are too slow all the same."""
    exercise = get("matmul_backward")
    monkeypatch.setattr(exercise, "budget", 0.05)

    def slow(x, w, g):
        if x.size > 10_000:
            time.sleep(0.1)
        return g @ w.T, x.T @ g

    result = exercise.run_in_kernel(slow, "random", np.random.default_rng(0))
    assert not result.passed and result.kinds == [Kind.TOO_SLOW], result.report()


def test_every_large_case_is_large() -> None:
    """Each large case needs at least 100,000 forward passes for a central difference
    (two per input number)."""
    for exercise_id in VJP:
        exercise = get(exercise_id)
        if exercise.large is None:
            assert exercise_id == "sigmoid_neuron_backward", exercise_id
            continue
        case = exercise.large_case(np.random.default_rng(0))
        numbers = sum(np.size(case.values[name]) for name in exercise.wrt)
        assert 2 * numbers >= 100_000, (exercise_id, numbers)


def test_a_central_difference_at_the_kink_fails() -> None:
    """At x = 0 a central difference gives half the upstream gradient; torch's
    convention (and the check) says 0."""

    def numerical(x, g):
        h = 1e-6
        return g * (np.maximum(x + h, 0) - np.maximum(x - h, 0)) / (2 * h)

    exercise = get("relu_backward")
    for seed in BUG_SEEDS:
        result = run("relu_backward", numerical, "edge", seed)
        assert not result.passed and set(result.kinds) <= {Kind.KINK, Kind.VALUES}, \
            result.report()
        assert "expected 0, got" in result.report()
        assert run("relu_backward", numerical, "random", seed).passed  # away from the kink
    case = exercise.cases("edge", np.random.default_rng(0))[0]
    assert case.at_kink and np.any(case.values["x"] == 0)


# ------------------------------------------------------ the notebooks that use them
NOTEBOOK_DIR = Path(__file__).resolve().parents[2] / "notebooks"
CHECK_CALL = re.compile(r'\bcheck\(\s*"([\w-]+)",\s*(.+?),\s*part="(\w+)"\s*\)')


@pytest.mark.parametrize("notebook", sorted({get(e).notebook for e in ALL}))
def test_notebook_grades_every_part_of_its_exercises(notebook: str) -> None:
    """Each notebook is committed without outputs and has one graded, locked cell per part
    of each of its exercises (the random and edge ones hidden), unique grade ids, and the
    answer cell ``<id>_solution`` with a solution region that defines the answer."""
    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.read(NOTEBOOK_DIR / f"{notebook}.ipynb", as_version=4)
    exercises = {e for e in ALL if get(e).notebook == notebook}
    assert len(exercises) >= 2, notebook
    graded, ids, solutions = [], [], {}
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.get("outputs") and cell.get("execution_count") is None, notebook
        meta = cell.metadata.get("nbgrader")
        if not meta:
            assert not CHECK_CALL.search(cell.source), cell.source  # an ungraded check
            continue
        ids.append(meta["grade_id"])
        assert re.fullmatch(r"[a-zA-Z0-9_-]+", meta["grade_id"])
        if meta.get("solution"):
            assert "### BEGIN SOLUTION" in cell.source and "### END SOLUTION" in cell.source
            solutions[meta["grade_id"]] = cell.source
        if meta.get("grade"):
            assert meta["locked"] and isinstance(meta["points"], int) and meta["points"] > 0
            calls = CHECK_CALL.findall(cell.source)
            assert len(calls) == 1, cell.source
            exercise_id, _answer, part = calls[0]
            assert exercise_id in exercises and part in get(exercise_id).parts, cell.source
            if part in ("random", "edge"):
                assert "### BEGIN HIDDEN TESTS" in cell.source, cell.source
            graded.append((exercise_id, part))
    assert len(ids) == len(set(ids)), ids
    assert sorted(graded) == sorted((e, p) for e in exercises for p in get(e).parts)
    for exercise_id in exercises:
        exercise = get(exercise_id)
        source = solutions[exercise.answer_cell]
        if isinstance(exercise, ValueExercise):
            for name in exercise.answer_names:
                assert re.search(rf"^{name}\s*=", source, re.M), (exercise_id, name)
        else:
            assert re.search(rf"^(def|class) {exercise.answer}\b", source, re.M), exercise_id
