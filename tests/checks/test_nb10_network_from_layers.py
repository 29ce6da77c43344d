"""Notebook 10, a network from the student's own layers: the notebook's solution passes
every part; each seeded mistake fails its part with its Kind and a phrase that names it;
when the network's check fails because of a layer, the report names that layer (in the
kernel, in a hidden check, and in the grader's sandbox), and only then; the reference
solution trains to 95% whatever the order of the digits it is given.

Answers come from the notebook itself: its solution cells run in one namespace, as the
student's notebook (and the grader's sandbox) runs them; a mistake replaces one function
there, so a network built on a wrong layer calls that layer.
"""

from __future__ import annotations

import json
import re
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat
import numpy as np
import pytest

from backprop_course.checks import Kind, Result, VJPExercise, get
from backprop_course.checks.exercise import Case
from backprop_course.checks.exercises.nb10_network_from_layers import NOTEBOOK, predict_digits
from backprop_course.checks.harness import CALLS, WrongCountError, decode_case, encode_case
from backprop_course.checks.variants import rng_for
from backprop_course.grader.answers import check_calls, is_hidden, is_test_cell, nbgrader_meta

pytest.importorskip("torch")  # the references of the checks
PATH = Path(__file__).resolve().parents[2] / "notebooks" / f"{NOTEBOOK}.ipynb"
SOURCE = nbformat.read(PATH, as_version=4)
SOLUTION_CELLS = {nbgrader_meta(c)["grade_id"]: c.source for c in SOURCE.cells
                  if nbgrader_meta(c).get("solution")}
EXERCISES = ("affine_layer", "relu_layer", "sigmoid_layer", "softmax_cross_entropy_layer",
             "two_layer_net", "train_digits")
VJP = EXERCISES[:-1]
AFFINE, RELU, SIGMOID, CE = EXERCISES[:4]
LOSS = "softmax_cross_entropy"  # the loss layer's function
SEEDS = (0, 1, 2)
RANDOM_SEEDS = (0, 1, 2, 3, 4)


def notebook(cells: dict[str, str] | None = None, **functions: Callable) -> dict:
    """The namespace the notebook's answer cells make (the markers are comments): with
    ``cells`` replacing some cells' code (by grade id), then ``functions`` replacing
    some of the names they define, as a student's own cells would."""
    space: dict[str, Any] = {"np": np}
    for grade_id, source in SOLUTION_CELLS.items():
        exec(compile((cells or {}).get(grade_id, source), grade_id, "exec"), space)
    space.update(functions)
    return space


def answer(space: dict, exercise_id: str) -> Any:
    """What a test cell passes to check(): the function, or a layer's (forward, backward)."""
    names = get(exercise_id).answer
    return space[names] if isinstance(names, str) else tuple(space[n] for n in names)


def run(space: dict, exercise_id: str, part: str, seed: int) -> Result:
    """One check as the notebook's ``check`` runs it, on the cases of ``seed``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # some mistakes overflow, on purpose
        return get(exercise_id).run_in_kernel(answer(space, exercise_id), part,
                                              np.random.default_rng(seed))


def net_with(old: str, new: str) -> dict:
    """The namespace with the notebook's two_layer_net changed in one place."""
    source = SOLUTION_CELLS["two_layer_net_solution"]
    assert source.count(old) == 1, old
    return notebook({"two_layer_net_solution": source.replace(old, new)})


def blamed(exercise_id: str) -> str:
    """How a network's report names a wrong layer: by the student's own functions."""
    names = get(exercise_id).answer
    return f"your layer {' / '.join([names] if isinstance(names, str) else names)} is wrong"


SOLUTION = notebook()


# ------------------------------------------------------------ the solution
def test_the_notebook_has_a_check_cell_per_part_and_an_answer_cell_per_exercise() -> None:
    """Committed without outputs; one locked check cell with points per part (the random
    and edge ones hidden); each answer cell defines its exercise's names."""
    graded = []
    for cell in SOURCE.cells:
        if cell.cell_type == "code":
            assert not cell.get("outputs") and cell.get("execution_count") is None
        if is_test_cell(cell):
            meta = nbgrader_meta(cell)
            assert meta["locked"] and isinstance(meta["points"], int) and meta["points"] > 0
            (call,) = check_calls(cell.source)
            assert meta["grade_id"] == f"{call.exercise}_{call.part}"
            assert is_hidden(cell.source) == (call.part in ("random", "edge"))
            graded.append((call.exercise, call.part))
    assert sorted(graded) == sorted((e, p) for e in EXERCISES for p in get(e).parts)
    assert set(SOLUTION_CELLS) == {get(e).answer_cell for e in EXERCISES}
    for exercise_id in EXERCISES:
        names = get(exercise_id).answer
        for name in [names] if isinstance(names, str) else names:
            assert re.search(rf"^def {name}\b", SOLUTION_CELLS[f"{exercise_id}_solution"],
                             re.M)


@pytest.mark.parametrize("exercise_id", EXERCISES)
def test_the_notebooks_solution_passes_every_part(exercise_id: str) -> None:
    exercise = get(exercise_id)
    for part in exercise.parts:
        for seed in RANDOM_SEEDS if part == "random" else SEEDS:
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # a correct answer warns about nothing
                result = exercise.run_in_kernel(answer(SOLUTION, exercise_id), part,
                                                np.random.default_rng(seed))
            assert result.passed and result.kinds == [], result.report()


@pytest.mark.parametrize("exercise_id", VJP)
def test_every_students_given_cases_pass_the_solution(exercise_id: str) -> None:
    for seed in range(100, 130):
        result = run(SOLUTION, exercise_id, "given", seed)
        assert result.passed, (seed, result.report())


def test_every_student_gets_cases_of_their_own() -> None:
    """The given cases (and the order of the digits) come from the student's seed: 20
    students, 20 different draws of each."""
    for exercise_id in EXERCISES:
        exercise = get(exercise_id)
        part = "given" if exercise_id in VJP else "accuracy"

        def drawn(student: str, exercise=exercise, part=part) -> str:
            case = exercise.cases(part, rng_for("salt", student, exercise.id, part))[0]
            return json.dumps(encode_case(case.values))

        assert len({drawn(f"student{i}") for i in range(20)}) == 20, exercise_id


def test_the_reference_solution_trains_to_95_percent_whatever_the_order() -> None:
    exercise = get("train_digits")
    for seed in range(6):
        (case,) = exercise.cases("accuracy", np.random.default_rng(seed))
        start = time.perf_counter()
        returned = CALLS["train"](SOLUTION["train"], case.values, exercise.inputs, exercise.wrt)
        seconds = time.perf_counter() - start
        result = exercise.judge("accuracy", [case], [{"returned": returned}])
        print(f"order {seed}: {result.messages[0]} in {seconds:.2f} s")
        assert result.passed, result.report()
        assert seconds < exercise.budget / 10


def test_the_training_check_never_shows_the_test_images_and_predicts_itself() -> None:
    """The answer gets X_train and y_train only and returns (w1, b1, w2, b2); the grader
    classifies the test images with them. Predictions, a network wider than 256 hidden
    units (room to memorise) or untrained weights cannot pass."""
    exercise = get("train_digits")
    (case,) = exercise.cases("accuracy", np.random.default_rng(0))
    assert set(case.values) == {"X_train", "y_train"}
    x_test, labels = case.expected
    rng = np.random.default_rng(1)

    def judged(*params: np.ndarray) -> Result:
        return exercise.judge("accuracy", [case], [{"returned": params}])

    def net(hidden: int) -> tuple[np.ndarray, ...]:
        return (rng.normal(0, 0.1, (64, hidden)), np.zeros(hidden),
                rng.normal(0, 0.1, (hidden, 10)), np.zeros(10))

    predictions = judged(labels.astype(float), labels.astype(float), labels.astype(float),
                         labels.astype(float))
    assert not predictions.passed and predictions.kinds == [Kind.SHAPE], predictions.report()
    assert "expected w1 (64, H)" in predictions.report()
    wide = judged(*net(257))
    assert not wide.passed and wide.kinds == [Kind.SHAPE]
    transposed = judged(*(p.T for p in net(100)))
    assert not transposed.passed and transposed.kinds == [Kind.SHAPE]
    untrained = judged(*net(100))
    assert not untrained.passed and untrained.kinds == [Kind.VALUES], untrained.report()
    assert predict_digits(net(100), x_test).shape == labels.shape


# ------------------------------------------------------------ seeded mistakes
def affine_backward_with(dx: Callable, dw: Callable, db: Callable) -> Callable:
    """affine_backward on the notebook's cache (x, w), each gradient from its own rule."""
    def backward(dout, cache):
        x, w = cache
        return dx(dout, x, w), dw(dout, x, w), db(dout, x, w)
    return backward


def right_dx(g, x, w):
    return g @ w.T


def right_dw(g, x, w):
    return x.T @ g


def right_db(g, x, w):
    return g.sum(axis=0)


def sigmoid_forward_x(x):
    """The right output, but the input in the cache."""
    return np.exp(-np.logaddexp(0, -x)), x


def ce_with(rule: Callable) -> Callable:
    """softmax_cross_entropy with the right loss and ``rule(P, Y, N)`` for dscores."""
    def loss_and_grad(scores, y):
        n = scores.shape[0]
        p = np.exp(scores - scores.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        return -np.log(p[np.arange(n), y]).mean(), rule(p, np.eye(scores.shape[1])[y], n)
    return loss_and_grad


def ce_naive(scores, y):
    n = scores.shape[0]
    p = np.exp(scores) / np.exp(scores).sum(axis=1, keepdims=True)
    return -np.log(p[np.arange(n), y]).mean(), (p - np.eye(scores.shape[1])[y]) / n


def ce_summed(scores, y):
    loss, dscores = SOLUTION[LOSS](scores, y)
    return loss * len(y), dscores


K = Kind
# (exercise, the notebook's names it replaces, part, the kind(s) of every failure, phrase)
BUGS: list[tuple[str, dict, str, Kind | tuple[Kind, ...], str]] = [
    # ---- affine
    (AFFINE, {"affine_backward": affine_backward_with(right_dx, lambda g, x, w: g.T @ x,
                                                      right_db)},
     "shape", K.TRANSPOSED, "transpose of the correct gradient"),
    (AFFINE, {"affine_backward": affine_backward_with(right_dx, lambda g, x, w: g.T @ x,
                                                      right_db)},
     "edge", K.TRANSPOSED, "transpose"),
    (AFFINE, {"affine_backward": affine_backward_with(right_dx, right_dw, lambda g, x, w: g)},
     "shape", K.BATCH_SUM, "sum over the batch axis"),
    (AFFINE, {"affine_backward": affine_backward_with(right_dx, right_dw,
                                                      lambda g, x, w: g.mean(axis=0))},
     "random", K.BIAS_MEAN, "not its mean"),
    (AFFINE, {"affine_backward": affine_backward_with(right_dx, right_dw,
                                                      lambda g, x, w: g[0])},
     "random", K.BIAS_ROW, "not only the"),
    (AFFINE, {"affine_backward": affine_backward_with(lambda g, x, w: g @ w, right_dw,
                                                      right_db)},
     "edge", K.ORDER, "w instead of w^T"),
    (AFFINE, {"affine_backward": affine_backward_with(
        lambda g, x, w: np.ones_like(g) @ w.T, lambda g, x, w: x.T @ np.ones_like(g),
        lambda g, x, w: np.ones_like(g).sum(axis=0))},
     "random", K.UPSTREAM, "upstream gradient"),
    (AFFINE, {"affine_backward": affine_backward_with(
        lambda g, x, w: -g @ w.T, lambda g, x, w: -x.T @ g, lambda g, x, w: -g.sum(0))},
     "random", K.SIGN, "wrong sign"),
    (AFFINE, {"affine_backward": affine_backward_with(
        lambda g, x, w: g @ w.T / len(x), lambda g, x, w: x.T @ g / len(x),
        lambda g, x, w: g.sum(0) / len(x))},
     "random", K.BATCH_FACTOR, "divided by the batch size N"),
    (AFFINE, {"affine_forward": lambda x, w, b: (x @ w, (x, w))},
     "given", K.FORWARD, "forward is wrong"),
    (AFFINE, {"affine_forward": lambda x, w, b: x @ w + b},
     "given", K.ERROR, "must return (out, cache)"),
    # ---- ReLU
    (RELU, {"relu_backward": lambda dout, x: dout * (dout > 0)},
     "random", K.UPSTREAM_MASK, "sign of dout"),
    (RELU, {"relu_backward": lambda dout, x: dout * (x >= 0)},
     "edge", K.KINK, "not x >= 0"),
    (RELU, {"relu_backward": lambda dout, x: dout},
     "random", K.RELU_MASK, "without ReLU's mask"),
    (RELU, {"relu_backward": lambda dout, x: dout * np.maximum(x, 0)},
     "random", K.LOCAL_DERIVATIVE, "by the output"),
    (RELU, {"relu_backward": lambda dout, x: dout[x > 0]},
     "shape", K.SHAPE, "shape of its input"),
    (RELU, {"relu_backward": lambda dout, x: (x > 0) * 1.0},
     "random", K.UPSTREAM, "upstream gradient"),
    (RELU, {"relu_backward": lambda dout, x: -dout * (x > 0)},
     "random", K.SIGN, "wrong sign"),
    (RELU, {"relu_backward": lambda dout, x: (dout * (x > 0)).T},
     "random", K.TRANSPOSED, "transpose"),
    (RELU, {"relu_forward": lambda x: (np.abs(x), x)},
     "given", K.FORWARD, "forward is wrong"),
    # ---- sigmoid
    (SIGMOID, {"sigmoid_backward": lambda dout, s: dout * s},
     "random", K.LOCAL_DERIVATIVE, "by s itself"),
    (SIGMOID, {"sigmoid_backward": lambda dout, s: dout * (1 - s)},
     "random", K.LOCAL_DERIVATIVE, "by 1 - s only"),
    (SIGMOID, {"sigmoid_forward": sigmoid_forward_x},
     "random", K.INPUT_NOT_OUTPUT, "cache s"),
    (SIGMOID, {"sigmoid_backward": lambda dout, s: s * (1 - s)},
     "random", K.UPSTREAM, "upstream gradient"),
    (SIGMOID, {"sigmoid_backward": lambda dout, s: dout @ (s * (1 - s)).T},
     "shape", K.SHAPE, "shape of its input"),
    (SIGMOID, {"sigmoid_backward": lambda dout, s: dout * s},
     "given", K.LOCAL_DERIVATIVE, "by s itself"),
    (SIGMOID, {"sigmoid_backward": lambda dout, s: -dout * s * (1 - s)},
     "random", K.SIGN, "wrong sign"),
    (SIGMOID, {"sigmoid_backward": lambda dout, s: (dout * s * (1 - s)).T},
     "random", K.TRANSPOSED, "transpose"),
    (SIGMOID, {"sigmoid_forward": lambda x: (np.exp(x) / (1 + np.exp(x)),) * 2},
     "edge", K.FORWARD, "forward is wrong"),
    # ---- softmax cross-entropy
    (CE, {LOSS: ce_with(lambda p, y, n: p - y)}, "random", K.BATCH_FACTOR, "batch size"),
    (CE, {LOSS: ce_with(lambda p, y, n: p / n)}, "given", K.ONE_HOT, "one-hot"),
    (CE, {LOSS: ce_with(lambda p, y, n: (p - y) / p.shape[1])}, "random",
     K.WRONG_COUNT_DIVISOR, "number of classes"),
    (CE, {LOSS: ce_with(lambda p, y, n: (y - p) / n)}, "given", K.SIGN, "wrong sign"),
    (CE, {LOSS: ce_with(lambda p, y, n: ((p - y) / n).T)}, "given", K.TRANSPOSED,
     "transpose"),
    (CE, {LOSS: ce_with(lambda p, y, n: (p - y).mean(axis=0))}, "shape", K.SHAPE,
     "shape of its input"),
    (CE, {LOSS: ce_naive}, "edge", K.FORWARD, "subtract each row's max"),
    (CE, {LOSS: ce_summed}, "given", K.FORWARD, "the loss is wrong"),
    (CE, {LOSS: lambda scores, y: SOLUTION[LOSS](scores, y)[::-1]}, "given", K.FORWARD,
     "the loss is wrong"),
    (CE, {LOSS: lambda scores, y: SOLUTION[LOSS](scores, y)[1]}, "given", K.COUNT,
     "(loss, scores)"),
]


def _bug_id(bug: tuple) -> str:
    kinds = bug[3] if isinstance(bug[3], tuple) else (bug[3],)
    return f"{bug[0]}-{bug[2]}-{'|'.join(k.value for k in kinds)}"


@pytest.mark.parametrize(("exercise_id", "functions", "part", "kinds", "phrase"), BUGS,
                         ids=[f"{i}-{_bug_id(b)}" for i, b in enumerate(BUGS)])
def test_a_seeded_mistake_fails_its_part_with_its_kind(exercise_id, functions, part, kinds,
                                                       phrase) -> None:
    expected = set(kinds) if isinstance(kinds, tuple) else {kinds}
    space = notebook(**functions)
    for seed in SEEDS:
        result = run(space, exercise_id, part, seed)
        report = result.report()
        assert not result.passed, f"{exercise_id}: a seeded mistake passed {part}:\n{report}"
        assert result.kinds and set(result.kinds) <= expected, (result.kinds, report)
        assert phrase in report, report


# A student's own cases are small integers, on which a mistake can give the right answer;
# the cases of these parts are drawn so that every student's show these mistakes (the
# example submissions rely on it).
FOR_EVERY_STUDENT = [
    (RELU, {"relu_backward": lambda dout, x: dout * (dout > 0)}, "given", K.UPSTREAM_MASK),
    (RELU, {"relu_backward": lambda dout, x: dout * (dout > 0)}, "edge", K.UPSTREAM_MASK),
    (RELU, {"relu_backward": lambda dout, x: dout * (x >= 0)}, "edge", K.KINK),
    (AFFINE, {"affine_backward": affine_backward_with(right_dx, lambda g, x, w: g.T @ x,
                                                      right_db)}, "edge", K.TRANSPOSED),
    (AFFINE, {"affine_backward": affine_backward_with(lambda g, x, w: g @ w, right_dw,
                                                      right_db)}, "edge", K.ORDER),
]


@pytest.mark.parametrize(("exercise_id", "functions", "part", "kind"), FOR_EVERY_STUDENT,
                         ids=[f"{b[0]}-{b[2]}-{b[3].value}" for b in FOR_EVERY_STUDENT])
def test_every_students_cases_show_the_mistakes_they_are_for(exercise_id, functions, part,
                                                              kind) -> None:
    space = notebook(**functions)
    for seed in range(200):
        result = run(space, exercise_id, part, seed)
        assert not result.passed and kind in result.kinds, (seed, result.report())


def test_every_layer_is_shown_the_usual_mistakes() -> None:
    """Sign, transposed and the upstream gradient for every layer; the batch's sum and
    size for the ones with a batch axis to get wrong."""
    covered: dict[str, set[Kind]] = {}
    for exercise_id, _, _, kinds, _ in BUGS:
        covered.setdefault(exercise_id, set()).update(
            kinds if isinstance(kinds, tuple) else {kinds})
    for layer in (AFFINE, RELU, SIGMOID):
        assert {K.SIGN, K.TRANSPOSED, K.UPSTREAM, K.FORWARD} <= covered[layer], layer
    assert {K.BATCH_SUM, K.BATCH_FACTOR, K.BIAS_MEAN} <= covered[AFFINE]
    assert {K.SIGN, K.TRANSPOSED, K.BATCH_FACTOR, K.ONE_HOT, K.FORWARD} <= covered[CE]


# ------------------------------------------------------ the network, end to end
# (a wrong layer, the layer the network's check must name, a kind it reports)
WRONG_LAYERS = [
    ({"affine_backward": affine_backward_with(right_dx, lambda g, x, w: g.T @ x, right_db)},
     AFFINE, K.TRANSPOSED),
    ({"affine_backward": affine_backward_with(right_dx, right_dw,
                                              lambda g, x, w: g.mean(axis=0))},
     AFFINE, K.BIAS_MEAN),
    ({"affine_forward": lambda x, w, b: (x @ w, (x, w))}, AFFINE, K.FORWARD),
    ({"relu_backward": lambda dout, x: dout * (dout > 0)}, RELU, K.UPSTREAM_MASK),
    ({"relu_backward": lambda dout, x: dout[x > 0]}, RELU, K.SHAPE),
    ({"relu_forward": lambda x: (np.abs(x), x)}, RELU, K.FORWARD),
    ({LOSS: ce_with(lambda p, y, n: p - y)}, CE, K.BATCH_FACTOR),
    ({LOSS: ce_with(lambda p, y, n: p / n)}, CE, K.ONE_HOT),
    ({LOSS: ce_with(lambda p, y, n: (p - y).mean(axis=0))}, CE, K.SHAPE),
]


@pytest.mark.parametrize(("functions", "layer", "kind"), WRONG_LAYERS,
                         ids=[f"{layer}-{kind.value}" for _, layer, kind in WRONG_LAYERS])
def test_the_network_check_names_the_wrong_layer(functions, layer, kind) -> None:
    space = notebook(**functions)
    for part in ("given", "random"):
        for seed in SEEDS:
            result = run(space, "two_layer_net", part, seed)
            report = result.report()
            assert not result.passed and kind in result.kinds, report
            assert result.failures[0].startswith(blamed(layer)), report
            assert report.count("your layer ") == 1, report  # no other layer is blamed


def test_two_wrong_layers_are_both_named_in_backward_order() -> None:
    space = notebook(affine_backward=affine_backward_with(right_dx, right_dw,
                                                          lambda g, x, w: g.mean(axis=0)),
                     relu_backward=lambda dout, x: dout * (dout > 0))
    result = run(space, "two_layer_net", "given", 0)
    assert result.failures[0].startswith(f"{blamed(AFFINE)} (checked on its own as the "
                                         "second affine layer"), result.report()
    assert result.failures[1].startswith(blamed(RELU)), result.report()
    assert {K.BIAS_MEAN, K.UPSTREAM_MASK} <= set(result.kinds)


def test_a_layer_mistake_the_network_never_meets_fails_nothing_there() -> None:
    """ReLU's kink: the network's cases keep every pre-activation away from 0, so x >= 0
    computes the same there (the relu check's edge part is where it fails)."""
    space = notebook(relu_backward=lambda dout, x: dout * (x >= 0))
    assert run(space, "relu_layer", "edge", 0).kinds == [K.KINK]
    for part in get("two_layer_net").parts:
        assert run(space, "two_layer_net", part, 0).passed


# (the change to the notebook's two_layer_net, the kind, a phrase)
NETWORK_MISTAKES = [
    ("    dw1 = dw1 + lam * w1\n    dw2 = dw2 + lam * w2\n", "", K.REGULARIZATION,
     "left out the regularizer's gradient"),
    ("dw1 + lam * w1", "dw1 + 2 * lam * w1", K.REGULARIZATION, "doubled"),
    ("dh = relu_backward(da, cache_relu)", "dh = da", K.RELU_MASK, "skipped relu_backward"),
    ("affine_backward(dscores, cache2)", "affine_backward(dscores * len(x), cache2)",
     K.BATCH_FACTOR, "MEAN over the N examples"),
    ("loss = loss + 0.5 * lam", "loss = loss + lam", K.FORWARD, "the loss is wrong"),
]


@pytest.mark.parametrize(("old", "new", "kind", "phrase"), NETWORK_MISTAKES,
                         ids=[m[2].value + str(i) for i, m in enumerate(NETWORK_MISTAKES)])
def test_a_mistake_in_the_network_itself_names_no_layer(old, new, kind, phrase) -> None:
    space = net_with(old, new)
    for part in ("given", "random"):
        result = run(space, "two_layer_net", part, 1)
        report = result.report()
        assert not result.passed and set(result.kinds) == {kind}, report
        assert phrase in report and "your layer " not in report, report


def test_the_kernel_names_no_layer_when_the_notebook_does_not_define_them() -> None:
    """A network written without the layers, in a module that has none of them: its
    mistake is reported, and no layer is probed (nothing to call)."""
    def inline_net(x, y, w1, b1, w2, b2, lam):
        return SOLUTION["two_layer_net"](x, y, w1, b1, w2, b2, 2 * lam)

    result = get("two_layer_net").run_in_kernel(inline_net, "given", np.random.default_rng(0))
    assert not result.passed and "your layer " not in result.report()


def _kernel_outcomes(space: dict, part: str, seed: int) -> tuple[list[Case], list[dict]]:
    """The network's cases of a part and its outcomes there, with its layers probed."""
    exercise = get("two_layer_net")
    cases, outcomes = exercise.cases(part, np.random.default_rng(seed)), []
    for case in cases:
        outcomes.append(exercise.run(space["two_layer_net"], case))
        exercise.probe_layers(case, outcomes[-1], lambda layer, at: layer.run(
            answer(space, layer.id), at))
    return cases, outcomes


def test_a_hidden_network_check_names_the_layer_without_its_values() -> None:
    space = notebook(relu_backward=lambda dout, x: dout * (dout > 0))
    cases, outcomes = _kernel_outcomes(space, "random", 3)
    report = get("two_layer_net").judge("random", cases, outcomes, reveal=False).report()
    assert blamed(RELU) in report and "sign of dout" in report, report
    assert "expected" not in report and not re.search(r"\(\d+, \d+\)", report), report


def test_the_layers_are_met_where_the_network_puts_them() -> None:
    """Each probe's case is the network's own: the layers' reference gradients there,
    chained, are torch's gradients of the whole network (the penalty's lam w aside)."""
    exercise = get("two_layer_net")
    assert {layer.exercise for layer in exercise.layers(exercise.cases(
        "given", np.random.default_rng(0))[0].values)} == set(exercise.requires)
    for seed in SEEDS:
        case = exercise.cases("random", np.random.default_rng(seed))[0]
        values = case.values
        dw1, db1, dw2, db2 = exercise.reference(case)
        loss, second, relu, first = exercise.layers(values)
        for layer in (loss, second, relu, first):
            get(layer.exercise).reference(Case(layer.values))  # torch == numerical there
        _, dw2_alone, db2_alone = get(AFFINE).reference(Case(second.values))
        _, dw1_alone, db1_alone = get(AFFINE).reference(Case(first.values))
        np.testing.assert_allclose(dw2_alone + values["lam"] * values["w2"], dw2, atol=1e-12)
        np.testing.assert_allclose(dw1_alone + values["lam"] * values["w1"], dw1, atol=1e-12)
        np.testing.assert_allclose(db2_alone, db2, atol=1e-12)
        np.testing.assert_allclose(db1_alone, db1, atol=1e-12)


def test_the_grader_names_the_same_layer_in_its_sandbox() -> None:
    """The runner calls a layer by its own convention in the network's interpreter (the
    required cells ran there first); visible and hidden checks name the layer."""
    from backprop_course.grader.grade import Seeds, run_exercise  # noqa: PLC0415
    from backprop_course.grader.sandbox import isolation  # noqa: PLC0415

    exercise = get("two_layer_net")
    wrong_relu = SOLUTION_CELLS["relu_layer_solution"].replace("dx = dout * (x > 0)",
                                                         "dx = dout * (dout > 0)")
    cells = {**SOLUTION_CELLS, "relu_layer_solution": wrong_relu}
    source = "\n\n".join(cells[get(e).answer_cell] for e in (*exercise.requires, exercise.id))
    seeds = Seeds.for_course(b"\x01" * 32, "ann")
    results = run_exercise(exercise, source, {"shape": False, "given": False, "random": True},
                           seeds, isolation())
    assert results["shape"].passed
    for part in ("given", "random"):
        report = results[part].report()
        assert not results[part].passed and Kind.UPSTREAM_MASK in results[part].kinds, report
        assert results[part].failures[0].startswith(blamed(RELU)), report
    assert "expected" in results["given"].report()
    assert "expected" not in results["random"].report()


# ------------------------------------------------- large cases and the wire
@pytest.mark.parametrize("exercise_id", VJP)
def test_the_large_case_is_large_and_a_backward_pass_makes_it_easily(exercise_id) -> None:
    """At least 100,000 forward passes for central differences; the solution well inside
    the budget."""
    exercise = get(exercise_id)
    large = exercise.large_case(np.random.default_rng(0))
    assert 2 * sum(np.size(large.values[name]) for name in exercise.wrt) >= 100_000
    start = time.perf_counter()
    outcome = exercise.run(answer(SOLUTION, exercise_id), large)
    assert time.perf_counter() - start < exercise.budget / 10
    assert exercise.judge("random", [large], [outcome]).passed


def test_a_slow_layer_fails_the_large_case(monkeypatch) -> None:
    exercise = get(RELU)
    monkeypatch.setattr(exercise, "budget", 0.05)

    def slow_backward(dout, x):
        if x.size > 10_000:
            time.sleep(0.1)
        return dout * (x > 0)

    result = run(notebook(relu_backward=slow_backward), RELU, "random", 0)
    assert not result.passed and result.kinds == [Kind.TOO_SLOW], result.report()


@pytest.mark.parametrize("exercise_id", VJP)
def test_every_case_crosses_the_wire_and_gives_the_same_answer(exercise_id) -> None:
    exercise: VJPExercise = get(exercise_id)
    for part in exercise.parts:
        for case in exercise.cases(part, np.random.default_rng(3)):
            sent = decode_case(json.loads(json.dumps(encode_case(case.values))))
            for name, value in case.values.items():
                assert np.array_equal(sent[name], np.asarray(value)), (part, name)
                assert sent[name].dtype.kind == np.asarray(value).dtype.kind \
                    or np.asarray(value).dtype.kind == "f", (part, name)
            here, there = (CALLS[exercise.call](answer(SOLUTION, exercise_id), values,
                                                exercise.inputs, exercise.wrt)
                           for values in (case.values, sent))
            for a, b in zip(here, there, strict=True):
                np.testing.assert_array_equal(a, b)


def test_a_loss_must_come_with_one_gradient_per_input() -> None:
    case = get(CE).cases("given", np.random.default_rng(0))[0].values
    with pytest.raises(WrongCountError, match=r"return 2 gradients \(loss, scores\), got "
                                              r"3 values"):
        CALLS["loss"](lambda s, y: (1.0, s, s), case, ("scores", "y"), ("scores",))
    with pytest.raises(WrongCountError, match="got float"):
        CALLS["loss"](lambda s, y: 1.0, case, ("scores", "y"), ("scores",))
