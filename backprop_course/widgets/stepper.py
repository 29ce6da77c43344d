"""The backward stepper: a computational graph, walked backward one node at a time.

:func:`build_graph` reads the graph behind an output Tensor (its ``grad_fn`` nodes),
lays it out in columns and precomputes every backward step by calling each node's own
``backward``, exactly as the engine does, but keeping every intermediate number.
:func:`graph_scene` draws the graph as it stands after ``k`` steps, and
:class:`BackwardStepper` is the ipywidgets view with step buttons and a slider.
"""

from __future__ import annotations

import base64
import sys
from dataclasses import dataclass, field

import ipywidgets as widgets
import numpy as np

from ..autograd import Tensor
from ..backward import depth_first
from .render import INK, MUTED, Circle, Line, Rect, Scene, Text, text_block, to_png, to_svg

SYMBOLS = {
    "Add": "+", "Sub": "−", "Mul": "×", "Div": "÷", "Neg": "−x", "MatMul": "@",
    "Exp": "exp", "Log": "log", "Sum": "Σ", "Mean": "mean", "Max": "max", "ReLU": "relu",
    "Sigmoid": "σ", "Tanh": "tanh", "Linear": "linear", "Softmax": "softmax",
    "LogSoftmax": "logsm", "SoftmaxCrossEntropy": "CE", "MSELoss": "MSE",
    "Reshape": "reshape", "Transpose": "ᵀ", "Index": "[ ]",
}
FORWARD = "#2166ac"   # blue: forward values (above nodes)
BACKWARD = "#b2182b"  # red: gradients (below nodes)
CURRENT = "#fee090"   # fill of the node being processed
COL_W, ROW_H, LEFT, TOP = 135.0, 100.0, 60.0, 70.0


@dataclass
class Node:
    """One tensor of the graph.

    Attributes
    ----------
    tensor : Tensor
    kind : str
        ``"input"`` (a leaf that requires grad), ``"const"`` (no gradient) or ``"op"``.
    label : str
        What is written in the node: the variable name for inputs, the value for
        constants, the operation's symbol for ops.
    name : str or None
        The variable name that holds this tensor, if known.
    inputs : list of int
        Indices of the nodes this op read (Tensor arguments only).
    col, row : float
        Layout position (column from the left, row from the top).
    """

    tensor: Tensor
    kind: str
    label: str
    name: str | None
    inputs: list[int] = field(default_factory=list)
    col: float = 0.0
    row: float = 0.0

    @property
    def title(self) -> str:
        """How sentences refer to this node."""
        if self.name:
            return self.name
        return f"the {self.label} node" if self.kind == "op" else self.label


@dataclass
class Part:
    """What one backward step sends to one input.

    ``local`` is d out / d input (elementwise), set when ``downstream == upstream *
    local`` holds (scalars and same-shape elementwise ops); None otherwise.
    ``before`` is the gradient the input had already collected (None if this is its
    first), ``after`` the total once this step is done.
    """

    input: int
    local: np.ndarray | None
    downstream: np.ndarray
    before: np.ndarray | None
    after: np.ndarray


@dataclass
class Step:
    """Backward through one op node: its upstream gradient and what each input receives."""

    node: int
    upstream: np.ndarray
    parts: list[Part]


@dataclass
class Graph:
    """Nodes (output last), the backward steps in order, and the picture's size in cells."""

    nodes: list[Node]
    steps: list[Step]
    cols: float
    rows: float

    def grads(self, k: int) -> dict[int, np.ndarray]:
        """The gradient of the output with respect to each node after ``k`` steps."""
        out = {len(self.nodes) - 1: np.ones_like(self.nodes[-1].tensor.data, dtype=float)}
        for step in self.steps[:k]:
            for part in step.parts:
                out[part.input] = part.after
        return out


def _names_in(namespace: dict) -> dict[int, str]:
    names: dict[int, str] = {}
    for name, value in namespace.items():
        if isinstance(value, Tensor) and not name.startswith("_"):
            current = names.get(id(value))
            if current is None or (len(name), name) < (len(current), current):
                names[id(value)] = name
    return names


def _walk(output: Tensor) -> list[Tensor]:
    """Tensors of the graph in depth-first post-order (inputs before users, output last)."""
    return depth_first(output, _input_tensors, first_to_last=True)


def _input_tensors(t: Tensor) -> list[Tensor]:
    return [] if t.grad_fn is None else [a for a in t.grad_fn.inputs if isinstance(a, Tensor)]


def _op_label(t: Tensor) -> str:
    fn = t.grad_fn.function
    if fn.__name__ == "Pow":
        return f"^{t.grad_fn.inputs[1]:g}"
    return SYMBOLS.get(fn.__name__, fn.__name__.lower()[:7])


def _layout(nodes: list[Node]) -> tuple[float, float]:
    """Columns by depth, rows so that each op sits level with the mean of its inputs.

    Returns the picture's size in columns and rows."""
    users: dict[int, list[int]] = {}
    for i, node in enumerate(nodes):
        node.col = 1 + max((nodes[j].col for j in node.inputs), default=-1) if node.inputs else 0
        for j in node.inputs:
            users.setdefault(j, []).append(i)
    for i, node in enumerate(nodes):  # a leaf sits just left of its first user
        if node.kind != "op" and i in users:
            node.col = min(nodes[u].col for u in users[i]) - 1
    slot = 0.0
    for node in nodes:  # post-order: inputs are placed before their users
        if node.kind == "input":
            node.row, slot = slot, slot + 1
        elif node.kind == "op":
            varying = [j for j in node.inputs if nodes[j].kind != "const"] or node.inputs
            node.row = float(np.mean([nodes[j].row for j in varying]))
    for i, node in enumerate(nodes):  # a constant sits above-left of its first user
        if node.kind == "const" and i in users:
            node.row = min(nodes[u].row for u in users[i]) - 1
    lowest = min(n.row for n in nodes)
    for node in nodes:
        node.row -= lowest
    for col in {n.col for n in nodes}:  # no two nodes of a column closer than one row
        column = sorted((n for n in nodes if n.col == col), key=lambda n: n.row)
        for above, below in zip(column, column[1:], strict=False):
            below.row = max(below.row, above.row + 1)
    return max(n.col for n in nodes) + 1, max(n.row for n in nodes) + 1


def build_graph(output: Tensor, names: dict[str, Tensor] | None = None) -> Graph:
    """Read the graph behind ``output`` and precompute its backward pass, step by step.

    Parameters
    ----------
    output : Tensor
        The result of a computation with the engine (any shape; the backward pass is
        seeded with ones, i.e. it differentiates ``output.sum()``).
    names : dict of str to Tensor, optional
        Variable names to write on nodes.

    Raises
    ------
    ValueError
        If ``output`` has no graph, or ``backward`` already freed its saved values.
    """
    if output.grad_fn is None:
        raise ValueError("this tensor has no graph: build it from tensors with "
                         "requires_grad=True, e.g. bc.tensor(2.0, requires_grad=True)")
    known = _names_in(names or {})
    tensors = _walk(output)
    index = {id(t): i for i, t in enumerate(tensors)}
    nodes = []
    for t in tensors:
        name = known.get(id(t))
        if t.grad_fn is not None:
            inputs = [index[id(a)] for a in t.grad_fn.inputs if isinstance(a, Tensor)]
            nodes.append(Node(t, "op", _op_label(t), name, inputs))
        elif t.requires_grad:
            nodes.append(Node(t, "input", name or format_value(t.data), name))
        else:
            nodes.append(Node(t, "const", format_value(t.data), name))
    cols, rows = _layout(nodes)
    return Graph(nodes, _backward_steps(nodes, index), cols, rows)


def _backward_steps(nodes: list[Node], index: dict[int, int]) -> list[Step]:
    upstream = {len(nodes) - 1: np.ones_like(nodes[-1].tensor.data, dtype=float)}
    steps = []
    for i in reversed(range(len(nodes))):
        node = nodes[i]
        if node.kind != "op":
            continue
        ctx, g = node.tensor.grad_fn, upstream[i]
        try:
            grads = ctx.function.backward(ctx, g)
            ones = ctx.function.backward(ctx, np.ones_like(g))
        except RuntimeError as error:
            raise ValueError(
                f"{error}\nMake the stepper before calling backward(), or call "
                "backward(retain_graph=True).") from error
        grads = grads if isinstance(grads, tuple) else (grads,)
        ones = ones if isinstance(ones, tuple) else (ones,)
        parts = []
        for position, arg in enumerate(ctx.inputs):
            if not (isinstance(arg, Tensor) and ctx.needs_input_grad[position]):
                continue
            down = np.asarray(grads[position], dtype=float)
            local = np.asarray(ones[position], dtype=float)
            elementwise = down.shape == g.shape and np.allclose(g * local, down)
            j = index[id(arg)]
            before = upstream.get(j)
            upstream[j] = down if before is None else before + down
            parts.append(Part(j, local if elementwise else None, down, before, upstream[j]))
        steps.append(Step(i, g, parts))
    return steps


def format_value(v: np.ndarray) -> str:
    """A value as written on the graph: 2 decimals for numbers, short lists, else a shape."""
    a = np.asarray(v, dtype=float)
    if a.size == 1:
        return f"{a.item():.2f}".replace("-", "−")
    if a.size <= 3:
        return "[" + ", ".join(f"{x:.2f}" for x in a.ravel()).replace("-", "−") + "]"
    return f"{a.shape} array"


def step_lines(graph: Graph, k: int) -> list[str]:
    """What step ``k`` does, in sentences (step 0 is the start of the backward pass)."""
    total = len(graph.steps)
    out = graph.nodes[-1]
    if k == 0:
        return [f"Step 0 of {total}: the forward pass is done (values in blue, above "
                "the nodes).",
                f"Backward starts at the output {out.title} with ∂{out.title}/∂"
                f"{out.title} = 1 (gradients in red, below). Press step ▶."]
    step = graph.steps[k - 1]
    node = graph.nodes[step.node]
    lines = [f"Step {k} of {total}: {node.tensor.grad_fn.name} at {node.title} "
             f"(value {format_value(node.tensor.data)}), upstream gradient "
             f"{format_value(step.upstream)}."]
    for part in step.parts:
        target = graph.nodes[part.input].title
        if part.local is not None:
            rule = (f"upstream {format_value(step.upstream)} × local "
                    f"{format_value(part.local)} = {format_value(part.downstream)}")
        else:
            rule = f"backward(upstream) = {format_value(part.downstream)}"
        if part.before is not None:
            rule += (f"; {target} already had {format_value(part.before)} from another "
                     f"path: accumulate to {format_value(part.after)}")
        lines.append(f"\u2003→ {target}: {rule}")
    if k == total:
        leaves = [f"{n.title} = {format_value(graph.grads(k)[i])}"
                  for i, n in enumerate(graph.nodes) if n.kind == "input"]
        lines.append("Done. Gradients of the inputs: " + ", ".join(leaves))
    return lines


def _xy(node: Node) -> tuple[float, float]:
    return LEFT + node.col * COL_W, TOP + node.row * ROW_H


def graph_scene(graph: Graph, k: int) -> Scene:
    """Draw the graph after ``k`` backward steps, with the explanation of step ``k`` below."""
    grads = graph.grads(k)
    current = graph.steps[k - 1] if k else None
    fresh = {p.input for p in current.parts} if current else {len(graph.nodes) - 1}
    scene = Scene(LEFT + (graph.cols - 1) * COL_W + 90, 0)
    scene.items.append(Text(8, 14, "forward value (blue, above)   ·   gradient ∂output/∂node "
                            "(red, below)", 12, "start", MUTED))
    for i, node in enumerate(graph.nodes):
        x2, y2 = _xy(node)
        for position, j in enumerate(node.inputs):
            x1, y1 = _xy(graph.nodes[j])
            twin = 8.0 * (position - node.inputs.index(j))  # a value used twice: two arrows
            active = current is not None and current.node == i
            scene.items.append(Line(x1 + 30, y1 + twin, x2 - 27, y2 + twin,
                                    BACKWARD if active else INK, 3 if active else 1.2,
                                    arrow=True))
    for i, node in enumerate(graph.nodes):
        x, y = _xy(node)
        is_current = current is not None and current.node == i
        fill = CURRENT if is_current else ("#f4f4f4" if node.kind != "op" else "white")
        width = 3 if is_current else 1.2
        tag = (("class", f"node {node.kind}"), ("data-index", str(i)))
        if node.kind == "op":
            scene.items.append(Circle(x, y, 24, fill, INK, width, attrs=tag))
        else:
            scene.items.append(Rect(x - 30, y - 16, 60, 32, fill, INK if node.kind == "input"
                                    else MUTED, width, rx=6, dashed=node.kind == "const",
                                    attrs=tag))
        scene.items.append(Text(x, y, node.label, 14 if len(node.label) < 4 else 11,
                                bold=node.kind == "op"))
        if node.kind != "const":
            value = format_value(node.tensor.data)
            above = f"{node.name} = {value}" if node.kind == "op" and node.name else value
            scene.items.append(Text(x, y - 36, above, 12, fill=FORWARD))
        if i in grads and node.kind != "const":
            scene.items.append(Text(x, y + 36, format_value(grads[i]), 12, fill=BACKWARD,
                                    bold=i in fresh,
                                    attrs=(("class", "grad"), ("data-index", str(i)))))
    graph_bottom = TOP + (graph.rows - 1) * ROW_H + 56
    notes = text_block(step_lines(graph, k), scene.width)
    scene.add(notes, 8, graph_bottom)
    scene.width = max(scene.width, notes.width + 16)
    scene.height = graph_bottom + notes.height + 6
    return scene


class BackwardStepper(widgets.VBox):
    """Step through the backward pass of ``output`` one node at a time.

    Parameters
    ----------
    output : Tensor
        The result of an engine computation, before ``backward()`` was called (or after
        ``backward(retain_graph=True)``). The stepper never changes any ``.grad``.
    names : dict of str to Tensor, optional
        Names to write on the nodes. By default the caller's variables that hold
        tensors of the graph, so in a notebook ``BackwardStepper(f)`` labels ``x``,
        ``y``, ``q``, ``f`` by themselves.

    Attributes
    ----------
    graph : Graph
        Nodes, layout and every precomputed backward step.
    step : widgets.IntSlider
        0 (backward not started) to ``len(graph.steps)`` (done).
    view : widgets.HTML
        Holds the SVG picture.
    """

    def __init__(self, output: Tensor, names: dict[str, Tensor] | None = None) -> None:
        if names is None:
            caller = sys._getframe(1)
            names = {**caller.f_globals, **caller.f_locals}
        self.graph = build_graph(output, names)
        total = len(self.graph.steps)
        self.step = widgets.IntSlider(0, 0, total, description="step")
        self.back = widgets.Button(description="◀ back", layout={"width": "90px"})
        self.forward = widgets.Button(description="step ▶", layout={"width": "90px"})
        self.reset = widgets.Button(description="reset", layout={"width": "90px"})
        self.back.on_click(lambda _: self._go(self.step.value - 1))
        self.forward.on_click(lambda _: self._go(self.step.value + 1))
        self.reset.on_click(lambda _: self._go(0))
        self.view = widgets.HTML()
        super().__init__([widgets.HBox([self.back, self.forward, self.reset, self.step]),
                          self.view])
        self.step.observe(self._update, names="value")
        self._update()

    def _go(self, k: int) -> None:
        self.step.value = int(np.clip(k, 0, self.step.max))

    def _update(self, change: dict | None = None) -> None:
        self._scene = graph_scene(self.graph, self.step.value)
        self.view.value = to_svg(self._scene, "bc-graph")

    def grads(self) -> dict[str, np.ndarray]:
        """Gradients known at the current step, by node title."""
        return {self.graph.nodes[i].title: g
                for i, g in self.graph.grads(self.step.value).items()}

    def _repr_mimebundle_(self, **kwargs: object) -> dict:
        data = super()._repr_mimebundle_(**kwargs) or {}
        data["image/svg+xml"] = self.view.value
        data["image/png"] = base64.b64encode(to_png(self._scene)).decode("ascii")
        data["text/plain"] = "\n".join(step_lines(self.graph, self.step.value))
        return data
