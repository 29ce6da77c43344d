"""Exercises of notebook 07: the engine's backward loop, and a custom Function.

In the grader's sandbox both answers get the course engine's tensors as ``bc`` without
the engine's own backward loop (the first exercise *is* that loop); the custom Function
also goes without the engine's ``Tanh``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ... import autograd
from ...backward import topological_order
from ..diagnose import Mistake
from ..exercise import Sandbox, VJPExercise, large_elementwise, random_shape, register, small_ints
from ..harness import call_engine_backward, engine_graph
from ..kinds import Kind
from ..references import torch_elementwise

NOTEBOOK = "07_autograd_engine"
NO_LOOP = ("the engine's own backward loop does not exist here (there is no "
           "backprop_course.backward): write the loop yourself")


def _numpy_graph(graph, a, b, c):
    return engine_graph(int(graph), a, b, c, np.tanh, np.exp)


def _torch_graph(graph, a, b, c):
    import torch

    return engine_graph(int(graph), a, b, c, torch.tanh, torch.exp)


def depth_first_order(root: Any) -> list:
    """The order of the notebook's plan: a depth-first search that visits a node's inputs
    first to last, then appends the node (the engine's own order explores them last to
    first)."""
    return topological_order(root, inputs_in_order=True)


def reference_backward(output: autograd.Tensor, grad_output: np.ndarray,
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
                    inp.grad = autograd.Tensor(np.array(g, dtype=np.float64))
                else:
                    inp.grad = autograd.Tensor(inp.grad.data + g)
            else:
                key = id(inp.grad_fn)
                if key in upstream and not overwrite_nodes:
                    upstream[key] = upstream[key] + g
                else:
                    upstream[key] = g


def _loop(**switches: Any) -> list[tuple]:
    """What a loop with these switches gives, in both visiting orders."""
    return [lambda case, order=order: call_engine_backward(
        lambda o, g: reference_backward(o, g, order=order, **switches), case, (), (),
        autograd_module()) for order in (topological_order, depth_first_order)]


def autograd_module() -> Any:
    """The course engine, as the harness calls it (``bc``)."""
    import backprop_course

    return backprop_course


def _backward_mistakes(case: dict) -> list[Mistake]:
    found = []
    if int(case.get("twice", 0)):
        once = {**case, "twice": 0}
        found.append(Mistake(
            Kind.OVERWRITE, "the second backward call replaced the .grad the first had left "
            "(overwrite instead of accumulate): add to an existing .grad, as torch does",
            [tuple(g / 2 for g in call_engine_backward(reference_backward, once, (), (),
                                                          autograd_module()))]))
    found.append(Mistake(
        Kind.OVERWRITE, "a gradient replaced the one already there instead of adding to it "
        "(overwrite instead of accumulate) at an intermediate node: a value used by several "
        "operations receives the SUM of their gradients",
        [run(case) for run in _loop(overwrite_nodes=True)]))
    found.append(Mistake(
        Kind.OVERWRITE, "a leaf's .grad was replaced instead of added to (overwrite instead "
        "of accumulate): a leaf used twice, or a second backward call, must add to .grad",
        [run(case) for run in _loop(overwrite_leaves=True)]))
    return found


def _backward_given(rng: np.random.Generator) -> list[dict]:
    """The decks' f = (x + y) * z at numbers of your own, then the fan-out graph, at
    numbers where every overwrite shows: q = a b reaches f three times (q * q, q * c), so
    dL/dq = g (2 q + c); a loop that keeps the last gradient only keeps g q or g c (right
    where q + c = 0), and a's .grad keeps g or dL/dq b (right where 2 q + c = 0)."""
    first = {"graph": 0, "a": small_ints(rng, 1), "b": small_ints(rng, 1),
             "c": small_ints(rng, 1), "grad_out": [1.0]}
    while True:
        a, b, c = (small_ints(rng, 2, -2, 2) for _ in range(3))
        if np.all(a * b + c != 0) and np.all(2 * a * b + c != 0):
            return [first, {"graph": 1, "a": a, "b": b, "c": c,
                            "grad_out": small_ints(rng, 2, -2, 2)}]


def _backward_random(rng: np.random.Generator) -> dict:
    shape = tuple(int(s) for s in rng.integers(1, 5, size=rng.integers(1, 3)))
    return {"graph": int(rng.integers(1, 3)), "a": rng.normal(0, 1, shape),
            "b": rng.normal(0, 1, shape), "c": rng.normal(0, 1, shape),
            "grad_out": rng.normal(0, 1, shape)}


def _backward_edge(rng: np.random.Generator) -> list[dict]:
    """A diamond-shaped graph, and backward called twice on the same leaves."""
    return [{**_backward_random(rng), "graph": 2, "twice": 1}]


def _backward_large(rng: np.random.Generator) -> dict:
    """The diamond graph over leaves of 200,000 elements."""
    return {"graph": 2, **{k: rng.standard_normal((400, 500)) for k in "abc"},
            "grad_out": rng.standard_normal((400, 500))}

register(VJPExercise(
    id="engine_backward",
    notebook=NOTEBOOK,
    title="The engine's backward loop: topological order, reverse traversal, accumulation",
    answer="backward",
    signature="backward(output, grad_output)",
    inputs=("graph", "a", "b", "c"),
    wrt=("a", "b", "c"),
    forward=_numpy_graph,
    torch_forward=_torch_graph,
    given=_backward_given,
    random=_backward_random,
    edge=_backward_edge,
    large=_backward_large,
    call="engine_backward",
    sandbox=Sandbox(engine=True, without=("backward",)),
    mistakes=_backward_mistakes,
    error_hints={"KeyError": "a node was reached before any gradient was stored for it: go "
                             "through the nodes in reverse topological order (the output's "
                             "node first), starting from {id(output.grad_fn): grad_output}",
                 "ModuleNotFoundError": NO_LOOP},
))


# ------------------------------------------------------------ custom Function
def _tanh_mistakes(case: dict) -> list[Mistake]:
    x = np.asarray(case["x"], dtype=np.float64)
    g = np.asarray(case["grad_out"], dtype=np.float64)
    t = np.tanh(x)
    return [Mistake(Kind.INPUT_NOT_OUTPUT, "you used 1 - x**2 (the input) instead of "
                    "1 - y**2 (the saved output y = tanh(x))", ((1 - x * x) * g,)),
            Mistake(Kind.LOCAL_DERIVATIVE, "1 - tanh(x) is not the derivative; it is "
                    "1 - tanh(x)**2", ((1 - t) * g,))]


def _tanh_given(rng: np.random.Generator) -> list[dict]:
    return [{"x": small_ints(rng, 5, -2, 2) / 2, "grad_out": small_ints(rng, 5, -3, 3)}]


def _tanh_random(rng: np.random.Generator) -> dict:
    shape = random_shape(rng)
    return {"x": rng.normal(0, 1.5, shape), "grad_out": rng.normal(0, 1, shape)}


def _tanh_edge(rng: np.random.Generator) -> list[dict]:
    """Saturated inputs: the gradient is 0 and nothing may be NaN (|x| above 710, where
    np.exp overflows: a forward of exps gives inf / inf there)."""
    far, huge = rng.uniform(18, 30), rng.uniform(720, 2000)
    return [{"x": [-huge, -far, 0.0, far, huge], "grad_out": small_ints(rng, 5)}]



register(VJPExercise(
    id="tanh_function",
    notebook=NOTEBOOK,
    title="A custom Function: Tanh with forward and backward (save the output)",
    answer="Tanh",
    signature="Tanh.apply(x) (your bc.Function subclass)",
    inputs=("x",),
    wrt=("x",),
    forward=lambda x: np.tanh(x),
    torch_forward=torch_elementwise("tanh"),
    given=_tanh_given,
    random=_tanh_random,
    edge=_tanh_edge,
    large=large_elementwise("x", spread=1.5),
    call="function",
    sandbox=Sandbox(engine=True, without=("backward", "ops.Tanh")),
    mistakes=_tanh_mistakes,
    error_hints={"AttributeError": "the engine's own Tanh does not exist in this exercise: "
                                   "write forward and backward with numpy"},
))
