"""Numerical references, gradcheck and per-node blame: they pass correct code and
reject each seeded bug (a check that can't fail, or can't pass, is a defect)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import as_torch

import backprop_course as bc
from backprop_course import functional as F
from backprop_course.gradcheck import (
    GradcheckError,
    check_graph,
    compare,
    first_bad_node,
    gradcheck,
    numerical_gradient,
    numerical_jacobian,
    numerical_vjp,
    rel_error,
    tolerance,
)

engine = bc.backward


def leaf(rng: np.random.Generator, *shape: int) -> bc.Tensor:
    return bc.tensor(rng.standard_normal(shape), requires_grad=True)


# ------------------------------------------------------------ numerical references
def test_numerical_gradient(rng: np.random.Generator) -> None:
    x = rng.standard_normal((3, 2))
    grad = numerical_gradient(lambda v: np.sum(v**3), x)
    assert grad.dtype == np.float64 and grad.shape == x.shape
    assert rel_error(grad, 3 * x**2) < 1e-8
    # a function of a Tensor works too, and x is left as it was
    before = x.copy()
    assert rel_error(numerical_gradient(lambda v: (bc.Tensor(v) ** 3).sum(), x), 3 * x**2) < 1e-8
    np.testing.assert_array_equal(x, before)


def test_numerical_vjp_and_jacobian(rng: np.random.Generator) -> None:
    A, x, g = rng.standard_normal((4, 3)), rng.standard_normal(3), rng.standard_normal(4)
    assert rel_error(numerical_jacobian(lambda v: A @ v, x), A) < 1e-8
    assert rel_error(numerical_vjp(lambda v: np.tanh(A @ v), x, g),
                     A.T @ (g * (1 - np.tanh(A @ x) ** 2))) < 1e-8
    assert numerical_jacobian(lambda v: v.sum(), x).shape == (1, 3)
    # f returning a view of its (perturbed in place) input must not cancel out
    G = np.arange(12.0).reshape(3, 4)
    assert rel_error(numerical_vjp(lambda v: v.T, A, G), G.T) < 1e-8


def test_numerical_references_are_float64_for_float32_input() -> None:
    x = np.array([0.3, -0.7], dtype=np.float32)
    assert numerical_gradient(lambda v: np.sum(v * v), x).dtype == np.float64


def test_rel_error_is_cs231n() -> None:
    assert rel_error([1.0], [1.1]) == pytest.approx(0.1 / 2.1)
    assert rel_error([0.0, 2.0], [0.0, 2.0]) == 0.0
    assert rel_error([0.0], [1e-9]) == pytest.approx(1e-9 / 1e-8)  # the 1e-8 floor
    assert rel_error([1.0, -3.0], [1.0, 3.0]) == 1.0  # the max over entries
    assert rel_error(bc.tensor([2.0]), np.array([2.0])) == 0.0


def test_bc_jacobian_rows_are_outputs(rng: np.random.Generator) -> None:
    A = rng.standard_normal((2, 3))
    jac = bc.jacobian(lambda v: bc.Tensor(A) @ v, rng.standard_normal(3))
    assert jac.shape == (2, 3)
    np.testing.assert_allclose(jac, A, rtol=1e-12)


# ------------------------------------------------------------ tolerances by dtype
def test_tolerance_table_matches_docstring() -> None:
    assert tolerance(np.float64) == {"eps": 1e-6, "atol": 1e-5, "rtol": 1e-3}
    assert tolerance(np.float32) == {"eps": 1e-6, "atol": 1e-4, "rtol": 1e-2}
    assert tolerance(np.float16) == tolerance(np.float32)


def _mlp_loss(x: bc.Tensor, w1: np.ndarray, w2: np.ndarray, y: np.ndarray) -> bc.Tensor:
    h = F.tanh(x @ bc.Tensor(w1))
    return F.cross_entropy(h @ bc.Tensor(w2), y) + (x * x).mean()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_analytic_gradients_pass_float64_references(dtype) -> None:
    rng = np.random.default_rng(8)
    x64 = rng.standard_normal((5, 4))
    w1, w2, y = rng.standard_normal((4, 6)), rng.standard_normal((6, 3)), rng.integers(0, 3, 5)
    x = bc.tensor(x64.astype(dtype), requires_grad=True)
    _mlp_loss(x, w1.astype(dtype), w2.astype(dtype), y).backward()
    assert x.grad.dtype == dtype
    numerical = numerical_gradient(lambda v: _mlp_loss(bc.Tensor(v), w1, w2, y), x64)
    assert compare(x.grad.data, numerical, dtype=dtype) is None
    if dtype == np.float64:  # far inside the float64 tolerance, not just within it
        assert rel_error(x.grad, numerical) < 1e-6
    else:  # float32 round-off is visible: the looser tolerance is needed, not decoration
        assert rel_error(x.grad, numerical) > 1e-9


def test_compare_reports_the_worst_entry() -> None:
    mismatch = compare([1.0, 2.0, 3.0], [1.0, 2.5, 3.0])
    assert mismatch is not None and mismatch.index == (1,)
    assert mismatch.analytic == 2.0 and mismatch.numerical == 2.5
    assert "worst entry (1,)" in mismatch.describe()


# ------------------------------------------------------------ correct code passes
CORRECT_FUNCTIONS = {
    "mul-broadcast": (lambda a, b: a * b, [(3, 1), (4,)]),
    "div": (lambda a, b: a / (b * b + 1), [(3,), (3,)]),
    "matmul": (lambda a, b: a @ b, [(2, 3), (3, 4)]),
    "linear": (F.linear, [(4, 3), (2, 3), (2,)]),
    "softmax": (lambda a: F.softmax(a, 0), [(3, 2)]),
    "log_softmax": (F.log_softmax, [(3, 2)]),
    "cross_entropy": (lambda a: F.cross_entropy(a, np.array([1, 0, 1])), [(3, 2)]),
    "sigmoid-tanh": (lambda a: F.sigmoid(a).tanh() * a.exp(), [(2, 2)]),
    "mean-max": (lambda a: a.mean(axis=0) + a.amax(axis=1).sum(), [(3, 4)]),
    "index-reshape": (lambda a: a.reshape(6, 2)[np.array([0, 0, 5])].T, [(3, 4)]),
}


@pytest.mark.parametrize("name", list(CORRECT_FUNCTIONS))
def test_correct_code_passes_gradcheck_and_check_graph(name: str) -> None:
    rng = np.random.default_rng(9)
    fn, shapes = CORRECT_FUNCTIONS[name]
    inputs = [leaf(rng, *s) for s in shapes]
    assert gradcheck(fn, inputs)
    checks = check_graph(fn(*inputs))
    assert checks and all(c.ok for c in checks), [c.describe() for c in checks]
    assert first_bad_node(fn(*inputs)) is None
    # torch agrees on the same functions being fine
    torch_fn = {"linear": torch.nn.functional.linear}.get(name)
    if torch_fn is not None:
        assert torch.autograd.gradcheck(torch_fn, [as_torch(t, True) for t in inputs])


def test_check_graph_describes_each_node(rng: np.random.Generator) -> None:
    x, w = leaf(rng, 2, 3), leaf(rng, 4, 3)
    checks = check_graph(F.relu(F.linear(x, w) + 5.0).sum())
    assert [c.name for c in checks] == ["LinearBackward", "LinearBackward", "AddBackward",
                                        "ReLUBackward", "SumBackward"]
    assert [c.input for c in checks] == [0, 1, 0, 0, 0]
    assert "ok" in checks[0].describe()
    assert check_graph(bc.tensor(1.0)) == []


def test_gradcheck_rejects_non_float64() -> None:
    with pytest.raises(ValueError, match="float64"):
        gradcheck(F.relu, (bc.tensor(np.ones(2, np.float32), requires_grad=True),))


# ------------------------------------------------------------ seeded bugs
class MatMulTransposedGrad(bc.Function):
    """x @ w with dL/dw returned transposed."""

    @staticmethod
    def forward(ctx, x, w):
        ctx.save_for_backward(x, w)
        return x @ w

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved_tensors
        return g @ w.T, (x.T @ g).T  # bug: should be x.T @ g


class MulSignFlipped(bc.Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        return -g * b, g * a  # bug: sign of the first gradient


class LinearBiasNotSummed(bc.Function):
    @staticmethod
    def forward(ctx, x, w, b):
        ctx.save_for_backward(x, w)
        return x @ w.T + b

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved_tensors
        return g @ w, g.T @ x, g  # bug: bias gradient not summed over the batch


class SigmoidIgnoresUpstream(bc.Function):
    @staticmethod
    def forward(ctx, x):
        s = 1 / (1 + np.exp(-x))
        ctx.save_for_backward(s)
        return s

    @staticmethod
    def backward(ctx, g):
        (s,) = ctx.saved_tensors
        return s * (1 - s)  # bug: forgot "g *"


def _rejected_by_gradcheck(fn, inputs) -> str:
    assert gradcheck(fn, inputs, raise_exception=False) is False
    with pytest.raises(GradcheckError) as info:
        gradcheck(fn, inputs)
    return str(info.value)


def test_transposed_gradient_square_shapes(rng: np.random.Generator) -> None:
    # square: no shape error to give it away. x comes from default_rng(0), as a student's
    # data often does: check_graph's upstream must not be x (x.T @ x would hide the bug)
    x, w = leaf(rng, 3, 3), leaf(rng, 3, 3)

    def fn(x, w):
        return MatMulTransposedGrad.apply(x, w)

    message = _rejected_by_gradcheck(fn, (x, w))
    assert "input 1" in message
    bad = first_bad_node(F.tanh(fn(x, w) * 2.0).sum())
    assert bad is not None and bad.name == "MatMulTransposedGradBackward" and bad.input == 1
    assert bad.mismatch is not None and "disagrees" in bad.describe()


def test_transposed_gradient_non_square_is_a_shape_error(rng: np.random.Generator) -> None:
    x, w = leaf(rng, 2, 3), leaf(rng, 3, 4)

    def fn(x, w):
        return MatMulTransposedGrad.apply(x, w)

    with pytest.raises(RuntimeError, match=r"MatMulTransposedGrad.*\(4, 3\).*\(3, 4\)"):
        fn(x, w).sum().backward()
    assert "shape" in _rejected_by_gradcheck(fn, (x, w))
    bad = first_bad_node(fn(x, w).sum())
    assert bad.name == "MatMulTransposedGradBackward" and "shape (4, 3)" in bad.describe()


def test_sign_flipped(rng: np.random.Generator) -> None:
    a, b = leaf(rng, 4), leaf(rng, 4)
    _rejected_by_gradcheck(MulSignFlipped.apply, (a, b))
    bad = first_bad_node((F.sigmoid(a) + MulSignFlipped.apply(a.exp(), b)).sum())
    assert bad.name == "MulSignFlippedBackward" and bad.input == 0
    # torch's gradcheck rejects the same bug written as a torch Function
    class TorchMulSignFlipped(torch.autograd.Function):
        @staticmethod
        def forward(ctx, a, b):
            ctx.save_for_backward(a, b)
            return a * b

        @staticmethod
        def backward(ctx, g):
            a, b = ctx.saved_tensors
            return -g * b, g * a

    with pytest.raises(RuntimeError, match="Jacobian mismatch"):
        torch.autograd.gradcheck(TorchMulSignFlipped.apply, (as_torch(a, True), as_torch(b, True)))


def test_bias_gradient_not_summed_over_batch(rng: np.random.Generator) -> None:
    x, w, b = leaf(rng, 5, 3), leaf(rng, 2, 3), leaf(rng, 2)
    with pytest.raises(RuntimeError, match=r"LinearBiasNotSummed.*\(5, 2\).*input 2 of shape"):
        LinearBiasNotSummed.apply(x, w, b).sum().backward()
    message = _rejected_by_gradcheck(LinearBiasNotSummed.apply, (x, w, b))
    assert "LinearBiasNotSummed" in message and "sum over" in message  # reported, no crash
    bad = first_bad_node(F.relu(LinearBiasNotSummed.apply(x, w, b)).mean())
    assert bad.name == "LinearBiasNotSummedBackward" and bad.input == 2 and bad.error


def _fan_out(a: bc.Tensor) -> bc.Tensor:
    b = a * 2
    return b * b + b


def test_overwrite_instead_of_accumulate(rng: np.random.Generator,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    a = leaf(rng, 3)
    assert gradcheck(_fan_out, (a,))  # the correct engine passes

    def overwrite(grads: dict, key: int, g: np.ndarray) -> None:
        grads[key] = g

    monkeypatch.setattr(engine, "accumulate", overwrite)
    _rejected_by_gradcheck(_fan_out, (a,))


def test_ignores_upstream_gradient(rng: np.random.Generator) -> None:
    x, w = leaf(rng, 3, 4), leaf(rng, 2, 4)
    _rejected_by_gradcheck(SigmoidIgnoresUpstream.apply, (x,))
    loss = (SigmoidIgnoresUpstream.apply(F.linear(x, w)) * 3.0).sum()
    bad = first_bad_node(loss)
    assert bad.name == "SigmoidIgnoresUpstreamBackward"
    # with an upstream of ones the bug is invisible to a per-node check; ours is random
    upstream_ones = SigmoidIgnoresUpstream.apply(x).sum()
    assert first_bad_node(upstream_ones) is not None


def test_only_the_buggy_node_is_blamed(rng: np.random.Generator) -> None:
    x, w1, w2 = leaf(rng, 4, 3), leaf(rng, 3, 3), leaf(rng, 3, 2)
    h = F.relu(MatMulTransposedGrad.apply(F.tanh(x), w1) + 0.1)
    out = F.cross_entropy(h @ w2, np.array([0, 1, 1, 0]))
    bad = [c for c in check_graph(out) if not c.ok]
    assert [(c.name, c.input) for c in bad] == [("MatMulTransposedGradBackward", 1)]
