"""Modules: layers that own their parameters, as in ``torch.nn``.

``(*)`` in a shape means any shape, ``N`` the batch.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from . import functional as F
from .autograd import NO_GPU, Tensor, _to_dtype
from .random import generator


class Parameter(Tensor):
    """A Tensor that a Module owns and an optimizer updates (requires grad)."""

    def __init__(self, data: Any, requires_grad: bool = True) -> None:
        super().__init__(data, requires_grad=requires_grad)


class Module:
    """Base class of layers and models.

    Parameters and sub-modules assigned as attributes are found by ``parameters()``
    in the order they were assigned (names like ``"0.weight"`` for a Sequential).
    """

    training: bool = True

    def forward(self, *args: Any) -> Tensor:
        raise NotImplementedError

    def __call__(self, *args: Any) -> Tensor:
        return self.forward(*args)

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        for name, value in vars(self).items():
            if isinstance(value, Parameter):
                yield prefix + name, value
            elif isinstance(value, Module):
                yield from value.named_parameters(f"{prefix}{name}.")

    def parameters(self) -> list[Parameter]:
        return [p for _, p in self.named_parameters()]

    def children(self) -> list[Module]:
        return [m for m in vars(self).values() if isinstance(m, Module)]

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the accumulated gradients: set ``.grad`` to None (torch's default) or,
        with ``set_to_none=False``, to zeros."""
        for p in self.parameters():
            if set_to_none or p.grad is None:
                p.grad = None
            else:
                p.grad.zero_()

    def train(self, mode: bool = True) -> Module:
        """Training mode (dropout active); ``eval()`` turns it off. Applies to children."""
        self.training = mode
        for child in self.children():
            child.train(mode)
        return self

    def eval(self) -> Module:
        return self.train(False)

    def to(self, *args: Any, dtype: Any = None, device: Any = None) -> Module:
        """Cast every parameter to ``dtype`` (``model.to(np.float32)``); ``"cpu"`` is the
        only device."""
        dtype = _to_dtype(args, dtype, device)
        if dtype is not None:
            for p in self.parameters():
                p.data = p.data.astype(dtype)
                p.grad = None
        return self

    def double(self) -> Module:
        return self.to(np.float64)

    def float(self) -> Module:
        return self.to(np.float32)

    def cpu(self) -> Module:
        return self

    def cuda(self, *args: Any, **kwargs: Any) -> Module:
        raise RuntimeError(NO_GPU.format("cuda"))

    def state_dict(self) -> dict[str, np.ndarray]:
        return {name: p.data.copy() for name, p in self.named_parameters()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Copy values in, by name. Accepts numpy arrays or torch tensors."""
        for name, p in self.named_parameters():
            value = state[name]
            value = value.detach().cpu().numpy() if hasattr(value, "detach") else value
            if np.shape(value) != p.shape:
                raise ValueError(f"{name}: expected shape {p.shape}, got {np.shape(value)}")
            p.data = np.array(value, dtype=p.dtype)

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        children = [f"  ({name}): " + repr(m).replace("\n", "\n  ")
                    for name, m in vars(self).items() if isinstance(m, Module)]
        if not children:
            return f"{type(self).__name__}({self.extra_repr()})"
        return f"{type(self).__name__}(\n" + "\n".join(children) + "\n)"


class Linear(Module):
    """``y = x @ weight.T + bias``, initialised like torch: weight and bias uniform in
    +-1/sqrt(in_features).

    Shape
    -----
    x : (N, in_features) or (*, in_features);  out : (N, out_features) or (*, out_features);
    weight : (out_features, in_features);  bias : (out_features,)
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 dtype: Any = np.float64) -> None:
        bound = 1 / np.sqrt(in_features)
        rng = generator()
        self.in_features, self.out_features = in_features, out_features
        weight = rng.uniform(-bound, bound, (out_features, in_features))
        self.weight = Parameter(weight.astype(dtype))
        self.bias = None
        if bias:
            self.bias = Parameter(rng.uniform(-bound, bound, out_features).astype(dtype))

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


class ReLU(Module):
    """``max(0, x)`` elementwise.

    Shape
    -----
    x : (*);  out : (*), same as x
    """

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(x)


class Sigmoid(Module):
    """``1 / (1 + exp(-x))`` elementwise.

    Shape
    -----
    x : (*);  out : (*), same as x
    """

    def forward(self, x: Tensor) -> Tensor:
        return F.sigmoid(x)


class Tanh(Module):
    """``tanh(x)`` elementwise.

    Shape
    -----
    x : (*);  out : (*), same as x
    """

    def forward(self, x: Tensor) -> Tensor:
        return F.tanh(x)


class Softmax(Module):
    """Softmax along ``dim``.

    Shape
    -----
    x : (*);  out : (*), same as x, summing to 1 along ``dim``
    """

    def __init__(self, dim: int = -1) -> None:
        self.dim = dim

    def forward(self, x: Tensor) -> Tensor:
        return F.softmax(x, self.dim)


class Flatten(Module):
    """Merge every dim but the batch.

    Shape
    -----
    x : (N, d1, d2, ...);  out : (N, d1 * d2 * ...)
    """

    def forward(self, x: Tensor) -> Tensor:
        return x.flatten(1)


class Dropout(Module):
    """Zero activations with probability ``p`` while training; identity in eval mode.

    Shape
    -----
    x : (*);  out : (*), same as x
    """

    def __init__(self, p: float = 0.5) -> None:
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class Sequential(Module):
    """Apply modules one after another; parameters are named ``"0.weight"`` etc.

    Shape
    -----
    x : the first module's input;  out : the last module's output
    """

    def __init__(self, *modules: Module) -> None:
        for i, module in enumerate(modules):
            setattr(self, str(i), module)

    def __iter__(self) -> Iterator[Module]:
        return iter(self.children())

    def __getitem__(self, i: int) -> Module:
        return self.children()[i]

    def __len__(self) -> int:
        return len(self.children())

    def forward(self, x: Tensor) -> Tensor:
        for module in self:
            x = module(x)
        return x


class CrossEntropyLoss(Module):
    """Softmax cross-entropy of logits against integer class targets.

    Shape
    -----
    logits : (N, C);  target : (N,) integers in [0, C);  out : (), a number
    """

    def __init__(self, reduction: str = "mean") -> None:
        self.reduction = reduction

    def forward(self, logits: Tensor, target: Any) -> Tensor:
        return F.cross_entropy(logits, target, self.reduction)


class MSELoss(Module):
    """Mean (or summed) squared error.

    Shape
    -----
    input : (*);  target : (*), same as input;  out : (), a number
    """

    def __init__(self, reduction: str = "mean") -> None:
        self.reduction = reduction

    def forward(self, input: Tensor, target: Any) -> Tensor:  # noqa: A002
        return F.mse_loss(input, target, self.reduction)
