"""The exercises of notebooks 05-07: a correct solution passes every part, and each seeded
mistake fails with the right diagnosis kind and a message that names it (transposed, sign,
off by the batch size N / missing mean, upstream ignored, overwrite instead of accumulate)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import backprop_course as bc
from backprop_course.backward import topological_order
from backprop_course.grading import get
from backprop_course.grading.exercises.nb06_mlp import mlp_gradients
from backprop_course.grading.exercises.nb07_engine import (
    depth_first_order,
    reference_backward,
)

pytest.importorskip("torch")


# ------------------------------------------------------------ correct solutions
def _softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


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
    """The loop the notebook asks for (recursive DFS, as a student would write it)."""
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


CORRECT = {
    "softmax_cross_entropy_backward": ce_backward,
    "softmax_backward": softmax_backward,
    "mlp_backward": lambda *args: mlp_gradients(*args),
    "two_layer_backward": two_layer,
    "engine_backward": engine_backward,
    "tanh_function": Tanh,
}


@pytest.mark.parametrize("exercise_id", sorted(CORRECT))
def test_correct_solution_passes_every_part(exercise_id: str) -> None:
    exercise = get(exercise_id)
    assert len(exercise.parts) >= 3
    for part in exercise.parts:
        for seed in (0, 7):
            with warnings.catch_warnings():
                warnings.simplefilter("error")        # a correct answer warns about nothing
                result = exercise.run(CORRECT[exercise_id], part, seed)
            assert result.passed, result.report()


def test_every_notebook_has_two_exercises() -> None:
    modules = [get(e).forward.__module__.rsplit(".", 1)[-1] for e in CORRECT]
    for prefix in ("nb05", "nb06", "nb07"):
        assert sum(m.startswith(prefix) for m in modules) >= 2, (prefix, modules)


# --------------------------------------------------------------- seeded bugs
def ce_no_mean(logits, target, g):
    return ce_backward(logits, target, g) * logits.shape[0]


def ce_no_upstream(logits, target, g):
    return ce_backward(logits, target, 1.0)


def ce_no_onehot(logits, target, g):
    return _softmax(logits) / logits.shape[0] * g


def ce_naive_softmax(logits, target, g):
    e = np.exp(logits)
    return (e / e.sum(axis=1, keepdims=True) - np.eye(logits.shape[1])[target]) / len(target) * g


def softmax_naive(x, g):
    e = np.exp(x)
    p = e / e.sum(axis=-1, keepdims=True)
    return p * (g - (g * p).sum(axis=-1, keepdims=True))


def softmax_diagonal_only(x, g):
    p = _softmax(x)
    return p * (1 - p) * g


def softmax_batch_sum(x, g):
    p = _softmax(x)
    return p * (g - (g * p).sum())


def mlp_transposed(*args):
    g = list(mlp_gradients(*args))
    g[0] = g[0].T
    return tuple(g)


def mlp_sign(*args):
    return tuple(-v for v in mlp_gradients(*args))


def mlp_no_bias_sum(x, target, W1, b1, W2, b2, lam):
    grads = list(mlp_gradients(x, target, W1, b1, W2, b2, lam))
    s = np.maximum(x @ W1.T + b1, 0) @ W2.T + b2
    grads[3] = (_softmax(s) - np.eye(s.shape[1])[target]) / x.shape[0]  # one row per example
    return tuple(grads)


def two_layer_transposed(x, y, w1, w2):
    g1, g2 = two_layer(x, y, w1, w2)
    return g1.T, g2


def two_layer_half(x, y, w1, w2):
    return tuple(g / 2 for g in two_layer(x, y, w1, w2))


def two_layer_sign(x, y, w1, w2):
    return tuple(-g for g in two_layer(x, y, w1, w2))


def engine_overwrite_nodes(output, grad_output):
    reference_backward(output, grad_output, overwrite_nodes=True)


def engine_overwrite_nodes_depth_first(output, grad_output):
    """The same bug in a loop that sorts the nodes as the notebook's plan does."""
    reference_backward(output, grad_output, overwrite_nodes=True, order=depth_first_order)


def engine_overwrite_leaves(output, grad_output):
    reference_backward(output, grad_output, overwrite_leaves=True)


def engine_overwrite_across_calls(output, grad_output):
    for node in topological_order(output.grad_fn):    # "start fresh": wipes earlier .grad
        for inp in node.inputs:
            if isinstance(inp, bc.Tensor) and inp.grad_fn is None:
                inp.grad = None
    engine_backward(output, grad_output)


def engine_no_upstream(output, grad_output):
    engine_backward(output, np.ones_like(grad_output))


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


# (exercise, wrong solution, part, expected kind(s) "a|b", words the message must contain)
BUGS = [
    ("softmax_cross_entropy_backward", ce_no_mean, "given", "factor", "batch size N=2"),
    ("softmax_cross_entropy_backward", ce_no_mean, "random", "factor", "batch size"),
    ("softmax_cross_entropy_backward", ce_no_upstream, "random", "upstream", "upstream"),
    ("softmax_cross_entropy_backward", ce_no_upstream, "edge", "upstream", "upstream"),
    ("softmax_cross_entropy_backward", lambda logits, target, g: -ce_backward(logits, target, g),
     "given", "sign", "sign"),
    ("softmax_cross_entropy_backward", ce_no_onehot, "given", "one_hot", "one-hot"),
    ("softmax_cross_entropy_backward", ce_naive_softmax, "edge", "nan", "subtract each row's max"),
    ("softmax_backward", softmax_naive, "edge", "nan", "np.exp overflows"),
    ("softmax_backward", softmax_diagonal_only, "given", "diagonal", "dense"),
    ("softmax_backward", softmax_batch_sum, "given", "rows", "last axis"),
    ("softmax_backward", lambda x, g: -softmax_backward(x, g), "random", "sign", "sign"),
    ("softmax_backward", lambda x, g: softmax_backward(x, np.ones_like(g)), "random",
     "upstream", "upstream"),
    ("softmax_backward", lambda x, g: softmax_backward(x, g).T, "shape", "transposed|shape",
     "shape"),
    ("mlp_backward", mlp_transposed, "shape", "transposed", "transpose"),
    ("mlp_backward", mlp_transposed, "random", "transposed", "transpose"),
    ("mlp_backward", lambda *a: mlp_gradients(*a, mean=False), "given", "batch", "mean over N"),
    ("mlp_backward", lambda *a: mlp_gradients(*a, mean=False), "random", "batch", "/ N"),
    ("mlp_backward", lambda *a: mlp_gradients(*a, reg_factor=0.0), "random",
     "regularization", "lam * W"),
    ("mlp_backward", lambda *a: mlp_gradients(*a, reg_factor=2.0), "given",
     "regularization", "doubled"),
    ("mlp_backward", lambda *a: mlp_gradients(*a, relu_mask_from="none"), "random", "relu",
     "ReLU"),
    ("mlp_backward", mlp_sign, "given", "sign", "sign"),
    ("mlp_backward", mlp_no_bias_sum, "shape", "batch_sum", "sum over the batch"),
    ("two_layer_backward", two_layer_transposed, "shape", "transposed", "transpose"),
    ("two_layer_backward", two_layer_transposed, "random", "transposed", "transpose"),
    ("two_layer_backward", two_layer_half, "given", "factor", "factor of 2"),
    ("two_layer_backward", two_layer_sign, "random", "sign", "sign"),
    ("engine_backward", engine_overwrite_nodes, "given", "overwrite", "instead of accumulate"),
    ("engine_backward", engine_overwrite_nodes, "random", "overwrite", "instead of accumulate"),
    ("engine_backward", engine_overwrite_nodes_depth_first, "given", "overwrite",
     "at an intermediate node"),
    ("engine_backward", engine_overwrite_nodes_depth_first, "random", "overwrite",
     "at an intermediate node"),
    ("engine_backward", engine_overwrite_leaves, "given", "overwrite", "instead of accumulate"),
    ("engine_backward", engine_overwrite_leaves, "edge", "overwrite", "instead of accumulate"),
    ("engine_backward", engine_overwrite_across_calls, "edge", "overwrite", "second backward"),
    ("engine_backward", engine_no_upstream, "random", "upstream", "upstream"),
    ("engine_backward", engine_forward_order, "given", "values|overwrite", "dL/d"),
    ("engine_backward", engine_forward_order_pop, "given", "error", "reverse topological"),
    ("engine_backward", engine_calls_backward, "given", "error", "write the loop yourself"),
    ("engine_backward", lambda o, g: engine_backward(o, -g), "random", "sign", "sign"),
    ("tanh_function", TanhFromInput, "given", "output", "1 - y**2"),
    ("tanh_function", TanhNoSquare, "random", "derivative", "tanh(x)**2"),
    ("tanh_function", TanhNaive, "edge", "error", "forward is wrong"),
    ("tanh_function", TanhSign, "given", "sign", "sign"),
]


@pytest.mark.parametrize(("exercise_id", "wrong", "part", "kinds", "words"), BUGS,
                         ids=[f"{b[0]}-{i}-{b[2]}-{b[3]}" for i, b in enumerate(BUGS)])
def test_seeded_bug_fails_with_diagnosis(exercise_id, wrong, part, kinds, words) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")               # the naive softmax overflows, on purpose
        result = get(exercise_id).run(wrong, part, seed=11)
    assert not result.passed, result.report()
    assert set(result.kinds) & set(kinds.split("|")), (result.kinds, result.report())
    assert words in result.report(), result.report()


def test_overwrite_bugs_pass_graphs_without_fan_out() -> None:
    """The reason for the fan-out graphs: on the decks' f = (x + y) z alone (no value used
    twice), an engine that overwrites gets every gradient right."""
    exercise = get("engine_backward")
    case = exercise.given[0]
    assert case["graph"] == 0
    from backprop_course.grading.exercises.nb07_engine import _call_backward

    arrays = {k: np.array(v, dtype=np.float64) for k, v in case.items()}
    for buggy in (engine_overwrite_nodes, engine_overwrite_leaves):
        grads = _call_backward(buggy, arrays)
        np.testing.assert_allclose(np.concatenate(grads), [-4.0, -4.0, 3.0])


def test_unimplemented_is_reported_not_crashed() -> None:
    def todo(*args):
        raise NotImplementedError()

    for exercise_id in CORRECT:
        result = get(exercise_id).run(todo if exercise_id != "tanh_function" else
                                      type("T", (bc.Function,), {}), "given")
        assert not result.passed
        assert {"not_implemented"} & set(result.kinds), result.report()
