"""``Tensor``: a numpy array that remembers how it was computed, and the backward pass.

A Tensor made by you is a *leaf* (``grad_fn is None``). A Tensor made by an operation on
Tensors that require gradients gets a ``grad_fn``: the backward node of that operation,
which points at the operation's inputs. Those nodes form the computational graph.
``loss.backward()`` runs the backward pass of :mod:`backprop_course.backward` from this
tensor's node back to the leaves; leaves keep their gradients in ``.grad``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np

_grad_enabled = True


def is_grad_enabled() -> bool:
    """Whether operations currently record the graph."""
    return _grad_enabled


@contextlib.contextmanager
def no_grad() -> Iterator[None]:
    """Context manager in which operations do not record the graph (like ``torch.no_grad``)."""
    global _grad_enabled
    previous, _grad_enabled = _grad_enabled, False
    try:
        yield
    finally:
        _grad_enabled = previous


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
        The values, shape ``self.shape``.
    grad : Tensor or None
        For a leaf, the gradient accumulated by ``backward`` (same shape as ``data``).
    grad_fn : Context or None
        The backward node of the operation that made this tensor; None for a leaf.
    """

    __array_priority__ = 1000  # make ``ndarray * Tensor`` call Tensor.__rmul__

    def __init__(self, data: Any, requires_grad: bool = False, dtype: Any = None) -> None:
        if isinstance(data, Tensor):
            data = data.data
        self.data: np.ndarray = np.asarray(data, dtype=dtype)
        if requires_grad and not np.issubdtype(self.data.dtype, np.floating):
            raise TypeError(
                f"only floating point tensors can require gradients, got {self.data.dtype}"
            )
        self.requires_grad = requires_grad
        self.grad: Tensor | None = None
        self.grad_fn = None

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
    def size(self) -> int:
        return self.data.size

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    def __len__(self) -> int:
        return len(self.data)

    def item(self) -> float:
        """The value of a one-element tensor as a Python number."""
        return self.data.item()

    def numpy(self) -> np.ndarray:
        """The values as a numpy array (shares memory, like ``torch.Tensor.numpy``)."""
        if self.requires_grad:
            raise RuntimeError(
                "Can't call numpy() on a Tensor that requires grad. Use tensor.detach().numpy()."
            )
        return self.data

    def detach(self) -> Tensor:
        """A new leaf sharing this tensor's data, cut from the graph."""
        return Tensor(self.data)

    def retain_grad(self) -> None:
        """Keep ``.grad`` for this non-leaf tensor during ``backward`` (like torch)."""
        if self.grad_fn is not None:
            self.grad_fn._retained = self

    def zero_(self) -> Tensor:
        self.data[...] = 0
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

    # ---------------------------------------------------------------- backward
    def backward(self, gradient: Any = None, retain_graph: bool = False) -> None:
        """Compute the gradient of this tensor with respect to every leaf it depends on.

        Parameters
        ----------
        gradient : array_like, optional
            dL/d(self), same shape as ``self``. May be omitted only for a one-element
            tensor, where it is 1.
        retain_graph : bool
            Keep the saved values so that ``backward`` can run through the graph again.
        """
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
            grad = np.asarray(gradient.data if isinstance(gradient, Tensor) else gradient,
                              dtype=self.data.dtype)
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
        return F.Add.apply(self, _wrap(other, self))

    def __radd__(self, other: Any) -> Tensor:
        return F.Add.apply(_wrap(other, self), self)

    def __sub__(self, other: Any) -> Tensor:
        return F.Sub.apply(self, _wrap(other, self))

    def __rsub__(self, other: Any) -> Tensor:
        return F.Sub.apply(_wrap(other, self), self)

    def __mul__(self, other: Any) -> Tensor:
        return F.Mul.apply(self, _wrap(other, self))

    def __rmul__(self, other: Any) -> Tensor:
        return F.Mul.apply(_wrap(other, self), self)

    def __truediv__(self, other: Any) -> Tensor:
        return F.Div.apply(self, _wrap(other, self))

    def __rtruediv__(self, other: Any) -> Tensor:
        return F.Div.apply(_wrap(other, self), self)

    def __matmul__(self, other: Any) -> Tensor:
        return F.MatMul.apply(self, _wrap(other, self))

    def __rmatmul__(self, other: Any) -> Tensor:
        return F.MatMul.apply(_wrap(other, self), self)

    def __pow__(self, exponent: float) -> Tensor:
        if isinstance(exponent, Tensor):
            raise TypeError("only constant exponents are supported: x ** 2.0, not x ** tensor")
        return F.Pow.apply(self, exponent)

    def __neg__(self) -> Tensor:
        return F.Neg.apply(self)

    def __getitem__(self, index: Any) -> Tensor:
        if isinstance(index, Tensor):
            index = index.data
        elif isinstance(index, tuple):
            index = tuple(i.data if isinstance(i, Tensor) else i for i in index)
        return F.Index.apply(self, index)

    # comparisons give plain boolean arrays (no gradient flows through them)
    def __gt__(self, other: Any) -> np.ndarray:
        return self.data > _data(other)

    def __lt__(self, other: Any) -> np.ndarray:
        return self.data < _data(other)

    def __ge__(self, other: Any) -> np.ndarray:
        return self.data >= _data(other)

    def __le__(self, other: Any) -> np.ndarray:
        return self.data <= _data(other)

    # ------------------------------------------------------------------ methods
    def exp(self) -> Tensor:
        return F.Exp.apply(self)

    def log(self) -> Tensor:
        return F.Log.apply(self)

    def relu(self) -> Tensor:
        return F.ReLU.apply(self)

    def sigmoid(self) -> Tensor:
        return F.Sigmoid.apply(self)

    def tanh(self) -> Tensor:
        return F.Tanh.apply(self)

    def sum(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
        return F.Sum.apply(self, axis, keepdims)

    def mean(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
        return F.Mean.apply(self, axis, keepdims)

    def max(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
        return F.Max.apply(self, axis, keepdims)

    def reshape(self, *shape: int) -> Tensor:
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return F.Reshape.apply(self, shape)

    view = reshape

    def transpose(self, *axes: int) -> Tensor:
        """Permute axes (numpy's convention); with no arguments, reverse them."""
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        return F.Transpose.apply(self, axes or None)

    @property
    def T(self) -> Tensor:  # noqa: N802 (PyTorch's name)
        return F.Transpose.apply(self, None)

    def argmax(self, axis: int | None = None) -> np.ndarray:
        return self.data.argmax(axis=axis)


def tensor(data: Any, requires_grad: bool = False, dtype: Any = None) -> Tensor:
    """Make a leaf Tensor (like ``torch.tensor``); see :class:`Tensor`."""
    return Tensor(np.array(data.data if isinstance(data, Tensor) else data, dtype=dtype),
                  requires_grad=requires_grad)


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


from . import ops as F  # noqa: E402  (operators above dispatch to the ops' Functions)
