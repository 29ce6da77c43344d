"""Tensor and graph semantics, each compared with what torch does."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import as_torch, assert_close

import backprop_course as bc


def test_leaf_and_node_attributes() -> None:
    a = bc.tensor([1.0, 2.0], requires_grad=True)
    assert a.is_leaf and a.grad_fn is None and a.grad is None and a.requires_grad
    assert a.shape == (2,) and a.dtype == np.float64
    b = a * 3
    assert not b.is_leaf and b.requires_grad and b.grad_fn.name == "MulBackward"
    c = bc.tensor([1.0, 2.0])
    assert not c.requires_grad and not (c * 3).requires_grad and (c * 3).grad_fn is None
    with pytest.raises(TypeError, match="floating point"):
        bc.tensor([1, 2], requires_grad=True)


def test_item_numpy_detach() -> None:
    a = bc.tensor([[3.0]], requires_grad=True)
    assert a.item() == 3.0 and isinstance(a.item(), float)
    with pytest.raises(RuntimeError, match="detach"):
        a.numpy()
    d = (a * 2).detach()
    assert d.is_leaf and not d.requires_grad and d.grad_fn is None
    assert isinstance(d.numpy(), np.ndarray) and d.numpy()[0, 0] == 6.0
    assert np.shares_memory(a.detach().numpy(), a.data)  # like torch: detach shares storage


def test_no_grad_records_nothing() -> None:
    a = bc.tensor([1.0], requires_grad=True)
    with bc.no_grad():
        assert not bc.is_grad_enabled()
        b = a * 2
    assert bc.is_grad_enabled()
    assert not b.requires_grad and b.grad_fn is None
    with pytest.raises(RuntimeError, match="does not require grad"):
        b.sum().backward()


def test_deep_graph_is_iterative() -> None:
    """10,000 nodes deep must not hit the recursion limit."""
    x = bc.tensor(1.0, requires_grad=True)
    y = x
    for _ in range(10_000):
        y = y * 1.0001 + 0.0
    y.backward()
    assert np.isclose(x.grad.item(), 1.0001**10_000)


def test_node_used_many_times() -> None:
    """``b = a + a; c = b * b``: dc/da = 2b * 2 = 8a (micrograd issue #2)."""
    a, ta = bc.tensor(3.0, requires_grad=True), torch.tensor(3.0, requires_grad=True,
                                                           dtype=torch.float64)
    for t, lib in ((a, bc), (ta, torch)):
        b = t + t
        c = b * b
        c.backward()
        del lib
    assert a.grad.item() == 24.0 == ta.grad.item()


def test_diamond_graph_waits_for_every_path() -> None:
    """A node reached directly and through another node (A feeds R and B, B feeds R)
    must get both contributions before its own backward runs."""
    results = []
    for t in (bc.tensor(1.5, requires_grad=True),
              torch.tensor(1.5, requires_grad=True, dtype=torch.float64)):
        A = t * 2
        B = A * 3
        (A + B * A).backward()
        results.append(float(t.grad.item()))
    assert results[0] == results[1] == 2 + 3 * 2 * 2 * 1.5 * 2


def test_wide_fan_out_matches_torch(rng: np.random.Generator) -> None:
    x = rng.standard_normal(5)
    grads = []
    for t in (bc.tensor(x, requires_grad=True), as_torch(x, requires_grad=True)):
        h = t.tanh()
        total = h * h
        for k in range(1, 6):
            total = total + h * k + (h * h).exp()
        total.sum().backward()
        grads.append(t.grad)
    assert_close(grads[0], grads[1])


def test_backward_accumulates_into_leaves() -> None:
    """Calling backward twice adds (torch does; micrograd issue #53)."""
    a = bc.tensor([1.0, 2.0], requires_grad=True)
    ta = as_torch(a, requires_grad=True)
    for t in (a, ta):
        y = (t * t).sum()
        y.backward(retain_graph=True)
        y.backward()
    assert_close(a.grad, ta.grad)
    assert_close(a.grad, [4.0, 8.0])


def test_graph_that_saved_nothing_can_backward_twice() -> None:
    a = bc.tensor([1.0, 2.0], requires_grad=True)
    ta = as_torch(a, requires_grad=True)
    for t in (a, ta):
        y = (t + t).sum()
        y.backward()
        y.backward()  # no saved values were freed: torch allows it too
    assert_close(a.grad, ta.grad)
    assert_close(a.grad, [4.0, 4.0])


def test_second_backward_through_freed_graph_raises() -> None:
    a = bc.tensor([1.0, 2.0], requires_grad=True)
    ta = as_torch(a, requires_grad=True)
    y, ty = (a * a).sum(), (ta * ta).sum()
    y.backward()
    ty.backward()
    with pytest.raises(RuntimeError, match="second time"):
        ty.backward()
    with pytest.raises(RuntimeError, match="second time.*MulBackward|MulBackward.*retain_graph"):
        y.backward()


def test_non_scalar_backward_needs_gradient() -> None:
    a = bc.tensor([1.0, 2.0], requires_grad=True)
    ta = as_torch(a, requires_grad=True)
    with pytest.raises(RuntimeError, match="scalar outputs"):
        (ta * 2).backward()
    with pytest.raises(RuntimeError, match=r"scalar outputs.*\(2,\)"):
        (a * 2).backward()
    (a * 2).backward(gradient=np.array([1.0, -1.0]))
    assert_close(a.grad, [2.0, -2.0])
    with pytest.raises(RuntimeError, match=r"\(3,\).*\(2,\)"):
        (a * 2).backward(gradient=np.ones(3))


def test_leaf_backward_with_gradient() -> None:
    a = bc.tensor([1.0, 2.0], requires_grad=True)
    a.backward(np.array([3.0, 4.0]))
    assert_close(a.grad, [3.0, 4.0])


def test_broadcasting_is_undone() -> None:
    a = bc.tensor(np.ones((3, 1)), requires_grad=True)
    b = bc.tensor(np.arange(4.0), requires_grad=True)
    c = bc.tensor(2.0, requires_grad=True)
    ((a + b) * c).sum().backward()
    assert a.grad.shape == (3, 1) and b.grad.shape == (4,) and c.grad.shape == ()
    assert_close(a.grad, np.full((3, 1), 8.0))
    assert_close(b.grad, np.full(4, 6.0))
    assert_close(c.grad, 3 * 4 + 3 * 6.0)


@pytest.mark.parametrize(
    ("make", "op_name"),
    [
        (lambda a, b: a + b, "Add"),
        (lambda a, b: a * b, "Mul"),
        (lambda a, b: a @ b, "MatMul"),
    ],
)
def test_forward_shape_mismatch_names_op_and_shapes(make, op_name: str) -> None:
    a = bc.tensor(np.ones((2, 3)), requires_grad=True)
    b = bc.tensor(np.ones((4, 5)))
    with pytest.raises(ValueError, match=rf"{op_name}.*\(2, 3\).*\(4, 5\)"):
        make(a, b)


def test_backward_wrong_gradient_shape_names_op_and_shapes() -> None:
    class BadBias(bc.Function):
        @staticmethod
        def forward(ctx, x, b):
            return x + b

        @staticmethod
        def backward(ctx, g):
            return g, g  # forgot to sum the bias gradient over the batch

    x = bc.tensor(np.ones((4, 3)), requires_grad=True)
    b = bc.tensor(np.ones(3), requires_grad=True)
    with pytest.raises(RuntimeError, match=r"BadBias.*\(4, 3\).*input 1 of shape \(3,\)"):
        BadBias.apply(x, b).sum().backward()


def test_backward_returning_wrong_number_of_grads() -> None:
    class Two(bc.Function):
        @staticmethod
        def forward(ctx, x, y):
            return x * y

        @staticmethod
        def backward(ctx, g):
            return g

    x = bc.tensor(1.0, requires_grad=True)
    with pytest.raises(RuntimeError, match="Two.backward returned 1 gradient"):
        Two.apply(x, x).backward()


def test_none_gradient_into_a_non_leaf_is_zero() -> None:
    class Stop(bc.Function):
        @staticmethod
        def forward(ctx, x):
            return x.copy()

        @staticmethod
        def backward(ctx, g):
            return None

    a = bc.tensor(2.0, requires_grad=True)
    h = a * 3
    (Stop.apply(h) + a).backward()
    assert a.grad.item() == 1.0


def test_retain_grad_on_non_leaf() -> None:
    a = bc.tensor([1.0, 2.0], requires_grad=True)
    h = a * 3
    h.retain_grad()
    (h * h).sum().backward()
    assert_close(h.grad, [6.0, 12.0])


def test_operators_with_python_numbers_and_arrays() -> None:
    a = bc.tensor([1.0, 2.0], requires_grad=True)
    ta = as_torch(a, requires_grad=True)
    outs = []
    for t in (a, ta):
        y = 2 - t + 1 / t - t / 4 + 3 * t + (-t) ** 2
        y.sum().backward()
        outs.append((y, t.grad))
    assert_close(outs[0][0], outs[1][0])
    assert_close(outs[0][1], outs[1][1])
    assert isinstance(np.array([1.0, 1.0]) * a, bc.Tensor)


def test_pow_rejects_tensor_exponent() -> None:
    a = bc.tensor(2.0, requires_grad=True)
    with pytest.raises(TypeError, match="constant exponents"):
        a ** bc.tensor(2.0)


def test_extra_none_gradients_for_defaulted_arguments() -> None:
    """``Softmax.apply(x)`` leaves ``axis`` at its default; backward's trailing None is
    ignored, as torch ignores extra None gradients."""
    x = bc.tensor([[1.0, 2.0, 0.5]], requires_grad=True)
    bc.ops.Softmax.apply(x)[0, 0].backward()
    tx = as_torch(x, requires_grad=True)
    torch.softmax(tx, -1)[0, 0].backward()
    assert_close(x.grad, tx.grad)


def test_topological_order_explores_inputs_in_either_order() -> None:
    from backprop_course.backward import topological_order

    a, b, c, d = (bc.tensor(float(v), requires_grad=True) for v in range(1, 5))
    left, right = a * b, c * d
    root = (left + right).grad_fn
    assert topological_order(root) == [right.grad_fn, left.grad_fn, root]
    assert topological_order(root, inputs_in_order=True) == [left.grad_fn, right.grad_fn, root]
