"""Notebook 09, an engine from scratch: the notebook's solution passes every part; each
seeded mistake fails its part with its Kind and a phrase that names it; the backward loop
that makes mistakes on purpose (``run_program``) gives exactly what a Value class with that
mistake gives, so that the diagnoses name real students' mistakes; the reference training
reaches 90% on the moons the check draws; and the grader runs the Value in its sandbox.

Answers come from the notebook itself: its solution cells run in one namespace, as the
student's notebook (and the grader's sandbox) runs them; a mistake replaces a few lines of
a cell, as a student's own cell would have them.
"""

from __future__ import annotations

import json
import math
import re
import time
import warnings
from pathlib import Path
from typing import Any

import nbformat
import numpy as np
import pytest

from backprop_course.checks import Kind, Result, get
from backprop_course.checks.exercises import nb09_engine_from_scratch as nb09
from backprop_course.checks.exercises.nb09_engine_from_scratch import (
    FANOUT,
    METHODS,
    NOTEBOOK,
    OPS,
    Way,
    moons,
    predict_moons,
    run_program,
    torch_reference,
)
from backprop_course.checks.harness import CALLS, decode_case, encode_case
from backprop_course.grader.answers import check_calls, is_hidden, is_test_cell, nbgrader_meta

pytest.importorskip("torch")  # the references of the checks
PATH = Path(__file__).resolve().parents[2] / "notebooks" / f"{NOTEBOOK}.ipynb"
SOURCE = nbformat.read(PATH, as_version=4)
SOLUTION_CELLS = {nbgrader_meta(c)["grade_id"]: c.source for c in SOURCE.cells
                  if nbgrader_meta(c).get("solution")}
EXERCISES = ("value_engine", "value_mlp", "value_training")
VALUE_CELL, MLP_CELL, TRAIN_CELL = (f"{e}_solution" for e in EXERCISES)
SEEDS = (0, 1, 2)


def notebook(cells: dict[str, str] | None = None) -> dict:
    """The namespace the notebook's answer cells make (the markers are comments), with
    ``cells`` replacing some cells' code (by grade id)."""
    space: dict[str, Any] = {"np": np}
    for grade_id, source in SOLUTION_CELLS.items():
        exec(compile((cells or {}).get(grade_id, source), grade_id, "exec"), space)
    return space


def edited(grade_id: str, *pairs: tuple[str, str]) -> dict:
    """The namespace with the notebook's cell ``grade_id`` changed in a few places."""
    source = SOLUTION_CELLS[grade_id]
    for old, new in pairs:
        assert source.count(old) == 1, old
        source = source.replace(old, new)
    return notebook({grade_id: source})


def run(answer: Any, exercise_id: str, part: str, seed: int) -> Result:
    """One check as the notebook's ``check`` runs it, on the cases of ``seed``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # some mistakes overflow, on purpose
        return get(exercise_id).run_in_kernel(answer, part, np.random.default_rng(seed))


SOLUTION = notebook()


# ----------------------------------------------- a Value with closures, and mistakes
def closure_value(overwrite: bool = False, order: str = "reverse", reset: str = "nonleaf",
                  unchained: tuple[str, ...] = (), flip: bool = False) -> type:
    """A micrograd-style Value: each operation keeps a backward closure, and ``-``, ``/``,
    negation and a number on the left are built from ``+ * **``. The switches make the
    mistakes :class:`Way` describes (``unchained``: method names of :data:`METHODS`;
    ``flip``: a node's inputs visited last to first)."""

    class Value:
        def __init__(self, data, inputs=()):
            self.data, self.grad, self.inputs = float(data), 0.0, tuple(inputs)
            self.step = lambda: None

        def _made(self, method, data, pairs):
            out = Value(data, [inp for inp, _ in pairs])

            def step():
                upstream = 1.0 if method in unchained else out.grad
                for inp, local in pairs:
                    inp.grad = local * upstream if overwrite else inp.grad + local * upstream

            out.step = step
            return out

        def __add__(self, other):
            other = other if isinstance(other, Value) else Value(other)
            return self._made("__add__", self.data + other.data, ((self, 1.0), (other, 1.0)))

        def __mul__(self, other):
            other = other if isinstance(other, Value) else Value(other)
            return self._made("__mul__", self.data * other.data,
                              ((self, other.data), (other, self.data)))

        def __pow__(self, k):
            return self._made("__pow__", self.data**k, ((self, k * self.data ** (k - 1)),))

        def exp(self):
            return self._made("exp", math.exp(self.data), ((self, math.exp(self.data)),))

        def tanh(self):
            t = math.tanh(self.data)
            return self._made("tanh", t, ((self, 1 - t * t),))

        def relu(self):
            return self._made("relu", max(self.data, 0.0), ((self, float(self.data > 0)),))

        def __neg__(self):
            return self * -1

        def __sub__(self, other):
            return self + (-other)

        def __truediv__(self, other):
            return self * (other if isinstance(other, Value) else Value(other)) ** -1

        def __radd__(self, other):
            return self + other

        def __rmul__(self, other):
            return self * other

        def __rsub__(self, other):
            return (-self) + other

        def __rtruediv__(self, other):
            return self**-1 * other

        def _inputs(self):
            return self.inputs[::-1] if flip else self.inputs

        def backward(self):
            topo, seen = [], set()

            def visit(v):
                if id(v) not in seen:
                    seen.add(id(v))
                    for inp in v._inputs():
                        visit(inp)
                    topo.append(v)

            visit(self)
            for v in topo:
                if reset == "all" or (reset == "nonleaf" and v.inputs):
                    v.grad = 0.0
            self.grad = 1.0
            if order == "recursive":
                def down(v):
                    v.step()
                    for inp in v._inputs():
                        down(inp)
                down(self)
                return
            if order == "bfs":
                visits, seen = [self], {id(self)}
                for v in visits:
                    for inp in v._inputs():
                        if id(inp) not in seen:
                            seen.add(id(inp))
                            visits.append(inp)
            else:
                visits = topo[::-1] if order == "reverse" else topo
            for v in visits:
                v.step()

    return Value


#: (what a Value class does wrong, the Way that reproduces it)
FIDELITY = [
    (dict(), Way(derived=True)),
    (dict(overwrite=True), Way(derived=True, overwrite=True)),
    (dict(overwrite=True, flip=True), Way(derived=True, overwrite=True, inputs=1)),
    (dict(order="forward"), Way(derived=True, order="forward")),
    (dict(order="bfs"), Way(derived=True, order="bfs")),
    (dict(order="bfs", flip=True), Way(derived=True, order="bfs", inputs=1)),
    (dict(order="recursive", reset="none"), Way(derived=True, order="recursive", reset="none")),
    (dict(reset="all"), Way(derived=True, reset="all")),
    (dict(reset="none"), Way(derived=True, reset="none")),
    *[(dict(unchained=(method,)), Way(derived=True, unchained=frozenset(METHODS[method])))
      for method in ("__add__", "__mul__", "__pow__", "exp", "tanh", "relu")],
]


def _fidelity_cases() -> list[dict]:
    rng = np.random.default_rng(7)
    cases = [nb09.random_program(rng, reuse=reuse) for reuse in (False, True, True, True)]
    twice = nb09.random_program(rng, reuse=True)
    twice["outputs"] = np.repeat(twice["outputs"], 2)
    return [*cases, twice, nb09.twice_program([0.5, -1.0, 1.5], same_graph=False),
            *(nb09.fanout_program(n, [1.5, -0.5, 1.0, 2.0][:k])
              for n, (_, k) in enumerate(FANOUT)), nb09.ops_program(rng)]


@pytest.mark.parametrize(("switches", "way"), FIDELITY, ids=[str(s) for s, _ in FIDELITY])
def test_the_mistaken_loop_gives_what_a_value_class_with_that_mistake_gives(switches,
                                                                             way) -> None:
    """The diagnoses rest on this: ``run_program(case, way)`` is, to the last bit that
    matters, what a student's Value with that mistake leaves in the leaves' ``.grad``."""
    answer = closure_value(**switches)
    for case in _fidelity_cases():
        _, grads = CALLS["value_graph"](answer, case, (), ())
        np.testing.assert_allclose(grads, run_program(case, way), rtol=1e-12, atol=1e-12)


def test_the_notebooks_own_value_is_the_direct_and_the_derived_way() -> None:
    """The notebook's Value (local gradients kept as numbers) builds - and / from + * **:
    the derived graph, which gives the same right numbers as the direct one."""
    for case in _fidelity_cases():
        _, grads = CALLS["value_graph"](SOLUTION["Value"], case, (), ())
        for derived in (False, True):
            np.testing.assert_allclose(grads, run_program(case, Way(derived=derived)),
                                       rtol=1e-10, atol=1e-12)


def test_the_loop_agrees_with_torch_on_every_kind_of_program() -> None:
    rng = np.random.default_rng(11)
    for case in [*(nb09.random_program(rng, reuse=k % 2 == 1) for k in range(20)),
                 *_fidelity_cases(), nb09.large_program(rng, pairs=64)]:
        np.testing.assert_allclose(run_program(case), torch_reference(case), rtol=1e-10,
                                   atol=1e-12)


# ------------------------------------------------------------ the solution
def test_the_notebook_has_a_check_cell_per_part_and_an_answer_cell_per_exercise() -> None:
    """Committed without outputs; one locked check cell with points per part (only the
    Value's random graphs hidden); the answer cells define the checked names and import
    what they use (the grader runs them without the imports cell)."""
    graded = []
    for cell in SOURCE.cells:
        if cell.cell_type == "code":
            assert not cell.get("outputs") and cell.get("execution_count") is None
        if is_test_cell(cell):
            meta = nbgrader_meta(cell)
            assert meta["locked"] and isinstance(meta["points"], int) and meta["points"] > 0
            (call,) = check_calls(cell.source)
            assert meta["grade_id"] == f"{call.exercise}_{call.part}"
            assert is_hidden(cell.source) == (call.part == "random")
            graded.append((call.exercise, call.part))
    assert sorted(graded) == sorted((e, p) for e in EXERCISES for p in get(e).parts)
    assert set(SOLUTION_CELLS) == {get(e).answer_cell for e in EXERCISES}
    assert re.search(r"^import math$", SOLUTION_CELLS[VALUE_CELL], re.M)
    assert re.search(r"^import random$", SOLUTION_CELLS[MLP_CELL], re.M)
    for exercise_id in EXERCISES:
        name = get(exercise_id).answer
        assert re.search(rf"^(def|class) {name}\b", SOLUTION_CELLS[f"{exercise_id}_solution"],
                         re.M)


@pytest.mark.parametrize("exercise_id", EXERCISES[:2])
def test_the_notebooks_solution_passes_every_part(exercise_id: str) -> None:
    exercise = get(exercise_id)
    for part in exercise.parts:
        for seed in SEEDS:
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # a correct answer warns about nothing
                result = exercise.run_in_kernel(SOLUTION[exercise.answer], part,
                                                np.random.default_rng(seed))
            assert result.passed and result.kinds == [], result.report()


def test_the_reference_training_reaches_90_percent_on_every_draw_tried() -> None:
    """The notebook's training, on the moons the check draws: well above the threshold
    (3,000 draws of the same recipe gave 94% at worst) and well inside the budget."""
    exercise = get("value_training")
    for seed in range(4):
        (case,) = exercise.cases("accuracy", np.random.default_rng(seed))
        start = time.perf_counter()
        returned = CALLS["train"](SOLUTION["train"], case.values, exercise.inputs, exercise.wrt)
        seconds = time.perf_counter() - start
        result = exercise.judge("accuracy", [case], [{"returned": returned}])
        x_test, labels = case.expected
        accuracy = np.mean(predict_moons(returned, x_test) == labels)
        assert result.passed and accuracy >= 0.93, result.report()
        assert seconds < exercise.budget / 5


def test_the_training_check_never_shows_the_test_points_and_predicts_itself() -> None:
    """The answer gets X_train and y_train only; what it returns is read as the parameters
    of MLP(2, [H, 1]) and classified by the grader's forward pass: a nearest-neighbour
    classifier, predictions, or a network of another shape cannot pass."""
    exercise = get("value_training")
    (case,) = exercise.cases("accuracy", np.random.default_rng(0))
    assert set(case.values) == {"X_train", "y_train"}
    x_test, labels = case.expected
    assert x_test.shape == (200, 2) and labels.shape == (200,)

    def judged(returned: tuple) -> Result:
        return exercise.judge("accuracy", [case], [{"returned": returned}])

    predictions = judged((labels.astype(float),))  # the right labels, returned as if params
    assert not predictions.passed and predictions.kinds == [Kind.SHAPE], predictions.report()
    assert "4H + 1" in predictions.report()
    wide = judged((np.zeros(4 * 33 + 1),))
    assert not wide.passed and wide.kinds == [Kind.SHAPE]
    assert not judged((np.full(4 * 12 + 1, np.nan),)).passed
    untrained = judged((np.random.default_rng(1).normal(0, 1, 4 * 12 + 1),))
    assert not untrained.passed and untrained.kinds == [Kind.VALUES], untrained.report()

    class Knn:  # what a shortcut would return: no parameters() of a network
        def __call__(self, x):
            return [0.0]

    knn = judged(CALLS["train"](lambda x, y: Knn(), case.values, exercise.inputs,
                                exercise.wrt))
    assert not knn.passed and knn.kinds == [Kind.SHAPE], knn.report()


def test_every_student_gets_programs_and_moons_of_their_own() -> None:
    from backprop_course.checks.variants import rng_for  # noqa: PLC0415

    for exercise_id in EXERCISES:
        exercise = get(exercise_id)
        for part in exercise.parts:
            drawn = {json.dumps(encode_case(exercise.cases(
                part, rng_for("salt", f"student{i}", exercise_id, part))[0].values))
                for i in range(12)}
            assert len(drawn) == 12, (exercise_id, part)


def test_the_programs_have_the_shape_their_check_needs() -> None:
    """ops: every operation alone, twice, on leaves of its own; chain: trees that use
    every operation below another one; random: graphs where an operation's result is used
    several times; fanout and twice: the documented graphs, at numbers where every mistake
    shows; the large graph: thousands of operations, shallow."""
    exercise = get("value_engine")
    for seed in range(20):
        rng = np.random.default_rng(seed)
        (ops,) = exercise.cases("ops", rng)
        assert sorted(ops.values["ops"].tolist()) == sorted(2 * list(range(len(OPS))))
        assert len(set(ops.values["args"].ravel().tolist()) - {-1}) == \
            sum(1 + op.binary for op in OPS) * 2
        for case in exercise.cases("chain", rng):
            codes, args = case.values["ops"], case.values["args"]
            assert set(codes.tolist()) == set(range(len(OPS)))
            uses = np.bincount(args[args >= 0], minlength=len(case.values["leaves"]) +
                               len(codes))
            assert uses.max() == 1  # a tree
        for case in exercise.cases("random", rng):
            args, n_leaves = case.values["args"], len(case.values["leaves"])
            uses = np.bincount(args[args >= 0])
            assert uses[n_leaves:].max() >= 2  # an operation's result fans out
        for part in ("fanout", "twice"):
            for case in exercise.cases(part, rng):
                right = run_program(case.values)
                assert all(nb09.compare(got, right) is not None
                           for _, _, got in nb09.mistakes(case.values))
    large = exercise.large_case(np.random.default_rng(0))
    assert len(large.values["ops"]) >= 12_000 and len(large.values["leaves"]) >= 8_000


def test_numerical_differentiation_cannot_make_the_large_graph_in_time() -> None:
    """A backward pass on the large graph takes a small part of the budget; a forward pass
    per leaf (what central differences need, twice over) takes far more than it."""
    exercise = get("value_engine")
    large = exercise.large_case(np.random.default_rng(0))
    start = time.perf_counter()
    outcome = nb09.run_answer(exercise.call, SOLUTION["Value"], large)
    seconds = time.perf_counter() - start
    assert "returned" in outcome and seconds < exercise.budget / 5
    assert exercise.judge("random", [large], [outcome]).passed
    forward = min(_timed(lambda: nb09.program_outputs(large.values)) for _ in range(3))
    assert forward * len(large.values["leaves"]) > 2 * exercise.budget


def _timed(work: Any) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def test_a_slow_value_fails_the_large_graph(monkeypatch) -> None:
    exercise = get("value_engine")
    monkeypatch.setattr(exercise, "budget", 1e-4)
    result = run(SOLUTION["Value"], "value_engine", "random", 0)
    assert not result.passed and result.kinds == [Kind.TOO_SLOW], result.report()
    assert "large graph: your code took more than" in result.report()


# ------------------------------------------------------------ seeded mistakes
BACKWARD = SOLUTION_CELLS[VALUE_CELL][SOLUTION_CELLS[VALUE_CELL].index("    def backward"):
                                      SOLUTION_CELLS[VALUE_CELL].index("### END SOLUTION")]
BREADTH_FIRST = '''    def backward(self):
        order, seen = [self], {id(self)}
        for v in order:
            for inp in v.inputs:
                if id(inp) not in seen:
                    seen.add(id(inp))
                    order.append(inp)
        for v in order:
            if v.inputs:
                v.grad = 0.0
        self.grad = 1.0
        for v in order:
            for inp, local in zip(v.inputs, v.local_grads, strict=True):
                inp.grad += local * v.grad
'''
RESET = ("        for v in order:\n            if v.inputs:                        # not a "
         "leaf: this call's gradient only\n                v.grad = 0.0\n")
V, M, T = VALUE_CELL, MLP_CELL, TRAIN_CELL
WRONG = {
    "overwrite": edited(V, ("inp.grad += local * v.grad", "inp.grad = local * v.grad")),
    "breadth_first": edited(V, (BACKWARD, BREADTH_FIRST)),
    "forward_order": edited(V, ("for v in reversed(order):", "for v in order:")),
    "unchained": edited(V, ("inp.grad += local * v.grad", "inp.grad += local")),
    "zero_all": edited(V, (RESET, "        for v in order:\n            v.grad = 0.0\n")),
    "stale": edited(V, (RESET, "")),
    "pow": edited(V, ("(k * self.data ** (k - 1),)", "(k * self.data ** k,)")),
    "tanh_input": edited(V, ("(1 - t * t,)", "(1 - self.data * self.data,)")),
    "mul_no_swap": edited(V, ("(other.data, self.data)", "(self.data, other.data)")),
    "exp_input": edited(V, ("return Value(e, (self,), (e,), \"exp\")",
                            "return Value(e, (self,), (self.data,), \"exp\")")),
    "relu_output": edited(V, ("(float(self.data > 0),)", "(max(self.data, 0.0),)")),
    "rsub_backwards": edited(V, ("return (-self) + other", "return self - other")),
    "no_radd": edited(V, ("    def __radd__(self, other):\n        return self + other\n", "")),
    "grad_a_value": edited(V, ("inp.grad += local * v.grad",
                               "inp.grad += as_value(local * v.grad)")),
    "not_written": edited(V, (BACKWARD, "    def backward(self):\n"
                                        "        raise NotImplementedError()\n")),
    "recursion": edited(V, (BACKWARD, "    def backward(self):\n"
                                      "        return self.backward()\n")),
    "no_bias": edited(M, ("        self.b = Value(random.uniform(-1, 1))\n", ""),
                      ("act = self.b", "act = 0.0"), ("return self.w + [self.b]", "return self.w")),
    "bias_unused": edited(M, ("act = self.b", "act = 0.0")),
    "bias_first": edited(M, ("return self.w + [self.b]", "return [self.b] + self.w")),
    "last_tanh": edited(M, ("tanh=i < len(nouts) - 1", "tanh=True")),
    "no_tanh": edited(M, ("tanh=i < len(nouts) - 1", "tanh=False")),
    "relu": edited(M, ("return act.tanh() if self.tanh else act",
                       "return act.relu() if self.tanh else act")),
    "one_output": edited(M, ("        for layer in self.layers:\n            x = layer(x)\n"
                             "        return x\n", "        for layer in self.layers:\n"
                             "            x = layer(x)\n        return x[0]\n")),
    "ascent": edited(T, ("momentum * velocity[k] - lr * p.grad",
                         "momentum * velocity[k] + lr * p.grad")),
    "returns_predictions": edited(T, ("    return model\n", "    return np.array([int(model("
                                      "x)[0].data > 0) for x in xs])\n")),
    "two_hidden_layers": edited(T, ("MLP(2, [12, 1])", "MLP(2, [4, 4, 1])")),
}
K = Kind
# (the mistake, exercise, part, the kind(s) every failure must have, a phrase of the report)
BUGS: list[tuple[str, str, str, Kind | tuple[Kind, ...], str]] = [
    ("overwrite", "value_engine", "fanout", K.OVERWRITE, "overwrite instead of accumulate"),
    ("overwrite", "value_engine", "twice", K.OVERWRITE, "overwrite instead of accumulate"),
    ("overwrite", "value_engine", "random", K.OVERWRITE, "overwrite instead of accumulate"),
    ("breadth_first", "value_engine", "fanout", K.NO_TOPO, "breadth first from the output"),
    ("breadth_first", "value_engine", "random", K.NO_TOPO, "not a topological order"),
    ("forward_order", "value_engine", "chain", K.NO_TOPO, "reverse that order"),
    ("forward_order", "value_engine", "fanout", K.NO_TOPO, "reverse that order"),
    ("unchained", "value_engine", "ops", K.CHAIN, "a local gradient was not multiplied by the "
     "upstream gradient out.grad"),
    ("unchained", "value_engine", "chain", K.CHAIN, "no local gradient was multiplied by the "
     "upstream gradient out.grad"),
    ("unchained", "value_engine", "fanout", K.CHAIN, "no local gradient was multiplied"),
    ("zero_all", "value_engine", "twice", K.OVERWRITE, "a second backward() call replaced"),
    ("zero_all", "value_engine", "random", K.OVERWRITE, "a second backward() call replaced"),
    ("stale", "value_engine", "twice", K.STALE_GRAD, "inner nodes again"),
    ("stale", "value_engine", "random", K.STALE_GRAD, "inner nodes again"),
    ("pow", "value_engine", "ops", K.LOCAL_DERIVATIVE, "__pow__: d(a ** c)/da = c * a ** (c - 1):"
     " the exponent drops by one (it shows in a ** c, a / b, c / a)"),
    ("pow", "value_engine", "chain", K.LOCAL_DERIVATIVE, "the exponent drops by one"),
    ("tanh_input", "value_engine", "ops", K.INPUT_NOT_OUTPUT, "not the input a"),
    ("tanh_input", "value_engine", "chain", K.INPUT_NOT_OUTPUT, "not the input a"),
    ("mul_no_swap", "value_engine", "ops", K.NO_SWAP, "the mul gate swaps them"),
    ("mul_no_swap", "value_engine", "chain", K.NO_SWAP, "the mul gate swaps them"),
    ("exp_input", "value_engine", "ops", K.LOCAL_DERIVATIVE, "exp(a) (the output), not a"),
    ("relu_output", "value_engine", "ops", K.LOCAL_DERIVATIVE, "not its output"),
    ("rsub_backwards", "value_engine", "ops", K.FORWARD, "c - a: the forward value is wrong"),
    ("rsub_backwards", "value_engine", "chain", K.FORWARD, "the output's .data is wrong"),
    ("no_radd", "value_engine", "ops", K.ERROR, "c + a: your code raised TypeError: "
     "unsupported operand type(s) for +: 'float' and 'Value' (define __radd__)"),
    ("no_radd", "value_engine", "random", K.ERROR, "c + a: your code raised TypeError"),
    ("grad_a_value", "value_engine", "ops", K.TYPE, "a leaf's .grad is Value, not a number"),
    ("not_written", "value_engine", "ops", K.NOT_IMPLEMENTED, "backward(): not implemented"),
    ("recursion", "value_engine", "fanout", K.ERROR, "sort with a list as a stack"),
    ("no_bias", "value_mlp", "forward", K.PARAMETERS, "parameters() returned 36 values; that "
     "network has 46"),
    ("no_bias", "value_mlp", "grads", K.PARAMETERS, "parameters() returned 36 values"),
    ("bias_unused", "value_mlp", "forward", K.FORWARD, "network without biases"),
    ("bias_unused", "value_mlp", "grads", K.FORWARD, "network without biases"),
    ("bias_first", "value_mlp", "forward", K.PARAMETERS, "bias before its weights"),
    ("last_tanh", "value_mlp", "forward", K.FORWARD, "the last layer applies tanh too"),
    ("no_tanh", "value_mlp", "forward", K.FORWARD, "the hidden layers apply no tanh"),
    ("relu", "value_mlp", "forward", K.FORWARD, "the hidden layers apply relu"),
    ("one_output", "value_mlp", "forward", K.ERROR, "the network returned 1 values for one "
     "input; it has 2 outputs"),
    ("overwrite", "value_mlp", "grads", K.VALUES, "fix Value first"),
    ("breadth_first", "value_mlp", "grads", K.VALUES, "fix Value first"),
    ("ascent", "value_training", "accuracy", K.VALUES, "(at least 90% passes)"),
    ("unchained", "value_training", "accuracy", K.VALUES, "(at least 90% passes)"),
    ("returns_predictions", "value_training", "accuracy", K.SHAPE, "has 4H + 1"),
    ("two_hidden_layers", "value_training", "accuracy", K.VALUES, "MLP(2, [H, 1])"),
]


@pytest.mark.parametrize(("name", "exercise_id", "part", "kinds", "phrase"), BUGS,
                         ids=[f"{b[0]}-{b[1]}-{b[2]}" for b in BUGS])
def test_a_seeded_mistake_fails_its_part_with_its_kind(name, exercise_id, part, kinds,
                                                        phrase) -> None:
    expected = {kinds} if isinstance(kinds, Kind) else set(kinds)
    answer = WRONG[name][get(exercise_id).answer]
    for seed in SEEDS[:1] if exercise_id == "value_training" else SEEDS:
        result = run(answer, exercise_id, part, seed)
        report = result.report()
        assert not result.passed, f"{name}: a seeded mistake passed {part}:\n{report}"
        assert result.kinds and set(result.kinds) <= expected, (result.kinds, report)
        assert phrase in report, report


#: The mistakes of the examples (grading/examples): which of the Value's parts each fails.
EXAMPLES = {"overwrite": {"fanout", "twice", "random"}, "breadth_first": {"fanout", "random"},
            "pow": {"ops", "chain", "random"},
            "unchained": {"ops", "chain", "fanout", "twice", "random"},
            "zero_all": {"twice", "random"}, "stale": {"twice", "random"}}


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_a_mistake_fails_the_same_parts_for_every_student(name: str) -> None:
    """The examples' scores are exact: a mistake must fail (or pass) a part on every
    student's cases, not on most."""
    exercise = get("value_engine")
    for part in exercise.parts:
        verdicts = {run(WRONG[name]["Value"], "value_engine", part, 100 + s).passed
                    for s in range(5)}
        assert verdicts == {part not in EXAMPLES[name]}, (name, part, verdicts)


def test_a_closure_value_missing_one_chain_factor_is_named_by_its_method() -> None:
    for method in ("tanh", "__mul__", "exp"):
        answer = closure_value(unchained=(method,))
        result = run(answer, "value_engine", "chain", 0)
        assert not result.passed and result.kinds == [Kind.CHAIN], result.report()
        assert f"{method} (" in result.report() and "not multiplied" in result.report()
        assert run(answer, "value_engine", "ops", 0).passed  # upstream 1: nothing shows


def test_a_recursive_backward_without_a_sort_is_named() -> None:
    answer = closure_value(order="recursive", reset="none")
    result = run(answer, "value_engine", "fanout", 0)
    assert not result.passed and result.kinds == [Kind.NO_TOPO], result.report()
    assert "once for every path" in result.report()
    assert run(answer, "value_engine", "chain", 0).passed  # a tree has one path per node


def test_hidden_feedback_names_the_mistake_without_a_number_of_the_case() -> None:
    for name in ("overwrite", "breadth_first", "pow", "zero_all", "stale", "no_radd"):
        exercise = get("value_engine")
        cases = exercise.cases("random", np.random.default_rng(5))
        outcomes = [nb09.run_answer(exercise.call, WRONG[name]["Value"], c) for c in cases]
        report = exercise.judge("random", cases, outcomes, reveal=False).report()
        assert report.startswith("[FAIL]") and "expected" not in report, report
        assert not re.search(r"got -?\d", report), report
        assert "relative error" in report or "not shown" in report, report
    assert "c + a: your code raised TypeError (its message is not shown for a hidden check) " \
           "(define __radd__)" in report


def test_a_training_that_runs_out_of_time_fails(monkeypatch) -> None:
    exercise = get("value_training")
    monkeypatch.setattr(exercise, "budget", 1e-3)
    result = run(SOLUTION["train"], "value_training", "accuracy", 0)
    assert not result.passed and result.kinds == [Kind.TIMEOUT], result.report()


# ------------------------------------------------------------ the wire and the grader
@pytest.mark.parametrize("exercise_id", EXERCISES[:2])
def test_every_case_crosses_the_wire_and_gives_the_same_answer(exercise_id) -> None:
    exercise = get(exercise_id)
    for part in exercise.parts:
        for case in exercise.cases(part, np.random.default_rng(3)):
            sent = decode_case(json.loads(json.dumps(encode_case(case.values))))
            for name, value in case.values.items():
                assert np.array_equal(sent[name], np.asarray(value)), (part, name)
                assert sent[name].dtype == np.asarray(value).dtype, (part, name)
            here, there = (CALLS[exercise.call](SOLUTION[exercise.answer], values, (), ())
                           for values in (case.values, sent))
            for a, b in zip(here, there, strict=True):
                np.testing.assert_array_equal(a, b)


def test_the_grader_runs_the_value_in_its_sandbox() -> None:
    """Stdlib and numpy only: the answer cell imports math itself; the large graph runs
    first; a mistake is named in a visible and a hidden check."""
    from backprop_course.grader.grade import Seeds, run_exercise  # noqa: PLC0415
    from backprop_course.grader.sandbox import isolation  # noqa: PLC0415

    exercise = get("value_engine")
    seeds = Seeds.for_course(b"\x02" * 32, "ann")
    parts = {part: part == "random" for part in exercise.parts}
    results = run_exercise(exercise, SOLUTION_CELLS[VALUE_CELL], parts, seeds, isolation())
    assert all(r.passed for r in results.values()), [r.report() for r in results.values()]
    wrong = SOLUTION_CELLS[VALUE_CELL].replace("inp.grad += local * v.grad",
                                               "inp.grad = local * v.grad")
    results = run_exercise(exercise, wrong, parts, seeds, isolation())
    assert {p for p, r in results.items() if not r.passed} == EXAMPLES["overwrite"]
    assert Kind.OVERWRITE in results["random"].kinds
    assert "expected" in results["fanout"].report()
    assert "expected" not in results["random"].report()
    source = "\n\n".join(SOLUTION_CELLS[c] for c in (VALUE_CELL, MLP_CELL))
    mlp = run_exercise(get("value_mlp"), source, {"forward": False, "grads": False}, seeds,
                       isolation())
    assert all(r.passed for r in mlp.values()), [r.report() for r in mlp.values()]


def test_the_moons_are_scikit_learns() -> None:
    """Without noise every point lies on its moon: the upper half circle about (0, 0), the
    lower one about (1, 0.5), both of radius 1; half of the points each."""
    x, y = moons(np.random.default_rng(0), 200, noise=0.0)
    centres = np.where(y[:, None] == 0, [0.0, 0.0], [1.0, 0.5])
    np.testing.assert_allclose(np.hypot(*(x - centres).T), 1.0)
    assert np.all((x[:, 1] - centres[:, 1]) * np.where(y == 0, 1, -1) >= -1e-12)
    assert np.bincount(y).tolist() == [100, 100]


def test_a_value_mlp_case_checks_the_parameter_count() -> None:
    (case,) = get("value_mlp").cases("forward", np.random.default_rng(0))
    values = {**case.values, "params": case.values["params"][:-1]}
    with pytest.raises(ValueError, match="returned 46 values; that network has 45"):
        CALLS["value_mlp"](SOLUTION["MLP"], values, (), ())
