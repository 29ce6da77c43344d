"""The backward pass: visit the graph's nodes from the output back to the leaves.

``Tensor.backward`` calls :func:`run_backward`. The nodes are visited in reverse
topological order, so a node runs only once every path from the output has added its
contribution to the node's upstream gradient; each node's ``backward`` turns the upstream
gradient into one gradient per input (upstream x local = downstream), which is added
into the next node's upstream gradient, or into a leaf's ``.grad``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .autograd import Tensor


def depth_first(root: Any, children: Callable[[Any], list],
                first_to_last: bool = False) -> list:
    """Every node reachable from ``root``, each after all the nodes it depends on
    (post-order), each once.

    Iterative depth-first search (a graph 10,000 nodes deep must not hit Python's
    recursion limit). ``children(node)`` lists what a node depends on; they are explored
    last to first, or first to last with ``first_to_last`` (the order of a recursive
    search that visits them in a for loop).
    """
    order, visited = [], set()
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if children_done:
            order.append(node)
            continue
        if id(node) in visited:  # reached again through another path: already placed
            continue
        visited.add(id(node))  # mark when expanded, not when pushed (diamond graphs)
        stack.append((node, True))
        found = children(node)
        for child in reversed(found) if first_to_last else found:
            if id(child) not in visited:
                stack.append((child, False))
    return order


def topological_order(root: Any, inputs_in_order: bool = False) -> list:
    """Backward nodes reachable from ``root`` (``tensor.grad_fn``), each after all nodes
    it depends on; a node's inputs are explored first to last with ``inputs_in_order``."""
    return depth_first(root, _input_nodes, inputs_in_order)


def _input_nodes(node: Any) -> list:
    return [fn for parent in node.inputs if (fn := getattr(parent, "grad_fn", None)) is not None]


def run_backward(root: Any, grad: np.ndarray, retain_graph: bool = False) -> None:
    """The backward pass: upstream gradient x local gradient = downstream gradient.

    Visits nodes in reverse topological order, so a node runs only once every
    path from the root has added its contribution to the node's upstream gradient.
    """
    upstream: dict[int, np.ndarray] = {id(root): grad}
    for node in reversed(topological_order(root)):
        grad_out = upstream.pop(id(node), None)
        if grad_out is None:  # every backward into this node returned None: nothing flows
            if not retain_graph:
                node.release()
            continue
        if node._retained is not None:
            accumulate_leaf(node._retained, grad_out)
        grads = node.function.backward(node, grad_out)
        if not isinstance(grads, tuple):
            grads = (grads,)
        if len(grads) > len(node.inputs) and all(g is None for g in grads[len(node.inputs):]):
            grads = grads[:len(node.inputs)]  # Nones for defaulted arguments (torch allows)
        if len(grads) != len(node.inputs):
            raise RuntimeError(
                f"{node.function.__name__}.backward returned {len(grads)} gradient(s) but "
                f"forward took {len(node.inputs)} input(s); return one per input "
                "(None for inputs that need no gradient)"
            )
        for position, (inp, g) in enumerate(zip(node.inputs, grads, strict=True)):
            if not node.needs_input_grad[position] or g is None:
                continue
            g = np.asarray(g.data if isinstance(g, Tensor) else g)
            if g.shape != inp.shape:
                raise RuntimeError(
                    f"{node.function.__name__}.backward returned a gradient of shape "
                    f"{g.shape} for input {position} of shape {inp.shape}: a gradient "
                    "must have the shape of its input (did you forget to sum over a "
                    "broadcast or batch axis, or transpose?)"
                )
            if inp.grad_fn is None:
                accumulate_leaf(inp, g)
            else:
                accumulate(upstream, id(inp.grad_fn), g)
        if not retain_graph:
            node.release()


def accumulate(grads: dict[int, np.ndarray], key: int, g: np.ndarray) -> None:
    """Add ``g`` into ``grads[key]``: a value used twice receives both gradients."""
    grads[key] = grads[key] + g if key in grads else g


def accumulate_leaf(t: Tensor, g: np.ndarray) -> None:
    """Add ``g`` into the leaf's ``.grad`` (create it on the first call)."""
    g = g.astype(t.data.dtype, copy=False)
    if t.grad is None:
        t.grad = Tensor(np.array(g, copy=True))
    else:
        t.grad.data = t.grad.data + g
