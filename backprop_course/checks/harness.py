"""How an answer is called on a case, and how values cross the grader's sandbox wall.

This module is the only part of the course package that also runs inside the grader's
sandbox, next to the student's answer: it uses the standard library and numpy only, and
no relative imports (there it is loaded as a top-level module). It holds nothing a
student could use to pass a check: no reference, no gradient.

Calling conventions (an exercise names one in ``call``):

``vjp``              ``answer(*inputs, grad_out)`` returns one gradient per ``wrt`` input
``grad``             ``answer(*inputs)`` returns the gradients of a scalar loss (upstream 1)
``engine_backward``  ``answer(output, grad_output)`` runs a backward loop over a graph of
                     the course engine's tensors; the leaves' ``.grad`` are the result
``function``         ``answer`` is a ``bc.Function`` subclass; its ``apply`` and its
                     ``backward`` are called on the case
``layer``            ``answer`` is a layer's (forward, backward) pair with a cache
``loss``             ``answer(*inputs)`` returns ``(loss, *gradients)``: a loss (or a whole
                     network's loss) and its gradients, one per ``wrt`` input
``train``            ``answer(X_train, y_train, X_test)`` trains a model and returns its
                     predictions for ``X_test``
``value_graph``      ``answer`` is a scalar ``Value`` class: a program of operations is built
                     with it and ``backward()`` called on its outputs
``value_mlp``        ``answer`` is an MLP class of such Values: given weights, a batch
                     forward, ``backward()`` on a weighted sum of its outputs

Values cross the wall as JSON-ready dicts (:func:`encode`, :func:`decode`): an array is
``{"dtype": "f8" | "i8" | "b1", "shape": [...], "b64": <bytes>}``, ``None`` is
``{"none": true}`` and anything that is not an array of numbers is ``{"other": <type>}``.
:func:`decode` checks shape, size and dtype before it allocates anything.
"""

from __future__ import annotations

import base64
import binascii
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

#: Largest array that crosses the wall, in elements, and its most axes.
MAX_ELEMENTS = 8_000_000
MAX_NDIM = 8
DTYPES = {"f8": np.float64, "i8": np.int64, "b1": np.bool_}


class WireError(ValueError):
    """A value that does not have the documented form."""


@dataclass(frozen=True)
class NotNumeric:
    """The answer returned something that is not an array of numbers."""

    type_name: str


class WrongCountError(TypeError):
    """The answer returned the wrong number of gradients."""

    def __init__(self, expected: tuple[str, ...], got: str) -> None:
        super().__init__(f"return {len(expected)} gradients ({', '.join(expected)}), got {got}")


# ------------------------------------------------------------------------ the wire
def encode(value: Any, as_float: bool = True) -> dict:
    """One value as JSON-ready data. ``as_float``: numbers become float64 (what an answer
    returned); otherwise int64 and bool arrays keep their type (a case's targets)."""
    if value is None:
        return {"none": True}
    with warnings.catch_warnings():  # e.g. ComplexWarning: never write to stderr here
        warnings.simplefilter("ignore")
        try:
            # a course or torch-like tensor holds its array in .data; a numpy array's .data
            # is a buffer, which some dtypes (datetime64) cannot give
            data = value if isinstance(value, (np.ndarray, np.generic)) else \
                getattr(value, "data", value)
            array = np.asarray(data)
            if as_float or array.dtype.kind not in "bi":
                array = np.asarray(data, dtype=np.float64)
        except Exception:  # an answer's object may raise anything here: not a number
            return {"other": type(value).__name__[:100]}
    if array.dtype.kind == "b":
        code = "b1"
    elif array.dtype.kind in "iu":
        code, array = "i8", array.astype(np.int64)
    else:
        code = "f8"
    if array.size > MAX_ELEMENTS or array.ndim > MAX_NDIM:
        return {"other": f"array of shape {array.shape} (too large)"}
    return {"dtype": code, "shape": list(array.shape),
            "b64": base64.b64encode(np.ascontiguousarray(array).tobytes()).decode()}


def decode(item: Any) -> np.ndarray | NotNumeric | None:
    """Inverse of :func:`encode`; raises :class:`WireError` on anything else."""
    if not isinstance(item, dict):
        raise WireError("a value is not an object")
    if item.get("none") is True:
        return None
    if isinstance(item.get("other"), str):
        return NotNumeric(item["other"][:100])
    code, shape, b64 = item.get("dtype"), item.get("shape"), item.get("b64")
    if not isinstance(code, str) or code not in DTYPES or not isinstance(shape, list) \
            or not isinstance(b64, str):
        raise WireError("a value has no valid dtype, shape and data")
    if len(shape) > MAX_NDIM or not all(type(n) is int and 0 <= n <= MAX_ELEMENTS
                                        for n in shape):
        raise WireError(f"a value has an invalid shape (at most {MAX_NDIM} axes)")
    size = math.prod(shape)  # exact: numpy's int64 product wraps (3 axes of 2**22 give 0)
    if size > MAX_ELEMENTS:
        raise WireError(f"a value has {size} elements (more than {MAX_ELEMENTS})")
    dtype = np.dtype(DTYPES[code])
    if len(b64) != 4 * -(-size * dtype.itemsize // 3):
        raise WireError("a value's data does not match its shape")
    try:
        raw = base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError) as error:
        raise WireError("a value's data is not base64") from error
    if len(raw) != size * dtype.itemsize:
        raise WireError("a value's data does not match its shape")
    try:  # numpy refuses a shape whose other axes overflow, even next to a 0 axis
        return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()
    except ValueError as error:
        raise WireError("a value has an invalid shape") from error


def encode_case(case: dict[str, Any]) -> dict[str, dict]:
    """A case (name -> array or number) for the wire, keeping integer and bool types."""
    return {name: encode(value, as_float=False) for name, value in case.items()}


def decode_case(data: Any) -> dict[str, Any]:
    """Inverse of :func:`encode_case`."""
    if not isinstance(data, dict):
        raise WireError("a case is not an object")
    return {str(name): decode(value) for name, value in data.items()}


# -------------------------------------------------------------- calling conventions
def _copies(case: dict, names: tuple[str, ...]) -> list:
    return [np.array(case[name], copy=True) for name in names]


def _as_tuple(out: Any, wrt: tuple[str, ...]) -> tuple:
    if len(wrt) == 1:
        return (out,)
    if not isinstance(out, (tuple, list)) or len(out) != len(wrt):
        got = f"{len(out)} values" if isinstance(out, (tuple, list)) else type(out).__name__
        raise WrongCountError(wrt, got)
    return tuple(out)


def call_vjp(answer: Callable, case: dict, inputs: tuple[str, ...],
             wrt: tuple[str, ...], engine: Any = None) -> tuple:
    """``answer(*inputs, grad_out)``: one gradient per name in ``wrt``."""
    return _as_tuple(answer(*_copies(case, inputs), np.array(case["grad_out"], copy=True)), wrt)


def call_grad(answer: Callable, case: dict, inputs: tuple[str, ...],
              wrt: tuple[str, ...], engine: Any = None) -> tuple:
    """``answer(*inputs)``: the gradients of a scalar loss, one per name in ``wrt``."""
    return _as_tuple(answer(*_copies(case, inputs)), wrt)


# ---------------------------------------------------- graphs of the engine exercise
def engine_graph(number: int, a: Any, b: Any, c: Any, tanh: Callable, exp: Callable) -> Any:
    """The test graphs of the engine exercise, for any engine (``tanh`` and ``exp``
    supply the two functions that differ between numpy, torch and ours)."""
    if number == 0:  # the decks' f = (x + y) * z: no fan-out
        return (a + b) * c
    if number == 1:  # q is used three times, a twice (once directly): fan-out everywhere
        q = a * b
        return q * q + q * c + a
    if number == 2:  # a diamond: t feeds two branches that meet again; c used twice
        t = tanh(a * c + b)
        u = t * exp(-t)
        v = t + c
        return u * v + c * c
    raise ValueError(f"no test graph {number}")


GRAPHS = {0: "f = (a + b) * c", 1: "q = a * b; f = q * q + q * c + a",
          2: "t = tanh(a * c + b); f = (t * exp(-t)) * (t + c) + c * c"}


def leaves_and_output(engine: Any, case: dict) -> tuple[list, Any]:
    """The leaves a, b, c of the case as the engine's tensors, and the graph's output."""
    leaves = [engine.Tensor(np.array(case[k], dtype=np.float64), requires_grad=True)
              for k in ("a", "b", "c")]
    return leaves, engine_graph(int(case["graph"]), *leaves, lambda t: t.tanh(),
                                lambda t: t.exp())


def own_loop(output: Any) -> Any:
    """``output`` whose own ``.backward()`` refuses to run: the exercise is that loop."""

    class OwnLoop(type(output)):
        def backward(self, *args: Any, **kwargs: Any) -> None:
            raise RuntimeError("write the loop yourself: backward(output, grad_output) must "
                               "not call output.backward(), which is the engine's own loop")

    output.__class__ = OwnLoop
    return output


def leaf_grads(leaves: list) -> tuple:
    """Each leaf's ``.grad`` as a float64 array (None where it has none)."""
    return tuple(None if leaf.grad is None else
                 np.asarray(getattr(leaf.grad, "data", leaf.grad), dtype=np.float64)
                 for leaf in leaves)


def call_engine_backward(answer: Callable, case: dict, inputs: tuple[str, ...],
                         wrt: tuple[str, ...], engine: Any = None) -> tuple:
    """Build the case's graph with the engine, run the answer's loop, read the leaves'
    ``.grad``. With ``twice`` set the loop runs on two graphs over the same leaves, as
    two ``loss.backward()`` calls would: the second must add to the first's ``.grad``, so
    half the total is compared."""
    leaves, output = leaves_and_output(engine, case)
    grad_output = np.array(case["grad_out"], dtype=np.float64)
    answer(own_loop(output), grad_output.copy())
    if int(case.get("twice", 0)):
        second = engine_graph(int(case["graph"]), *leaves, lambda t: t.tanh(),
                              lambda t: t.exp())
        answer(own_loop(second), grad_output.copy())
        return tuple(None if g is None else g / 2 for g in leaf_grads(leaves))
    return leaf_grads(leaves)


def call_function(answer: Any, case: dict, inputs: tuple[str, ...],
                  wrt: tuple[str, ...], engine: Any = None) -> tuple:
    """``answer.apply(x)`` on the engine's tensor, then the node's ``backward``; returns
    (the output, the gradient), so the grader checks forward and backward."""
    x = engine.Tensor(np.array(case["x"], dtype=np.float64), requires_grad=True)
    y = answer.apply(x)
    if not isinstance(y, engine.Tensor):
        raise TypeError(f"{getattr(answer, '__name__', answer)}.apply returned "
                        f"{type(y).__name__}; subclass bc.Function and call .apply")
    node = y.grad_fn
    if node is None:
        raise ValueError("the output has no grad_fn: did forward get a Tensor that "
                         "requires grad?")
    grads = node.function.backward(node, np.array(case["grad_out"], dtype=np.float64))
    grads = grads if isinstance(grads, tuple) else (grads,)
    return y, _as_tuple(grads[0] if len(grads) == 1 else grads, wrt)[0]


def call_layer(answer: tuple, case: dict, inputs: tuple[str, ...], wrt: tuple[str, ...],
               engine: Any = None) -> tuple:
    """``answer = (forward, backward)``, a layer with a cache (CS231n's form):
    ``out, cache = forward(*inputs)`` then ``backward(grad_out, cache)`` returns one
    gradient per ``wrt`` input; returns (out, *gradients)."""
    forward, backward = answer
    returned = forward(*_copies(case, inputs))
    if not isinstance(returned, (tuple, list)) or len(returned) != 2:
        raise TypeError(f"{getattr(forward, '__name__', 'forward')} must return "
                        f"(out, cache), got {type(returned).__name__}")
    out, cache = returned
    grads = backward(np.array(case["grad_out"], copy=True), cache)
    return (out, *_as_tuple(grads, wrt))


def call_loss(answer: Callable, case: dict, inputs: tuple[str, ...], wrt: tuple[str, ...],
              engine: Any = None) -> tuple:
    """``answer(*inputs)`` returns ``(loss, *gradients)``, the gradients of that scalar loss
    one per ``wrt`` input; returns them as they came, the loss first."""
    returned = answer(*_copies(case, inputs))
    if not isinstance(returned, (tuple, list)) or len(returned) != 1 + len(wrt):
        got = f"{len(returned)} values" if isinstance(returned, (tuple, list)) else \
            type(returned).__name__
        raise WrongCountError(("loss", *wrt), got)
    return tuple(returned)


def call_train(answer: Callable, case: dict, inputs: tuple[str, ...], wrt: tuple[str, ...],
               engine: Any = None) -> tuple:
    """``answer(*inputs)`` trains a network on the training data and returns its
    parameters, one value per name of ``wrt``; a returned object with ``parameters()``
    (an MLP of Values) gives each parameter's ``.data``, in that order. The grader
    predicts with them itself."""
    returned = answer(*_copies(case, inputs))
    if hasattr(returned, "parameters"):
        returned = np.array([_number(getattr(p, "data", None), "a parameter's .data")
                             for p in returned.parameters()])
    return _as_tuple(returned, wrt)


CALLS: dict[str, Callable[..., tuple]] = {
    "vjp": call_vjp, "grad": call_grad, "engine_backward": call_engine_backward,
    "function": call_function, "layer": call_layer, "train": call_train, "loss": call_loss,
}
#: The conventions whose first returned value is the answer's forward output.
FORWARD_FIRST = frozenset({"function", "layer", "loss"})


# ------------------------------------------ graphs and networks of the answer's Value
#: The operations of a ``value_graph`` case, by op code: (label, how the answer's
#: ``Value`` computes it from operands ``a``, ``b`` (Values) and ``c`` (a plain number)).
VALUE_OPS: tuple[tuple[str, Callable[[Any, Any, Any], Any]], ...] = (
    ("a + b", lambda a, b, c: a + b),
    ("a - b", lambda a, b, c: a - b),
    ("a * b", lambda a, b, c: a * b),
    ("a / b", lambda a, b, c: a / b),
    ("a ** c", lambda a, b, c: a ** c),
    ("-a", lambda a, b, c: -a),
    ("a.exp()", lambda a, b, c: a.exp()),
    ("a.tanh()", lambda a, b, c: a.tanh()),
    ("a.relu()", lambda a, b, c: a.relu()),
    ("a + c", lambda a, b, c: a + c),
    ("c + a", lambda a, b, c: c + a),
    ("a - c", lambda a, b, c: a - c),
    ("c - a", lambda a, b, c: c - a),
    ("a * c", lambda a, b, c: a * c),
    ("c * a", lambda a, b, c: c * a),
    ("a / c", lambda a, b, c: a / c),
    ("c / a", lambda a, b, c: c / a),
)
#: The op code of ``a ** c``, whose integral exponents are given as ints (``x ** 2``).
POW = 4


class ValueOpError(RuntimeError):
    """An operation of a value graph (or a ``backward()`` call) raised; the message is
    ``label|ErrorName|message``."""


def _step(label: str, compute: Callable[..., Any], *args: Any) -> Any:
    try:
        return compute(*args)
    except Exception as error:  # the answer's code may raise anything
        raise ValueOpError(f"{label}|{type(error).__name__}|{str(error)[:500]}") from None


def _number(value: Any, what: str) -> float:
    """``value`` as a float; TypeError naming ``what`` if it is not a number."""
    try:
        return float(value)
    except Exception:  # a Value, None, a list, an object whose __float__ raises ...
        raise TypeError(f"{what} is {type(value).__name__}, not a number") from None


def call_value_graph(answer: Any, case: dict, inputs: tuple[str, ...], wrt: tuple[str, ...],
                     engine: Any = None) -> tuple:
    """Build the case's program with the answer's ``Value`` class, then call
    ``backward()`` on each of its outputs in turn (the same output twice: two calls on one
    graph). A program: ``leaves`` (L,) floats; ``ops`` (K,) codes of :data:`VALUE_OPS`;
    ``args`` (K, 2) the operands, indices of earlier values (the leaves first, then each
    op's result; -1 for none); ``consts`` (K,) the numbers ``c``; ``outputs`` (n,) indices.
    Returns (each output's ``.data``, shape (n,); every leaf's ``.grad`` after each
    ``backward()`` call, shape (n, L))."""
    leaves = [_step("Value(x)", answer, float(x)) for x in case["leaves"].tolist()]
    nodes = list(leaves)
    for code, (i, j), c in zip(case["ops"].tolist(), case["args"].tolist(),
                               case["consts"].tolist(), strict=True):
        label, compute = VALUE_OPS[code]
        number = int(c) if code == POW and float(c).is_integer() else float(c)
        nodes.append(_step(label, compute, nodes[i], nodes[j] if j >= 0 else None, number))
    outputs = [nodes[k] for k in case["outputs"].tolist()]
    data = [_number(getattr(out, "data", None), "an output's .data") for out in outputs]
    grads = []
    for out in outputs:
        _step("backward()", out.backward)
        grads.append([_number(getattr(leaf, "grad", None), "a leaf's .grad") for leaf in leaves])
    return np.array(data), np.array(grads)


def call_value_mlp(answer: Any, case: dict, inputs: tuple[str, ...], wrt: tuple[str, ...],
                   engine: Any = None) -> tuple:
    """``answer(sizes[0], sizes[1:])`` is an MLP of the answer's Values; its
    ``parameters()`` get the case's ``params`` (P,), in their order. Each row of ``x``
    (N, nin) goes through it as a list of floats; ``backward()`` runs on
    ``sum(output * grad_out)`` over all rows (``grad_out`` (N, nout)). Returns (the outputs'
    ``.data`` (N, nout), each parameter's ``.grad`` (P,))."""
    sizes = [int(s) for s in case["sizes"].tolist()]
    model = answer(sizes[0], sizes[1:])
    params = list(model.parameters())
    if len(params) != len(case["params"]):
        raise ValueError(f"MLP({sizes[0]}, {sizes[1:]}).parameters() returned {len(params)} "
                         f"values; that network has {len(case['params'])}: one weight per "
                         "input and one bias for every neuron")
    for param, value in zip(params, case["params"].tolist(), strict=True):
        param.data = value
    outputs, loss = [], None
    for row, weights in zip(case["x"].tolist(), case["grad_out"].tolist(), strict=True):
        out = model(row)
        out = list(out) if isinstance(out, (list, tuple)) else [out]
        if len(out) != len(weights):
            raise ValueError(f"the network returned {len(out)} values for one input; it has "
                             f"{len(weights)} outputs (return a list, one Value per output)")
        for value, weight in zip(out, weights, strict=True):
            loss = value * weight if loss is None else loss + value * weight
        outputs.append([_number(getattr(v, "data", None), "an output's .data") for v in out])
    loss.backward()
    return (np.array(outputs),
            np.array([_number(getattr(p, "grad", None), "a parameter's .grad") for p in params]))


CALLS.update({"value_graph": call_value_graph, "value_mlp": call_value_mlp})
