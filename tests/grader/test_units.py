"""The grader's parts on their own: reading check calls and answer cells, building
example submissions, release hygiene and the demo's grade table."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from backprop_course.grader.answers import (
    CheckCall,
    UngradableCellError,
    answer_source,
    check_calls,
    is_hidden,
)
from backprop_course.grader.demo import grade_table
from backprop_course.grader.hygiene import release_problems
from backprop_course.grader.pipeline import Grades
from backprop_course.grader.submissions import Example, build, fill, load_examples, solutions

FIXTURES = Path(__file__).parents[1] / "fixtures"
REPO = Path(__file__).parents[2]
FIXTURE = FIXTURES / "notebooks" / "relu_fixture.ipynb"


def test_check_calls_are_read_from_the_source() -> None:
    source = ('# comment\ncheck("relu_backward", relu_backward, part="random")\n'
              '### BEGIN HIDDEN TESTS\ncheck("relu_backward", f, "edge")\n'
              '### END HIDDEN TESTS\n')
    assert check_calls(source) == [CheckCall("relu_backward", "random"),
                                   CheckCall("relu_backward", "edge")]
    assert is_hidden(source) and not is_hidden('check("a", f, part="given")')
    assert check_calls("x = 1") == []


@pytest.mark.parametrize("source", [
    'check(name, f, part="given")',
    'check("relu_backward", f, part=PART)',
    'for s in range(3):\n    check("relu_backward", f, part="random")',
    'check(*args)',
    'check("relu_backward", f, **parts)',
    'check("relu_backward", f, part=1.5)',
    'check("relu_backward", f, part="given"',
])
def test_unreadable_check_calls_make_the_cell_ungradable(source: str) -> None:
    with pytest.raises(UngradableCellError):
        check_calls(source)


def test_the_answer_is_the_marked_solution_cell_only() -> None:
    nb = nbformat.read(FIXTURE, as_version=4)
    assert "def relu_backward" in answer_source(nb, "relu_backward_solution")
    assert answer_source(nb, "relu_shape") is None  # a test cell is no answer
    answer = next(c for c in nb.cells
                  if c.metadata.get("nbgrader", {}).get("grade_id") == "relu_backward_solution")
    del answer.metadata["nbgrader"]
    assert answer_source(nb, "relu_backward_solution") is None


def test_fill_replaces_each_stub_with_its_indented_answer() -> None:
    cell = "def f(x):\n    # YOUR CODE HERE\n    raise NotImplementedError()\n\ny = 1"
    assert fill(cell, ["a = x\nreturn a"]) == "def f(x):\n    a = x\n    return a\n\ny = 1"
    with pytest.raises(ValueError):
        fill(cell, [])


def test_the_full_solution_example_reproduces_the_source() -> None:
    source = nbformat.read(FIXTURE, as_version=4)
    release = nbformat.from_dict(json.loads(json.dumps(source)))
    for cell in release.cells:
        for region in solutions(source).get(cell.metadata.get("nbgrader", {}).get("grade_id"),
                                            []):
            cell.source = cell.source.replace(region, "# YOUR CODE HERE\nraise "
                                                      "NotImplementedError()\n")
    submitted = build(release, source, Example("solution", "solution"))
    assert "return grad_out * (x > 0)" in answer_source(submitted, "relu_backward_solution")
    with pytest.raises(KeyError):
        build(release, source, Example("x", "solution", cells={"no_such_cell": "pass"}))


@pytest.mark.parametrize("path", sorted((REPO / "grading" / "examples").glob("*.json"))
                         + sorted((FIXTURES / "examples").glob("*.json")), ids=lambda p: p.stem)
def test_examples_files_name_a_solution_and_a_blank(path: Path) -> None:
    assignment, examples = load_examples(path)
    assert assignment == path.stem
    by_name = {e.name: e for e in examples}
    assert by_name["solution"].base == "solution" and not by_name["solution"].fail
    assert by_name["blank"].base == "blank" and by_name["blank"].fail == "all"


def test_hygiene_finds_solutions_hidden_tests_outputs_and_compiled_files(tmp_path) -> None:
    source = nbformat.read(FIXTURE, as_version=4)
    leaky = nbformat.from_dict(json.loads(json.dumps(source)))
    leaky.cells[9].outputs = [nbformat.v4.new_output("stream", text="[PASS]")]
    (tmp_path / "__pycache__").mkdir()
    problems = "\n".join(release_problems(source, leaky, tmp_path))
    for expected in ("### BEGIN SOLUTION", "### BEGIN HIDDEN TESTS", "has outputs",
                     "return grad_out * (x > 0)", "compiled file"):
        assert expected in problems


def test_grade_table_lists_students_checks_and_totals() -> None:
    grades = Grades({("a", "ann"): {"relu_given": (2.0, 2.0), "relu_edge": (0.0, 1.0)},
                     ("a", "bob"): {"relu_given": (0.0, 2.0), "relu_edge": (1.0, 1.0)}})
    table = grade_table(grades, "a").splitlines()
    assert table[0].strip() == "relu"
    assert table[1].split() == ["a", "given/2", "edge/1", "total"]
    assert table[2].split() == ["ann", "2", "0", "2/3"]
    assert table[3].split() == ["bob", "0", "1", "1/3"]
