"""``Tensor``: a numpy array that remembers how it was computed, and the backward pass.

A Tensor made by you is a *leaf* (``grad_fn is None``). A Tensor made by an operation on
Tensors that require gradients gets a ``grad_fn``: the backward node of that operation,
which points at the operation's inputs. Those nodes form the computational graph.
``loss.backward()`` runs the backward pass of :mod:`backprop_course.backward` from this
tensor's node back to the leaves; leaves keep their gradients in ``.grad``.

A torch user's habits work with torch's meaning: ``float(t)``, ``abs(t)``, ``t > 0`` (a
bool tensor), ``t.sum(dim=1, keepdim=True)`` (numpy's ``axis``/``keepdims`` too),
``t.max(dim=1)`` (values, indices), ``t.transpose(0, 1)``, ``np.asarray(t)``,
``p -= lr * p.grad`` under ``no_grad``, ``bc.zeros(2, 3)``... Where we differ on purpose
(no GPU, no ``create_graph``), the error says what to write instead.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, NamedTuple

import numpy as np

_grad_enabled = True

Dims = int | tuple[int, ...] | list[int] | None
NO_GPU = ("backprop_course runs on the CPU only (numpy arrays): there is no {!r} device. "
          "Drop .cuda() / .to(device); on the CPU the same code runs unchanged.")


def is_grad_enabled() -> bool:
    """Whether operations currently record the graph."""
    return _grad_enabled


@contextlib.contextmanager
def no_grad() -> Iterator[None]:
    """Context manager (or decorator, ``@bc.no_grad()``) in which operations do not record
    the graph (like ``torch.no_grad``)."""
    global _grad_enabled
    previous, _grad_enabled = _grad_enabled, False
    try:
        yield
    finally:
        _grad_enabled = previous


class ValuesIndices(NamedTuple):
    """What ``t.max(dim)`` and ``t.min(dim)`` return, as torch: ``values, indices = ...``."""

    values: Tensor
    indices: Tensor


class _Size(int):
    """``t.size``: numpy's ``a.size`` (the number of elements) that can also be called as
    torch's ``t.size()`` (the shape) or ``t.size(dim)`` (one dimension)."""

    def __new__(cls, shape: tuple[int, ...]) -> _Size:
        size = super().__new__(cls, int(np.prod(shape, dtype=np.int64)))
        size.shape = shape
        return size

    def __call__(self, dim: int | None = None) -> tuple[int, ...] | int:
        return self.shape if dim is None else self.shape[dim]


class Tensor:
    """An n-dimensional array with an optional gradient.

    Parameters
    ----------
    data : array_like
        The values. Python floats become float64; numpy arrays keep their dtype.
    requires_grad : bool
        Whether ``backward`` should compute a gradient for this tensor.
    dtype : numpy dtype, optional
        Cast the data to this dtype.

    Attributes
    ----------
    data : np.ndarray
        The values, shape ``self.shape``. Assigning a Tensor stores its array, so the
        micrograd habit ``p.data += -lr * p.grad`` works.
    grad : Tensor or None
        For a leaf, the gradient accumulated by ``backward`` (same shape as ``data``).
    grad_fn : Context or None
        The backward node of the operation that made this tensor; None for a leaf.
    """

    __array_priority__ = 1000  # make ``ndarray * Tensor`` call Tensor.__rmul__
    __hash__ = object.__hash__  # ``==`` gives a tensor; tensors hash by identity, as torch's

    def __init__(self, data: Any, requires_grad: bool = False, dtype: Any = None) -> None:
        self.data = np.asarray(_data(data), dtype=dtype)
        self.grad: Tensor | None = None
        self.grad_fn = None
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_()

    @property
    def data(self) -> np.ndarray:
        return self._array

    @data.setter
    def data(self, value: Any) -> None:
        self._array = np.asarray(_data(value))

    # ------------------------------------------------------------------ basics
    @property
    def is_leaf(self) -> bool:
        """True for tensors made by the user rather than by an operation."""
        return self.grad_fn is None

    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> _Size:
        """The number of elements (numpy); ``size()`` the shape, ``size(d)`` one dim (torch)."""
        return _Size(self.data.shape)

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def device(self) -> str:
        """Always ``"cpu"``: the values are numpy arrays."""
        return "cpu"

    def dim(self) -> int:
        """The number of dimensions (torch's name for ``ndim``)."""
        return self.data.ndim

    def numel(self) -> int:
        """The number of elements."""
        return self.data.size

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return len(self.data)

    def __iter__(self) -> Iterator[Tensor]:
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(len(self)))

    def item(self) -> Any:
        """The value of a one-element tensor as a Python number."""
        if self.data.size != 1:
            raise RuntimeError(
                f"a Tensor with {self.data.size} elements cannot be converted to Scalar")
        return self.data.item()

    def tolist(self) -> Any:
        """The values as (nested) Python lists of numbers."""
        return self.data.tolist()

    def numpy(self) -> np.ndarray:
        """The values as a numpy array (shares memory, like ``torch.Tensor.numpy``)."""
        if self.requires_grad:
            raise RuntimeError(
                "Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() "
                "instead."
            )
        return self.data

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        """``np.asarray(t)``: the values (not for a tensor that requires grad, as torch)."""
        return np.array(self.numpy(), dtype=dtype, copy=copy)

    def _one_element(self) -> Any:
        if self.data.size != 1:
            raise ValueError("only one element tensors can be converted to Python scalars")
        return self.data.item()

    def __float__(self) -> float:
        return float(self._one_element())

    def __int__(self) -> int:
        return int(self._one_element())

    def __bool__(self) -> bool:
        if self.data.size != 1:
            how_many = "no values" if self.data.size == 0 else "more than one value"
            raise RuntimeError(f"Boolean value of Tensor with {how_many} is ambiguous")
        return bool(self.data.item())

    def __index__(self) -> int:
        if self.data.size != 1 or not np.issubdtype(self.dtype, np.integer):
            raise TypeError("only integer tensors of a single element can be converted to "
                            "an index")
        return int(self.data.item())

    def __format__(self, spec: str) -> str:
        """``f"{loss:.4f}"`` formats a 0-d tensor's number, as torch."""
        return format(self.item(), spec) if self.ndim == 0 else super().__format__(spec)

    def detach(self) -> Tensor:
        """A new leaf sharing this tensor's data, cut from the graph."""
        return Tensor(self.data)

    def clone(self) -> Tensor:
        """A copy of the data that stays in the graph (gradients flow through it)."""
        return ops.Clone.apply(self)

    def retain_grad(self) -> None:
        """Keep ``.grad`` for this non-leaf tensor during ``backward`` (like torch)."""
        if self.grad_fn is not None:
            self.grad_fn._retained = self

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        """Start (or stop) recording operations on this leaf; returns the tensor."""
        if requires_grad and not np.issubdtype(self.dtype, np.floating):
            raise TypeError(
                f"only floating point tensors can require gradients, got {self.dtype}")
        if not self.is_leaf and not requires_grad:
            raise RuntimeError("you can only change requires_grad flags of leaf variables; "
                               "x.detach() is a new leaf without the graph")
        self.requires_grad = requires_grad
        return self

    def __repr__(self) -> str:
        body = np.array2string(self.data, precision=4, separator=", ", prefix="tensor(")
        extra = ""
        if self.grad_fn is not None:
            extra = f", grad_fn={self.grad_fn!r}"
        elif self.requires_grad:
            extra = ", requires_grad=True"
        if self.data.dtype not in (np.float64, np.int64, np.bool_):
            extra = f", dtype={self.data.dtype}" + extra
        return f"tensor({body}{extra})"

    # ----------------------------------------------------------- dtype and device
    def to(self, *args: Any, dtype: Any = None, device: Any = None) -> Tensor:
        """``t.to(np.float32)``, ``t.to("cpu")``, ``t.to(other)`` (other's dtype), as torch.
        A cast stays in the graph; ``"cpu"`` is the only device."""
        dtype = _to_dtype(args, dtype, device)
        if dtype is None or dtype == self.dtype:
            return self
        source = self if np.issubdtype(dtype, np.floating) else self.detach()
        return ops.Cast.apply(source, dtype)

    def double(self) -> Tensor:
        return self.to(np.float64)

    def float(self) -> Tensor:
        return self.to(np.float32)

    def long(self) -> Tensor:
        return self.to(np.int64)

    def cpu(self) -> Tensor:
        return self

    def cuda(self, *args: Any, **kwargs: Any) -> Tensor:
        raise RuntimeError(NO_GPU.format("cuda"))

    # ---------------------------------------------------------------- backward
    def backward(self, gradient: Any = None, retain_graph: bool = False,
                 create_graph: bool = False) -> None:
        """Compute the gradient of this tensor with respect to every leaf it depends on.

        Parameters
        ----------
        gradient : array_like, optional
            dL/d(self), same shape as ``self``. May be omitted only for a one-element
            tensor, where it is 1.
        retain_graph : bool
            Keep the saved values so that ``backward`` can run through the graph again.
        create_graph : bool
            Not supported (gradients of gradients): raises.
        """
        if create_graph:
            raise NotImplementedError(
                "backward(create_graph=True) is not supported: this engine's backward "
                "passes compute numpy arrays and record no graph, so there are no "
                "gradients of gradients. Call backward() without it; for a second "
                "derivative use torch, or bc.gradcheck.numerical_gradient of your gradient."
            )
        if not self.requires_grad:
            raise RuntimeError(
                "element 0 of tensors does not require grad and does not have a grad_fn: "
                "nothing to differentiate"
            )
        if gradient is None:
            if self.data.size != 1:
                raise RuntimeError(
                    f"grad can be implicitly created only for scalar outputs; this tensor "
                    f"has shape {self.shape}. Pass gradient= (dL/d tensor, same shape)."
                )
            grad = np.ones_like(self.data)
        else:
            grad = np.asarray(_data(gradient), dtype=self.data.dtype)
            if grad.shape != self.shape:
                raise RuntimeError(
                    f"gradient has shape {grad.shape} but the tensor has shape {self.shape}"
                )
        # the loop lives in its own module: the sandbox of the engine exercise, where
        # students write this loop themselves, has the tensors without it
        from .backward import accumulate_leaf, run_backward

        if self.grad_fn is None:
            accumulate_leaf(self, grad)
            return
        run_backward(self.grad_fn, grad, retain_graph)

    # --------------------------------------------------------------- operators
    def __add__(self, other: Any) -> Tensor:
        return ops.Add.apply(self, _wrap(other, self))

    def __radd__(self, other: Any) -> Tensor:
        return ops.Add.apply(_wrap(other, self), self)

    def __sub__(self, other: Any) -> Tensor:
        return ops.Sub.apply(self, _wrap(other, self))

    def __rsub__(self, other: Any) -> Tensor:
        return ops.Sub.apply(_wrap(other, self), self)

    def __mul__(self, other: Any) -> Tensor:
        return ops.Mul.apply(self, _wrap(other, self))

    def __rmul__(self, other: Any) -> Tensor:
        return ops.Mul.apply(_wrap(other, self), self)

    def __truediv__(self, other: Any) -> Tensor:
        return ops.Div.apply(self, _wrap(other, self))

    def __rtruediv__(self, other: Any) -> Tensor:
        return ops.Div.apply(_wrap(other, self), self)

    def __matmul__(self, other: Any) -> Tensor:
        return ops.MatMul.apply(self, _wrap(other, self))

    def __rmatmul__(self, other: Any) -> Tensor:
        return ops.MatMul.apply(_wrap(other, self), self)

    def __pow__(self, exponent: float) -> Tensor:
        if isinstance(exponent, Tensor):
            raise TypeError("only constant exponents are supported: x ** 2.0, not x ** tensor")
        return ops.Pow.apply(self, exponent)

    def __neg__(self) -> Tensor:
        return ops.Neg.apply(self)

    def __abs__(self) -> Tensor:
        return ops.Abs.apply(self)

    def __getitem__(self, index: Any) -> Tensor:
        return ops.Index.apply(self, _index(index))

    # comparisons give bool tensors, through which no gradient flows
    def _compare(self, op: np.ufunc, other: Any) -> Tensor:
        if other is None:  # ``t == None`` is False, as in torch
            return NotImplemented
        return Tensor(op(self.data, _data(other)))

    def __eq__(self, other: Any) -> Tensor:
        return self._compare(np.equal, other)

    def __ne__(self, other: Any) -> Tensor:
        return self._compare(np.not_equal, other)

    def __gt__(self, other: Any) -> Tensor:
        return self._compare(np.greater, other)

    def __lt__(self, other: Any) -> Tensor:
        return self._compare(np.less, other)

    def __ge__(self, other: Any) -> Tensor:
        return self._compare(np.greater_equal, other)

    def __le__(self, other: Any) -> Tensor:
        return self._compare(np.less_equal, other)

    def __and__(self, other: Any) -> Tensor:  # masks: (x > 0) & (x < 1)
        return self._compare(np.bitwise_and, other)

    def __or__(self, other: Any) -> Tensor:
        return self._compare(np.bitwise_or, other)

    __rand__, __ror__ = __and__, __or__

    def __invert__(self) -> Tensor:
        return Tensor(np.invert(self.data))

    # -------------------------------------------------------------- in place
    # On tensors that record no graph, or under ``no_grad`` (how an optimizer updates its
    # parameters), the values change in place. Where the graph is involved, ``y += x``
    # makes the new tensor ``y + x`` (the graph stays right; another name for the old y
    # keeps the old values). A leaf that requires grad is changed under no_grad only.
    def _in_graph(self, other: Any) -> bool:
        """Whether ``self += other`` belongs in the graph, as a new tensor."""
        leaf_with_grad = self.is_leaf and self.requires_grad  # raises in _check_inplace
        in_graph = self.requires_grad or (isinstance(other, Tensor) and other.requires_grad)
        return is_grad_enabled() and in_graph and not leaf_with_grad

    def _check_inplace(self, other: Any = None) -> None:
        other_in_graph = isinstance(other, Tensor) and other.requires_grad
        if (self.requires_grad or other_in_graph) and is_grad_enabled():
            raise RuntimeError(
                "a leaf Variable that requires grad is being used in an in-place operation: "
                "update it inside `with bc.no_grad():` (as optimizers do)"
                if self.is_leaf and self.requires_grad else
                "in-place methods on tensors of the graph are not supported: write "
                "y = y + x (or y += x) instead"
            )

    def _inplace(self, ufunc: np.ufunc, other: Any) -> Tensor:
        self._check_inplace(other)
        ufunc(self.data, _data(other), out=self.data)
        return self

    def __iadd__(self, other: Any) -> Tensor:
        return self + other if self._in_graph(other) else self._inplace(np.add, other)

    def __isub__(self, other: Any) -> Tensor:
        return self - other if self._in_graph(other) else self._inplace(np.subtract, other)

    def __imul__(self, other: Any) -> Tensor:
        return self * other if self._in_graph(other) else self._inplace(np.multiply, other)

    def __itruediv__(self, other: Any) -> Tensor:
        return self / other if self._in_graph(other) else self._inplace(np.true_divide, other)

    def add_(self, other: Any, *, alpha: float = 1) -> Tensor:
        """``self += alpha * other``, in place."""
        return self._inplace(np.add, other if alpha == 1 else other * alpha)

    def sub_(self, other: Any, *, alpha: float = 1) -> Tensor:
        """``self -= alpha * other``, in place."""
        return self._inplace(np.subtract, other if alpha == 1 else other * alpha)

    def mul_(self, other: Any) -> Tensor:
        return self._inplace(np.multiply, other)

    def fill_(self, value: float) -> Tensor:
        self._check_inplace()
        self.data[...] = value
        return self

    def zero_(self) -> Tensor:
        """Set every element to 0, in place (``p.grad.zero_()``)."""
        return self.fill_(0)

    def __setitem__(self, index: Any, value: Any) -> None:
        self._check_inplace(value)
        self.data[_index(index)] = _data(value)

    # ------------------------------------------------------ elementwise methods
    def exp(self) -> Tensor:
        return ops.Exp.apply(self)

    def log(self) -> Tensor:
        return ops.Log.apply(self)

    def sqrt(self) -> Tensor:
        return ops.Sqrt.apply(self)

    def abs(self) -> Tensor:
        return ops.Abs.apply(self)

    def neg(self) -> Tensor:
        return ops.Neg.apply(self)

    def pow(self, exponent: float) -> Tensor:
        return self**exponent

    def relu(self) -> Tensor:
        return ops.ReLU.apply(self)

    def sigmoid(self) -> Tensor:
        return ops.Sigmoid.apply(self)

    def tanh(self) -> Tensor:
        return ops.Tanh.apply(self)

    def clamp(self, min: float | None = None, max: float | None = None) -> Tensor:  # noqa: A002
        """Limit the values to [min, max] (either bound may be None), as ``torch.clamp``."""
        if min is None and max is None:
            raise RuntimeError("clamp: at least one of 'min' or 'max' must not be None")
        return ops.Clamp.apply(self, min, max)

    clip = clamp

    def softmax(self, dim: int = -1, *, axis: int | None = None) -> Tensor:
        return ops.Softmax.apply(self, dim if axis is None else axis)

    def log_softmax(self, dim: int = -1, *, axis: int | None = None) -> Tensor:
        return ops.LogSoftmax.apply(self, dim if axis is None else axis)

    # --------------------------------------------------------------- reductions
    # torch's dim/keepdim and numpy's axis/keepdims are both accepted
    def sum(self, dim: Dims = None, keepdim: bool = False, *, axis: Dims = None,
            keepdims: bool = False) -> Tensor:
        return ops.Sum.apply(self, _dims(dim, axis), keepdim or keepdims)

    def mean(self, dim: Dims = None, keepdim: bool = False, *, axis: Dims = None,
             keepdims: bool = False) -> Tensor:
        return ops.Mean.apply(self, _dims(dim, axis), keepdim or keepdims)

    def amax(self, dim: Dims = None, keepdim: bool = False, *, axis: Dims = None,
             keepdims: bool = False) -> Tensor:
        """The largest values over ``dim`` (all dims if None); ties share the gradient."""
        return ops.Max.apply(self, _dims(dim, axis), keepdim or keepdims)

    def amin(self, dim: Dims = None, keepdim: bool = False, *, axis: Dims = None,
             keepdims: bool = False) -> Tensor:
        """The smallest values over ``dim`` (all dims if None); ties share the gradient."""
        return ops.Min.apply(self, _dims(dim, axis), keepdim or keepdims)

    def max(self, dim: int | None = None, keepdim: bool = False, *, axis: int | None = None,
            keepdims: bool = False) -> Tensor | ValuesIndices:
        """Without ``dim``, the largest element (a 0-d tensor). With ``dim``, as torch, the
        named tuple ``(values, indices)`` of the largest element along ``dim``."""
        return self._extreme(ops.Max, self.argmax, _dims(dim, axis), keepdim or keepdims)

    def min(self, dim: int | None = None, keepdim: bool = False, *, axis: int | None = None,
            keepdims: bool = False) -> Tensor | ValuesIndices:
        """Without ``dim``, the smallest element; with ``dim``, ``(values, indices)``."""
        return self._extreme(ops.Min, self.argmin, _dims(dim, axis), keepdim or keepdims)

    def _extreme(self, whole: type, arg: Any, dim: Dims, keepdim: bool
                 ) -> Tensor | ValuesIndices:
        if dim is None:
            return whole.apply(self, None, keepdim)
        if isinstance(dim, tuple):
            raise TypeError(f"{whole.__name__.lower()}(dim) takes one dim and returns "
                            f"(values, indices), as in torch; over several dims write "
                            f"a{whole.__name__.lower()}(dim={dim})")
        indices = arg(dim, keepdim=True)
        values = self.gather(dim, indices)
        if not keepdim:
            values, indices = values.squeeze(dim), indices.squeeze(dim)
        return ValuesIndices(values, indices)

    def argmax(self, dim: int | None = None, keepdim: bool = False, *,
               axis: int | None = None, keepdims: bool = False) -> Tensor:
        """Index of the largest element along ``dim`` (of the flattened tensor if None)."""
        return Tensor(np.argmax(self.data, _dims(dim, axis), keepdims=keepdim or keepdims)
                      .astype(np.int64))

    def argmin(self, dim: int | None = None, keepdim: bool = False, *,
               axis: int | None = None, keepdims: bool = False) -> Tensor:
        """Index of the smallest element along ``dim`` (of the flattened tensor if None)."""
        return Tensor(np.argmin(self.data, _dims(dim, axis), keepdims=keepdim or keepdims)
                      .astype(np.int64))

    def all(self, dim: Dims = None, keepdim: bool = False, *, axis: Dims = None,
            keepdims: bool = False) -> Tensor:
        return Tensor(np.all(self.data, _dims(dim, axis), keepdims=keepdim or keepdims))

    def any(self, dim: Dims = None, keepdim: bool = False, *, axis: Dims = None,
            keepdims: bool = False) -> Tensor:
        return Tensor(np.any(self.data, _dims(dim, axis), keepdims=keepdim or keepdims))

    # ------------------------------------------------------------------ shaping
    def reshape(self, *shape: int) -> Tensor:
        """``reshape(2, 3)`` or ``reshape((2, 3))``; one size may be -1."""
        return ops.Reshape.apply(self, _shape(shape))

    view = reshape

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> Tensor:
        """Merge dims ``start_dim`` to ``end_dim`` into one."""
        if self.ndim == 0:
            return self.reshape(1)
        start, end = start_dim % self.ndim, end_dim % self.ndim
        merged = int(np.prod(self.shape[start:end + 1]))
        return self.reshape(*self.shape[:start], merged, *self.shape[end + 1:])

    def squeeze(self, dim: Dims = None) -> Tensor:
        """Drop dims of size 1: all of them, or those of ``dim`` (a dim whose size is not 1
        stays, as in torch)."""
        dims = range(self.ndim) if dim is None else np.atleast_1d(dim) % max(self.ndim, 1)
        return self.reshape([n for d, n in enumerate(self.shape) if n != 1 or d not in dims])

    def unsqueeze(self, dim: int) -> Tensor:
        """Insert a dim of size 1 at ``dim``."""
        return self.reshape(np.expand_dims(self.data, dim).shape)

    def permute(self, *dims: int) -> Tensor:
        """Reorder the dims: ``permute(2, 0, 1)`` (numpy's ``transpose(axes)``)."""
        return ops.Transpose.apply(self, _shape(dims))

    def transpose(self, dim0: int, dim1: int) -> Tensor:
        """Swap two dims, as torch (numpy's ``transpose(axes)`` is :meth:`permute`)."""
        dims = list(range(self.ndim))
        dims[dim0], dims[dim1] = dims[dim1], dims[dim0]
        return ops.Transpose.apply(self, tuple(dims))

    def t(self) -> Tensor:
        """The transpose of a matrix (a vector or number is returned as it is)."""
        if self.ndim > 2:
            raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is "
                               f"{self.ndim}D; use transpose(dim0, dim1) or permute")
        return self.T

    @property
    def T(self) -> Tensor:  # noqa: N802 (PyTorch's name)
        """The dims in reverse order."""
        return ops.Transpose.apply(self, None)

    def gather(self, dim: int, index: Any) -> Tensor:
        """Pick along ``dim``: for dim 1, ``out[i, j] = self[i, index[i, j]]`` (torch's)."""
        return ops.Gather.apply(self, dim, np.asarray(_data(index)))


# ------------------------------------------------------------------- factories
def tensor(data: Any, *, dtype: Any = None, device: Any = None,
           requires_grad: bool = False) -> Tensor:
    """Make a leaf Tensor from a copy of ``data`` (like ``torch.tensor``); see :class:`Tensor`.
    Python floats give float64 (torch: float32), integers int64."""
    _to_dtype((), None, device)
    return Tensor(np.array(_data(data), dtype=dtype), requires_grad=requires_grad)


def from_numpy(array: np.ndarray) -> Tensor:
    """A leaf Tensor sharing the memory of ``array`` (like ``torch.from_numpy``)."""
    return Tensor(array)


def _new(array: np.ndarray, requires_grad: bool, device: Any) -> Tensor:
    _to_dtype((), None, device)
    return Tensor(array, requires_grad=requires_grad)


def zeros(*size: int, dtype: Any = None, device: Any = None,
          requires_grad: bool = False) -> Tensor:
    """Zeros of shape ``size`` (``zeros(2, 3)`` or ``zeros((2, 3))``), float64 by default."""
    return _new(np.zeros(_shape(size), dtype), requires_grad, device)


def ones(*size: int, dtype: Any = None, device: Any = None,
         requires_grad: bool = False) -> Tensor:
    """Ones of shape ``size``, float64 by default."""
    return _new(np.ones(_shape(size), dtype), requires_grad, device)


def empty(*size: int, dtype: Any = None, device: Any = None,
          requires_grad: bool = False) -> Tensor:
    """An uninitialised tensor of shape ``size`` (fill it before use)."""
    return _new(np.empty(_shape(size), dtype), requires_grad, device)


def full(size: Any, fill_value: Any, *, dtype: Any = None, device: Any = None,
         requires_grad: bool = False) -> Tensor:
    """``fill_value`` everywhere; the dtype follows it (int64 for an int) unless given."""
    return _new(np.full(_shape((size,)), fill_value, dtype), requires_grad, device)


def zeros_like(t: Any, *, dtype: Any = None, device: Any = None,
               requires_grad: bool = False) -> Tensor:
    """Zeros with the shape (and dtype, unless given) of ``t``."""
    return _new(np.zeros_like(_data(t), dtype), requires_grad, device)


def ones_like(t: Any, *, dtype: Any = None, device: Any = None,
              requires_grad: bool = False) -> Tensor:
    """Ones with the shape (and dtype, unless given) of ``t``."""
    return _new(np.ones_like(_data(t), dtype), requires_grad, device)


def eye(n: int, m: int | None = None, *, dtype: Any = None, device: Any = None,
        requires_grad: bool = False) -> Tensor:
    """The (n, m) identity matrix (m = n by default)."""
    return _new(np.eye(n, m, dtype=dtype), requires_grad, device)


def arange(start: float, end: float | None = None, step: float = 1, *, dtype: Any = None,
           device: Any = None, requires_grad: bool = False) -> Tensor:
    """``arange(5)`` = 0..4, ``arange(0, 1, 0.25)``: int64 for integer arguments, else float64."""
    return _new(np.arange(start, end, step, dtype=dtype), requires_grad, device)


def linspace(start: float, end: float, steps: int, *, dtype: Any = None, device: Any = None,
             requires_grad: bool = False) -> Tensor:
    """``steps`` evenly spaced values from ``start`` to ``end``, both included."""
    return _new(np.linspace(start, end, steps, dtype=dtype), requires_grad, device)


def stack(tensors: Any, dim: int = 0) -> Tensor:
    """Join tensors of one shape along a new dim ``dim`` (differentiable)."""
    return ops.Stack.apply(dim, *tensors)


def cat(tensors: Any, dim: int = 0) -> Tensor:
    """Join tensors along the existing dim ``dim`` (differentiable)."""
    return ops.Cat.apply(dim, *tensors)


# --------------------------------------------------------------------- helpers
def _wrap(value: Any, like: Tensor | None = None) -> Tensor:
    """``value`` as a Tensor; a Python number takes the dtype of the floating Tensor
    ``like`` (as in torch: ``float32_tensor * 2.0`` stays float32)."""
    if isinstance(value, Tensor):
        return value
    if (like is not None and isinstance(value, (int, float)) and not isinstance(value, bool)
            and np.issubdtype(like.dtype, np.floating)):
        return Tensor(np.asarray(value, dtype=like.dtype))
    return Tensor(value)


def _data(value: Any) -> Any:
    return value.data if isinstance(value, Tensor) else value


def _index(index: Any) -> Any:
    """An index for numpy: Tensors inside it become their arrays."""
    if isinstance(index, tuple):
        return tuple(_data(i) for i in index)
    return _data(index)


def _dims(dim: Dims, axis: Dims) -> int | tuple[int, ...] | None:
    """torch's ``dim`` or numpy's ``axis``, whichever was given; a list becomes a tuple."""
    dims = dim if axis is None else axis
    return tuple(dims) if isinstance(dims, list) else dims


def _shape(size: tuple) -> tuple[int, ...]:
    """``f(2, 3)`` and ``f((2, 3))`` (or a list) both mean the shape (2, 3)."""
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = size[0]
    return tuple(int(n) for n in size)


def _to_dtype(args: tuple, dtype: Any, device: Any) -> np.dtype | None:
    """The dtype that ``to``'s arguments (a dtype, a device, a tensor, in any order) ask
    for; any device but the CPU raises."""
    for arg in args:
        if isinstance(arg, Tensor):
            dtype = arg.dtype
        elif isinstance(arg, str) or type(arg).__name__ == "device":
            device = arg
        else:
            dtype = arg
    if device is not None and str(device).split(":")[0] != "cpu":
        raise RuntimeError(NO_GPU.format(str(device)))
    return None if dtype is None else np.dtype(dtype)


from . import ops  # noqa: E402  (the operators above dispatch to the ops' Functions)
