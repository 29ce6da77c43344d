"""Exercises of notebook 07: the engine's backward loop, and a custom Function."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ...autograd import Tensor
from ...backward import topological_order
from ..exercise import VJPExercise, random_shape, register

# ---------------------------------------------------------------- test graphs
# Each graph is written once for any engine: ``ops`` supplies the few functions that
# differ (numpy for the numerical reference, torch, ours). a, b, c have the same shape.


def _graph(number: int, a: Any, b: Any, c: Any, tanh: Any, exp: Any) -> Any:
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


def _numpy_graph(graph, a, b, c):
    return _graph(int(graph), a, b, c, np.tanh, np.exp)


def _torch_graph(graph, a, b, c):
    import torch

    return _graph(int(graph), a, b, c, torch.tanh, torch.exp)


def _bc_graph(number: int, case: dict) -> tuple[Tensor, list[Tensor]]:
    leaves = [Tensor(np.array(case[k], dtype=np.float64), requires_grad=True)
              for k in ("a", "b", "c")]
    out = _graph(number, *leaves, lambda t: t.tanh(), lambda t: t.exp())
    return out, leaves


def _leaf_grads(leaves: list[Tensor]) -> tuple:
    grads = []
    for leaf in leaves:
        g = leaf.grad
        grads.append(None if g is None else np.asarray(getattr(g, "data", g), dtype=np.float64))
    return tuple(grads)


class _OwnLoop(Tensor):
    """The output handed to the student's loop: its own ``.backward()`` is off limits."""

    def backward(self, gradient: Any = None, retain_graph: bool = False) -> None:
        raise RuntimeError("write the loop yourself: backward(output, grad_output) must not "
                           "call output.backward(), which runs the engine's own loop")


def _call_backward(student: Any, case: dict) -> tuple:
    """Build the graph with our engine, run the student's loop, read the leaves' .grad.

    With ``twice`` in the case, run it on two graphs over the same leaves, as two calls
    of ``loss.backward()`` would: the second call must add to the first's ``.grad``; the
    answer compared is half the total.
    """
    number = int(case["graph"])
    out, leaves = _bc_graph(number, case)
    grad_output = np.array(case["grad_out"], dtype=np.float64)
    out.__class__ = _OwnLoop
    student(out, grad_output.copy())
    if case.get("twice") is not None and int(case["twice"]):
        out2 = _graph(number, *leaves, lambda t: t.tanh(), lambda t: t.exp())
        out2.__class__ = _OwnLoop
        student(out2, grad_output.copy())
        return tuple(None if g is None else g / 2 for g in _leaf_grads(leaves))
    return _leaf_grads(leaves)


def depth_first_order(root: Any) -> list:
    """The order of the notebook's plan: a depth-first search that visits a node's inputs
    first to last, then appends the node (the engine's own order explores them last to
    first)."""
    return topological_order(root, inputs_in_order=True)


def reference_backward(output: Tensor, grad_output: np.ndarray,
                       overwrite_nodes: bool = False, overwrite_leaves: bool = False,
                       order: Callable[[Any], list] = topological_order) -> None:
    """A backward loop like the one the student writes; the switches reproduce the
    classic bug (a later gradient replaces an earlier one instead of adding to it). Which
    gradient is "later" depends on the ``order`` the loop visits the nodes in."""
    upstream = {id(output.grad_fn): grad_output}
    for node in reversed(order(output.grad_fn)):
        grads = node.function.backward(node, upstream[id(node)])
        grads = grads if isinstance(grads, tuple) else (grads,)
        for inp, g, needs in zip(node.inputs, grads, node.needs_input_grad, strict=False):
            if not needs or g is None:
                continue
            if inp.grad_fn is None:
                if inp.grad is None or overwrite_leaves:
                    inp.grad = Tensor(np.array(g, dtype=np.float64))
                else:
                    inp.grad = Tensor(inp.grad.data + g)
            else:
                key = id(inp.grad_fn)
                if key in upstream and not overwrite_nodes:
                    upstream[key] = upstream[key] + g
                else:
                    upstream[key] = g


def _backward_mistakes(case: dict) -> dict[str, list[tuple]]:
    """Each mistake with its results under both visiting orders (the overwrite's result
    depends on which gradient comes last)."""
    out = {}
    if case.get("twice") is not None and int(case["twice"]):
        out["overwrite: the second backward call replaced the .grad the first had left "
            "(overwrite instead of accumulate): add to an existing .grad, as torch does"] = [
                tuple(g / 2 for g in _call_backward(reference_backward, case))]
    labels = {
        "overwrite: a gradient replaced the one already there instead of adding to it "
        "(overwrite instead of accumulate) at an intermediate node: a value used by "
        "several operations receives the SUM of their gradients": {"overwrite_nodes": True},
        "overwrite: a leaf's .grad was replaced instead of added to (overwrite instead of "
        "accumulate): a leaf used twice, or a second backward call, must add to .grad":
            {"overwrite_leaves": True},
    }
    for label, switches in labels.items():
        out[label] = [_call_backward(lambda o, g, s=switches, f=order:
                                     reference_backward(o, g, order=f, **s), case)
                      for order in (topological_order, depth_first_order)]
    return out


def _backward_random(rng: np.random.Generator) -> dict:
    shape = tuple(int(s) for s in rng.integers(1, 5, size=rng.integers(1, 3)))
    return {"graph": int(rng.integers(1, 3)), "a": rng.normal(0, 1, shape),
            "b": rng.normal(0, 1, shape), "c": rng.normal(0, 1, shape),
            "grad_out": rng.normal(0, 1, shape)}


register(VJPExercise(
    id="engine_backward",
    title="The engine's backward loop: topological order, reverse traversal, accumulation",
    signature="backward(output, grad_output)",
    inputs=("graph", "a", "b", "c"),
    wrt=("a", "b", "c"),
    forward=_numpy_graph,
    torch_forward=_torch_graph,
    given=(
        {"graph": 0, "a": [-2.0], "b": [5.0], "c": [-4.0], "grad_out": [1.0]},
        {"graph": 1, "a": [1.0, -2.0], "b": [3.0, 0.5], "c": [-1.0, 2.0],
         "grad_out": [1.0, -1.0]},
    ),
    random_case=_backward_random,
    edge=(
        {"graph": 2, "a": [0.5, -1.0, 2.0], "b": [1.0, 0.0, -0.5], "c": [-1.5, 0.25, 1.0],
         "grad_out": [2.0, -1.0, 0.5], "twice": 1},
    ),
    call=_call_backward,
    mistakes=_backward_mistakes,
    error_hints={"KeyError": "a node was reached before any gradient was stored for it: go "
                             "through the nodes in reverse topological order (the output's "
                             "node first), starting from {id(output.grad_fn): grad_output}"},
))


# ------------------------------------------------------------ custom Function
def _call_function(student: Any, case: dict) -> np.ndarray:
    """Apply the student's Function class with our engine; check its forward against
    tanh, then return x.grad after backward(grad_out)."""
    x = Tensor(np.array(case["x"], dtype=np.float64), requires_grad=True)
    y = student.apply(x)
    if not isinstance(y, Tensor):
        raise TypeError(f"{getattr(student, '__name__', student)}.apply returned "
                        f"{type(y).__name__}; subclass bc.Function and call .apply")
    expected = np.tanh(x.data)
    if y.shape != expected.shape or not np.allclose(y.data, expected, rtol=1e-7, atol=1e-12):
        diff = np.abs(np.nan_to_num(np.asarray(y.data, dtype=np.float64), nan=np.inf)
                      - expected) if y.shape == expected.shape else None
        where = "" if diff is None else f" (worst at {np.unravel_index(diff.argmax(), diff.shape)})"
        raise ValueError(f"forward is wrong: expected tanh(x) = {np.round(expected, 6)}, got "
                         f"{np.round(y.data, 6)}{where}")
    if y.grad_fn is None:
        raise ValueError("the output has no grad_fn: did forward get a Tensor that requires grad?")
    y.backward(np.array(case["grad_out"], dtype=np.float64))
    return None if x.grad is None else x.grad.data


def _tanh_mistakes(case: dict) -> dict[str, tuple]:
    x = np.asarray(case["x"], dtype=np.float64)
    g = np.asarray(case["grad_out"], dtype=np.float64)
    t = np.tanh(x)
    return {"output: you used 1 - x**2 (the input) instead of 1 - y**2 (the saved output "
            "y = tanh(x))": ((1 - x * x) * g,),
            "derivative: 1 - tanh(x) is not the derivative; it is 1 - tanh(x)**2":
                ((1 - t) * g,)}


def _tanh_random(rng: np.random.Generator) -> dict:
    shape = random_shape(rng)
    return {"x": rng.normal(0, 1.5, shape), "grad_out": rng.normal(0, 1, shape)}


register(VJPExercise(
    id="tanh_function",
    title="A custom Function: Tanh with forward and backward (save the output)",
    signature="Tanh.apply(x) (your bc.Function subclass)",
    inputs=("x",),
    wrt=("x",),
    forward=lambda x: np.tanh(x),
    torch_forward=lambda x: x.tanh(),
    given=({"x": [-2.0, -0.5, 0.0, 0.5, 2.0], "grad_out": [1.0, 2.0, -1.0, 0.5, 3.0]},),
    random_case=_tanh_random,
    edge=({"x": [-1000.0, -20.0, 0.0, 20.0, 1000.0], "grad_out": [1.0, 1.0, 1.0, 1.0, 1.0]},),
    call=_call_function,
    mistakes=_tanh_mistakes,
))
