"""Exercises of notebook 09: an autograd engine from scratch, on scalars.

The student writes a ``Value`` class (micrograd-sized), an ``MLP`` of Values and a
training run on two moons. In the grader's sandbox only the standard library and numpy
exist: no course engine, the exercise *is* the engine.

The ``Value`` checks run *programs*: graphs of the 17 operations of
:data:`..harness.VALUE_OPS` over scalar leaves, which the ``value_graph`` convention
builds with the student's class before it calls ``backward()`` on the outputs. The
references are torch (every leaf's gradient after each ``backward()`` call), checked
against central differences of a numpy forward. The classic mistakes are made on purpose
by :func:`run_program`, a plain backward loop over the same program (a :class:`Way` says
which mistake it makes), so that a wrong answer is named by the mistake that gives
exactly its numbers.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...gradcheck import compare, numerical_gradient
from ..diagnose import as_float_array, diagnose
from ..exercise import (
    BUILTIN_ERRORS,
    NUMPY,
    Case,
    Exercise,
    Result,
    Sandbox,
    TrainingExercise,
    did_not_finish,
    register,
)
from ..harness import CALLS, VALUE_OPS
from ..kinds import Kind

NOTEBOOK = "09_engine_from_scratch"
FIX_VALUE_FIRST = "if the value_engine checks fail too, fix Value first"


# ------------------------------------------------------------------ the operations
@dataclass(frozen=True)
class Op:
    """One operation of a program, on the grader's side (the same code as in
    ``VALUE_OPS``): ``forward(a, b, c)`` on floats; ``local(a, b, c, out)`` its local
    gradients (d out/da, d out/db or None); ``formula`` says them in words."""

    label: str
    binary: bool
    forward: Callable[[float, float, float], float]
    local: Callable[[float, float, float, float], tuple]
    formula: str


OPS: tuple[Op, ...] = (
    Op("a + b", True, lambda a, b, c: a + b, lambda a, b, c, o: (1.0, 1.0),
       "d(a + b)/da = d(a + b)/db = 1 (add distributes)"),
    Op("a - b", True, lambda a, b, c: a - b, lambda a, b, c, o: (1.0, -1.0),
       "d(a - b)/da = 1, d(a - b)/db = -1"),
    Op("a * b", True, lambda a, b, c: a * b, lambda a, b, c, o: (b, a),
       "d(a * b)/da = b, d(a * b)/db = a (mul swaps)"),
    Op("a / b", True, lambda a, b, c: a / b, lambda a, b, c, o: (1 / b, -a / b**2),
       "d(a / b)/da = 1 / b, d(a / b)/db = -a / b**2"),
    Op("a ** c", False, lambda a, b, c: a**c, lambda a, b, c, o: (c * a ** (c - 1), None),
       "d(a ** c)/da = c * a ** (c - 1)"),
    Op("-a", False, lambda a, b, c: -a, lambda a, b, c, o: (-1.0, None), "d(-a)/da = -1"),
    Op("a.exp()", False, lambda a, b, c: math.exp(a), lambda a, b, c, o: (o, None),
       "d exp(a)/da = exp(a), the output"),
    Op("a.tanh()", False, lambda a, b, c: math.tanh(a), lambda a, b, c, o: (1 - o * o, None),
       "d tanh(a)/da = 1 - t**2 with the output t = tanh(a)"),
    Op("a.relu()", False, lambda a, b, c: max(a, 0.0), lambda a, b, c, o: (float(a > 0), None),
       "d relu(a)/da = 1 where a > 0, else 0 (relu routes)"),
    Op("a + c", False, lambda a, b, c: a + c, lambda a, b, c, o: (1.0, None),
       "d(a + c)/da = 1"),
    Op("c + a", False, lambda a, b, c: c + a, lambda a, b, c, o: (1.0, None),
       "d(c + a)/da = 1 (Python calls a.__radd__(c))"),
    Op("a - c", False, lambda a, b, c: a - c, lambda a, b, c, o: (1.0, None),
       "d(a - c)/da = 1"),
    Op("c - a", False, lambda a, b, c: c - a, lambda a, b, c, o: (-1.0, None),
       "d(c - a)/da = -1 (Python calls a.__rsub__(c))"),
    Op("a * c", False, lambda a, b, c: a * c, lambda a, b, c, o: (c, None), "d(a * c)/da = c"),
    Op("c * a", False, lambda a, b, c: c * a, lambda a, b, c, o: (c, None),
       "d(c * a)/da = c (Python calls a.__rmul__(c))"),
    Op("a / c", False, lambda a, b, c: a / c, lambda a, b, c, o: (1 / c, None),
       "d(a / c)/da = 1 / c"),
    Op("c / a", False, lambda a, b, c: c / a, lambda a, b, c, o: (-c / a**2, None),
       "d(c / a)/da = -c / a**2 (Python calls a.__rtruediv__(c))"),
)
if [op.label for op in OPS] != [label for label, _ in VALUE_OPS]:
    raise ImportError("nb09: OPS and harness.VALUE_OPS disagree")
CODE = {op.label: code for code, op in enumerate(OPS)}

#: The method of a Value class that computes each operation (a number is wrapped into a
#: Value first, so ``a * c`` runs ``__mul__`` too): a mistake in a method reaches all.
METHODS: dict[str, tuple[str, ...]] = {
    "__add__": ("a + b", "a + c", "c + a"), "__sub__": ("a - b", "a - c"),
    "__rsub__": ("c - a",), "__mul__": ("a * b", "a * c", "c * a"),
    "__truediv__": ("a / b", "a / c"), "__rtruediv__": ("c / a",), "__pow__": ("a ** c",),
    "__neg__": ("-a",), "exp": ("a.exp()",), "tanh": ("a.tanh()",), "relu": ("a.relu()",),
}
#: Wrong local gradients students write, per method: (kind, message, label -> local).
SLIPS: dict[str, tuple[tuple[Kind, str, dict[str, Callable[..., tuple]]], ...]] = {
    "__sub__": ((Kind.SIGN, "d(a - b)/db is -1, not 1", {
        "a - b": lambda a, b, c, o: (1.0, 1.0)}),),
    "__mul__": ((Kind.NO_SWAP, "each input got its own value; the mul gate swaps them: "
                 "d(a * b)/da = b", {"a * b": lambda a, b, c, o: (a, b),
                                     "a * c": lambda a, b, c, o: (a, None),
                                     "c * a": lambda a, b, c, o: (a, None)}),),
    "__truediv__": (
        (Kind.SIGN, "d(a / b)/db = -a / b**2 has a minus sign",
         {"a / b": lambda a, b, c, o: (1 / b, a / b**2)}),
        (Kind.LOCAL_DERIVATIVE, "d(a / b)/db = -a / b**2: the factor a is missing",
         {"a / b": lambda a, b, c, o: (1 / b, -1 / b**2)})),
    "__rtruediv__": (
        (Kind.SIGN, "d(c / a)/da = -c / a**2 has a minus sign",
         {"c / a": lambda a, b, c, o: (c / a**2, None)}),
        (Kind.LOCAL_DERIVATIVE, "d(c / a)/da = -c / a**2, not -c / a",
         {"c / a": lambda a, b, c, o: (-c / a, None)})),
    "__pow__": (
        (Kind.LOCAL_DERIVATIVE, "d(a ** c)/da = c * a ** (c - 1): the exponent drops by one",
         {"a ** c": lambda a, b, c, o: (c * a**c, None)}),
        (Kind.LOCAL_DERIVATIVE, "d(a ** c)/da = c * a ** (c - 1): the factor c is missing",
         {"a ** c": lambda a, b, c, o: (a ** (c - 1), None)})),
    "exp": ((Kind.LOCAL_DERIVATIVE, "d exp(a)/da = exp(a) (the output), not a",
             {"a.exp()": lambda a, b, c, o: (a, None)}),),
    "tanh": ((Kind.INPUT_NOT_OUTPUT, "1 - t**2 needs the output t = tanh(a), not the input a",
              {"a.tanh()": lambda a, b, c, o: (1 - a * a, None)}),
             (Kind.LOCAL_DERIVATIVE, "d tanh(a)/da = 1 - t**2: the square is missing",
              {"a.tanh()": lambda a, b, c, o: (1 - o, None)})),
    "relu": ((Kind.LOCAL_DERIVATIVE, "relu's local gradient is 1 where a > 0 (else 0), not "
              "its output", {"a.relu()": lambda a, b, c, o: (o, None)}),),
}
#: The operations a micrograd-style Value builds from others: code -> its steps, each
#: (operation, input a, input b or c); an input is an operand ("a", "b"), a number
#: ("c", "-c", "1/c", "k:<number>") or an earlier step's result ("s0").
DERIVED: dict[int, tuple[tuple[str, str, str], ...]] = {
    CODE["a - b"]: (("a * c", "b", "k:-1"), ("a + b", "a", "s0")),
    CODE["a / b"]: (("a ** c", "b", "k:-1"), ("a * b", "a", "s0")),
    CODE["-a"]: (("a * c", "a", "k:-1"),),
    CODE["c + a"]: (("a + c", "a", "c"),),
    CODE["a - c"]: (("a + c", "a", "-c"),),
    CODE["c - a"]: (("a * c", "a", "k:-1"), ("a + c", "s0", "c")),
    CODE["c * a"]: (("a * c", "a", "c"),),
    CODE["a / c"]: (("a * c", "a", "1/c"),),
    CODE["c / a"]: (("a ** c", "a", "k:-1"), ("a * c", "s0", "c")),
}
#: What an answer must define for an operation, when computing it raised.
NEEDS = {"a + b": "__add__", "a - b": "__sub__", "a * b": "__mul__", "a / b": "__truediv__",
         "a ** c": "__pow__ (for a number exponent)", "-a": "__neg__", "a.exp()": "exp()",
         "a.tanh()": "tanh()", "a.relu()": "relu()", "a + c": "__add__ for a number",
         "c + a": "__radd__", "a - c": "__sub__ for a number", "c - a": "__rsub__",
         "a * c": "__mul__ for a number", "c * a": "__rmul__",
         "a / c": "__truediv__ for a number", "c / a": "__rtruediv__"}


def _program(case: dict) -> zip:
    return zip(np.asarray(case["ops"]).tolist(), np.asarray(case["args"]).tolist(),
               np.asarray(case["consts"], dtype=np.float64).tolist(), strict=True)


def program_outputs(case: dict, leaves: np.ndarray | None = None) -> np.ndarray:
    """The outputs' values, shape (n,) (at ``leaves`` (L,) instead of the case's)."""
    values = np.asarray(case["leaves"] if leaves is None else leaves, dtype=np.float64).tolist()
    for code, (i, j), c in _program(case):
        values.append(OPS[code].forward(values[i], values[j] if j >= 0 else 0.0, c))
    return np.array([values[k] for k in np.asarray(case["outputs"]).tolist()])


def torch_reference(case: dict) -> np.ndarray:
    """torch's leaf gradients after each ``backward()`` call on the outputs in turn, shape
    (n, L): a leaf's ``.grad`` accumulates over the calls, as torch's leaves do."""
    import torch

    leaves = [torch.tensor(x, dtype=torch.float64, requires_grad=True)
              for x in np.asarray(case["leaves"], dtype=np.float64).tolist()]
    nodes = list(leaves)
    for code, (i, j), c in _program(case):
        a, b = nodes[i], nodes[j] if j >= 0 else None
        label = OPS[code].label
        nodes.append({"a.exp()": torch.exp, "a.tanh()": torch.tanh, "a.relu()": torch.relu
                      }[label](a) if label in ("a.exp()", "a.tanh()", "a.relu()")
                     else VALUE_OPS[code][1](a, b, c))
    grads = []
    for k in np.asarray(case["outputs"]).tolist():
        nodes[k].backward(retain_graph=True)
        grads.append([0.0 if leaf.grad is None else float(leaf.grad) for leaf in leaves])
    return np.array(grads)


def reference(case: Case) -> np.ndarray:
    """torch's gradients (n, L), checked against central differences of the numpy forward
    of the outputs' sum (each leaf's final ``.grad``), except on a large case."""
    exact = torch_reference(case.values)
    if case.budget is None:
        leaves = np.array(case.values["leaves"], dtype=np.float64)
        numerical = numerical_gradient(
            lambda x: float(program_outputs(case.values, x).sum()), leaves)
        mismatch = compare(exact[-1], numerical)
        if mismatch is not None:
            raise RuntimeError(f"value_engine: torch and the numerical gradient disagree: "
                               f"{mismatch.describe()} (a bug in the exercise)")
    return exact


# ------------------------------------------------------- a backward loop, with mistakes
@dataclass(frozen=True)
class Way:
    """How :func:`run_program`'s backward loop goes: the right way by default, each field
    one mistake.

    ``derived``: ``-``, ``/``, negation and a number on the left are built from ``+ * **``
    (micrograd's way), so that a mistake in those methods reaches them. ``order``:
    "reverse" (reverse topological: right), "forward" (topological, not reversed), "bfs"
    (breadth first from the output) or "recursive" (a node's backward, then its inputs',
    along every path). ``inputs``: a node's inputs in order (0), reversed (1) or flipped
    at random per node (a seed above 1). ``overwrite``: ``=`` instead of ``+=``.
    ``unchained``: operations whose local gradient is not multiplied by ``out.grad``.
    ``slips``: (operation, wrong local) pairs. ``reset``: what each ``backward()`` sets to
    0 first: the non-leaf gradients ("nonleaf": right), all ("all") or none ("none").
    """

    derived: bool = False
    order: str = "reverse"
    inputs: int = 0
    overwrite: bool = False
    unchained: frozenset[str] = frozenset()
    slips: tuple[tuple[str, Callable[..., tuple]], ...] = ()
    reset: str = "nonleaf"


RIGHT = Way()
#: The most node visits the "recursive" order may make (it visits a node once per path).
MAX_VISITS = 20_000


@dataclass
class _Graph:
    """A program expanded into the operations a Value class runs: per node its value, its
    operation (None for a leaf or a number), its inputs and its number ``c``."""

    values: list[float] = field(default_factory=list)
    labels: list[str | None] = field(default_factory=list)
    inputs: list[tuple[int, ...]] = field(default_factory=list)
    numbers: list[float] = field(default_factory=list)

    def add(self, value: float, label: str | None = None, inputs: tuple[int, ...] = (),
            c: float = 0.0) -> int:
        self.values.append(value)
        self.labels.append(label)
        self.inputs.append(inputs)
        self.numbers.append(c)
        return len(self.values) - 1


def _expand(case: dict, derived: bool) -> tuple[_Graph, list[int], int]:
    """The program as a graph of the operations a Value runs (see :data:`DERIVED`); the
    nodes of its outputs; its number of leaves."""
    graph = _Graph()
    leaves = np.asarray(case["leaves"], dtype=np.float64).tolist()
    nodes = [graph.add(x) for x in leaves]
    for code, (i, j), c in _program(case):
        default = ((OPS[code].label, "a", "b" if OPS[code].binary else "c"),)
        steps = DERIVED.get(code, default) if derived else default
        named: dict[str, Any] = {"a": nodes[i], "b": nodes[j] if j >= 0 else None}
        numbers = {"c": c, "-c": -c, "1/c": 1 / c if c else 0.0}
        for number, (label, first, second) in enumerate(steps):
            a = named[first]
            op = OPS[CODE[label]]
            if op.binary:
                b = named[second]
                value = op.forward(graph.values[a], graph.values[b], 0.0)
                node = graph.add(value, label, (a, b))
            else:
                k = numbers[second] if second in numbers else float(second[2:])
                node = graph.add(op.forward(graph.values[a], 0.0, k), label, (a,), k)
            named[f"s{number}"] = node
        nodes.append(named[f"s{len(steps) - 1}"])
    return graph, [nodes[k] for k in np.asarray(case["outputs"]).tolist()], len(leaves)


def _ordered(inputs: tuple[int, ...], node: int, way: Way) -> tuple[int, ...]:
    if way.inputs == 0 or len(inputs) < 2:
        return inputs
    if way.inputs == 1 or np.random.default_rng([way.inputs, node]).integers(2):
        return inputs[::-1]
    return inputs


def _topological(graph: _Graph, root: int, way: Way) -> list[int]:
    """Depth first, each node after its inputs (with a stack: a graph can be deep)."""
    order, seen, stack = [], set(), [(root, False)]
    while stack:
        node, done = stack.pop()
        if done:
            order.append(node)
        elif node not in seen:
            seen.add(node)
            stack.append((node, True))
            stack.extend((i, False) for i in reversed(_ordered(graph.inputs[node], node, way)))
    return order


def _visits(graph: _Graph, root: int, way: Way, order: list[int]) -> list[int] | None:
    """The nodes whose backward runs, in the order they run (None: too many)."""
    if way.order == "reverse":
        return order[::-1]
    if way.order == "forward":
        return order
    if way.order == "bfs":
        seen, queue = {root}, [root]
        for node in queue:
            for i in _ordered(graph.inputs[node], node, way):
                if i not in seen:
                    seen.add(i)
                    queue.append(i)
        return queue
    visits, stack = [], [root]
    while stack and len(visits) <= MAX_VISITS:
        node = stack.pop()
        visits.append(node)
        stack.extend(reversed(_ordered(graph.inputs[node], node, way)))
    return None if stack else visits


def _backward(graph: _Graph, outputs: list[int], way: Way) -> list[list[float]] | None:
    """Every node's gradient after each ``backward()`` call (None: it would not end)."""
    slips = dict(way.slips)
    grad = [0.0] * len(graph.values)
    after = []
    for root in outputs:
        order = _topological(graph, root, way)
        visits = _visits(graph, root, way, order)
        if visits is None:
            return None
        for node in order:
            if way.reset == "all" or (way.reset == "nonleaf" and graph.labels[node]):
                grad[node] = 0.0
        grad[root] = 1.0
        for node in visits:
            label = graph.labels[node]
            if label is None:
                continue
            inputs = graph.inputs[node]
            local = slips.get(label, OPS[CODE[label]].local)(
                graph.values[inputs[0]], graph.values[inputs[-1]], graph.numbers[node],
                graph.values[node])
            upstream = 1.0 if label in way.unchained else grad[node]
            for i, d in zip(inputs, local, strict=False):
                grad[i] = d * upstream if way.overwrite else grad[i] + d * upstream
        after.append(list(grad))
    return after


def run_program(case: dict, way: Way = RIGHT) -> np.ndarray | None:
    """The leaf gradients a backward loop that goes ``way`` leaves after each
    ``backward()`` call on the program's outputs, shape (n, L) (None if that loop would
    not end in reasonable time)."""
    graph, outputs, n_leaves = _expand(case, way.derived)
    after = _backward(graph, outputs, way)
    return None if after is None else np.array([g[:n_leaves] for g in after])


def upstreams(case: dict) -> np.ndarray:
    """The gradient of a one-output program with respect to each operation's result, (K,)."""
    graph, outputs, n_leaves = _expand(case, derived=False)
    (grad,) = _backward(graph, outputs, RIGHT)
    return np.array(grad[n_leaves:])  # one node per operation, after the leaves


def _ways(case: dict) -> list[tuple[Kind, str, Way]]:
    """The mistakes to look for on ``case``, the likeliest first, as ways of a loop."""
    outputs = np.asarray(case["outputs"]).tolist()
    ways: list[tuple[Kind, str, Way]] = []
    for derived in (False, True):
        present = set(_expand(case, derived)[0].labels) - {None}
        if len(outputs) > 1:
            ways.append((Kind.OVERWRITE, "a second backward() call replaced the leaves' "
                         ".grad instead of adding to it (overwrite instead of accumulate): at "
                         "the start of backward() reset the non-leaf gradients only; leaves "
                         "accumulate, as torch's do", Way(derived, reset="all")))
        if len(set(outputs)) < len(outputs):
            ways.append((Kind.STALE_GRAD, "the second backward() on the same graph added the "
                         "first call's gradients of the inner nodes again: at the start of "
                         "backward() set every non-leaf .grad to 0 (leaves keep theirs)",
                         Way(derived, reset="none")))
        ways += [(Kind.OVERWRITE, "a gradient replaced the one already there (overwrite "
                  "instead of accumulate): a value used by several operations receives the "
                  "SUM of their gradients, so use += in every backward step",
                  Way(derived, inputs=k, overwrite=True)) for k in range(8)]
        ways.append((Kind.NO_TOPO, "the nodes ran in topological order, inputs first; "
                     "backward goes the other way: reverse that order, the output first",
                     Way(derived, order="forward")))
        ways += [(Kind.NO_TOPO, "a node's backward ran before every node that uses it had "
                  "added its gradient (breadth first from the output is not a topological "
                  "order): sort the nodes topologically and go through them in reverse",
                  Way(derived, order="bfs", inputs=k)) for k in range(4)]
        ways += [(Kind.NO_TOPO, "a node's backward ran once for every path to it, each time "
                  "with the gradient it had so far (a recursive backward without a "
                  "topological sort): sort the nodes, then run each one's backward once, "
                  "in reverse order", Way(derived, order="recursive", inputs=k, reset=reset))
                 for k in range(2) for reset in ("nonleaf", "none")]
        ways.append((Kind.CHAIN, "no local gradient was multiplied by the upstream gradient "
                     "out.grad; downstream = upstream x local",
                     Way(derived, unchained=frozenset(CODE))))
        for method, labels in METHODS.items():
            if present & set(labels):
                ways.append((Kind.CHAIN, f"{method} ({', '.join(labels)}): its local "
                             "gradient was not multiplied by the upstream gradient out.grad; "
                             "downstream = upstream x local",
                             Way(derived, unchained=frozenset(labels))))
        for method, slips in SLIPS.items():
            ways += [(kind, f"{method}: {message}", Way(derived, slips=tuple(local.items())))
                     for kind, message, local in slips if present & set(local)]
    return ways


def mistakes(case: dict) -> list[tuple[Kind, str, np.ndarray]]:
    """What each mistake of :func:`_ways` gives on ``case`` (n, L), the first of each
    distinct result only, none that gives the right one."""
    found: list[tuple[Kind, str, np.ndarray]] = [(Kind.VALUES, "", run_program(case))]
    for kind, message, way in _ways(case):
        got = run_program(case, way)
        if got is not None and not any(np.allclose(got, other, rtol=1e-9, atol=1e-12)
                                       for _, _, other in found):
            found.append((kind, message, got))
    return found[1:]


# ---------------------------------------------------------------- building programs
@dataclass
class Builder:
    """A program under construction. Values are handles; each operation's value is
    computed as it is added; :meth:`case` puts the leaves first."""

    leaves: list[float] = field(default_factory=list)
    ops: list[int] = field(default_factory=list)
    args: list[tuple[int, int]] = field(default_factory=list)
    consts: list[float] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    where: list[tuple[bool, int]] = field(default_factory=list)  # (a leaf?, its number)
    uses: list[int] = field(default_factory=list)

    def leaf(self, value: float) -> int:
        self.where.append((True, len(self.leaves)))
        self.leaves.append(float(value))
        return self._value(float(value))

    def op(self, label: str, a: int, b: int = -1, c: float = 0.0) -> int:
        code = CODE[label]
        self.where.append((False, len(self.ops)))
        self.ops.append(code)
        self.args.append((a, b))
        self.consts.append(float(c))
        for operand in (a, b) if b >= 0 else (a,):
            self.uses[operand] += 1
        return self._value(OPS[code].forward(self.values[a], self.values[b] if b >= 0
                                             else 0.0, float(c)))

    def _value(self, value: float) -> int:
        self.values.append(value)
        self.uses.append(0)
        return len(self.values) - 1

    def _index(self, handle: int) -> int:
        is_leaf, number = self.where[handle]
        return number if is_leaf else len(self.leaves) + number

    def case(self, outputs: list[int]) -> dict:
        """The program as a case of the ``value_graph`` convention."""
        return {"leaves": np.array(self.leaves, dtype=np.float64),
                "ops": np.array(self.ops, dtype=np.int64),
                "args": np.array([[self._index(a), self._index(b) if b >= 0 else -1]
                                  for a, b in self.args], dtype=np.int64).reshape(-1, 2),
                "consts": np.array(self.consts, dtype=np.float64),
                "outputs": np.array([self._index(k) for k in outputs], dtype=np.int64)}


def _signed(rng: np.random.Generator, low: float, high: float) -> float:
    return float(rng.choice([-1.0, 1.0]) * rng.uniform(low, high))


def _constant(code: int, rng: np.random.Generator) -> float:
    """The number ``c`` of an operation: an exponent for ``a ** c``; else away from 0 and
    from +-1 (a factor of 1 would hide a missing one)."""
    label = OPS[code].label
    if label == "a ** c":
        return float(rng.choice([2, 3, -1, 0.5, 1.5, -2]))
    if "c" in label:
        return _signed(rng, 1.3, 2.5) if rng.random() < 0.5 else _signed(rng, 0.4, 0.8)
    return 0.0


def _fits(code: int, a: float, b: float, c: float) -> bool:
    """Operands inside the operation's domain, away from kinks and flat tails, with a
    result of moderate size."""
    label = OPS[code].label
    if max(abs(a), abs(b)) > 4:
        return False
    if (label == "a / b" and abs(b) < 0.5) or (label == "c / a" and abs(a) < 0.5):
        return False
    if label == "a ** c" and not (0.5 <= a <= 3 or (c > 0 and c.is_integer() and a != 0)):
        return False
    if (label == "a.exp()" and abs(a) > 1.5) or (label == "a.tanh()" and abs(a) > 2.5):
        return False
    if label == "a.relu()" and a < 0.2:  # a relu at 0 hides everything beneath it
        return False
    return abs(OPS[code].forward(a, b, c)) <= 5


def _fresh(code: int, c: float, rng: np.random.Generator) -> float:
    """A new leaf's value for the first operand of operation ``code`` (any other operand:
    the default range)."""
    label = OPS[code].label
    if label == "a.relu()" or (label == "a ** c" and not (c > 0 and c.is_integer())):
        return float(rng.uniform(0.5, 2.0))
    return _signed(rng, 0.5, 2.0)


def _operand(p: Builder, pool: list[int], code: int, first: bool, c: float, other: float,
             rng: np.random.Generator, take: bool) -> int:
    """An operand of operation ``code``: a value of ``pool`` that fits (taken out of it
    if ``take``), else a new leaf."""
    def fits(x: float) -> bool:
        return _fits(code, x, other, c) if first else _fits(code, other, x, c)

    fitting = [h for h in pool if fits(p.values[h])]
    if fitting and rng.random() < 0.85:
        handle = fitting[int(rng.integers(len(fitting)))]
        if take:
            pool.remove(handle)
        return handle
    while True:
        value = _fresh(code, c, rng) if first else _signed(rng, 0.5, 2.0)
        if fits(value):
            return p.leaf(value)


def random_program(rng: np.random.Generator, reuse: bool, extra: int = 4) -> dict:
    """A program that uses every operation at least once (and ``extra`` more), its result
    multiplied by a new leaf so that every operation sits below the output. Without
    ``reuse`` it is a tree (every value used once); with it, operands come from every
    value made so far, so values fan out. Every leaf's gradient stays away from 0 and
    every operation's upstream gradient away from +-1 (a missing factor would not show)."""
    while True:
        p, pool = Builder(), []
        codes = [*range(len(OPS)), *rng.integers(0, len(OPS), extra).tolist()]
        rng.shuffle(codes)
        for code in codes:
            c = _constant(code, rng)
            candidates = list(range(len(p.values))) if reuse else pool
            a = _operand(p, candidates, code, True, c, 1.0, rng, take=not reuse)
            b = _operand(p, candidates, code, False, c, p.values[a], rng, take=not reuse) \
                if OPS[code].binary else -1
            pool.append(p.op(OPS[code].label, a, b, c))
        sinks = [h for h in range(len(p.values)) if p.uses[h] == 0]
        while len(sinks) > 1:
            sinks.append(p.op("a + b", sinks.pop(0), sinks.pop(0)))
        case = p.case([p.op("a * b", sinks[0], p.leaf(_signed(rng, 0.5, 1.5)))])
        if np.all(np.abs(np.abs(upstreams(case)[:-1]) - 1) > 0.05) and \
                np.all(np.abs(run_program(case)) > 1e-3):
            return case


def _quarters(rng: np.random.Generator, n: int) -> list[float]:
    """``n`` numbers from +-{0.25, 0.5, ..., 2}: easy to follow by hand."""
    return [float(rng.choice([-1, 1]) * rng.integers(1, 9) / 4) for _ in range(n)]


#: The fan-out graphs (the ``fanout`` check) as they read, and their numbers of leaves.
FANOUT = (("q = a * b;  f = q * q + q * c + a", 3),
          ("t = (a * c + b).tanh();  f = t * (-t).exp() * (t + c) + c * c", 3),
          ("z = a * b;  f = z + ((z * c).tanh() * d).tanh()", 4))
#: The graph of the ``twice`` check.
TWICE = "t = (a * b + c).tanh();  f = t * a + b"


def fanout_program(number: int, values: list[float]) -> dict:
    """Graph ``number`` of :data:`FANOUT` at leaves ``values`` (a, b, c[, d])."""
    p = Builder()
    a, b, c, *more = (p.leaf(v) for v in values)
    if number == 0:
        q = p.op("a * b", a, b)
        out = p.op("a + b", p.op("a + b", p.op("a * b", q, q), p.op("a * b", q, c)), a)
    elif number == 1:
        t = p.op("a.tanh()", p.op("a + b", p.op("a * b", a, c), b))
        u = p.op("a * b", t, p.op("a.exp()", p.op("-a", t)))
        out = p.op("a + b", p.op("a * b", u, p.op("a + b", t, c)), p.op("a * b", c, c))
    else:
        z = p.op("a * b", a, b)
        inner = p.op("a.tanh()", p.op("a * b", p.op("a.tanh()", p.op("a * b", z, c)),
                                      more[0]))
        out = p.op("a + b", z, inner)
    return p.case([out])


def twice_program(values: list[float], same_graph: bool) -> dict:
    """:data:`TWICE` at leaves a, b, c with ``backward()`` called on it twice
    (``same_graph``), or on it and on the same expression built again over the same
    leaves (two graphs, as two mini-batches make)."""
    p = Builder()
    a, b, c = (p.leaf(v) for v in values)

    def build() -> int:
        t = p.op("a.tanh()", p.op("a + b", p.op("a * b", a, b), c))
        return p.op("a + b", p.op("a * b", t, a), b)

    first = build()
    return p.case([first, first] if same_graph else [first, build()])


def _readable(make: Callable[[list[float]], dict], n: int, rng: np.random.Generator) -> dict:
    """``make`` at leaves in quarters where every leaf's gradient is clearly away from 0
    and every mistake of :func:`_ways` gives other numbers than the right ones."""
    while True:
        case = make(_quarters(rng, n))
        right = run_program(case)
        if np.all(np.abs(right) > 0.05) and all(
                compare(got, right) is not None for _, _, got in mistakes(case)):
            return case


def ops_program(rng: np.random.Generator, instances: int = 2) -> dict:
    """Every operation on its own, ``instances`` times, each on leaves of its own: one
    output per instance (no leaf is shared, so a leaf's final ``.grad`` is its own
    operation's local gradient). relu gets a positive and a negative input, ``a ** c`` a
    positive integer exponent and another one."""
    p, outputs = Builder(), []
    for code, op in enumerate(OPS):
        for k in range(instances):
            c = _constant(code, rng)
            if op.label == "a ** c":
                c = float(rng.choice([2, 3])) if k == 0 else float(rng.choice([-1, 0.5, 1.5]))
            while True:
                a, b = _fresh(code, c, rng), _signed(rng, 0.5, 2.0)
                if op.label == "a.relu()":
                    a = a if k % 2 == 0 else -a
                if _fits(code, a, b, c) or op.label == "a.relu()":
                    break
            outputs.append(p.op(op.label, p.leaf(a), p.leaf(b) if op.binary else -1, c))
    return p.case(outputs)


def large_program(rng: np.random.Generator, pairs: int = 4096) -> dict:
    """tanh(x_i * y_i) for ``pairs`` pairs of leaves, summed as a balanced tree (depth
    about log2(pairs)): 12,287 operations over 8,192 leaves by default. Numerical
    differentiation needs a forward pass per leaf (even on plain floats, 2 ms each here:
    16 s); a backward pass costs about one (with the notebook's Value, 30 ms in all)."""
    p = Builder()
    level = [p.op("a.tanh()", p.op("a * b", p.leaf(x), p.leaf(y)))
             for x, y in rng.normal(0, 1, (pairs, 2)).tolist()]
    while len(level) > 1:
        level = [p.op("a + b", level[k], level[k + 1]) if k + 1 < len(level) else level[k]
                 for k in range(0, len(level), 2)]
    return p.case(level)


# ------------------------------------------------------------------ running answers
def run_answer(call: str, answer: Any, case: Case) -> dict:
    """Call ``answer`` on one case here (the student's kernel): the outcome, as the
    grader's sandbox would report it."""
    start = time.perf_counter()
    try:
        returned = CALLS[call](answer, case.values, (), ())
    except Exception as error:  # the student's code may raise anything
        return {"error": type(error).__name__, "message": str(error)[:2000]}
    if case.budget is not None and time.perf_counter() - start > case.budget:
        return {"timeout": case.budget, "large": True}
    return {"returned": returned}


#: Why an engine that misses the large graph's budget fails.
TOO_SLOW_GRAPH = ("your code took more than {seconds:g} s on a graph of thousands of "
                  "operations. backward() should cost about as much as building the graph: "
                  "one topological sort (a set of visited nodes, not a list) and one pass; "
                  "numerical differentiation needs a forward pass per leaf.")


def _not_run(result: Result, outcome: dict, label: str, reveal: bool,
             signature: str) -> Result:
    """A failure for an outcome in which the answer did not return."""
    unfinished = did_not_finish(result, outcome, label, TOO_SLOW_GRAPH)
    if unfinished is not None:
        return unfinished
    name, message = str(outcome.get("error"))[:100], str(outcome.get("message", ""))[:2000]
    harness = name != "ValueOpError"  # the harness's own words, not the answer's
    if not harness and message.count("|") >= 2:
        where, name, message = message.split("|", 2)
        label = f"{label}{where}: "
        hint = NEEDS.get(where, "")
        hint = f" (define {hint})" if hint and name in ("TypeError", "AttributeError") else ""
        if where == "backward()" and name == "RecursionError":
            hint = (" (a recursive topological sort goes as deep as the graph: sort with a "
                    "list as a stack instead)")
    else:
        hint = ""
    if name == "NotImplementedError":
        return result.fail(Kind.NOT_IMPLEMENTED, f"{label}not implemented yet: write "
                                                  f"{signature}.")
    if harness and name == "TypeError" and "not a number" in message:
        return result.fail(Kind.TYPE, f"{label}{message}: keep plain floats in .data and "
                                      ".grad.")
    if harness and name == "ValueError" and "parameters() returned" in message:
        return result.fail(Kind.PARAMETERS, f"{label}{message}.")
    if not reveal:
        shown = name if name in BUILTIN_ERRORS else "an exception"
        return result.fail(Kind.ERROR, f"{label}your code raised {shown} (its message is "
                                       f"not shown for a hidden check){hint}.")
    return result.fail(Kind.ERROR, f"{label}your code raised {name}: {message}{hint}.")


def _shown(values: np.ndarray) -> str:
    return np.array2string(np.round(values, 6), separator=", ")


@dataclass
class EngineExercise(Exercise):
    """The student's scalar ``Value`` class, checked on programs built with it.

    Parts: ``ops`` every operation alone (forward values and local gradients, named per
    operation); ``chain`` two random trees that use every operation below others (a
    local gradient not multiplied by ``out.grad`` shows); ``fanout`` three graphs whose
    values are used several times (overwrite instead of accumulate, no topological
    order); ``twice`` ``backward()`` twice on one graph, and on two graphs over the same
    leaves; ``random`` random graphs with fan-out, one of them differentiated twice, and
    the large graph (run first, with a time budget).
    """

    id: str
    notebook: str
    title: str
    answer: str = "Value"
    signature: str = "the class Value"
    budget: float = 5.0
    call: str = "value_graph"
    sandbox: Sandbox = NUMPY
    requires: tuple[str, ...] = ()
    inputs: tuple[str, ...] = ()
    wrt: tuple[str, ...] = ()

    @property
    def parts(self) -> tuple[str, ...]:
        return ("ops", "chain", "fanout", "twice", "random")

    def cases(self, part: str, rng: np.random.Generator) -> list[Case]:
        """The check's programs, drawn from ``rng``."""
        self.check_part(part)
        if part == "ops":
            return [Case(ops_program(rng))]
        if part == "chain":
            return [Case(random_program(rng, reuse=False)) for _ in range(2)]
        if part == "fanout":
            return [Case(_readable(lambda v, n=n: fanout_program(n, v), leaves, rng))
                    for n, (_, leaves) in enumerate(FANOUT)]
        if part == "twice":
            return [Case(_readable(lambda v, same=same: twice_program(v, same), 3, rng))
                    for same in (True, False)]
        once, twice = random_program(rng, reuse=True), random_program(rng, reuse=True)
        twice["outputs"] = np.repeat(twice["outputs"], 2)
        return [Case(once), Case(twice)]

    def large_case(self, rng: np.random.Generator) -> Case:
        """The large graph: an answer that misses ``budget`` scores nothing here."""
        return Case(large_program(rng), budget=self.budget)

    def run_in_kernel(self, answer: Any, part: str, rng: np.random.Generator) -> Result:
        """Run and judge one check in the student's kernel (``random`` runs the large
        graph too)."""
        cases = self.cases(part, rng) + ([self.large_case(rng)] if part == "random" else [])
        outcomes = []
        for case in cases:
            outcomes.append(run_answer(self.call, answer, case))
            if "returned" not in outcomes[-1]:
                break
        return self.judge(part, cases, outcomes, reveal=True)

    # ------------------------------------------------------------------ judging
    def _label(self, part: str, number: int, case: Case) -> str:
        if case.budget is not None:
            return "large graph: "
        if part == "fanout":
            return f"graph {number + 1} ({FANOUT[number][0]}): "
        if part == "twice":
            return (f"backward() twice on {TWICE}: " if number == 0 else
                    f"backward() on {TWICE} and on it built again from the same leaves: ")
        if part in ("chain", "random"):
            return f"random graph {number + 1}: "
        return ""

    def judge(self, part: str, cases: list[Case], outcomes: list[dict],
              reveal: bool = True) -> Result:
        """Judge the answer's outcomes on ``cases``; with ``reveal=False`` (a hidden
        check) no message shows a number of a case."""
        self.check_part(part)
        result = Result(self.id, part)
        for number, case in enumerate(cases):
            label = self._label(part, number, case)
            if number >= len(outcomes):
                return result.fail(Kind.ERROR, f"{label}your code was not run on this case.")
            if "returned" not in outcomes[number]:
                return _not_run(result, outcomes[number], label, reveal, self.signature)
            data, grads = outcomes[number]["returned"]
            if part == "ops":
                self._judge_ops(result, case, data, grads, reveal)
            else:
                self._judge_graph(result, part, case, data, grads, label, reveal)
            if not result.passed:
                return result
        if part == "ops":
            result.messages.append(f"forward values and local gradients of all {len(OPS)} "
                                   "operations: correct.")
        else:
            result.messages.append(f"every leaf's .grad on {len(cases)} graph(s): correct "
                                   "(as torch's).")
        return result

    def _judge_ops(self, result: Result, case: Case, data: Any, grads: Any,
                   reveal: bool) -> None:
        values = case.values
        n_leaves = len(values["leaves"])
        codes = np.asarray(values["ops"])[np.asarray(values["outputs"]) - n_leaves]
        args = np.asarray(values["args"])[np.asarray(values["outputs"]) - n_leaves]
        consts = np.asarray(values["consts"])[np.asarray(values["outputs"]) - n_leaves]
        leaves = np.asarray(values["leaves"], dtype=np.float64)
        expected_data, expected = program_outputs(values), reference(case)[-1]
        try:
            data, final = as_float_array(data), as_float_array(grads)[-1]
        except (TypeError, ValueError, IndexError):
            result.fail(Kind.TYPE, "the outputs' .data and the leaves' .grad must be numbers.")
            return
        if np.allclose(data, expected_data, rtol=1e-7, atol=1e-12) and \
                final.shape == expected.shape and compare(final, expected) is not None:
            for kind, message, got in mistakes(values):  # one mistake explains them all?
                if compare(final, got[-1]) is None:
                    wrong = sorted({OPS[codes[k]].label for k, (i, j) in enumerate(args)
                                    if compare(got[-1][[i, j][:1 + OPS[codes[k]].binary]],
                                               expected[[i, j][:1 + OPS[codes[k]].binary]])})
                    if kind == Kind.CHAIN:  # only where an operation is built of others
                        message = ("a local gradient was not multiplied by the upstream "
                                   "gradient out.grad (downstream = upstream x local): it "
                                   "shows where one step of an operation feeds another")
                    result.fail(kind, f"{message} (it shows in {', '.join(wrong)}).")
                    return
        for code, op in enumerate(OPS):
            rows = np.flatnonzero(codes == code)
            if not np.allclose(data[rows], expected_data[rows], rtol=1e-7, atol=1e-12):
                shown = (f": expected {_shown(expected_data[rows])}, got {_shown(data[rows])}"
                         if reveal else "")
                result.fail(Kind.FORWARD, f"{op.label}: the forward value is wrong{shown}.")
                continue
            for which in ("a", "b") if op.binary else ("a",):
                index = args[rows, 0 if which == "a" else 1]
                slips = []
                for slip in (s for group in SLIPS.values() for s in group if op.label in s[2]):
                    kind, message, local = slip
                    wrong = [local[op.label](leaves[i], leaves[j], c, o)[which == "b"]
                             for i, j, c, o in zip(args[rows, 0], args[rows, 1], consts[rows],
                                                   expected_data[rows], strict=True)]
                    slips.append((kind, message, np.array(wrong, dtype=np.float64)))
                found = diagnose(final[index], expected[index], f"{op.label}, d/d{which}",
                                 alternatives=slips, reveal=reveal)
                if not found.ok:
                    formula = "" if found.kind in {k for k, _, _ in slips} else \
                        f" ({op.formula})"
                    result.fail(found.kind, found.message + formula)

    def _judge_graph(self, result: Result, part: str, case: Case, data: Any, grads: Any,
                     label: str, reveal: bool) -> None:
        expected_data = program_outputs(case.values)
        try:
            data, grads = as_float_array(data), as_float_array(grads)
        except (TypeError, ValueError):
            result.fail(Kind.TYPE, f"{label}the output's .data and the leaves' .grad must "
                                   "be numbers.")
            return
        if data.shape != expected_data.shape or not np.allclose(data, expected_data,
                                                                 rtol=1e-7, atol=1e-12):
            shown = (f" (expected {_shown(expected_data)}, got {_shown(data)})"
                     if reveal and data.shape == expected_data.shape else "")
            result.fail(Kind.FORWARD, f"{label}the output's .data is wrong{shown}: an "
                                      "operation's forward is wrong (see the ops check).")
            return
        expected = reference(case)
        one = len(expected) == 1
        leaves = f" ({', '.join('abcd'[:expected.shape[1]])})" if part in ("fanout", "twice") \
            else ""
        name = f"the leaves' .grad{leaves}" + ("" if one else " after each backward() call "
                                               "(a row per call)")
        if grads.shape == expected.shape and compare(grads, expected) is None:
            return
        alternatives = [] if case.budget is not None else [  # no fan-out in the large one
            (kind, message, got[0] if one else got) for kind, message, got in
            mistakes(case.values)]
        found = diagnose(grads[0] if one and grads.shape == expected.shape else grads,
                         expected[0] if one else expected, name, alternatives=alternatives,
                         reveal=reveal)
        result.fail(found.kind, label + found.message)


# ------------------------------------------------------------------ the MLP
@dataclass(frozen=True)
class Net:
    """A variant of the MLP: the right one by default. ``bias``: each neuron adds its
    bias; ``bias_first``: ``parameters()`` lists a neuron's bias before its weights;
    ``hidden``/``last``: the activation of the hidden layers and of the last one."""

    bias: bool = True
    bias_first: bool = False
    hidden: str = "tanh"
    last: str = "linear"


MLP_SLIPS: tuple[tuple[Kind, str, Net], ...] = (
    (Kind.FORWARD, "these are the outputs of the network without biases: every neuron "
     "computes tanh(w . x + b), with its bias b", Net(bias=False)),
    (Kind.PARAMETERS, "parameters() lists a neuron's bias before its weights: layer by layer, "
     "neuron by neuron, its weights first, then its bias", Net(bias_first=True)),
    (Kind.FORWARD, "the last layer applies tanh too: it is linear (nonlin=False)",
     Net(last="tanh")),
    (Kind.FORWARD, "the hidden layers apply no tanh: every layer but the last does",
     Net(hidden="linear")),
    (Kind.FORWARD, "the hidden layers apply relu; this MLP uses tanh", Net(hidden="relu")),
)


def mlp_parameters(sizes: list[int], params: Any, bias_first: bool = False) -> list[tuple]:
    """The (weight (nout, nin), bias (nout,)) of each layer from the flat parameters (P,)
    in ``parameters()`` order (rows of ``params`` may be numpy or torch)."""
    layers, offset = [], 0
    for nin, nout in zip(sizes[:-1], sizes[1:], strict=True):
        block = params[offset:offset + nout * (nin + 1)].reshape(nout, nin + 1)
        offset += nout * (nin + 1)
        layers.append((block[:, 1:], block[:, 0]) if bias_first else (block[:, :-1],
                                                                       block[:, -1]))
    return layers


def mlp_reference(case: dict, net: Net = Net()) -> tuple[np.ndarray, np.ndarray]:
    """torch's outputs (N, nout) of the MLP variant ``net`` and the gradients (P,) of
    ``sum(outputs * grad_out)`` with respect to its parameters."""
    import torch

    sizes = np.asarray(case["sizes"]).tolist()
    params = torch.tensor(np.asarray(case["params"], dtype=np.float64), requires_grad=True)
    h = torch.tensor(np.asarray(case["x"], dtype=np.float64))
    layers = mlp_parameters(sizes, params, net.bias_first)
    act = {"tanh": torch.tanh, "relu": torch.relu, "linear": lambda t: t}
    for number, (weight, bias) in enumerate(layers):
        h = h @ weight.T + (bias if net.bias else 0.0)
        h = act[net.last if number == len(layers) - 1 else net.hidden](h)
    (h * torch.tensor(np.asarray(case["grad_out"], dtype=np.float64))).sum().backward()
    return h.detach().numpy(), params.grad.numpy().copy()


@dataclass
class MLPExercise(Exercise):
    """An MLP of the student's Values with given weights: ``forward`` compares its
    outputs for a batch with torch's, ``grads`` every parameter's gradient of a weighted
    sum of the outputs."""

    id: str
    notebook: str
    title: str
    answer: str = "MLP"
    signature: str = "MLP(nin, nouts) with parameters() (and Neuron, Layer)"
    sizes: tuple[int, ...] = (3, 4, 4, 2)
    rows: int = 3
    call: str = "value_mlp"
    sandbox: Sandbox = NUMPY
    requires: tuple[str, ...] = ("value_engine",)
    inputs: tuple[str, ...] = ()
    wrt: tuple[str, ...] = ()

    @property
    def parts(self) -> tuple[str, ...]:
        return ("forward", "grads")

    def cases(self, part: str, rng: np.random.Generator) -> list[Case]:
        """One batch through the MLP of :attr:`sizes`, with weights drawn from ``rng``."""
        self.check_part(part)
        count = sum((nin + 1) * nout for nin, nout in zip(self.sizes[:-1], self.sizes[1:],
                                                           strict=True))
        return [Case({"sizes": np.array(self.sizes, dtype=np.int64),
                      "x": rng.normal(0, 1, (self.rows, self.sizes[0])),
                      "params": rng.normal(0, 0.8, count),
                      "grad_out": rng.normal(0, 1, (self.rows, self.sizes[-1]))})]

    def run_in_kernel(self, answer: Any, part: str, rng: np.random.Generator) -> Result:
        """Run and judge one check in the student's kernel."""
        cases = self.cases(part, rng)
        return self.judge(part, cases, [run_answer(self.call, answer, cases[0])], reveal=True)

    def judge(self, part: str, cases: list[Case], outcomes: list[dict],
              reveal: bool = True) -> Result:
        """Judge the outputs (and for ``grads`` the parameters' gradients)."""
        self.check_part(part)
        result = Result(self.id, part)
        (case,) = cases
        if not outcomes or "returned" not in outcomes[0]:
            return _not_run(result, outcomes[0] if outcomes else {"error": "Error"}, "",
                            reveal, self.signature)
        outputs, grads = outcomes[0]["returned"]
        expected_out, expected = mlp_reference(case.values)
        shape = f"MLP({self.sizes[0]}, {list(self.sizes[1:])})"
        try:
            outputs, grads = as_float_array(outputs), as_float_array(grads)
        except (TypeError, ValueError):
            return result.fail(Kind.TYPE, "outputs and gradients must be numbers.")
        if outputs.shape != expected_out.shape or compare(outputs, expected_out) is not None:
            for kind, message, net in MLP_SLIPS:
                if outputs.shape == expected_out.shape and compare(
                        outputs, mlp_reference(case.values, net)[0]) is None:
                    return result.fail(kind, f"{shape}: {message}.")
            shown = (f": expected {_shown(expected_out)}, got {_shown(outputs)}"
                     if reveal and outputs.shape == expected_out.shape else "")
            return result.fail(Kind.FORWARD, f"{shape}: the outputs are wrong{shown} "
                                             f"({FIX_VALUE_FIRST}).")
        if part == "forward":
            result.messages.append(f"{shape}: the outputs of {self.rows} inputs are right "
                                   "(as torch's, with the same weights).")
            return result
        found = diagnose(grads, expected, "the parameters' .grad", reveal=reveal)
        if not found.ok:
            hint = f" ({FIX_VALUE_FIRST})" if found.kind == Kind.VALUES else ""
            return result.fail(found.kind, f"{shape}: {found.message}{hint}")
        result.messages.append(f"{shape}: {found.message}")
        return result


# ------------------------------------------------------------------ two moons
def moons(rng: np.random.Generator, n: int, noise: float = 0.1) -> tuple[np.ndarray,
                                                                           np.ndarray]:
    """Two interleaving half circles (as scikit-learn's ``make_moons``): ``n`` points
    (n, 2) with Gaussian ``noise``, and their labels 0 or 1 (n,), shuffled."""
    upper = n // 2
    angles = rng.uniform(0, np.pi, n)
    points = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    points[upper:] = [1.0, 0.5] - points[upper:]
    labels = np.repeat(np.arange(2, dtype=np.int64), [upper, n - upper])
    order = rng.permutation(n)
    return points[order] + rng.normal(0, noise, (n, 2)), labels[order]


def standardized_moons(rng: np.random.Generator, n_train: int = 100, n_test: int = 200
                       ) -> tuple[dict, np.ndarray]:
    """``n_train`` training and ``n_test`` test points of two moons (noise 0.1), both
    standardised with the training points' mean and standard deviation per feature:
    ``X_train`` (n_train, 2), ``y_train`` (n_train,), ``X_test`` (n_test, 2), and the test
    labels (n_test,)."""
    x, y = moons(rng, n_train + n_test)
    x = (x - x[:n_train].mean(axis=0)) / x[:n_train].std(axis=0)
    return {"X_train": x[:n_train], "y_train": y[:n_train], "X_test": x[n_train:]}, \
        y[n_train:]


#: the widest hidden layer the training exercise accepts
MAX_HIDDEN = 32


def predict_moons(params: tuple[np.ndarray, ...], x: np.ndarray) -> np.ndarray:
    """The grader's forward pass of the trained ``MLP(2, [H, 1])``: class 1 where the
    output is positive.

    Shape
    -----
    params : ((4H + 1),), the ``.data`` of ``parameters()`` in order (each neuron's weights,
    then its bias; the H tanh neurons, then the linear output);  x : (M, 2);  out : (M,)
    """
    (flat,) = params
    flat = flat.reshape(-1)
    hidden, extra = divmod(flat.size - 1, 4)
    if extra or not 1 <= hidden <= MAX_HIDDEN:
        raise ValueError(f"parameters() gave {flat.size} numbers; MLP(2, [H, 1]) with H from "
                         f"1 to {MAX_HIDDEN} hidden neurons has 4H + 1")
    (w1, b1), (w2, b2) = mlp_parameters([2, hidden, 1], flat)
    out = np.tanh(x @ w1.T + b1) @ w2.T + b2
    return (out[:, 0] > 0).astype(np.int64)


register(EngineExercise(
    id="value_engine",
    notebook=NOTEBOOK,
    title="A scalar Value: operations with their local gradients, and backward() with a "
          "topological sort and accumulation",
))
register(MLPExercise(
    id="value_mlp",
    notebook=NOTEBOOK,
    title="Neuron, Layer and MLP of Values, with parameters()",
))
register(TrainingExercise(
    id="value_training",
    notebook=NOTEBOOK,
    title="Train your MLP on two moons with your own engine: at least 90% test accuracy",
    answer="train",
    signature=f"train(X_train, y_train) returning your trained MLP(2, [H, 1]), "
              f"H <= {MAX_HIDDEN}",
    data=standardized_moons,
    predict=predict_moons,
    threshold=0.9,
    wrt=("params",),
    budget=30.0,
    requires=("value_engine", "value_mlp"),
))
