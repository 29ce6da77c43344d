"""Train and evaluate a classifier with either engine: ours or PyTorch.

The loop is the decks' (``opt.zero_grad(); loss = cross_entropy(model(x), y);
loss.backward(); opt.step()``); only the few calls that differ between the two
engines (making tensors, ``no_grad``, reading numbers back) go through :class:`Engine`.

::

    model = mlp(64, engine="bc")                     # or engine="torch"
    opt = bc.optim.AdamW(model.parameters(), lr=5e-4)
    for epoch in range(5):
        train_epoch(model, opt, x_train, y_train, batch_size=64, rng=rng)
        loss, accuracy = evaluate(model, x_test, y_test)
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import functional as F
from . import nn
from .autograd import Tensor, no_grad
from .data import batches


@dataclass(frozen=True)
class Engine:
    """The engine-specific pieces of a training loop."""

    name: str
    as_input: Callable[[np.ndarray], Any]
    as_target: Callable[[np.ndarray], Any]
    cross_entropy: Callable[..., Any]
    no_grad: Callable[[], contextlib.AbstractContextManager]
    to_numpy: Callable[[Any], np.ndarray]


def _bc_engine(dtype: Any) -> Engine:
    return Engine("bc", lambda x: Tensor(np.asarray(x, dtype=dtype)), np.asarray,
                  F.cross_entropy, no_grad, lambda t: t.data)


def _torch_engine(dtype: Any) -> Engine:
    import torch

    return Engine("torch", lambda x: torch.as_tensor(np.asarray(x), dtype=dtype),
                  lambda y: torch.as_tensor(np.asarray(y), dtype=torch.int64),
                  torch.nn.functional.cross_entropy, torch.no_grad,
                  lambda t: t.detach().cpu().numpy())


def engine_of(model: Any) -> Engine:
    """The engine a model belongs to (``bc.nn.Module`` or ``torch.nn.Module``)."""
    if isinstance(model, nn.Module):
        params = model.parameters()
        return _bc_engine(params[0].dtype if params else np.float64)
    import torch

    if isinstance(model, torch.nn.Module):
        params = list(model.parameters())
        return _torch_engine(params[0].dtype if params else torch.float32)
    raise TypeError(f"expected a backprop_course.nn.Module or torch.nn.Module, got "
                    f"{type(model).__name__}")


def mlp(in_features: int = 784, hidden: int = 512, classes: int = 10, dropout: float = 0.4,
        engine: str = "bc", dtype: Any = None) -> Any:
    """The decks' MNIST MLP: Linear(in, 512), ReLU, Dropout(0.4), Linear(512, 512), ReLU,
    Dropout(0.4), Linear(512, 10) -> logits (softmax is inside the loss).

    ``engine="bc"`` builds it from ``backprop_course.nn`` (float64 unless ``dtype``),
    ``engine="torch"`` from ``torch.nn`` (float32 unless ``dtype``). Seed the weights
    with ``bc.manual_seed`` / ``torch.manual_seed``.
    """
    if engine == "bc":
        dtype = np.float64 if dtype is None else dtype
        return nn.Sequential(
            nn.Linear(in_features, hidden, dtype=dtype), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(hidden, hidden, dtype=dtype), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(hidden, classes, dtype=dtype),
        )
    if engine == "torch":
        import torch

        model = torch.nn.Sequential(
            torch.nn.Linear(in_features, hidden), torch.nn.ReLU(), torch.nn.Dropout(dropout),
            torch.nn.Linear(hidden, hidden), torch.nn.ReLU(), torch.nn.Dropout(dropout),
            torch.nn.Linear(hidden, classes),
        )
        return model.to(torch.float32 if dtype is None else dtype)
    raise ValueError(f"engine must be 'bc' or 'torch', not {engine!r}")


def train_epoch(model: Any, optimizer: Any, x: np.ndarray, y: np.ndarray,
                batch_size: int = 64, rng: np.random.Generator | int | None = None,
                log_every: int | None = None, epoch: int = 0) -> list[float]:
    """One pass over ``(x, y)`` in shuffled mini-batches: zero_grad, forward,
    cross-entropy, backward, step. Works for both engines.

    Parameters
    ----------
    log_every : print the decks' "Train Epoch" line every this many batches (None: quiet)

    Returns
    -------
    list[float]
        The loss of every batch, in order.
    """
    engine = engine_of(model)
    model.train()
    losses = []
    n_batches = -(-len(x) // batch_size)
    for i, (xb, yb) in enumerate(batches(x, y, batch_size, rng)):
        optimizer.zero_grad()
        loss = engine.cross_entropy(model(engine.as_input(xb)), engine.as_target(yb))
        loss.backward()
        optimizer.step()
        losses.append(float(loss.item()))
        if log_every and i % log_every == 0:
            print(f"Train Epoch: {epoch} [{i * batch_size}/{len(x)} "
                  f"({100 * i / n_batches:.0f}%)]\tLoss: {losses[-1]:.6f}")
    return losses


def predict(model: Any, x: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    """The logits (N, classes) in eval mode, without recording a graph."""
    engine = engine_of(model)
    model.eval()
    out = []
    with engine.no_grad():
        for start in range(0, len(x), batch_size):
            out.append(engine.to_numpy(model(engine.as_input(x[start:start + batch_size]))))
    return np.concatenate(out).astype(np.float64)


def evaluate(model: Any, x: np.ndarray, y: np.ndarray,
             batch_size: int = 1024) -> tuple[float, float]:
    """Mean cross-entropy and accuracy (a fraction in [0, 1]) on ``(x, y)``, eval mode."""
    logits = predict(model, x, batch_size)
    shifted = logits - logits.max(axis=1, keepdims=True)
    logp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    y = np.asarray(y)
    loss = float(-logp[np.arange(len(y)), y].mean())
    accuracy = float((logits.argmax(axis=1) == y).mean())
    return loss, accuracy
