"""``Function``: one differentiable operation, with its forward and backward side by side.

The shape is the same as ``torch.autograd.Function``::

    class Multiply(bc.Function):
        @staticmethod
        def forward(ctx, x, y):
            ctx.save_for_backward(x, y)
            return x * y

        @staticmethod
        def backward(ctx, grad_z):
            x, y = ctx.saved_tensors
            return y * grad_z, x * grad_z      # local gradient * upstream gradient

    z = Multiply.apply(x, y)

One difference from PyTorch, on purpose: inside ``forward`` and ``backward`` you work
with plain numpy arrays. ``apply`` is the border between the two worlds: it unwraps the
input Tensors, calls ``forward`` on their arrays, wraps the result in a Tensor and, if any
input requires a gradient, records a node (the ``ctx``) in the graph. During the backward
pass the engine hands ``backward`` the upstream gradient as an array with the output's
shape and expects one gradient per input of ``forward`` (``None`` for non-differentiable
inputs such as an axis or integer class labels), each with its input's shape.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import autograd as _autograd


class Context:
    """The backward node of one call of a Function (what ``tensor.grad_fn`` holds).

    Attributes
    ----------
    function : type[Function]
        The Function class whose ``backward`` this node runs.
    inputs : tuple
        The arguments ``apply`` was called with: Tensors, and other values as given.
    needs_input_grad : tuple[bool, ...]
        For each argument, whether the backward pass needs its gradient.
    """

    def __init__(self, function: type[Function], inputs: tuple) -> None:
        self.function = function
        self.inputs = inputs
        self.needs_input_grad = tuple(
            isinstance(a, _autograd.Tensor) and a.requires_grad for a in inputs
        )
        self._saved: tuple | None = ()
        self._released = False
        self._retained: _autograd.Tensor | None = None

    @property
    def name(self) -> str:
        """PyTorch-style node name, e.g. ``"MulBackward"``."""
        return f"{self.function.__name__}Backward"

    def save_for_backward(self, *arrays: Any) -> None:
        """Keep values computed in ``forward`` for use in ``backward``."""
        self._saved = arrays

    @property
    def saved_tensors(self) -> tuple:
        """The values given to ``save_for_backward``, in the same order."""
        if self._released:
            raise RuntimeError(
                f"Trying to backward through the graph a second time: the values "
                f"{self.name} saved for backward were freed after the first backward. "
                "Call backward(retain_graph=True) the first time if you need to "
                "backward through the same graph again."
            )
        return self._saved

    def release(self) -> None:
        """Free the saved values (what ``retain_graph=False`` does after backward)."""
        if self._saved:
            self._released = True
            self._saved = None

    def __repr__(self) -> str:
        return f"<{self.name}>"


class Function:
    """Base class of every differentiable operation. Subclass it and define
    ``forward(ctx, *args)`` and ``backward(ctx, grad_out)`` as staticmethods."""

    @staticmethod
    def forward(ctx: Context, *args: Any) -> np.ndarray:
        raise NotImplementedError

    @staticmethod
    def backward(ctx: Context, grad_out: np.ndarray) -> Any:
        raise NotImplementedError

    @classmethod
    def apply(cls, *args: Any) -> _autograd.Tensor:
        """Run ``forward`` on the arrays of ``args`` and record the graph node.

        Returns
        -------
        Tensor
            The output; ``requires_grad`` if any input Tensor requires grad and
            gradient recording is on (see ``no_grad``).
        """
        ctx = Context(cls, args)
        arrays = [a.data if isinstance(a, _autograd.Tensor) else a for a in args]
        try:
            out = np.asarray(cls.forward(ctx, *arrays))
        except ValueError as error:  # numpy's shape errors do not say which operation
            shapes = ", ".join(str(np.shape(a)) for a in arrays if isinstance(a, np.ndarray))
            raise ValueError(f"{cls.__name__}: {str(error).strip()} (input shapes {shapes})"
                             ) from error
        result = _autograd.Tensor(out)
        if _autograd.is_grad_enabled() and any(ctx.needs_input_grad):
            result.requires_grad = True
            result.grad_fn = ctx
        return result
