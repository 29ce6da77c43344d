"""The trusted grader's parts, without kernels: the wire format, reading check calls,
judging forged or garbled data, building example submissions, release hygiene."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import numpy as np
import pytest

from backprop_course import tensor
from backprop_course.grading import check, get, wire
from backprop_course.grading.demo import grade_table
from backprop_course.grading.hygiene import release_problems
from backprop_course.grading.pipeline import Grades
from backprop_course.grading.submissions import Example, build, fill, load_examples, solutions
from backprop_course.grading.trusted import (
    CheckCall,
    UngradableCellError,
    check_calls,
    judge_cell,
)

pytest.importorskip("torch")

FIXTURES = Path(__file__).parent / "fixtures"
REPO = Path(__file__).parents[1]


def relu(x, grad_out):
    return grad_out * (x > 0)


def published(exercise: str, student, part: str, seed: int = 0) -> dict:
    """A display output as ``check`` publishes it."""
    outcomes = get(exercise).collect(student, part, seed)
    return {"output_type": "display_data",
            "data": {wire.MIME: wire.payload(exercise, part, seed, outcomes), "text/plain": ""},
            "metadata": {}}


# ------------------------------------------------------------------ wire format
@pytest.mark.parametrize("value", [np.array([[1.5, np.nan], [np.inf, -0.0]]), 3.25,
                                   [1, 2, 3], np.arange(6.0).reshape(2, 3).T, np.array(True)])
def test_arrays_cross_the_wire_exactly(value) -> None:
    decoded = wire.decode_array(json.loads(json.dumps(wire.encode_array(value))))
    np.testing.assert_array_equal(decoded, np.asarray(value, dtype=np.float64))


def test_tensors_none_and_non_numbers_cross_the_wire() -> None:
    np.testing.assert_array_equal(wire.decode_array(wire.encode_array(tensor([1.0, 2.0]))),
                                  [1.0, 2.0])
    assert wire.decode_array(wire.encode_array(None)) is None
    assert wire.decode_array(wire.encode_array("abc")) == wire.NotNumeric("str")


@pytest.mark.parametrize("item", [
    {"shape": [2], "b64": "AAAA"},                     # too few bytes
    {"shape": [10**7], "b64": ""},                     # too large
    {"shape": [-1], "b64": ""},
    {"shape": [1], "b64": "not base64!"},
    "a string", {"shape": "2", "b64": ""},
])
def test_garbled_arrays_are_rejected(item) -> None:
    with pytest.raises(wire.PayloadError):
        wire.decode_array(item)


# ---------------------------------------------------------------- check calls
def test_check_calls_are_read_from_the_source() -> None:
    source = ('# comment\ncheck("relu_backward", relu_backward, part="random")\n'
              '### BEGIN HIDDEN TESTS\ncheck("relu_backward", f, "random", 7)\n'
              '### END HIDDEN TESTS\n')
    assert check_calls(source) == [CheckCall("relu_backward", "random", 0),
                                   CheckCall("relu_backward", "random", 7)]
    assert check_calls("x = 1") == []


@pytest.mark.parametrize("source", [
    'check(name, f, part="given")',
    'check("relu_backward", f, part=PART)',
    'for s in range(3):\n    check("relu_backward", f, part="random", seed=s)',
    'check(*args)',
    'check("relu_backward", f, part="given", seed=1.5)',
    'check("relu_backward", f, part="given"',
])
def test_unreadable_check_calls_make_the_cell_ungradable(source: str) -> None:
    with pytest.raises(UngradableCellError):
        check_calls(source)


# ------------------------------------------------------------------- judging
SOURCE = 'check("relu_backward", relu_backward, part="given")'


def test_right_arrays_pass_and_wrong_ones_fail_with_the_diagnosis() -> None:
    passed, report, _ = judge_cell(SOURCE, [published("relu_backward", relu, "given")])
    assert passed, report
    passed, report, kinds = judge_cell(SOURCE, [published(
        "relu_backward", lambda x, g: -relu(x, g), "given")])
    assert not passed and kinds == ["sign"] and "wrong sign" in report


def test_the_payload_cannot_choose_its_check() -> None:
    """Data for the easy 'shape' check does not pass the 'given' cell."""
    passed, report, _ = judge_cell(SOURCE, [published("relu_backward", np.ones_like, "shape")])
    assert not passed and "not ('relu_backward', 'given', 0)" in report


def test_forged_cases_are_judged_against_the_real_references() -> None:
    forged = published("relu_backward", relu, "random", seed=0)
    source = 'check("relu_backward", relu_backward, part="random", seed=5)'
    forged["data"][wire.MIME]["seed"] = 5  # seed 0's answers relabelled as seed 5's
    passed, _, _ = judge_cell(source, [forged])
    assert not passed


def test_missing_extra_and_garbled_payloads_fail() -> None:
    error = {"output_type": "error", "ename": "NameError", "evalue": "name 'relu' is not defined",
             "traceback": []}
    passed, report, _ = judge_cell(SOURCE, [error])
    assert not passed and "did not run: NameError" in report
    good = published("relu_backward", relu, "given")
    assert not judge_cell(SOURCE, [good, good])[0]
    garbled = published("relu_backward", relu, "given")
    garbled["data"][wire.MIME]["outcomes"][0]["returned"][0]["b64"] = "AAAA"
    passed, report, _ = judge_cell(SOURCE, [garbled])
    assert not passed and "garbled" in report


def test_value_exercises_are_judged_outside_the_kernel() -> None:
    source = 'check("add_mul_by_hand", {"dfdx": dfdx}, part="dfdx")'
    right = published("add_mul_by_hand", {"dfdx": -4.0}, "dfdx")
    assert judge_cell(source, [right])[0]
    blank = published("add_mul_by_hand", {"dfdx": ...}, "dfdx")
    passed, report, _ = judge_cell(source, [blank])
    assert not passed and "not answered yet" in report


def test_check_is_silent_on_stderr_when_right_and_raises_when_wrong(capsys) -> None:
    for part in get("relu_backward").parts:
        check("relu_backward", relu, part=part)
    out, err = capsys.readouterr()
    assert err == "" and out.count("[PASS]") == 4
    with pytest.raises(AssertionError, match="upstream gradient"):
        check("relu_backward", lambda x, g: (x > 0) * 1.0, part="given")


# ------------------------------------------------------- example submissions
def test_fill_replaces_each_stub_with_its_indented_answer() -> None:
    cell = "def f(x):\n    # YOUR CODE HERE\n    raise NotImplementedError()\n\ny = 1"
    assert fill(cell, ["a = x\nreturn a"]) == "def f(x):\n    a = x\n    return a\n\ny = 1"
    with pytest.raises(ValueError):
        fill(cell, [])


def test_the_full_solution_example_reproduces_the_source() -> None:
    source = nbformat.read(FIXTURES / "notebooks" / "relu_fixture.ipynb", as_version=4)
    release = nbformat.from_dict(json.loads(json.dumps(source)))
    for cell in release.cells:
        for region in solutions(source).get(cell.metadata.get("nbgrader", {}).get("grade_id"),
                                            []):
            cell.source = cell.source.replace(region, "# YOUR CODE HERE\nraise "
                                                      "NotImplementedError()\n")
    submitted = build(release, source, Example("solution", "solution"))
    assert "return grad_out * (x > 0)" in submitted.cells[7].source
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


# ------------------------------------------------------------- release hygiene
def test_hygiene_finds_solutions_hidden_tests_outputs_and_compiled_files(tmp_path) -> None:
    source = nbformat.read(FIXTURES / "notebooks" / "relu_fixture.ipynb", as_version=4)
    leaky = nbformat.from_dict(json.loads(json.dumps(source)))
    leaky.cells[8].outputs = [nbformat.v4.new_output("stream", text="[PASS]")]
    (tmp_path / "__pycache__").mkdir()
    problems = "\n".join(release_problems(source, leaky, tmp_path))
    for expected in ("### BEGIN SOLUTION", "### BEGIN HIDDEN TESTS", "has outputs",
                     "return grad_out * (x > 0)", 'seed=7', "compiled file"):
        assert expected in problems


def test_grade_table_lists_students_checks_and_totals() -> None:
    grades = Grades({("a", "ann"): {"relu_given": (2.0, 2.0), "relu_edge": (0.0, 1.0)},
                     ("a", "bob"): {"relu_given": (0.0, 2.0), "relu_edge": (1.0, 1.0)}})
    table = grade_table(grades, "a").splitlines()
    assert table[0].strip() == "relu"
    assert table[1].split() == ["a", "given/2", "edge/1", "total"]
    assert table[2].split() == ["ann", "2", "0", "2/3"]
    assert table[3].split() == ["bob", "0", "1", "1/3"]
