"""The differentiable operations: each one a :class:`~backprop_course.function.Function`
with its forward and backward side by side (``torch.autograd.Function``'s shape). The
course layers (ReLU, Sigmoid, Tanh, Linear, Softmax, SoftmaxCrossEntropy) also carry the
explicit Jacobian that their backward never builds.

Shapes in the docstrings: ``x`` is the input, ``g`` the upstream gradient dL/d(output),
which always has the output's shape; every gradient returned has its input's shape.
``(*)`` means any shape, ``N`` the batch, ``C`` the classes.
Call them through :mod:`backprop_course.functional` (``F.relu(x)``) or the Tensor methods
(``x.relu()``); use the classes themselves for their ``jacobian`` or to see the backward.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .function import Context, Function
from .numerics import log_softmax, stable_sigmoid


def unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum ``grad`` down to ``shape``: undo numpy broadcasting in a backward pass.

    A value that was broadcast was *copied* to many places in the forward pass; the
    copy gate adds the gradients of its copies (summing over the broadcast axes).
    """
    while grad.ndim > len(shape):
        grad = grad.sum(axis=0)
    for axis, size in enumerate(shape):
        if size == 1 and grad.shape[axis] != 1:
            grad = grad.sum(axis=axis, keepdims=True)
    return grad


# ------------------------------------------------------------------ arithmetic
class Add(Function):
    """``a + b`` (broadcasting). The add gate distributes: both get ``g``.

    Shape
    -----
    a, b : broadcastable, e.g. (N, D) and (D,)
    out : the broadcast shape; each gradient is summed back to its input's shape
    """

    @staticmethod
    def forward(ctx: Context, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        ctx.shapes = (np.shape(a), np.shape(b))
        return a + b

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> tuple:
        shape_a, shape_b = ctx.shapes
        return unbroadcast(g, shape_a), unbroadcast(g, shape_b)


class Sub(Function):
    """``a - b`` (broadcasting): dL/da = g, dL/db = -g.

    Shape
    -----
    a, b : broadcastable;  out : the broadcast shape
    """

    @staticmethod
    def forward(ctx: Context, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        ctx.shapes = (np.shape(a), np.shape(b))
        return a - b

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> tuple:
        shape_a, shape_b = ctx.shapes
        return unbroadcast(g, shape_a), unbroadcast(-g, shape_b)


class Mul(Function):
    """``a * b`` (broadcasting). The mul gate swaps: dL/da = g * b, dL/db = g * a.

    Shape
    -----
    a, b : broadcastable;  out : the broadcast shape
    """

    @staticmethod
    def forward(ctx: Context, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> tuple:
        a, b = ctx.saved_tensors
        return unbroadcast(g * b, np.shape(a)), unbroadcast(g * a, np.shape(b))


class Div(Function):
    """``a / b`` (broadcasting): dL/da = g / b, dL/db = -g * a / b**2.

    Shape
    -----
    a, b : broadcastable;  out : the broadcast shape
    """

    @staticmethod
    def forward(ctx: Context, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        ctx.save_for_backward(a, b)
        return a / b

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> tuple:
        a, b = ctx.saved_tensors
        return unbroadcast(g / b, np.shape(a)), unbroadcast(-g * a / (b * b), np.shape(b))


class Neg(Function):
    """``-x``: dL/dx = -g.

    Shape
    -----
    x : (*);  out : (*), same as x
    """

    @staticmethod
    def forward(ctx: Context, x: np.ndarray) -> np.ndarray:
        return -x

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> np.ndarray:
        return -g


class Pow(Function):
    """``x ** p`` for a constant exponent ``p``: dL/dx = g * p * x**(p-1).

    Shape
    -----
    x : (*);  p : a number;  out : (*), same as x
    """

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, p: float) -> np.ndarray:
        ctx.save_for_backward(x)
        ctx.p = p
        return x**p

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> tuple:
        (x,) = ctx.saved_tensors
        return g * ctx.p * x ** (ctx.p - 1), None


class MatMul(Function):
    """``a @ b``. For matrices a (N, D), b (D, M), g (N, M):
    dL/da = g @ b.T (N, D) and dL/db = a.T @ g (D, M): the only way the shapes work.
    1-D operands are treated as a row (a) or column (b) vector; leading axes broadcast.

    Shape
    -----
    a : (*, N, D) or (D,);  b : (*, D, M) or (D,);  out : (*, N, M), the 1-D sides dropped
    """

    @staticmethod
    def forward(ctx: Context, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        ctx.save_for_backward(a, b)
        return a @ b

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> tuple:
        a, b = ctx.saved_tensors
        if a.ndim == 1 and b.ndim == 1:  # dot product: a scalar output
            return g * b, g * a
        a2 = a[None, :] if a.ndim == 1 else a  # (..., N, D)
        b2 = b[:, None] if b.ndim == 1 else b  # (..., D, M)
        g2 = g[..., None, :] if a.ndim == 1 else g
        g2 = g2[..., None] if b.ndim == 1 else g2  # (..., N, M)
        grad_a = g2 @ np.swapaxes(b2, -1, -2)
        grad_b = np.swapaxes(a2, -1, -2) @ g2
        return (unbroadcast(grad_a, a2.shape).reshape(a.shape),
                unbroadcast(grad_b, b2.shape).reshape(b.shape))


class Exp(Function):
    """``exp(x)``: dL/dx = g * exp(x) (reuses the output).

    Shape
    -----
    x : (*);  out : (*), same as x
    """

    @staticmethod
    def forward(ctx: Context, x: np.ndarray) -> np.ndarray:
        out = np.exp(x)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> np.ndarray:
        (out,) = ctx.saved_tensors
        return g * out


class Log(Function):
    """Natural ``log(x)``: dL/dx = g / x.

    Shape
    -----
    x : (*);  out : (*), same as x
    """

    @staticmethod
    def forward(ctx: Context, x: np.ndarray) -> np.ndarray:
        ctx.save_for_backward(x)
        return np.log(x)

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> np.ndarray:
        (x,) = ctx.saved_tensors
        return g / x


class Sqrt(Function):
    """``sqrt(x)``: dL/dx = g / (2 sqrt(x)) (reuses the output; infinite at 0, as in torch).

    Shape
    -----
    x : (*);  out : (*), same as x
    """

    @staticmethod
    def forward(ctx: Context, x: np.ndarray) -> np.ndarray:
        out = np.sqrt(x)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> np.ndarray:
        (out,) = ctx.saved_tensors
        return g / (2 * out)


class Abs(Function):
    """``|x|``: dL/dx = g * sign(x), which is 0 at x = 0 (torch's choice at the kink).

    Shape
    -----
    x : (*);  out : (*), same as x
    """

    @staticmethod
    def forward(ctx: Context, x: np.ndarray) -> np.ndarray:
        ctx.save_for_backward(x)
        return np.abs(x)

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> np.ndarray:
        (x,) = ctx.saved_tensors
        return g * np.sign(x)


class Clamp(Function):
    """``x.clamp(min, max)``: values below ``min`` become ``min``, above ``max`` become
    ``max`` (either may be None). dL/dx = g where min <= x <= max, else 0: like torch, an
    element exactly on a bound still gets its gradient.

    Shape
    -----
    x : (*);  min, max : numbers or None;  out : (*), same as x
    """

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, low: float | None, high: float | None
                ) -> np.ndarray:
        inside = np.ones(x.shape, dtype=bool)
        if low is not None:
            inside &= x >= low
        if high is not None:
            inside &= x <= high
        ctx.save_for_backward(inside)
        return np.clip(x, low, high)

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> tuple:
        (inside,) = ctx.saved_tensors
        return g * inside, None, None


class Clone(Function):
    """``x.clone()``: a copy that stays in the graph; dL/dx = g.

    Shape
    -----
    x : (*);  out : (*), same as x
    """

    @staticmethod
    def forward(ctx: Context, x: np.ndarray) -> np.ndarray:
        return x.copy()

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> np.ndarray:
        return g


class Cast(Function):
    """``x.to(dtype)``, ``x.float()``, ``x.double()`` (torch's ``ToCopyBackward``): the
    gradient is cast back to the input's dtype.

    Shape
    -----
    x : (*);  out : (*), same as x, of the new dtype
    """

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, dtype: np.dtype) -> np.ndarray:
        ctx.dtype = x.dtype
        return x.astype(dtype)

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> tuple:
        return g.astype(ctx.dtype), None


# ------------------------------------------------------------------ reductions
def _keepdims_grad(g: np.ndarray, shape: tuple, axis: Any, keepdims: bool) -> np.ndarray:
    """Reshape the gradient of a reduction so it broadcasts against the input."""
    if axis is None:
        return np.reshape(g, (1,) * len(shape))
    if not keepdims:
        axes = (axis,) if isinstance(axis, int) else axis
        g = np.expand_dims(g, tuple(a % len(shape) for a in axes))
    return g


class Sum(Function):
    """``x.sum(dim, keepdim)``: every summed element gets ``g`` (copy gate reversed).

    Shape
    -----
    x : (*);  out : x's shape without the summed dims (kept as 1 with ``keepdim``);
    no dim: a number, shape ()
    """

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, axis: Any, keepdims: bool) -> np.ndarray:
        ctx.shape, ctx.axis, ctx.keepdims = x.shape, axis, keepdims
        return np.sum(x, axis=axis, keepdims=keepdims)

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> tuple:
        g = _keepdims_grad(g, ctx.shape, ctx.axis, ctx.keepdims)
        return np.broadcast_to(g, ctx.shape).copy(), None, None


class Mean(Function):
    """``x.mean(dim, keepdim)``: every element gets ``g / count``.

    Shape
    -----
    x : (*);  out : x's shape without the averaged dims (kept as 1 with ``keepdim``)
    """

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, axis: Any, keepdims: bool) -> np.ndarray:
        out = np.mean(x, axis=axis, keepdims=keepdims)
        ctx.shape, ctx.axis, ctx.keepdims = x.shape, axis, keepdims
        ctx.count = x.size // max(np.size(out), 1) if x.size else 1
        return out

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> tuple:
        g = _keepdims_grad(g, ctx.shape, ctx.axis, ctx.keepdims) / ctx.count
        return np.broadcast_to(g, ctx.shape).copy(), None, None


class Max(Function):
    """``x.amax(dim, keepdim)`` and ``x.max()``. The max gate routes ``g`` to the largest
    element (split evenly between ties, like torch's ``amax`` and ``max()``).

    Shape
    -----
    x : (*);  out : x's shape without the reduced dims (kept as 1 with ``keepdim``)
    """

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, axis: Any, keepdims: bool) -> np.ndarray:
        out = np.max(x, axis=axis, keepdims=True)
        ctx.save_for_backward(x == out)
        ctx.shape, ctx.axis, ctx.keepdims = x.shape, axis, keepdims
        return out if keepdims else np.max(x, axis=axis)

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> tuple:
        (is_max,) = ctx.saved_tensors
        g = _keepdims_grad(g, ctx.shape, ctx.axis, ctx.keepdims)
        return g * is_max / is_max.sum(axis=ctx.axis, keepdims=True, dtype=g.dtype), None, None


class Min(Function):
    """``x.amin(dim, keepdim)`` and ``x.min()``: ``-amax(-x)``, so the gradient goes to the
    smallest element (split evenly between ties).

    Shape
    -----
    x : (*);  out : x's shape without the reduced dims (kept as 1 with ``keepdim``)
    """

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, axis: Any, keepdims: bool) -> np.ndarray:
        return -Max.forward(ctx, -x, axis, keepdims)

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> tuple:
        return Max.backward(ctx, g)  # the two minus signs of -amax(-x) cancel


# -------------------------------------------------------------------- shaping
class Reshape(Function):
    """``x.reshape(shape)`` (also ``view``, ``flatten``, ``squeeze``, ``unsqueeze``): the
    gradient is reshaped back.

    Shape
    -----
    x : (*);  out : ``shape``, with as many elements as x
    """

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, shape: tuple) -> np.ndarray:
        ctx.shape = x.shape
        return np.reshape(x, shape)

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> tuple:
        return np.reshape(g, ctx.shape), None


class Transpose(Function):
    """``x.permute(dims)``, ``x.transpose(dim0, dim1)``, ``x.T``: reorder the dims
    (reverse them when ``axes`` is None). The gradient is put back in the input's order.

    Shape
    -----
    x : (d_0, ..., d_k);  out : (d_axes[0], ..., d_axes[k])
    """

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, axes: tuple | None) -> np.ndarray:
        ctx.axes = None if axes is None else tuple(a % x.ndim for a in axes)
        return np.transpose(x, ctx.axes)

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> tuple:
        inverse = None if ctx.axes is None else tuple(np.argsort(ctx.axes))
        return np.transpose(g, inverse), None


class Index(Function):
    """``x[index]`` with slices or integer arrays (``logp[np.arange(N), y]``).
    The gradient is scattered back; repeated indices add up.

    Shape
    -----
    x : (*);  out : numpy's indexing result, e.g. (N,) for ``logp[np.arange(N), y]``
    """

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, index: Any) -> np.ndarray:
        ctx.shape, ctx.dtype, ctx.index = x.shape, x.dtype, index
        return x[index]

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> tuple:
        grad = np.zeros(ctx.shape, dtype=np.result_type(ctx.dtype, g.dtype))
        np.add.at(grad, ctx.index, g)
        return grad, None


def _along(index: np.ndarray, dim: int) -> tuple:
    """The numpy index that picks ``index`` along ``dim``: ``out[i, j] = x[i, index[i, j]]``
    for dim 1 (the other dims count through index's own shape)."""
    grids: list[Any] = list(np.indices(index.shape, sparse=True))
    grids[dim] = index
    return tuple(grids)


class Gather(Function):
    """``x.gather(dim, index)`` (torch's): for dim 1, ``out[i, j] = x[i, index[i, j]]``.
    The gradient goes back to the gathered elements; repeated indices add up.
    ``x.max(dim)`` uses it, so its gradient reaches only the returned index (as in torch).

    Shape
    -----
    x : (*);  index : integers, as many dims as x;  out : index's shape
    """

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, dim: int, index: np.ndarray) -> np.ndarray:
        ctx.shape, ctx.index = x.shape, _along(index, dim)
        return x[ctx.index]

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> tuple:
        grad = np.zeros(ctx.shape, dtype=g.dtype)
        np.add.at(grad, ctx.index, g)
        return grad, None, None


class Stack(Function):
    """``stack(tensors, dim)``: join along a new dim; each input gets its slice of ``g``.

    Shape
    -----
    k inputs of one shape S;  out : S with k inserted at ``dim``, e.g. k x (N,) -> (k, N)
    """

    @staticmethod
    def forward(ctx: Context, dim: int, *xs: np.ndarray) -> np.ndarray:
        ctx.dim = dim
        return np.stack(xs, axis=dim)

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> tuple:
        return None, *(np.take(g, i, axis=ctx.dim) for i in range(g.shape[ctx.dim]))


class Cat(Function):
    """``cat(tensors, dim)``: join along an existing dim; each input gets its part of ``g``.

    Shape
    -----
    inputs equal but in ``dim``, e.g. (N1, D) and (N2, D);  out : (N1 + N2, D)
    """

    @staticmethod
    def forward(ctx: Context, dim: int, *xs: np.ndarray) -> np.ndarray:
        ctx.dim, ctx.ends = dim, np.cumsum([np.shape(x)[dim] for x in xs])[:-1]
        return np.concatenate(xs, axis=dim)

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> tuple:
        return None, *np.split(g, ctx.ends, axis=ctx.dim)


# ---------------------------------------------------------------- course layers
def _diagonal(local: np.ndarray) -> np.ndarray:
    """The Jacobian of an elementwise function: its local derivatives on the diagonal."""
    return np.diag(np.ravel(local))


class ReLU(Function):
    """``max(0, x)`` elementwise. dL/dx = g * [x > 0] (the gradient at 0 is 0, as in torch).
    Its Jacobian is diagonal, with 0 for every dead unit.

    Shape
    -----
    x : (*);  out : (*), same as x;  jacobian : (x.size, x.size)
    """

    @staticmethod
    def forward(ctx: Context, x: np.ndarray) -> np.ndarray:
        ctx.save_for_backward(x > 0)
        return np.maximum(x, 0)

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> np.ndarray:
        (positive,) = ctx.saved_tensors
        return g * positive

    @staticmethod
    def jacobian(x: np.ndarray) -> np.ndarray:
        """(x.size, x.size) diagonal matrix of [x > 0]."""
        return _diagonal(np.asarray(x) > 0).astype(np.float64)


class Sigmoid(Function):
    """``1 / (1 + exp(-x))`` elementwise. dL/dx = g * s * (1 - s) with s the output.

    Shape
    -----
    x : (*);  out : (*), same as x;  jacobian : (x.size, x.size)
    """

    @staticmethod
    def forward(ctx: Context, x: np.ndarray) -> np.ndarray:
        s = stable_sigmoid(x)
        ctx.save_for_backward(s)
        return s

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> np.ndarray:
        (s,) = ctx.saved_tensors
        return g * s * (1 - s)

    @staticmethod
    def jacobian(x: np.ndarray) -> np.ndarray:
        """(x.size, x.size) diagonal matrix of s(1 - s)."""
        s = stable_sigmoid(np.asarray(x, dtype=np.float64))
        return _diagonal(s * (1 - s))


class Tanh(Function):
    """``tanh(x)`` elementwise. dL/dx = g * (1 - t**2) with t the output.

    Shape
    -----
    x : (*);  out : (*), same as x;  jacobian : (x.size, x.size)
    """

    @staticmethod
    def forward(ctx: Context, x: np.ndarray) -> np.ndarray:
        t = np.tanh(x)
        ctx.save_for_backward(t)
        return t

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> np.ndarray:
        (t,) = ctx.saved_tensors
        return g * (1 - t * t)

    @staticmethod
    def jacobian(x: np.ndarray) -> np.ndarray:
        """(x.size, x.size) diagonal matrix of 1 - tanh(x)**2."""
        return _diagonal(1 - np.tanh(np.asarray(x, dtype=np.float64)) ** 2)


class Linear(Function):
    """``x @ weight.T + bias`` with x (N, in), weight (out, in), bias (out,), g (N, out):
    dL/dx = g @ weight (N, in); dL/dweight = g.T @ x (out, in); dL/dbias = g.sum(0) (out,),
    the sum over the batch because every row used the same bias.

    Shape
    -----
    x : (*, in);  weight : (out, in);  bias : (out,) or None;  out : (*, out)
    """

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, weight: np.ndarray,
                bias: np.ndarray | None = None) -> np.ndarray:
        ctx.save_for_backward(x, weight)
        out = x @ weight.T
        return out if bias is None else out + bias

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> tuple:
        x, weight = ctx.saved_tensors
        needs_x, needs_weight, needs_bias = ctx.needs_input_grad
        g2 = g.reshape(-1, g.shape[-1])  # leading axes are all batch axes
        grad_weight = g2.T @ x.reshape(-1, x.shape[-1]) if needs_weight else None
        grad_bias = g2.sum(axis=0) if needs_bias else None
        return (g @ weight if needs_x else None), grad_weight, grad_bias

    @staticmethod
    def jacobian(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None,
                 wrt: str = "input") -> np.ndarray:
        """Explicit Jacobian of the flattened output with respect to ``wrt``.

        Parameters
        ----------
        x : (in,) or (N, in)
        weight : (out, in)
        wrt : {"input", "weight", "bias"}

        Returns
        -------
        (N*out, N*in), (N*out, out*in) or (N*out, out): for one sample and
        ``wrt="input"`` this is ``weight`` itself (the decks' W^T for y = x W).
        """
        x2 = np.atleast_2d(np.asarray(x, dtype=np.float64))
        weight = np.asarray(weight, dtype=np.float64)
        n, out = x2.shape[0], weight.shape[0]
        if wrt == "input":
            return np.kron(np.eye(n), weight)
        if wrt == "weight":  # d y[n, i] / d W[k, j] = [i == k] x[n, j]
            return np.vstack([np.kron(np.eye(out), row) for row in x2])
        if wrt == "bias":
            return np.tile(np.eye(out), (n, 1))
        raise ValueError(f"wrt must be 'input', 'weight' or 'bias', not {wrt!r}")


class Softmax(Function):
    """``exp(x) / exp(x).sum(axis)``, computed stably. With p the output:
    dL/dx = p * (g - (g * p).sum(axis)). Its Jacobian diag(p) - p p^T is dense.

    Shape
    -----
    x : (*), normalised along ``axis``;  out : (*), same as x;  jacobian : (x.size, x.size)
    """

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, axis: int = -1) -> np.ndarray:
        p = np.exp(log_softmax(x, axis))
        ctx.save_for_backward(p)
        ctx.axis = axis
        return p

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> tuple:
        (p,) = ctx.saved_tensors
        return p * (g - (g * p).sum(axis=ctx.axis, keepdims=True)), None

    @staticmethod
    def jacobian(x: np.ndarray) -> np.ndarray:
        """(C, C) matrix diag(p) - p p^T for one vector of logits x (C,);
        block diagonal, one block per row, for x (N, C)."""
        x2 = np.atleast_2d(np.asarray(x, dtype=np.float64))
        blocks = [np.diag(p) - np.outer(p, p) for p in np.exp(log_softmax(x2, -1))]
        n, c = x2.shape
        jac = np.zeros((n * c, n * c))
        for i, block in enumerate(blocks):
            jac[i * c:(i + 1) * c, i * c:(i + 1) * c] = block
        return jac


class LogSoftmax(Function):
    """``x - logsumexp(x, axis)``, stable for large logits. dL/dx = g - p * g.sum(axis).

    Shape
    -----
    x : (*), normalised along ``axis``;  out : (*), same as x
    """

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, axis: int = -1) -> np.ndarray:
        out = log_softmax(x, axis)
        ctx.save_for_backward(out)
        ctx.axis = axis
        return out

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> tuple:
        (out,) = ctx.saved_tensors
        return g - np.exp(out) * g.sum(axis=ctx.axis, keepdims=True), None


def _one_hot(target: np.ndarray, classes: int, dtype: Any) -> np.ndarray:
    y = np.zeros((target.size, classes), dtype=dtype)
    y[np.arange(target.size), target.ravel()] = 1
    return y


class SoftmaxCrossEntropy(Function):
    """Softmax followed by the negative log-likelihood of integer targets, fused.

    logits (N, C), target (N,) integers in [0, C). Loss = mean_n -log p[n, target[n]]
    (``reduction="sum"`` adds instead). The fused gradient is the famous
    dL/dlogits = (p - y) / N with y the one-hot targets.

    Shape
    -----
    logits : (N, C) or (C,);  target : (N,) integers;  out : (), a number;
    jacobian : (1, N*C)
    """

    @staticmethod
    def forward(ctx: Context, logits: np.ndarray, target: np.ndarray,
                reduction: str = "mean") -> np.ndarray:
        logits2 = np.atleast_2d(logits)
        target = np.asarray(target).reshape(-1)
        logp = log_softmax(logits2, -1)
        n = logits2.shape[0]
        losses = -logp[np.arange(n), target]
        ctx.save_for_backward(np.exp(logp), target)
        ctx.scale = 1 / n if reduction == "mean" else 1
        ctx.shape = logits.shape
        return losses.mean() if reduction == "mean" else losses.sum()

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> tuple:
        p, target = ctx.saved_tensors
        grad = (p - _one_hot(target, p.shape[1], p.dtype)) * (g * ctx.scale)
        return grad.reshape(ctx.shape).astype(p.dtype, copy=False), None, None

    @staticmethod
    def jacobian(logits: np.ndarray, target: np.ndarray) -> np.ndarray:
        """(1, N*C): the loss is one number, so its Jacobian is one row, (p - y) / N."""
        logits2 = np.atleast_2d(np.asarray(logits, dtype=np.float64))
        p = np.exp(log_softmax(logits2, -1))
        y = _one_hot(np.asarray(target).reshape(-1), p.shape[1], p.dtype)
        return ((p - y) / p.shape[0]).reshape(1, -1)


class MSELoss(Function):
    """Mean (or sum) of squared differences: dL/dinput = 2 (input - target) / count * g.

    Shape
    -----
    input : (*);  target : (*), broadcastable to input;  out : (), a number
    """

    @staticmethod
    def forward(ctx: Context, input: np.ndarray, target: np.ndarray,  # noqa: A002
                reduction: str = "mean") -> np.ndarray:
        diff = input - target
        ctx.save_for_backward(diff)
        ctx.scale = 2 / diff.size if reduction == "mean" else 2
        ctx.shapes = (np.shape(input), np.shape(target))
        return np.mean(diff * diff) if reduction == "mean" else np.sum(diff * diff)

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> tuple:
        (diff,) = ctx.saved_tensors
        grad = diff * (ctx.scale * g)
        shape_in, shape_target = ctx.shapes
        return unbroadcast(grad, shape_in), unbroadcast(-grad, shape_target), None


class Dropout(Function):
    """Multiply by a fixed mask of 0 and 1/(1-p): dL/dx = g * mask.

    Shape
    -----
    x : (*);  mask : (*), same as x;  out : (*), same as x
    """

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, mask: np.ndarray) -> np.ndarray:
        ctx.save_for_backward(mask)
        return x * mask

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> tuple:
        (mask,) = ctx.saved_tensors
        return g * mask, None
