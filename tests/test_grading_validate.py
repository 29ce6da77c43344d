"""nbgrader's own validator passes on every graded source notebook: every test cell of the
full solution passes in the student's kernel, with nothing on stderr (which nbgrader would
score 0), and every test cell is one the trusted grader can read."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbgrader.validator import Validator

from backprop_course.grading.course import assignments
from backprop_course.grading.exercise import get
from backprop_course.grading.trusted import check_calls, is_test_cell

pytest.importorskip("torch")

NOTEBOOKS = Path(__file__).parents[1] / "notebooks"
GRADED = assignments(NOTEBOOKS)


def test_there_are_graded_notebooks() -> None:
    assert GRADED, "no notebook in notebooks/ has nbgrader cells"


@pytest.mark.parametrize("name", GRADED)
def test_every_test_cell_runs_known_checks(name: str) -> None:
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    for cell in filter(is_test_cell, nb.cells):
        calls = check_calls(cell.source)
        assert calls, f"{cell.metadata.nbgrader.grade_id}: a test cell must call check()"
        for call in calls:
            assert call.part in get(call.exercise).parts
        assert cell.metadata.nbgrader.get("locked"), "test cells must be locked"


@pytest.mark.slow
@pytest.mark.parametrize("name", GRADED)
def test_validator_passes_on_the_source(name: str) -> None:
    results = Validator().validate(str(NOTEBOOKS / f"{name}.ipynb"))
    assert results == {}, results
