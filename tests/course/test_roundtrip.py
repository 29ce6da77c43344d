"""The instructor's round trip on the real notebooks: generate the release, autograde the
example submissions in ``grading/examples/`` (and the blank release of every other
assignment), write feedback, export grades; every score and feedback phrase is exact."""

from __future__ import annotations

import csv
import html
import re
from pathlib import Path

import nbformat
import pytest

from backprop_course.grader.answers import is_test_cell
from backprop_course.grader.course import assignments
from backprop_course.grader.hygiene import release_problems
from backprop_course.grader.pipeline import Course
from backprop_course.grader.submissions import Example, load_examples

pytestmark = pytest.mark.slow

REPO = Path(__file__).parents[2]
NOTEBOOKS = REPO / "notebooks"
EXAMPLES = REPO / "grading" / "examples"
ASSIGNMENTS = assignments(NOTEBOOKS)


def examples_of(assignment: str) -> list[Example]:
    path = EXAMPLES / f"{assignment}.json"
    if path.exists():
        return load_examples(path)[1]
    return [Example("blank", "blank", fail="all")]  # the validator tests the solutions


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Course:
    course = Course(tmp_path_factory.mktemp("course"), NOTEBOOKS, log=lambda _: None)
    for assignment in ASSIGNMENTS:
        course.release(assignment)
        course.submit(assignment, examples_of(assignment))
        course.autograde(assignment)
        course.feedback(assignment)
    return course


def cases() -> list[tuple[str, Example]]:
    return [(a, e) for a in ASSIGNMENTS for e in examples_of(a)]


def test_the_examples_cover_the_seeded_mistakes() -> None:
    names = {e.name for a in ASSIGNMENTS for e in examples_of(a)}
    assert {"transposed", "sign", "batch_factor", "batch_sum", "upstream", "overwrite",
            "partly", "tamper_numpy", "tamper_check", "unreadable", "truncated",
            "deck_numbers"} <= names


@pytest.mark.parametrize(("assignment", "example"), cases(),
                         ids=[f"{a}-{e.name}" for a, e in cases()])
def test_exact_score_per_check(course: Course, assignment: str, example: Example) -> None:
    scores = course.scores(assignment)[example.name]
    fails = example.fails(list(scores))
    assert fails <= set(scores), f"unknown test cells {fails - set(scores)}"
    expected = {cell: (0.0 if cell in fails else top, top) for cell, (_, top) in scores.items()}
    assert scores == expected


@pytest.mark.parametrize(("assignment", "example"),
                         [c for c in cases() if c[1].feedback],
                         ids=[f"{a}-{e.name}" for a, e in cases() if e.feedback])
def test_feedback_names_the_mistake(course: Course, assignment: str, example: Example) -> None:
    reports = course.reports(assignment, example.name)
    page = course.path("feedback", assignment, example.name, ".html").read_text()
    text = html.unescape(re.sub(r"<[^>]+>", "", page))
    for cell, phrase in example.feedback.items():
        assert phrase in reports[cell], reports[cell]
        for line in reports[cell].splitlines()[1:]:
            assert line.strip() in text, f"not in the feedback HTML: {line}"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_release_is_clean_and_fails_first_at_the_first_exercise(course: Course,
                                                                 assignment: str) -> None:
    source = nbformat.read(course.path("source", assignment), as_version=4)
    release = nbformat.read(course.path("release", assignment), as_version=4)
    assert release_problems(source, release, course.path("release", assignment).parent) == []
    blank = nbformat.read(course.path("autograded", assignment, "blank"), as_version=4)
    first_solution = next(i for i, c in enumerate(blank.cells)
                          if c.metadata.get("nbgrader", {}).get("solution"))
    first_failure = next(i for i, c in enumerate(blank.cells) if any(
        o.output_type == "error" for o in c.get("outputs", [])))
    assert first_failure >= first_solution
    cell = blank.cells[first_failure]
    error = next(o for o in cell.outputs if o.output_type == "error")
    if is_test_cell(cell):
        assert "not implemented yet" in error.evalue, error.evalue
    else:
        assert error.ename == "NotImplementedError", (cell.source, error)


@pytest.mark.parametrize(("assignment", "example"),
                         [c for c in cases() if c[1].handed_in != "notebook"],
                         ids=[f"{a}-{e.name}" for a, e in cases() if e.handed_in != "notebook"])
def test_a_refused_file_gets_zero_and_a_page_that_says_why(course: Course, assignment: str,
                                                          example: Example) -> None:
    """A file that is not a notebook: 0 on every check, and the page opens with why."""
    page = course.path("feedback", assignment, example.name, ".html").read_text()
    text = html.unescape(re.sub(r"<[^>]+>", "", page))
    assert "This notebook was not graded" in text
    assert all(phrase in text for phrase in example.feedback.values())
    maximum = sum(m for _, m in course.scores(assignment)["blank"].values())
    assert f"Score: 0.0 / {maximum:.1f}" in text


def test_exported_csv_has_every_total(course: Course, tmp_path: Path) -> None:
    course.export(tmp_path / "grades.csv")
    with open(tmp_path / "grades.csv", newline="") as handle:
        rows = {(r["assignment"], r["student_id"]): r for r in csv.DictReader(handle)}
    students = {e.name for _, e in cases()}
    assert set(rows) == {(a, s) for a in ASSIGNMENTS for s in students}
    for (assignment, student), row in rows.items():
        cells = course.scores(assignment).get(student, {})  # no submission: 0
        assert float(row["raw_score"]) == sum(s for s, _ in cells.values())
        assert float(row["score"]) == float(row["raw_score"])
        maximum = sum(m for _, m in course.scores(assignment)["blank"].values())
        assert float(row["max_score"]) == maximum
