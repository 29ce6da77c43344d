"""A torch user's habits on ``bc.Tensor``, each against torch (float64): values, gradients,
dtypes and errors. Where we differ on purpose (no GPU, no create_graph), the error must
say what to write instead.

Hypothesis draws the arrays (``hypothesis.extra.numpy``); backward runs with a random
upstream gradient.
"""

from __future__ import annotations

from collections.abc import Callable

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
import torch
from conftest import as_torch, assert_close
from hypothesis import given, settings
from hypothesis import strategies as st

import backprop_course as bc
from backprop_course import functional as F
from backprop_course import nn

fast = settings(max_examples=30, deadline=None)
finite = st.floats(-10, 10, allow_nan=False, width=64)
shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4)
nonscalar = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4)


def arrays(shape=nonscalar, elements=finite, unique: bool = False):
    return hnp.arrays(np.float64, shape, elements=elements, unique=unique)


def same(ours: Callable, theirs: Callable, *inputs: np.ndarray, seed: int = 0) -> None:
    """``ours`` on bc leaves and ``theirs`` on torch leaves give equal values and, when
    the output is a float tensor, equal gradients for a random upstream gradient."""
    bc_in = [bc.tensor(x, requires_grad=True) for x in inputs]
    torch_in = [as_torch(x, requires_grad=True) for x in inputs]
    out, ref = ours(*bc_in), theirs(*torch_in)
    assert isinstance(out, bc.Tensor)
    assert_close(out, ref)
    assert out.dtype == np.dtype(str(ref.dtype).removeprefix("torch."))
    if not ref.requires_grad:
        assert not out.requires_grad and out.grad_fn is None
        return
    upstream = np.random.default_rng(seed).standard_normal(ref.shape)
    out.backward(upstream)
    ref.backward(torch.from_numpy(upstream))
    for ours_leaf, their_leaf in zip(bc_in, torch_in, strict=True):
        expected = torch.zeros_like(their_leaf) if their_leaf.grad is None else their_leaf.grad
        got = np.zeros(ours_leaf.shape) if ours_leaf.grad is None else ours_leaf.grad
        assert_close(got, expected)


def raises_alike(ours: Callable, theirs: Callable) -> type[Exception]:
    """Both raise, and the same kind of exception; returns it."""
    with pytest.raises(Exception) as ref:
        theirs()
    with pytest.raises(ref.type):
        ours()
    return ref.type


# ------------------------------------------------------------------ micrograd
def test_micrograd_sanity_check_with_torch_habits() -> None:
    """micrograd's README expression: y(-4) = -20, dy/dx = 46, asserted the way a torch
    (or micrograd) user writes it: ``==`` with a float, ``abs(a - b) < tol``, ``float()``."""
    results = []
    for lib in (bc, torch):
        x = lib.tensor(-4.0, dtype=lib.float64, requires_grad=True)
        z = 2 * x + 2 + x
        q = z.relu() + z * x
        h = (z * z).relu()
        y = h + q + q * x
        y.backward()
        results.append((x, y))
    (x, y), (x_torch, y_torch) = results
    assert x.grad == 46.0 and y == -20.0
    assert x.grad == x_torch.grad.item() and y.data == y_torch.data.item()
    assert abs(x.grad - x_torch.grad.item()) < 1e-12
    assert float(y) == y_torch.item() == -20.0
    assert isinstance(x.grad == 46.0, bc.Tensor)  # a bool tensor, as torch gives


def test_micrograd_style_updates_and_augmented_assignment() -> None:
    """``c += c + 1`` on graph values, then an SGD step written three ways."""
    grads = []
    for lib in (bc, torch):
        a = lib.tensor(1.5, dtype=lib.float64, requires_grad=True)
        b = lib.tensor(-0.5, dtype=lib.float64, requires_grad=True)
        c = a * b + b**3
        c += c + 1
        c += 2 * c - (-a).relu()
        c *= a
        c /= 2.0
        c -= 10.0 / (b * b + 1)
        c.backward()
        grads.append((c.item(), a.grad.item(), b.grad.item()))
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-12)

    p = bc.tensor([1.0, -2.0], requires_grad=True)
    p_torch = as_torch(p, requires_grad=True)
    for t in (p, p_torch):
        (t * t).sum().backward()
    with bc.no_grad(), torch.no_grad():
        p -= 0.1 * p.grad                      # torch's habit
        p_torch -= 0.1 * p_torch.grad
    p.data += -0.1 * p.grad                    # micrograd's habit
    p_torch.data += -0.1 * p_torch.grad
    p.grad.zero_()
    p_torch.grad.zero_()
    assert isinstance(p.data, np.ndarray) and p.is_leaf and p.requires_grad
    assert_close(p, p_torch)
    assert_close(p.grad, p_torch.grad)


# ------------------------------------------------------------ numpy and Python
@fast
@given(x=arrays(shapes))
def test_numpy_conversion(x: np.ndarray) -> None:
    t, t_torch = bc.tensor(x), torch.tensor(x)
    for view in (np.asarray(t), np.array(t), np.asarray(t, dtype=np.float32)):
        np.testing.assert_array_equal(view, np.asarray(t_torch, dtype=view.dtype))
        assert view.dtype in (np.float64, np.float32) and view.dtype != object
    assert np.asarray(bc.tensor(x, dtype=np.float32)).dtype == np.float32
    assert np.allclose(t, x) and np.array_equal(t.tolist(), t_torch.tolist())
    for product in (x * t, np.float64(2.0) * t, np.array(2.0) * t):  # __rmul__, not numpy
        assert isinstance(product, bc.Tensor)
    assert_close(x * t, torch.from_numpy(x) * t_torch)
    assert_close(x - bc.tensor(x, requires_grad=True), np.zeros_like(x))


def test_numpy_of_a_tensor_that_requires_grad_raises_like_torch() -> None:
    t = bc.tensor([1.0, 2.0], requires_grad=True)
    t_torch = as_torch(t, requires_grad=True)
    raises_alike(lambda: np.asarray(t), lambda: np.asarray(t_torch))
    with pytest.raises(RuntimeError, match=r"detach\(\)\.numpy\(\)"):
        np.asarray(t)
    np.testing.assert_array_equal(np.asarray(t.detach()), [1.0, 2.0])


@pytest.mark.filterwarnings("ignore:Converting a tensor with requires_grad")  # torch's
@fast
@given(value=finite, shape=st.sampled_from([(), (1,), (1, 1)]))
def test_one_element_to_python(value: float, shape: tuple) -> None:
    x = np.full(shape, value)
    for t, t_torch in ((bc.tensor(x), torch.tensor(x)),
                       (bc.tensor(x, requires_grad=True), as_torch(x, requires_grad=True))):
        assert float(t) == float(t_torch) and int(t) == int(t_torch)
        assert bool(t) == bool(t_torch) and t.item() == t_torch.item()
        assert isinstance(float(t), float) and isinstance(int(t), int)
        if t.ndim == 0:
            assert f"{t:.3f}" == f"{t_torch:.3f}" == f"{value:.3f}"


@pytest.mark.parametrize("convert", [float, int, bool, lambda t: t.item(), range,
                                     lambda t: f"{t:.2f}", len, list])
@pytest.mark.parametrize("values", [[1.0, 2.0], [], 2.5, [3], 3, [[1, 2]]])
def test_conversions_fail_like_torch(convert: Callable, values) -> None:
    """Several elements to one number, a float as an index, len/iter of a 0-d tensor:
    the same exception type as torch, or the same result."""
    t, t_torch = bc.tensor(values), torch.tensor(values)
    try:
        expected = convert(t_torch)
    except Exception as error:  # whatever torch raises, we raise too
        with pytest.raises(type(error)):
            convert(t)
        return
    result = convert(t)
    if isinstance(expected, list):  # iterating gives tensors
        assert [r.tolist() for r in result] == [e.tolist() for e in expected]
    else:
        assert result == expected


def test_integer_tensor_as_index() -> None:
    i, i_torch = bc.tensor(2), torch.tensor(2)
    items = ["a", "b", "c"]
    assert items[i] == items[i_torch] == "c" and list(range(i)) == [0, 1]
    assert np.arange(5)[bc.tensor([1, 3])].tolist() == [1, 3]
    with pytest.raises(TypeError, match="integer tensors"):
        items[bc.tensor(1.0)]


# ------------------------------------------------------------------ comparisons
COMPARISONS = {
    ">": lambda a, b: a > b, "<": lambda a, b: a < b, ">=": lambda a, b: a >= b,
    "<=": lambda a, b: a <= b, "==": lambda a, b: a == b, "!=": lambda a, b: a != b,
}


@pytest.mark.parametrize("op", list(COMPARISONS))
@fast
@given(data=st.data(), shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=3,
                                                                max_side=3))
def test_comparisons_give_bool_tensors(op: str, data, shapes) -> None:
    small = st.sampled_from([-1.0, 0.0, 0.5, 2.0])  # ties happen
    a, b = (data.draw(arrays(s, small)) for s in shapes.input_shapes)
    compare = COMPARISONS[op]
    for left, right, left_torch, right_torch in [
            (bc.tensor(a, requires_grad=True), bc.tensor(b), as_torch(a, True), as_torch(b)),
            (bc.tensor(a), 0.5, as_torch(a), 0.5),       # tensor op number
            (0.5, bc.tensor(b), 0.5, as_torch(b)),       # number op tensor (reflected)
            (a, bc.tensor(b), as_torch(a), as_torch(b))]:  # ndarray op tensor (reflected)
        out, ref = compare(left, right), compare(left_torch, right_torch)
        assert isinstance(out, bc.Tensor) and out.dtype == np.bool_
        assert not out.requires_grad and out.grad_fn is None
        np.testing.assert_array_equal(out.data, ref.numpy())


@fast
@given(x=arrays(elements=st.sampled_from([-1.0, 0.0, 0.5, 2.0])))
def test_masks_combine_like_torch(x: np.ndarray) -> None:
    def masks(t):
        return [(t > 0) & (t < 1), (t < 0) | ~(t != 2), 0.5 * ((t >= 0) & (t <= 0.5))]

    for mine, theirs in zip(masks(bc.tensor(x)), masks(torch.tensor(x)), strict=True):
        np.testing.assert_array_equal(mine.data, theirs.numpy())
    ints = [1, 2, 6]
    assert (bc.tensor(ints) & bc.tensor(3)).tolist() == (torch.tensor(ints) & 3).tolist()


def test_tensors_stay_hashable_and_none_compares_false() -> None:
    a, b = bc.tensor([1.0, 2.0]), bc.tensor([1.0, 2.0])
    assert len({a, b, a}) == 2 and {a: "a"}[a] == "a"  # hashed by identity, as torch
    assert hash(a) == hash(a) != hash(b)
    assert (a == None) is False and (a != None) is True  # noqa: E711 (torch's answer)
    assert (torch.ones(2) == None) is False  # noqa: E711
    model = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
    assert model[0].weight in model.parameters()  # identity first, as with torch


# -------------------------------------------------------------- elementwise ops
@fast
@given(x=arrays(shapes, st.sampled_from([-2.0, -0.5, 0.0, 1.0, 3.0]) | finite), seed=st.integers(0))
def test_abs_neg_clone(x: np.ndarray, seed: int) -> None:
    same(abs, abs, x, seed=seed)  # the gradient at 0 is 0, as torch's
    same(lambda t: t.abs(), torch.abs, x, seed=seed)
    same(lambda t: t.neg() * t.clone(), lambda t: t.neg() * t.clone(), x, seed=seed)


@fast
@given(x=arrays(shapes, st.floats(0.01, 100)), seed=st.integers(0))
def test_sqrt_exp_log_pow(x: np.ndarray, seed: int) -> None:
    same(lambda t: t.sqrt(), torch.sqrt, x, seed=seed)
    same(bc.sqrt, torch.sqrt, x, seed=seed)
    same(lambda t: t.log().exp() + bc.log(t), lambda t: t.log().exp() + torch.log(t), x)
    same(lambda t: t.pow(1.5) - t.pow(2), lambda t: t.pow(1.5) - t.pow(2), x, seed=seed)


@fast
@given(x=arrays(shapes, st.sampled_from([-1.0, 0.0, 0.5, 1.0, 2.0]) | finite),
       bounds=st.sampled_from([(0.0, None), (None, 1.0), (-1.0, 1.0), (0.5, 0.5), (2.0, -1.0)]),
       seed=st.integers(0))
def test_clamp_and_its_gradient_on_the_bounds(x: np.ndarray, bounds: tuple, seed: int) -> None:
    low, high = bounds
    same(lambda t: t.clamp(min=low, max=high), lambda t: t.clamp(min=low, max=high), x,
         seed=seed)
    same(lambda t: t.clip(low, high), lambda t: t.clip(low, high), x, seed=seed)
    same(lambda t: bc.clamp(t, low, high), lambda t: torch.clamp(t, low, high), x, seed=seed)
    raises_alike(lambda: bc.tensor(x).clamp(), lambda: torch.tensor(x).clamp())


# ------------------------------------------------------------------ reductions
@st.composite
def reduction(draw, single: bool = False):
    x = draw(arrays(elements=finite.map(lambda v: v + 0.0), unique=single))  # no -0.0 tie
    one = st.integers(-x.ndim, x.ndim - 1)
    dim = draw(one if single else st.none() | one | hnp.valid_tuple_axes(x.ndim, min_size=1))
    return x, dim, draw(st.booleans())


def spelled(dim, keepdim: bool) -> list[dict]:
    """The four spellings torch accepts: dim/axis x keepdim/keepdims."""
    return [{"dim": dim, "keepdim": keepdim}, {"axis": dim, "keepdims": keepdim},
            {"dim": dim, "keepdims": keepdim}, {"axis": dim, "keepdim": keepdim}]


@pytest.mark.parametrize("name", ["sum", "mean", "amax", "amin", "all", "any"])
@fast
@given(case=reduction())
def test_reductions_take_dim_and_axis(name: str, case) -> None:
    x, dim, keepdim = case
    if name in ("amax", "amin"):
        x = np.round(x / 4)  # ties: they share the gradient
    if name in ("all", "any"):
        x = (x > 0).astype(np.float64)
    torch_dim = tuple(range(x.ndim)) if dim is None else dim
    for kwargs in spelled(dim, keepdim):
        if name in ("all", "any"):
            ours = getattr(bc.tensor(x > 0), name)(**kwargs)
            theirs = torch.tensor(x > 0)
            for d in sorted(np.atleast_1d(torch_dim) % x.ndim, reverse=True):
                theirs = getattr(theirs, name)(dim=int(d), keepdim=keepdim)
            np.testing.assert_array_equal(ours.data, theirs.numpy())
            continue
        same(lambda t, kwargs=kwargs: getattr(t, name)(**kwargs),
             lambda t: getattr(t, name)(dim=torch_dim, keepdim=keepdim), x)


@pytest.mark.parametrize("name", ["max", "min"])
@fast
@given(case=reduction(single=True), seed=st.integers(0))
def test_max_min_with_dim_give_values_and_indices(name: str, case, seed: int) -> None:
    x, dim, keepdim = case
    for kwargs in spelled(dim, keepdim):
        values, indices = getattr(bc.tensor(x), name)(**kwargs)
        ref = getattr(torch.tensor(x), name)(dim=dim, keepdim=keepdim)
        assert_close(values, ref.values)
        np.testing.assert_array_equal(indices.data, ref.indices.numpy())
        assert indices.dtype == np.int64 and not indices.requires_grad
        same(lambda t, kwargs=kwargs: getattr(t, name)(**kwargs).values,
             lambda t: getattr(t, name)(dim=dim, keepdim=keepdim).values, x, seed=seed)
    for arg in ("argmax", "argmin"):
        for kwargs in spelled(dim, keepdim):
            same(lambda t, arg=arg, kwargs=kwargs: getattr(t, arg)(**kwargs),
                 lambda t, arg=arg: getattr(t, arg)(dim=dim, keepdim=keepdim), x)
        same(lambda t, arg=arg: getattr(t, arg)(), lambda t, arg=arg: getattr(t, arg)(), x)


@fast
@given(x=arrays(shapes))
def test_max_min_without_dim_are_numbers(x: np.ndarray) -> None:
    x = np.round(x)  # ties: the gradient is split between them, as torch's max()
    same(lambda t: t.max() - 2 * t.min(), lambda t: t.max() - 2 * t.min(), x)


@fast
@given(x=arrays(), data=st.data())
def test_softmax_takes_dim_and_axis(x: np.ndarray, data) -> None:
    dim = data.draw(st.integers(-x.ndim, x.ndim - 1))
    for ours in (lambda t: F.softmax(t, dim), lambda t: F.softmax(t, dim=dim),
                 lambda t: F.softmax(t, axis=dim), lambda t: t.softmax(dim),
                 lambda t: t.softmax(axis=dim), lambda t: nn.Softmax(dim=dim)(t),
                 lambda t: bc.softmax(t, dim)):
        same(ours, lambda t: torch.softmax(t, dim), x)
    for ours in (lambda t: F.log_softmax(t, axis=dim), lambda t: t.log_softmax(dim=dim),
                 lambda t: bc.log_softmax(t, dim)):
        same(ours, lambda t: torch.log_softmax(t, dim), x)


# ---------------------------------------------------------------------- shapes
@fast
@given(x=arrays(), data=st.data(), seed=st.integers(0))
def test_shape_methods(x: np.ndarray, data, seed: int) -> None:
    t, t_torch = bc.tensor(x), torch.tensor(x)
    assert t.size() == tuple(t_torch.size()) and t.numel() == t_torch.numel()
    assert t.dim() == t_torch.dim() and t.size == x.size  # numpy's attribute still works
    dims = st.integers(-x.ndim, x.ndim - 1)
    d0, d1 = data.draw(dims), data.draw(dims)
    assert t.size(d0) == t_torch.size(d0)
    perm = data.draw(st.permutations(range(x.ndim)))
    start = data.draw(st.integers(0, x.ndim - 1))
    end = data.draw(st.integers(start, x.ndim - 1)) - x.ndim * data.draw(st.booleans())
    new_dim = data.draw(st.integers(-x.ndim - 1, x.ndim))
    cases = [
        lambda t: t.view(-1), lambda t: t.reshape(x.shape[::-1]),
        lambda t: t.reshape(*x.shape[::-1]), lambda t: t.flatten(),
        lambda t: t.flatten(start, end), lambda t: t.unsqueeze(new_dim),
        lambda t: t.unsqueeze(new_dim).squeeze(), lambda t: t.unsqueeze(new_dim).squeeze(new_dim),
        lambda t: t.squeeze(d0), lambda t: t.transpose(d0, d1), lambda t: t.permute(*perm),
        lambda t: t.permute(perm),
    ]
    for case in cases:
        same(case, case, x, seed=seed)
    if x.ndim <= 2:
        same(lambda t: t.t() * 2, lambda t: t.t() * 2, x, seed=seed)
    if x.ndim == 2:
        same(lambda t: t.T, lambda t: t.T, x, seed=seed)


def test_transpose_swaps_two_dims_and_t_wants_a_matrix() -> None:
    x = np.arange(24.0).reshape(2, 3, 4)
    assert bc.tensor(x).transpose(0, 2).shape == torch.tensor(x).transpose(0, 2).shape
    assert bc.tensor(x).transpose(2, 0).shape == (4, 3, 2)  # a swap, not numpy's permutation
    raises_alike(lambda: bc.tensor(x).t(), lambda: torch.tensor(x).t())
    with pytest.raises(RuntimeError, match="transpose.*permute"):
        bc.tensor(x).t()
    raises_alike(lambda: bc.tensor(x).transpose(1), lambda: torch.tensor(x).transpose(1))


@fast
@given(x=arrays(hnp.array_shapes(min_dims=2, max_dims=3, max_side=4)), data=st.data(),
       seed=st.integers(0))
def test_gather(x: np.ndarray, data, seed: int) -> None:
    dim = data.draw(st.integers(-x.ndim, x.ndim - 1))
    shape = [data.draw(st.integers(1, n)) for n in x.shape]
    shape[dim] = data.draw(st.integers(1, 5))  # repeated indices add up in backward
    index = data.draw(hnp.arrays(np.int64, tuple(shape),
                                 elements=st.integers(0, x.shape[dim] - 1)))
    same(lambda t: t.gather(dim, bc.tensor(index)),
         lambda t: t.gather(dim, torch.from_numpy(index)), x, seed=seed)


@fast
@given(x=arrays(), data=st.data(), seed=st.integers(0))
def test_stack_and_cat(x: np.ndarray, data, seed: int) -> None:
    y = data.draw(arrays(x.shape))
    new_dim = data.draw(st.integers(-x.ndim - 1, x.ndim))
    dim = data.draw(st.integers(-x.ndim, x.ndim - 1))
    same(lambda a, b: bc.stack([a, b * 2, a], new_dim),
         lambda a, b: torch.stack([a, b * 2, a], new_dim), x, y, seed=seed)
    same(lambda a, b: bc.cat((a, b, a), dim=dim), lambda a, b: torch.cat((a, b, a), dim=dim),
         x, y, seed=seed)


# ------------------------------------------------------------- dtypes, in place
@fast
@given(x=arrays(shapes), seed=st.integers(0))
def test_dtype_casts(x: np.ndarray, seed: int) -> None:
    same(lambda t: t.float().double() * 3, lambda t: t.float().double() * 3, x, seed=seed)
    same(lambda t: t.to(np.float32).to(bc.float64), lambda t: t.to(torch.float32).double(), x)
    same(lambda t: t.long(), lambda t: t.long(), x)  # integers: no gradient
    same(lambda t: (t > 0).float().double().mean(), lambda t: (t > 0).double().mean(), x)
    t = bc.tensor(x, requires_grad=True)
    assert t.double() is t and t.to("cpu") is t and t.cpu() is t and t.device == "cpu"
    assert t.to(bc.tensor([1], dtype=np.float32)).dtype == np.float32


def test_requires_grad_detach_and_in_place() -> None:
    w, w_torch = bc.zeros(3), torch.zeros(3, dtype=torch.float64)
    for t in (w, w_torch):
        t[1] = 5.0
        t += 1
        t.mul_(2).add_(torch.ones(3, dtype=torch.float64) if t is w_torch else bc.ones(3),
                       alpha=0.5)
        t.sub_(t * 0.25)
        assert t.requires_grad_() is t and t.is_leaf and t.requires_grad
    assert_close(w, w_torch)
    for ours, theirs in [(lambda: w.add_(1), lambda: w_torch.add_(1)),
                         (lambda: w.zero_(), lambda: w_torch.zero_()),
                         (lambda: w.__setitem__(0, 1.0), lambda: w_torch.__setitem__(0, 1.0)),
                         (lambda: w.__iadd__(1), lambda: w_torch.__iadd__(1))]:
        assert raises_alike(ours, theirs) is RuntimeError
    with pytest.raises(RuntimeError, match="no_grad"):
        w += 1
    with bc.no_grad():
        w.zero_()
        w[0] = 3.0
    assert w.tolist() == [3.0, 0.0, 0.0]
    h = w * 2  # a tensor of the graph: ``h += 1`` is ``h = h + 1``; methods raise
    h += w
    with pytest.raises(RuntimeError, match="y = y \\+ x"):
        h.add_(1)
    with pytest.raises(RuntimeError, match="y = y \\+ x"):
        bc.zeros(3).add_(w)  # w's gradient would be lost
    h.sum().backward()
    assert w.grad.tolist() == [3.0, 3.0, 3.0]
    d = w.detach()
    assert d.is_leaf and not d.requires_grad and np.shares_memory(d.data, w.data)
    with pytest.raises(TypeError, match="floating point"):  # torch: a RuntimeError
        bc.tensor([1, 2]).requires_grad_()


def test_optimizer_loop_written_by_hand_matches_torch() -> None:
    bc.manual_seed(0)
    torch.manual_seed(0)
    model, ref = nn.Linear(3, 2), torch.nn.Linear(3, 2, dtype=torch.float64)
    model.load_state_dict(ref.state_dict())
    x = np.random.default_rng(1).standard_normal((5, 3))
    for _ in range(3):
        for net, lib in ((model, bc), (ref, torch)):
            loss = (net(lib.tensor(x)) ** 2).mean()
            net.zero_grad(set_to_none=False) if lib is bc else net.zero_grad()
            loss.backward()
            with lib.no_grad():
                for p in net.parameters():
                    p -= 0.1 * p.grad
    for ours, theirs in zip(model.parameters(), ref.parameters(), strict=True):
        assert_close(ours, theirs)
    bc.optim.SGD(model.parameters(), lr=0.1).zero_grad(set_to_none=False)
    assert all(p.grad is not None and not p.grad.data.any() for p in model.parameters())


# ------------------------------------------------------------------ factories
FACTORIES = [
    (lambda lib: lib.zeros(2, 3), None), (lambda lib: lib.zeros((2, 3)), None),
    (lambda lib: lib.ones([4]), None), (lambda lib: lib.full((2, 2), 7), "int64"),
    (lambda lib: lib.full((2,), 0.5), None), (lambda lib: lib.full((2,), True), "bool"),
    (lambda lib: lib.eye(3), None), (lambda lib: lib.eye(2, 3), None),
    (lambda lib: lib.arange(5), "int64"), (lambda lib: lib.arange(1, 7, 2), "int64"),
    (lambda lib: lib.arange(0.0, 1.0, 0.25), None), (lambda lib: lib.linspace(-1, 1, 5), None),
    (lambda lib: lib.zeros_like(lib.ones(2, 2)), None),
    (lambda lib: lib.ones_like(lib.arange(3)), "int64"),
    (lambda lib: lib.zeros(2, dtype=lib.float32), "float32"),
    (lambda lib: lib.ones(2, dtype=lib.int64), "int64"),
]


@pytest.mark.parametrize(("make", "dtype"), FACTORIES)
def test_factories(make: Callable, dtype: str | None) -> None:
    """torch's default float is float32, ours float64 (the course compares in float64)."""
    ours, theirs = make(bc), make(torch)
    np.testing.assert_allclose(ours.data, theirs.numpy())
    assert ours.dtype == np.dtype(dtype or "float64") and ours.is_leaf
    assert dtype is None or str(theirs.dtype) == f"torch.{dtype}"


def test_random_factories_and_manual_seed() -> None:
    bc.manual_seed(3)
    first = [bc.randn(2, 3), bc.rand((4,)), bc.randint(5, (6,)), bc.randint(2, 4, (3,)),
             bc.randperm(5)]
    bc.manual_seed(3)
    again = [bc.randn(2, 3), bc.rand((4,)), bc.randint(5, (6,)), bc.randint(2, 4, (3,)),
             bc.randperm(5)]
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a.data, b.data)
    randn, rand, below5, between, perm = first
    assert randn.shape == (2, 3) and randn.dtype == np.float64
    assert rand.shape == (4,) and ((rand >= 0) & (rand < 1)).all() and not (~(rand >= 0)).any()
    assert below5.dtype == np.int64 and (below5 < 5).all()
    assert ((between >= 2) & (between < 4)).all()
    assert sorted(perm.tolist()) == [0, 1, 2, 3, 4]
    w = bc.randn(3, dtype=bc.float32, requires_grad=True)
    assert w.dtype == np.float32 and w.requires_grad and w.is_leaf
    assert bc.empty(2, 3).shape == (2, 3) and bc.empty(0).shape == (0,)
    a = np.arange(3.0)
    assert np.shares_memory(bc.from_numpy(a).data, a)


# ------------------------------------------------------- deliberate differences
DIFFERENCES = [
    (lambda: bc.ones(2).cuda(), "CPU only.*Drop .cuda"),
    (lambda: bc.ones(2).to("cuda"), "no 'cuda' device"),
    (lambda: bc.ones(2).to("cuda:0", dtype=np.float32), "no 'cuda:0' device"),
    (lambda: bc.zeros(2, device="cuda"), "CPU only"),
    (lambda: bc.tensor([1.0], device="mps"), "no 'mps' device"),
    (lambda: nn.Linear(2, 2).cuda(), "Drop .cuda"),
    (lambda: nn.Linear(2, 2).to("cuda"), "Drop .cuda"),
    (lambda: (bc.ones(2, requires_grad=True) ** 2).sum().backward(create_graph=True),
     "create_graph.*not supported.*without it"),
    (lambda: bc.ones((2, 3)).max(dim=(0, 1)), r"amax\(dim=\(0, 1\)\)"),
    (lambda: bc.ones(2) ** bc.ones(2), r"x \*\* 2.0"),
]


@pytest.mark.parametrize(("call", "message"), DIFFERENCES)
def test_deliberate_differences_say_what_to_write(call: Callable, message: str) -> None:
    with pytest.raises((RuntimeError, TypeError, NotImplementedError), match=message):
        call()


def test_no_grad_as_a_decorator() -> None:
    @bc.no_grad()
    def step(t: bc.Tensor) -> bc.Tensor:
        return t * 2

    assert not step(bc.ones(2, requires_grad=True)).requires_grad and bc.is_grad_enabled()


def test_cpu_device_is_accepted_everywhere() -> None:
    model = nn.Linear(2, 2).to("cpu").cpu().double()
    x = bc.ones(1, 2, device="cpu").to("cpu", bc.float64)
    assert model(x).shape == (1, 2) and model.float().weight.dtype == np.float32
