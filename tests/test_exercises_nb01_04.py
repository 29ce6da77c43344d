"""The exercises of notebooks 01-04: a correct solution passes every part, and each seeded
mistake fails with the right diagnosis (ARENA's lesson: a checker must be shown to reject
wrong answers, not only to accept right ones)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from backprop_course.grading import get

pytest.importorskip("torch")


def _sigmoid(s):
    return 1 / (1 + np.exp(-s))


def _neuron(w, x, g):
    f = _sigmoid(w[0] * x[0] + w[1] * x[1] + w[2])
    ds = g * (1 - f) * f
    return np.array([ds * x[0], ds * x[1], ds]), np.array([ds * w[0], ds * w[1]])


def _max(a, b, g):
    tie = 0.5 * (a == b)
    return g * ((a > b) + tie), g * ((b > a) + tie)


CORRECT = {
    "add_mul_by_hand": {"dfdx": -4.0, "dfdy": -4.0, "dfdz": 3.0},
    "mul_backward": lambda a, b, g: (g * b, g * a),
    "squared_error_grad_w": lambda w, x, y, g: -2 * (y - w @ x) * x * g,
    "sigmoid_neuron_backward": _neuron,
    "sigmoid_backward": lambda x, g: g * _sigmoid(x) * (1 - _sigmoid(x)),
    "max_backward": _max,
    "relu_backward": lambda x, g: g * (x > 0),
    "tanh_backward": lambda x, g: g * (1 - np.tanh(x) ** 2),
    "matmul_backward": lambda x, w, g: (g @ w.T, x.T @ g),
    "linear_backward": lambda x, W, b, g: (g @ W, g.T @ x, g.sum(axis=0)),
}

# (exercise, a wrong solution, part, the Diagnosis kind(s) it must get, split by "|")
BUGS = [
    ("add_mul_by_hand", {"dfdx": 4.0, "dfdy": -4.0, "dfdz": 3.0}, "dfdx", "sign"),
    # a wrong single number is just wrong (any two numbers are "a constant factor" apart)
    ("add_mul_by_hand", {"dfdx": -4.0, "dfdy": -4.0, "dfdz": 7.0}, "dfdz", "values"),
    # ... unless it is a slip the deck's numbers give away
    ("add_mul_by_hand", {"dfdx": 1.0, "dfdy": -4.0, "dfdz": 3.0}, "dfdx", "chain"),
    ("add_mul_by_hand", {"dfdx": -4.0, "dfdy": 1.0, "dfdz": 3.0}, "dfdy", "chain"),
    ("add_mul_by_hand", {"dfdx": -4.0, "dfdy": -4.0, "dfdz": -4.0}, "dfdz", "no_swap"),
    ("add_mul_by_hand", {"dfdx": -4.0, "dfdy": -4.0, "dfdz": 1.0}, "dfdz", "chain"),
    ("mul_backward", lambda a, b, g: (g * a, g * b), "given", "no_swap"),
    ("mul_backward", lambda a, b, g: (b, a), "random", "upstream"),
    ("mul_backward", lambda a, b, g: (-g * b, -g * a), "random", "sign"),
    ("squared_error_grad_w", lambda w, x, y, g: 2 * (y - w @ x) * x * g, "random", "sign"),
    ("squared_error_grad_w", lambda w, x, y, g: -(y - w @ x) * x * g, "random", "factor"),
    ("squared_error_grad_w", lambda w, x, y, g: -2 * (y - w @ x) * x, "random", "upstream"),
    ("squared_error_grad_w", lambda w, x, y, g: x * g, "random", "local"),
    ("squared_error_grad_w", lambda w, x, y, g: np.full_like(w, -2 * (y - w @ x) * g),
     "random", "chain"),
    ("sigmoid_neuron_backward",
     lambda w, x, g: (g * np.array([x[0], x[1], 1.0]), g * w[:2]), "given", "sigmoid"),
    ("sigmoid_neuron_backward",
     lambda w, x, g: tuple(-v for v in _neuron(w, x, g)), "random", "sign"),
    ("sigmoid_neuron_backward", lambda w, x, g: _neuron(w, x, 1.0), "random", "upstream"),
    ("sigmoid_neuron_backward",
     lambda w, x, g: (_neuron(w, x, g)[0] * np.array([w[0] / x[0], w[1] / x[1], 1.0]),
                      _neuron(w, x, g)[1] * x / w[:2]), "random", "swap"),
    ("sigmoid_backward", lambda x, g: g * _sigmoid(x), "random", "output"),
    ("sigmoid_backward", lambda x, g: _sigmoid(x) * (1 - _sigmoid(x)), "random", "upstream"),
    ("sigmoid_backward", lambda x, g: 2 * g * _sigmoid(x) * (1 - _sigmoid(x)), "random",
     "factor"),
    ("max_backward", lambda a, b, g: (g, g), "random", "both"),
    ("max_backward", lambda a, b, g: (g * (a < b), g * (b < a)), "random", "reversed"),
    ("max_backward", lambda a, b, g: ((a > b) * 1.0, (b > a) * 1.0), "random", "upstream"),
    ("sigmoid_backward", lambda x, g: g * x * (1 - x), "random", "input"),
    ("max_backward", lambda a, b, g: (g * (a >= b), g * (b > a)), "edge", "ties"),
    ("max_backward", lambda a, b, g: (g * (a > b), g * (b > a)), "edge", "ties"),
    # at the edge case a >= b everywhere: g * (a >= b) == g, yet "both" explains both arrays
    ("max_backward", lambda a, b, g: (g, g), "edge", "both"),
    ("relu_backward", lambda x, g: (x > 0) * 1.0, "given", "upstream"),
    ("relu_backward", lambda x, g: g * (g > 0), "random", "upstream_mask"),
    ("relu_backward", lambda x, g: g * (x >= 0), "edge", "kink"),
    ("relu_backward", lambda x, g: -g * (x > 0), "random", "sign"),
    ("tanh_backward", lambda x, g: g * (1 - x**2), "random", "input"),
    ("tanh_backward", lambda x, g: g * (1 - np.tanh(x)), "random", "square"),
    ("tanh_backward", lambda x, g: 1 - np.tanh(x) ** 2, "random", "upstream"),
    ("matmul_backward", lambda x, w, g: (g @ w.T, g.T @ x), "given", "transposed"),
    ("matmul_backward", lambda x, w, g: (-g @ w.T, -x.T @ g), "random", "sign"),
    ("matmul_backward", lambda x, w, g: (np.ones_like(g) @ w.T, x.T @ np.ones_like(g)),
     "random", "upstream"),
    ("matmul_backward", lambda x, w, g: (g @ w, x.T @ g), "edge", "order"),
    ("linear_backward", lambda x, W, b, g: (g @ W, g.T @ x, g), "random", "batch_sum"),
    ("linear_backward", lambda x, W, b, g: (g @ W, x.T @ g, g.sum(0)), "random", "transposed"),
    ("linear_backward", lambda x, W, b, g: (g @ W, g.T @ x, g.mean(0)), "random", "mean"),
    ("linear_backward", lambda x, W, b, g: (g @ W, g.T @ x, g[0]), "random", "first_row"),
    ("linear_backward", lambda x, W, b, g: (-g @ W, -g.T @ x, -g.sum(0)), "random", "sign"),
    ("linear_backward", lambda x, W, b, g: (g @ W / len(x), g.T @ x / len(x),
                                            g.sum(0) / len(x)), "random", "scaled|mean"),
    ("linear_backward", lambda x, W, b, g: (np.ones_like(g) @ W, np.ones_like(g).T @ x,
                                            np.full(W.shape[0], float(len(x)))),
     "random", "upstream"),
]

EXERCISES_01_04 = sorted(CORRECT)


@pytest.mark.parametrize("exercise_id", EXERCISES_01_04)
@pytest.mark.parametrize("seed", [0, 1234])
def test_correct_solution_passes_every_part(exercise_id: str, seed: int) -> None:
    exercise = get(exercise_id)
    assert len(exercise.parts) >= 2
    for part in exercise.parts:
        result = exercise.run(CORRECT[exercise_id], part, seed)
        assert result.passed, result.report()


@pytest.mark.parametrize(("exercise_id", "student", "part", "kind"), BUGS,
                         ids=[f"{b[0]}-{b[3]}" for b in BUGS])
def test_seeded_bug_fails_with_its_diagnosis(exercise_id, student, part, kind) -> None:
    exercise = get(exercise_id)
    result = exercise.run(student, part, seed=1234)
    assert not result.passed, f"{exercise_id}: a seeded '{kind}' bug passed {part}"
    found = result.kinds
    assert found, result.report()
    assert set(found) <= set(kind.split("|")), (found, result.report())


def test_linear_random_cases_use_batches() -> None:
    """A missing sum over the batch can only show with N > 1."""
    exercise = get("linear_backward")
    for seed in range(5):
        for case in exercise._cases("random", seed):
            assert np.asarray(case["x"]).shape[0] > 1


def test_not_implemented_is_reported() -> None:
    def student(*args):
        raise NotImplementedError

    result = get("relu_backward").run(student, "given")
    assert not result.passed
    assert "not implemented yet" in result.report()


# ------------------------------------------------------ the notebooks that use them
NOTEBOOKS = {
    "01_computational_graphs.ipynb": ["add_mul_by_hand", "mul_backward", "squared_error_grad_w"],
    "02_sigmoid_neuron.ipynb": ["sigmoid_neuron_backward", "sigmoid_backward", "max_backward"],
    "03_jacobians_relu.ipynb": ["relu_backward", "tanh_backward"],
    "04_linear_layer.ipynb": ["matmul_backward", "linear_backward"],
}
NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
CHECK_CALL = re.compile(r'check\("([\w-]+)",\s*[^,]+,\s*part="(\w+)"(?:,\s*seed=(\d+))?\)')


def test_every_exercise_is_in_a_notebook() -> None:
    assert sorted(sum(NOTEBOOKS.values(), [])) == EXERCISES_01_04


@pytest.mark.parametrize("name", sorted(NOTEBOOKS))
def test_notebook_grades_every_part_of_its_exercises(name: str) -> None:
    """Each notebook is committed without outputs and has one graded cell per part of each
    of its exercises, unique grade ids, solution regions in its solution cells, and its
    random/edge checks hidden."""
    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.read(NOTEBOOK_DIR / name, as_version=4)
    graded, ids = set(), []
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.get("outputs") and cell.get("execution_count") is None, name
        meta = cell.metadata.get("nbgrader")
        if not meta:
            continue
        ids.append(meta["grade_id"])
        assert re.fullmatch(r"[a-zA-Z0-9_-]+", meta["grade_id"])
        if meta["solution"]:
            assert "### BEGIN SOLUTION" in cell.source and "### END SOLUTION" in cell.source
        if meta["grade"]:
            assert meta["locked"] and isinstance(meta["points"], int) and meta["points"] > 0
            calls = CHECK_CALL.findall(cell.source)
            assert len(calls) == 1, cell.source
            exercise_id, part, _seed = calls[0]
            assert part in get(exercise_id).parts
            if part in ("random", "edge"):
                assert "### BEGIN HIDDEN TESTS" in cell.source, cell.source
            graded.add((exercise_id, part))
    assert len(ids) == len(set(ids)), ids
    assert len(NOTEBOOKS[name]) >= 2
    expected = {(e, p) for e in NOTEBOOKS[name] for p in get(e).parts}
    assert graded == expected, (name, graded ^ expected)
