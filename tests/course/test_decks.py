"""The lecture decks' numbers, recomputed through our engine (and torch where useful)."""

from __future__ import annotations

import numpy as np
import torch
from conftest import as_torch, assert_close

import backprop_course as bc
from backprop_course import functional as F
from backprop_course import ops


def test_add_mul_graph() -> None:
    """f = (x + y) * z at x=-2, y=5, z=-4."""
    x, y, z = (bc.tensor(v, requires_grad=True) for v in (-2.0, 5.0, -4.0))
    q = x + y
    f = q * z
    f.backward()
    assert f.item() == -12.0 and q.item() == 3.0
    assert (x.grad.item(), y.grad.item(), z.grad.item()) == (-4.0, -4.0, 3.0)


def _neuron_by_hand(w, x, b):
    return 1 / (1 + (-(w @ x + b)).exp())


def _neuron_sigmoid(w, x, b):
    return F.sigmoid(w @ x + b)


def test_sigmoid_neuron_both_ways() -> None:
    values = dict(w=[2.0, -3.0], x=[-1.0, -2.0], b=-3.0)
    tw, tx, tb = (as_torch(np.array(v), requires_grad=True) for v in values.values())
    torch.sigmoid(tw @ tx + tb).backward()
    for forward in (_neuron_by_hand, _neuron_sigmoid):
        w, x, b = (bc.tensor(v, requires_grad=True) for v in values.values())
        out = forward(w, x, b)
        out.backward()
        assert round(out.item(), 2) == 0.73
        np.testing.assert_array_equal(np.round(w.grad.data, 4), [-0.1966, -0.3932])
        np.testing.assert_array_equal(np.round(x.grad.data, 4), [0.3932, -0.5898])
        assert round(b.grad.item(), 4) == 0.1966
        for ours, theirs in ((w, tw), (x, tx), (b, tb)):
            assert_close(ours.grad, theirs.grad, rtol=1e-12)


def test_relu_vector_example() -> None:
    x = bc.tensor([1.0, -2.0, 3.0, -1.0], requires_grad=True)
    y = F.relu(x)
    assert_close(y, [1.0, 0.0, 3.0, 0.0])
    y.backward(np.array([4.0, -1.0, 5.0, 9.0]))
    assert_close(x.grad, [4.0, 0.0, 5.0, 0.0])
    expected = np.diag([1.0, 0.0, 1.0, 0.0])
    np.testing.assert_array_equal(ops.ReLU.jacobian(x.data), expected)
    np.testing.assert_array_equal(bc.jacobian(F.relu, x.data), expected)


def test_matmul_example() -> None:
    x = bc.tensor([[2.0, 1.0, -3.0], [-3.0, 4.0, 2.0]], requires_grad=True)
    w = bc.tensor([[3.0, 2.0, 1.0, -1.0], [2.0, 1.0, 3.0, 2.0], [3.0, 2.0, 1.0, -2.0]],
                  requires_grad=True)
    y = x @ w
    np.testing.assert_array_equal(y.data, [[-1, -1, 2, 6], [5, 2, 11, 7]])
    dy = np.array([[2.0, 3.0, -3.0, 9.0], [-8.0, 1.0, 4.0, 6.0]])
    y.backward(dy)
    np.testing.assert_array_equal(x.grad.data, [[0, 16, -9], [-24, 9, -30]])
    np.testing.assert_array_equal(w.grad.data, x.data.T @ dy)
    tx, tw = as_torch(x, requires_grad=True), as_torch(w, requires_grad=True)
    (tx @ tw).backward(torch.from_numpy(dy))
    assert_close(x.grad, tx.grad)
    assert_close(w.grad, tw.grad)


def test_graph_attributes_slide() -> None:
    """a = 2, b = 3, c = a * b: the attributes the slides print, as in torch."""
    a = bc.tensor(2.0, requires_grad=True)
    b = bc.tensor(3.0, requires_grad=True)
    c = a * b
    ta, tb = torch.tensor(2.0, requires_grad=True), torch.tensor(3.0, requires_grad=True)
    tc = ta * tb
    assert c.item() == 6.0 == tc.item()
    assert (a.is_leaf, b.is_leaf, c.is_leaf) == (ta.is_leaf, tb.is_leaf, tc.is_leaf)
    assert (a.grad_fn, c.requires_grad) == (None, True) and ta.grad_fn is None
    assert c.grad_fn.name == "MulBackward" and type(tc.grad_fn).__name__ == "MulBackward0"
    assert [t is a or t is b for t in c.grad_fn.inputs] == [True, True]
    c.backward()
    tc.backward()
    assert (a.grad.item(), b.grad.item()) == (3.0, 2.0) == (ta.grad.item(), tb.grad.item())
    assert c.grad is None  # non-leaf: no .grad unless retain_grad(), like torch


# ---- the decks' custom Functions, ported line for line --------------------------------
class Multiply(bc.Function):
    @staticmethod
    def forward(ctx, x, y):
        ctx.save_for_backward(x, y)
        z = x * y
        return z

    @staticmethod
    def backward(ctx, grad_z):
        x, y = ctx.saved_tensors
        grad_x = y * grad_z
        grad_y = x * grad_z
        return grad_x, grad_y


class TorchMultiply(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, y):
        ctx.save_for_backward(x, y)
        z = x * y
        return z

    @staticmethod
    def backward(ctx, grad_z):
        x, y = ctx.saved_tensors
        grad_x = y * grad_z
        grad_y = x * grad_z
        return grad_x, grad_y


class LegendrePolynomial3(bc.Function):
    @staticmethod
    def forward(ctx, input):  # noqa: A002 (the deck's name)
        ctx.save_for_backward(input)
        return 0.5 * (5 * input ** 3 - 3 * input)

    @staticmethod
    def backward(ctx, grad_output):
        input, = ctx.saved_tensors  # noqa: A001
        return grad_output * 1.5 * (5 * input ** 2 - 1)


class TorchLegendrePolynomial3(torch.autograd.Function):
    @staticmethod
    def forward(ctx, input):  # noqa: A002
        ctx.save_for_backward(input)
        return 0.5 * (5 * input ** 3 - 3 * input)

    @staticmethod
    def backward(ctx, grad_output):
        input, = ctx.saved_tensors  # noqa: A001
        return grad_output * 1.5 * (5 * input ** 2 - 1)


def test_multiply_function_matches_torch(rng: np.random.Generator) -> None:
    x, y = rng.standard_normal(5), rng.standard_normal(5)
    bx, by = bc.tensor(x, requires_grad=True), bc.tensor(y, requires_grad=True)
    tx, ty = as_torch(x, requires_grad=True), as_torch(y, requires_grad=True)
    z, tz = Multiply.apply(bx, by), TorchMultiply.apply(tx, ty)
    assert z.grad_fn.name == "MultiplyBackward"
    assert_close(z, tz)
    upstream = rng.standard_normal(5)
    z.backward(upstream)
    tz.backward(torch.from_numpy(upstream))
    assert_close(bx.grad, tx.grad)
    assert_close(by.grad, ty.grad)


def test_legendre_function_matches_torch(rng: np.random.Generator) -> None:
    """The deck's training loop for P3 in a few steps: forward and backward agree."""
    x = np.linspace(-1, 1, 7)
    a = bc.tensor(x, requires_grad=True)
    ta = as_torch(x, requires_grad=True)
    out, tout = LegendrePolynomial3.apply(a), TorchLegendrePolynomial3.apply(ta)
    assert_close(out, tout)
    (out * out).sum().backward()
    (tout * tout).sum().backward()
    assert_close(a.grad, ta.grad)
    assert bc.gradcheck.gradcheck(LegendrePolynomial3.apply, (bc.tensor(x, requires_grad=True),))
    assert torch.autograd.gradcheck(TorchLegendrePolynomial3.apply, (as_torch(x, True),))


def test_custom_function_in_a_larger_graph(rng: np.random.Generator) -> None:
    w = rng.standard_normal(3)
    a, b = bc.tensor(w, requires_grad=True), bc.tensor(2 * w, requires_grad=True)
    ta, tb = as_torch(a, True), as_torch(b, True)
    LegendrePolynomial3.apply(Multiply.apply(a, b) + a).sum().backward()
    TorchLegendrePolynomial3.apply(TorchMultiply.apply(ta, tb) + ta).sum().backward()
    assert_close(a.grad, ta.grad)
    assert_close(b.grad, tb.grad)
