"""Every op against torch (float64): values and gradients, random shapes, hypothesis.

Hypothesis draws shapes, axes, broadcast patterns and a seed; the values come from
numpy's generator with that seed, kept away from kinks (ReLU at 0, ties in max, log of
non-positive numbers). Backward runs with a random upstream gradient, not ones.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from conftest import as_torch, assert_close
from hypothesis import given, settings
from hypothesis import strategies as st

import backprop_course as bc
from backprop_course import functional as F
from backprop_course import ops
from backprop_course.gradcheck import numerical_jacobian

fast = settings(max_examples=30, deadline=None)
seeds = st.integers(0, 2**32 - 1)
shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4)
nonscalar = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4)
broadcast_pairs = hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3,
                                                     min_side=1, max_side=4)


def away_from_zero(rng: np.random.Generator, shape: Sequence[int], low: float = 0.2
                   ) -> np.ndarray:
    """Values with |x| in [low, low + 2): no kinks at 0, no division by ~0."""
    return rng.choice([-1.0, 1.0], size=shape) * (low + 2 * rng.random(shape))


def distinct(rng: np.random.Generator, shape: Sequence[int]) -> np.ndarray:
    """Values whose entries all differ by at least 0.1 (no ties for max)."""
    size = int(np.prod(shape))
    return (rng.permutation(size) * 0.1 + 0.01 * rng.random(size) - size * 0.05).reshape(shape)


def compare_with_torch(ours: Callable, theirs: Callable, inputs: Sequence[np.ndarray],
                       rng: np.random.Generator, differentiable: Sequence[int] | None = None
                       ) -> None:
    """Run ``ours`` on bc tensors and ``theirs`` on torch tensors built from ``inputs``;
    the outputs and the gradients of every float input must agree."""
    differentiable = range(len(inputs)) if differentiable is None else differentiable
    ours_in = [bc.tensor(x, requires_grad=i in differentiable) for i, x in enumerate(inputs)]
    theirs_in = [as_torch(x, requires_grad=i in differentiable) for i, x in enumerate(inputs)]
    out, ref = ours(*ours_in), theirs(*theirs_in)
    assert_close(out, ref)
    upstream = rng.standard_normal(ref.shape)
    out.backward(upstream)
    ref.backward(torch.from_numpy(upstream))
    for i in differentiable:
        assert ours_in[i].grad is not None, f"no gradient for input {i}"
        assert_close(ours_in[i].grad, theirs_in[i].grad)


# ---------------------------------------------------------------- elementwise binary
BINARY = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
}


@pytest.mark.parametrize("name", list(BINARY))
@fast
@given(shapes=broadcast_pairs, seed=seeds)
def test_binary_broadcasting(name: str, shapes, seed: int) -> None:
    rng = np.random.default_rng(seed)
    a, b = (away_from_zero(rng, s) for s in shapes.input_shapes)
    compare_with_torch(BINARY[name], BINARY[name], [a, b], rng)


@fast
@given(shape=shapes, seed=seeds, exponent=st.sampled_from([2, 3, 0.5, -1.5, 1.0]))
def test_pow_neg(shape, seed: int, exponent: float) -> None:
    rng = np.random.default_rng(seed)
    x = 0.5 + rng.random(shape)  # positive: fractional powers are defined
    compare_with_torch(lambda t: -(t**exponent), lambda t: -(t**exponent), [x], rng)


@fast
@given(seed=seeds, n=st.integers(1, 4), d=st.integers(1, 4), m=st.integers(1, 4),
       batch=st.sampled_from([(), (2,), (3, 1)]),
       kind=st.sampled_from(["mm", "vec@mat", "mat@vec", "dot", "batched", "bcast-b"]))
def test_matmul(seed: int, n: int, d: int, m: int, batch: tuple, kind: str) -> None:
    rng = np.random.default_rng(seed)
    a_shape, b_shape = {
        "mm": ((n, d), (d, m)),
        "vec@mat": ((d,), (d, m)),
        "mat@vec": ((n, d), (d,)),
        "dot": ((d,), (d,)),
        "batched": ((*batch, n, d), (*batch, d, m)),
        "bcast-b": ((*batch, n, d), (d, m)),
    }[kind]
    a, b = rng.standard_normal(a_shape), rng.standard_normal(b_shape)
    compare_with_torch(lambda x, y: x @ y, lambda x, y: x @ y, [a, b], rng)


# ---------------------------------------------------------------- elementwise unary
UNARY = {
    "exp": (lambda t: t.exp(), torch.exp),
    "log": (lambda t: t.log(), torch.log),
    "relu": (F.relu, torch.relu),
    "sigmoid": (F.sigmoid, torch.sigmoid),
    "tanh": (F.tanh, torch.tanh),
    "relu-method": (lambda t: t.relu(), torch.relu),
    "sigmoid-method": (lambda t: t.sigmoid(), torch.sigmoid),
    "tanh-method": (lambda t: t.tanh(), torch.tanh),
}


@pytest.mark.parametrize("name", list(UNARY))
@fast
@given(shape=shapes, seed=seeds)
def test_unary(name: str, shape, seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = 3 * away_from_zero(rng, shape, low=0.05)
    if name == "log":
        x = np.abs(x)
    compare_with_torch(*UNARY[name], [x], rng)


def test_sigmoid_extreme_values() -> None:
    x = np.array([-800.0, -40.0, 0.0, 40.0, 800.0])
    compare_with_torch(F.sigmoid, torch.sigmoid, [x], np.random.default_rng(1))


# ---------------------------------------------------------------- reductions
@st.composite
def reduction_case(draw):
    shape = draw(nonscalar)
    ndim = len(shape)
    axis = draw(st.none() | st.integers(-ndim, ndim - 1)
                | hnp.valid_tuple_axes(ndim, min_size=1))
    return shape, axis, draw(st.booleans())


def torch_dims(axis, ndim: int):
    return tuple(range(ndim)) if axis is None else axis


@pytest.mark.parametrize("name", ["sum", "mean", "amax", "amin"])
@fast
@given(case=reduction_case(), seed=seeds)
def test_reductions(name: str, case, seed: int) -> None:
    shape, axis, keepdims = case
    rng = np.random.default_rng(seed)
    x = distinct(rng, shape)
    torch_op = {"sum": torch.sum, "mean": torch.mean, "amax": torch.amax,
                "amin": torch.amin}[name]
    compare_with_torch(
        lambda t: getattr(t, name)(axis=axis, keepdims=keepdims),
        lambda t: torch_op(t, dim=torch_dims(axis, len(shape)), keepdim=keepdims),
        [x], rng)


def test_amax_amin_split_ties_like_torch() -> None:
    x = np.array([[1.0, 3.0, 3.0], [2.0, 0.0, 2.0]])
    compare_with_torch(lambda t: t.amax(axis=1), lambda t: torch.amax(t, dim=1), [x],
                       np.random.default_rng(2))
    compare_with_torch(lambda t: t.amin(dim=0), lambda t: torch.amin(t, dim=0), [x],
                       np.random.default_rng(2))
    compare_with_torch(lambda t: t.max(), lambda t: t.max(), [x], np.random.default_rng(2))
    compare_with_torch(lambda t: t.min(), lambda t: t.min(), [x], np.random.default_rng(2))


# ---------------------------------------------------------------- shaping and indexing
@fast
@given(shape=nonscalar, seed=seeds, data=st.data())
def test_reshape_and_transpose(shape, seed: int, data) -> None:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    perm = data.draw(st.permutations(range(len(shape))))
    perm = [p - len(shape) if data.draw(st.booleans()) else p for p in perm]  # some negative
    new_shape = (-1, *shape[:1]) if len(shape) > 1 else (-1,)
    compare_with_torch(lambda t: t.permute(perm).reshape(new_shape) * 2,
                       lambda t: t.permute(perm).reshape(new_shape) * 2, [x], rng)
    compare_with_torch(lambda t: t.T, lambda t: t.permute(*reversed(range(len(shape)))),
                       [x], rng)
    compare_with_torch(lambda t: t.reshape(*reversed(shape)),
                       lambda t: t.reshape(*reversed(shape)), [x], rng)


@fast
@given(seed=seeds, n=st.integers(1, 5), c=st.integers(1, 5), k=st.integers(1, 8))
def test_integer_array_indexing(seed: int, n: int, c: int, k: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c))
    rows, cols = rng.integers(0, n, k), rng.integers(0, c, k)  # repeats add up
    compare_with_torch(lambda t: t[rows, cols], lambda t: t[rows, cols], [x], rng)
    compare_with_torch(lambda t: t[rows], lambda t: t[rows], [x], rng)
    compare_with_torch(lambda t: t[np.arange(n), cols[0]],
                       lambda t: t[np.arange(n), int(cols[0])], [x], rng)
    compare_with_torch(lambda t: t[1:, ::2], lambda t: t[1:, ::2], [x], rng)


# ---------------------------------------------------------------- softmax family
@fast
@given(shape=nonscalar, seed=seeds, data=st.data(), scale=st.sampled_from([1.0, 30.0]))
def test_softmax_log_softmax(shape, seed: int, data, scale: float) -> None:
    rng = np.random.default_rng(seed)
    x = scale * rng.standard_normal(shape)
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    compare_with_torch(lambda t: F.softmax(t, dim), lambda t: torch.softmax(t, dim), [x], rng)
    compare_with_torch(lambda t: F.log_softmax(t, dim), lambda t: torch.log_softmax(t, dim),
                       [x], rng)


def test_log_softmax_is_stable_for_large_logits() -> None:
    x = np.array([[1000.0, 0.0, -1000.0], [1000.0, 1000.0, 999.0]])
    rng = np.random.default_rng(3)
    compare_with_torch(F.log_softmax, lambda t: torch.log_softmax(t, -1), [x], rng)
    compare_with_torch(F.softmax, lambda t: torch.softmax(t, -1), [x], rng)
    loss = F.cross_entropy(bc.tensor(x, requires_grad=True), np.array([2, 0]))
    assert np.isfinite(loss.item())


@fast
@given(seed=seeds, n=st.integers(1, 6), c=st.integers(1, 6),
       reduction=st.sampled_from(["mean", "sum"]))
def test_cross_entropy(seed: int, n: int, c: int, reduction: str) -> None:
    rng = np.random.default_rng(seed)
    logits, target = 3 * rng.standard_normal((n, c)), rng.integers(0, c, n)
    compare_with_torch(
        lambda t: F.cross_entropy(t, target, reduction=reduction),
        lambda t: TF.cross_entropy(t, torch.from_numpy(target), reduction=reduction),
        [logits], rng)


def test_cross_entropy_rejects_float_targets() -> None:
    with pytest.raises(TypeError, match="integer"):
        F.cross_entropy(bc.tensor(np.zeros((2, 3))), np.array([0.0, 1.0]))


@fast
@given(shape=nonscalar, seed=seeds, reduction=st.sampled_from(["mean", "sum"]))
def test_mse_loss(shape, seed: int, reduction: str) -> None:
    rng = np.random.default_rng(seed)
    x, y = rng.standard_normal(shape), rng.standard_normal(shape)
    compare_with_torch(lambda a, b: F.mse_loss(a, b, reduction=reduction),
                       lambda a, b: TF.mse_loss(a, b, reduction=reduction), [x, y], rng)


@fast
@given(shape=nonscalar, seed=seeds, p=st.sampled_from([0.1, 0.5, 0.9]))
def test_dropout_matches_torch_given_the_same_mask(shape, seed: int, p: float) -> None:
    rng = np.random.default_rng(seed)
    x = away_from_zero(rng, shape)
    bc.manual_seed(seed)
    mask = F.dropout(bc.tensor(x), p).data / x  # our mask: 0 or 1/(1-p)
    assert np.allclose(mask[mask != 0], 1 / (1 - p))
    bc.manual_seed(seed)  # the same mask again, inside the graph
    compare_with_torch(lambda t: F.dropout(t, p), lambda t: t * torch.from_numpy(mask),
                       [x], rng)


@fast
@given(seed=seeds, n=st.integers(1, 4), fan_in=st.integers(1, 5), fan_out=st.integers(1, 5),
       bias=st.booleans(), batched=st.booleans())
def test_linear(seed: int, n: int, fan_in: int, fan_out: int, bias: bool, batched: bool) -> None:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, fan_in) if batched else (fan_in,))
    w, b = rng.standard_normal((fan_out, fan_in)), rng.standard_normal(fan_out)
    if bias:
        compare_with_torch(F.linear, TF.linear, [x, w, b], rng)
    else:
        compare_with_torch(F.linear, TF.linear, [x, w], rng)


# ---------------------------------------------------------------- course layer Jacobians
def all_jacobians(fn_bc: Callable, fn_torch: Callable, x: np.ndarray):
    """The same Jacobian three ways besides the layer's own: VJPs, numerics, torch."""
    return [
        bc.jacobian(fn_bc, x),
        numerical_jacobian(lambda v: fn_bc(bc.Tensor(v)).data, x.copy()),
        torch.autograd.functional.jacobian(fn_torch, torch.from_numpy(x)).reshape(
            -1, x.size).numpy(),
    ]


@pytest.mark.parametrize("layer", ["ReLU", "Sigmoid", "Tanh", "Softmax"])
@pytest.mark.parametrize("shape", [(5,), (3, 4)])
def test_elementwise_and_softmax_jacobians(layer: str, shape: tuple) -> None:
    rng = np.random.default_rng(4)
    x = away_from_zero(rng, shape)
    fn = getattr(bc.ops, layer)
    ours = {"ReLU": F.relu, "Sigmoid": F.sigmoid, "Tanh": F.tanh, "Softmax": F.softmax}[layer]
    torch_fn = {"ReLU": torch.relu, "Sigmoid": torch.sigmoid, "Tanh": torch.tanh,
                "Softmax": lambda t: torch.softmax(t, -1)}[layer]
    explicit = fn.jacobian(x)
    assert explicit.shape == (x.size, x.size)
    for other in all_jacobians(ours, torch_fn, x):
        np.testing.assert_allclose(explicit, other, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("wrt", ["input", "weight", "bias"])
@pytest.mark.parametrize("n", [None, 1, 3])
def test_linear_jacobian(wrt: str, n: int | None) -> None:
    rng = np.random.default_rng(5)
    x = rng.standard_normal((4,) if n is None else (n, 4))
    w, b = rng.standard_normal((3, 4)), rng.standard_normal(3)
    explicit = ops.Linear.jacobian(x, w, b, wrt=wrt)
    position = ["input", "weight", "bias"].index(wrt)
    args = [x, w, b]

    def ours(v: bc.Tensor) -> bc.Tensor:
        return F.linear(*[v if i == position else bc.Tensor(a) for i, a in enumerate(args)])

    def theirs(v: torch.Tensor) -> torch.Tensor:
        return TF.linear(*[v if i == position else torch.from_numpy(a)
                           for i, a in enumerate(args)])

    for other in all_jacobians(ours, theirs, args[position]):
        np.testing.assert_allclose(explicit, other, rtol=1e-6, atol=1e-8)
    if n is None and wrt == "input":
        np.testing.assert_array_equal(explicit, w)  # one sample: the Jacobian is W itself


def test_softmax_cross_entropy_jacobian() -> None:
    rng = np.random.default_rng(6)
    logits, target = rng.standard_normal((3, 4)), np.array([0, 3, 1])
    explicit = ops.SoftmaxCrossEntropy.jacobian(logits, target)
    assert explicit.shape == (1, logits.size)
    for other in all_jacobians(lambda t: F.cross_entropy(t, target),
                               lambda t: TF.cross_entropy(t, torch.from_numpy(target)), logits):
        np.testing.assert_allclose(explicit, other, rtol=1e-6, atol=1e-8)


def test_linear_jacobian_rejects_unknown_wrt() -> None:
    with pytest.raises(ValueError, match="wrt"):
        ops.Linear.jacobian(np.ones(2), np.ones((2, 2)), wrt="x")


# ---------------------------------------------------------------- float32 stays float32
def _f32(rng: np.random.Generator, shape, positive: bool = False) -> np.ndarray:
    x = away_from_zero(rng, shape)
    return (np.abs(x) if positive else x).astype(np.float32)


FLOAT32_CASES: dict[str, Callable[[np.random.Generator], tuple[Callable, list]]] = {
    "add": lambda r: (lambda a, b: a + b, [_f32(r, (3, 4)), _f32(r, (4,))]),
    "sub-scalar": lambda r: (lambda a: 1 - a - 2.5, [_f32(r, (3,))]),
    "mul": lambda r: (lambda a, b: a * b * 3.0, [_f32(r, (3, 1)), _f32(r, (4,))]),
    "div": lambda r: (lambda a, b: 2 / a / b, [_f32(r, (3,)), _f32(r, (3,))]),
    "matmul": lambda r: (lambda a, b: a @ b, [_f32(r, (2, 3)), _f32(r, (3, 4))]),
    "pow": lambda r: (lambda a: a**1.5, [_f32(r, (3,), positive=True)]),
    "neg": lambda r: (lambda a: -a, [_f32(r, (3,))]),
    "exp": lambda r: (lambda a: a.exp(), [_f32(r, (3,))]),
    "log": lambda r: (lambda a: a.log(), [_f32(r, (3,), positive=True)]),
    "sum": lambda r: (lambda a: a.sum(axis=1), [_f32(r, (2, 3))]),
    "mean": lambda r: (lambda a: a.mean(axis=0, keepdims=True), [_f32(r, (2, 3))]),
    "amax": lambda r: (lambda a: a.amax(axis=1), [_f32(r, (2, 3))]),
    "amin": lambda r: (lambda a: a.amin(dim=0), [_f32(r, (2, 3))]),
    "max-dim": lambda r: (lambda a: a.max(dim=1).values, [_f32(r, (2, 3))]),
    "max-all": lambda r: (lambda a: a.max(), [_f32(r, (2, 3))]),
    "reshape": lambda r: (lambda a: a.reshape(3, 2), [_f32(r, (2, 3))]),
    "transpose": lambda r: (lambda a: a.T, [_f32(r, (2, 3))]),
    "abs": lambda r: (abs, [_f32(r, (3,))]),
    "sqrt": lambda r: (lambda a: a.sqrt(), [_f32(r, (3,), positive=True)]),
    "clamp": lambda r: (lambda a: a.clamp(min=-0.5, max=1.0), [_f32(r, (4,))]),
    "clone": lambda r: (lambda a: a.clone(), [_f32(r, (3,))]),
    "gather": lambda r: (lambda a: a.gather(1, np.array([[0, 0], [2, 1]])), [_f32(r, (2, 3))]),
    "stack": lambda r: (lambda a, b: bc.stack([a, b], 1), [_f32(r, (3,)), _f32(r, (3,))]),
    "cat": lambda r: (lambda a, b: bc.cat([a, b]), [_f32(r, (2, 3)), _f32(r, (1, 3))]),
    "index": lambda r: (lambda a: a[np.array([0, 1, 1]), np.array([2, 0, 0])],
                        [_f32(r, (2, 3))]),
    "relu": lambda r: (F.relu, [_f32(r, (3,))]),
    "sigmoid": lambda r: (F.sigmoid, [_f32(r, (3,))]),
    "tanh": lambda r: (F.tanh, [_f32(r, (3,))]),
    "softmax": lambda r: (F.softmax, [_f32(r, (2, 3))]),
    "log_softmax": lambda r: (F.log_softmax, [_f32(r, (2, 3))]),
    "cross_entropy": lambda r: (lambda a: F.cross_entropy(a, np.array([0, 2])),
                                [_f32(r, (2, 3))]),
    "mse_loss": lambda r: (F.mse_loss, [_f32(r, (2, 3)), _f32(r, (2, 3))]),
    "dropout": lambda r: (lambda a: F.dropout(a, 0.5), [_f32(r, (4, 5))]),
    "linear": lambda r: (F.linear, [_f32(r, (2, 3)), _f32(r, (4, 3)), _f32(r, (4,))]),
}


@pytest.mark.parametrize("name", list(FLOAT32_CASES))
def test_float32_stays_float32(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Forward output and every gradient the engine passes on (to non-leaves as well
    as leaves, before any cast) are float32."""
    engine = bc.backward
    seen: list[np.dtype] = []
    to_node, to_leaf = engine.accumulate, engine.accumulate_leaf
    monkeypatch.setattr(engine, "accumulate",
                        lambda grads, key, g: (seen.append(g.dtype), to_node(grads, key, g)))
    monkeypatch.setattr(engine, "accumulate_leaf",
                        lambda t, g: (seen.append(g.dtype), to_leaf(t, g)))
    rng = np.random.default_rng(7)
    fn, arrays = FLOAT32_CASES[name](rng)
    inputs = [bc.tensor(a, requires_grad=True) for a in arrays]
    out = fn(*inputs)
    assert out.dtype == np.float32, f"forward gave {out.dtype}"
    out.backward(rng.standard_normal(out.shape).astype(np.float32))
    assert len(seen) >= len(inputs)
    assert all(d == np.float32 for d in seen), seen
    assert all(t.grad.dtype == np.float32 for t in inputs)
