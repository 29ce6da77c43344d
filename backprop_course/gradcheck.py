"""Checking gradients: numerical references, Jacobians, and blame for a bad node.

Tolerances
----------
Numerical references are always computed in float64 by central differences,
``(f(x + h) - f(x - h)) / 2h``, whose error is O(h**2) plus round-off of about
``1e-16 * |f| / h``. Finite differences in float32 are too noisy to judge anything
(a correct float32 gradient would fail), so float32 code is checked against float64
references with looser tolerances. An entry passes when

    |analytic - numerical| <= atol + rtol * |numerical|

with, by the dtype of the analytic gradient (:data:`TOLERANCES`):

=========  ======  ======  ======
dtype      eps     atol    rtol
=========  ======  ======  ======
float64    1e-6    1e-5    1e-3     (torch.autograd.gradcheck's defaults)
float32    1e-6    1e-4    1e-2
=========  ======  ======  ======

:func:`rel_error` is CS231n's figure, reported next to every verdict: above 1e-2 the
gradient is almost surely wrong; below 1e-7 it is right; between, look at kinks
(ReLU at 0, max with ties), where one-sided slopes disagree.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from .autograd import Tensor, no_grad
from .backward import topological_order

TOLERANCES: dict[str, dict[str, float]] = {
    "float64": {"eps": 1e-6, "atol": 1e-5, "rtol": 1e-3},
    "float32": {"eps": 1e-6, "atol": 1e-4, "rtol": 1e-2},
}


def tolerance(dtype: Any) -> dict[str, float]:
    """The tolerances for gradients of this dtype (float32 for anything narrower)."""
    return TOLERANCES["float64" if np.dtype(dtype) == np.float64 else "float32"]


def rel_error(a: Any, b: Any) -> float:
    """CS231n's relative error: max over entries of |a - b| / max(1e-8, |a| + |b|)."""
    a, b = np.asarray(_data(a), dtype=np.float64), np.asarray(_data(b), dtype=np.float64)
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b))))


def _data(value: Any) -> Any:
    return value.data if isinstance(value, Tensor) else value


def _scalar(value: Any) -> float:
    return float(np.asarray(_data(value), dtype=np.float64).reshape(()))


def _float64(x: Any) -> np.ndarray:
    """``x`` itself if it is a float64 array (perturbed in place, then restored), else a
    float64 copy."""
    x = _data(x)
    if isinstance(x, np.ndarray) and x.dtype == np.float64:
        return x
    return np.array(x, dtype=np.float64)


def numerical_gradient(f: Callable[[np.ndarray], Any], x: Any, h: float = 1e-5) -> np.ndarray:
    """Gradient of a scalar function by central differences (CS231n's
    ``eval_numerical_gradient``).

    Parameters
    ----------
    f : callable
        Takes the array ``x`` and returns a number (or one-element array/Tensor).
        A float64 ``x`` is perturbed in place, so ``f`` may also ignore its argument
        and read ``x`` from a closure.
    x : array_like, shape S
    h : float

    Returns
    -------
    np.ndarray, shape S, float64
    """
    return numerical_vjp(lambda v: _scalar(f(v)), x, 1.0, h)


def numerical_vjp(f: Callable[[np.ndarray], Any], x: Any, grad_out: Any,
                  h: float = 1e-5) -> np.ndarray:
    """d(sum(f(x) * grad_out))/dx by central differences: the numerical counterpart of a
    backward pass (CS231n's ``eval_numerical_gradient_array``).

    Parameters
    ----------
    f : callable, array of shape S -> array of shape T
    x : array_like, shape S
    grad_out : array_like, shape T (the upstream gradient)

    Returns
    -------
    np.ndarray, shape S, float64
    """
    grad_out = np.asarray(_data(grad_out), dtype=np.float64)
    x = _float64(x)
    grad = np.zeros_like(x)
    for index, slope in _central_differences(f, x, h):
        grad[index] = np.sum(slope * grad_out)
    return grad


def numerical_jacobian(f: Callable[[np.ndarray], Any], x: Any, h: float = 1e-6) -> np.ndarray:
    """Jacobian by central differences: (out.size, x.size), rows = outputs."""
    return np.stack([slope.ravel() for _, slope in _central_differences(f, _float64(x), h)],
                    axis=1)


def _central_differences(f: Callable[[np.ndarray], Any], x: np.ndarray,
                         h: float) -> Iterator[tuple[tuple[int, ...], np.ndarray]]:
    """For each entry of the float64 array ``x`` (perturbed in place, then restored):
    its index and ``(f(x + h) - f(x - h)) / 2h``, an array of ``f``'s output shape."""
    for index in np.ndindex(x.shape):
        old = x[index]
        x[index] = old + h
        plus = np.array(_data(f(x)), dtype=np.float64)  # a copy: f may return a view of x
        x[index] = old - h
        minus = np.array(_data(f(x)), dtype=np.float64)
        x[index] = old
        yield index, (plus - minus) / (2 * h)


def jacobian(fn: Callable[[Tensor], Tensor], x: Any) -> np.ndarray:
    """The explicit Jacobian of ``fn`` at ``x``, built one row at a time from
    vector-Jacobian products (one backward pass per output element).

    Returns
    -------
    np.ndarray, shape (out.size, x.size), rows = outputs
    """
    x = Tensor(np.array(_data(x), dtype=np.float64), requires_grad=True)
    return _analytic_jacobian(fn, (x,), 0).reshape(-1, x.size)


# ------------------------------------------------------------------ gradcheck
class GradcheckError(RuntimeError):
    """An analytic gradient disagrees with the numerical one."""


@dataclass
class Mismatch:
    """Where an analytic gradient is furthest from its numerical reference."""

    index: tuple[int, ...]
    analytic: float
    numerical: float
    rel_error: float

    def describe(self) -> str:
        return (f"worst entry {self.index}: analytic {self.analytic:.6g}, numerical "
                f"{self.numerical:.6g} (relative error {self.rel_error:.2e})")


def compare(analytic: Any, numerical: Any, dtype: Any = np.float64,
            atol: float | None = None, rtol: float | None = None) -> Mismatch | None:
    """None if the two agree within the tolerances (by default :func:`tolerance` of
    ``dtype``), else the worst entry."""
    tol = tolerance(dtype)
    atol = tol["atol"] if atol is None else atol
    rtol = tol["rtol"] if rtol is None else rtol
    analytic = np.asarray(analytic, dtype=np.float64)
    numerical = np.asarray(numerical, dtype=np.float64)
    excess = _excess(analytic, numerical, atol, rtol)
    if analytic.size == 0 or excess.max() <= 0:
        return None
    index = np.unravel_index(np.argmax(excess), excess.shape)
    return Mismatch(tuple(int(i) for i in index), float(analytic[index]),
                    float(numerical[index]), rel_error(analytic[index], numerical[index]))


def disagrees(analytic: Any, numerical: Any, atol: float, rtol: float) -> np.ndarray:
    """Which entries of ``analytic`` disagree with ``numerical``: the rule of
    :func:`compare`, entry by entry."""
    return _excess(np.asarray(analytic, dtype=np.float64),
                   np.asarray(numerical, dtype=np.float64), atol, rtol) > 0


def _excess(analytic: np.ndarray, numerical: np.ndarray, atol: float,
            rtol: float) -> np.ndarray:
    return np.abs(analytic - numerical) - (atol + rtol * np.abs(numerical))


def gradcheck(fn: Callable[..., Tensor], inputs: Any, eps: float = 1e-6,
              atol: float = 1e-5, rtol: float = 1e-3, raise_exception: bool = True) -> bool:
    """Compare the Jacobians from ``fn``'s backward with numerical ones (like
    ``torch.autograd.gradcheck``) for every input that requires grad.

    Parameters
    ----------
    fn : callable taking the Tensors in ``inputs`` and returning one Tensor
    inputs : Tensor or tuple of Tensors; those with ``requires_grad`` must be float64

    Returns
    -------
    bool
        True if all agree; False (or GradcheckError if ``raise_exception``) otherwise,
        naming the input and the worst entry.
    """
    inputs = inputs if isinstance(inputs, (tuple, list)) else (inputs,)

    def fail(message: str) -> bool:
        if raise_exception:
            raise GradcheckError(message)
        return False

    for position, inp in enumerate(inputs):
        if not (isinstance(inp, Tensor) and inp.requires_grad):
            continue
        if inp.dtype != np.float64:
            raise ValueError(f"gradcheck needs float64 inputs; input {position} is {inp.dtype}")

        def as_function_of_input(v: np.ndarray, position: int = position) -> np.ndarray:
            with no_grad():
                args = [Tensor(v) if i == position else a for i, a in enumerate(inputs)]
                return fn(*args).data

        numerical = numerical_jacobian(as_function_of_input, inp.data.copy(), eps)
        try:
            analytic = _analytic_jacobian(fn, inputs, position)
        except Exception as error:  # a backward that crashes fails the check
            return fail(f"backward failed for input {position}: {type(error).__name__}: {error}")
        mismatch = compare(analytic, numerical, atol=atol, rtol=rtol)
        if mismatch is not None:
            row, col = mismatch.index
            return fail(
                f"Jacobian mismatch for input {position} (shape {inp.shape}) at "
                f"[output {row}, input {col}]: {mismatch.describe()}"
            )
    return True


def _analytic_jacobian(fn: Callable[..., Tensor], inputs: Any, position: int) -> np.ndarray:
    """The Jacobian of ``fn`` with respect to ``inputs[position]``, one row per output
    element, each from one backward pass with a one-hot upstream gradient."""
    leaves = [Tensor(a.data, requires_grad=a.requires_grad) if isinstance(a, Tensor) else a
              for a in inputs]
    out = fn(*leaves)
    target = leaves[position]
    rows = []
    for i in range(out.size):
        seed = np.zeros(out.shape)
        seed.flat[i] = 1
        for leaf in leaves:
            if isinstance(leaf, Tensor):
                leaf.grad = None
        out.backward(seed, retain_graph=True)
        rows.append(np.zeros(target.size) if target.grad is None else target.grad.data.ravel())
    return np.stack(rows)


# ------------------------------------------------------------- per-node blame
@dataclass
class NodeCheck:
    """The verdict on one backward node for one of its inputs."""

    step: int  # position in forward (topological) order
    name: str  # e.g. "MulBackward"
    input: int  # which input of the node
    rel_error: float
    mismatch: Mismatch | None
    error: str | None = None  # set when backward crashed

    @property
    def ok(self) -> bool:
        return self.mismatch is None and self.error is None

    def describe(self) -> str:
        where = f"step {self.step}: {self.name}, input {self.input}"
        if self.error:
            return f"{where}: backward failed: {self.error}"
        if self.mismatch:
            return (f"{where}: backward disagrees with the numerical gradient; "
                    f"{self.mismatch.describe()}")
        return f"{where}: ok (relative error {self.rel_error:.1e})"


def check_graph(output: Tensor, seed: int = 0, h: float = 1e-6) -> list[NodeCheck]:
    """Check every node of the graph behind ``output`` on its own.

    For each node, in forward order, re-run its Function's forward on its recorded
    inputs (in float64), draw a random upstream gradient, and compare its backward
    with the numerical vector-Jacobian product. A random upstream gradient (rather
    than ones) catches a backward that ignores it.

    Returns
    -------
    list[NodeCheck]
        One entry per (node, differentiable input); see :func:`first_bad_node`.
    """
    if output.grad_fn is None:
        return []
    # not default_rng(seed) itself: a student's data drawn from default_rng(0) would
    # otherwise be the upstream gradient (x.T @ x is symmetric and hides a transpose)
    rng = np.random.default_rng([seed, 0x6AD])
    checks = []
    for step, node in enumerate(topological_order(output.grad_fn)):
        arrays = [np.array(a.data, dtype=np.float64) if isinstance(a, Tensor) else a
                  for a in node.inputs]

        def run_forward(args: list, node: Any = node) -> tuple[Any, np.ndarray]:
            ctx = type(node)(node.function, node.inputs)
            return ctx, np.asarray(node.function.forward(ctx, *args), dtype=np.float64)

        ctx, out = run_forward(arrays)
        upstream = rng.standard_normal(out.shape)
        try:
            grads = node.function.backward(ctx, upstream)
            grads = grads if isinstance(grads, tuple) else (grads,)
        except Exception as error:
            checks.append(NodeCheck(step, node.name, -1, float("inf"), None,
                                    f"{type(error).__name__}: {error}"))
            continue
        for position, needs in enumerate(node.needs_input_grad):
            if not needs:
                continue
            analytic = grads[position] if position < len(grads) else None

            def as_function(v: np.ndarray, position: int = position,
                            arrays: list = arrays) -> np.ndarray:
                args = list(arrays)
                args[position] = v
                return run_forward(args)[1]

            numerical = numerical_vjp(as_function, arrays[position].copy(), upstream, h)
            if analytic is None or np.shape(analytic) != numerical.shape:
                shape = None if analytic is None else np.shape(analytic)
                checks.append(NodeCheck(step, node.name, position, float("inf"), None,
                                        f"gradient has shape {shape}, expected {numerical.shape}"))
                continue
            analytic = np.asarray(analytic, dtype=np.float64)
            checks.append(NodeCheck(step, node.name, position, rel_error(analytic, numerical),
                                    compare(analytic, numerical)))
    return checks


def first_bad_node(output: Tensor, seed: int = 0) -> NodeCheck | None:
    """The first node (in forward order) whose backward disagrees with its numerical
    gradient, or None if every node is right."""
    return next((c for c in check_graph(output, seed) if not c.ok), None)
