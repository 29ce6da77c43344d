"""One exercise, declared once, and everything around it agrees: every check cell of a
lesson notebook names a registered exercise of that notebook and one of its parts, is
locked and carries points; every exercise has its answer cell and a check cell per part;
and every check cell has an example submission that fails it. nbgrader's own validator
passes on every source notebook (with nothing on stderr, which nbgrader scores 0)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbgrader.validator import Validator

from backprop_course.checks import REGISTRY, get
from backprop_course.grader.answers import answer_source, check_calls, is_test_cell
from backprop_course.grader.course import assignments
from backprop_course.grader.submissions import load_examples

REPO = Path(__file__).parents[2]
NOTEBOOKS = REPO / "notebooks"
GRADED = assignments(NOTEBOOKS)
get("relu_backward")  # registers every exercise


def test_there_are_graded_notebooks_and_every_exercise_belongs_to_one() -> None:
    assert GRADED
    assert {e.notebook for e in REGISTRY.values()} <= set(GRADED)


@pytest.mark.parametrize("name", GRADED)
def test_check_cells_name_registered_exercises_of_their_notebook(name: str) -> None:
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    seen = set()
    for cell in filter(is_test_cell, nb.cells):
        meta = cell.metadata.nbgrader
        calls = check_calls(cell.source)
        assert calls, f"{meta.grade_id}: a test cell must call check()"
        assert meta.get("locked") and meta.get("points", 0) > 0, meta
        for call in calls:
            exercise = get(call.exercise)
            assert exercise.notebook == name, (call, exercise.notebook)
            assert call.part in exercise.parts, call
            seen.add((call.exercise, call.part))
    for exercise in (e for e in REGISTRY.values() if e.notebook == name):
        assert answer_source(nb, exercise.answer_cell) is not None, exercise.answer_cell
        for part in exercise.parts:
            assert (exercise.id, part) in seen, f"{exercise.id} / {part} has no check cell"


@pytest.mark.parametrize("name", GRADED)
def test_every_check_cell_has_an_example_that_fails_it(name: str) -> None:
    path = REPO / "grading" / "examples" / f"{name}.json"
    assert path.exists(), f"no example submissions for {name}"
    _, examples = load_examples(path)
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    cells = [c.metadata.nbgrader.grade_id for c in nb.cells if is_test_cell(c)]
    failed = set().union(*(e.fails(cells) for e in examples if e.base != "blank"
                           and e.handed_in == "notebook"))
    assert set(cells) <= failed, f"checks no example fails: {sorted(set(cells) - failed)}"


@pytest.mark.slow
@pytest.mark.parametrize("name", GRADED)
def test_validator_passes_on_the_source(name: str) -> None:
    results = Validator().validate(str(NOTEBOOKS / f"{name}.ipynb"))
    assert results == {}, results
