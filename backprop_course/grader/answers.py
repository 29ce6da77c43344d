"""Read a submitted notebook the way the grader needs it: which checks each test cell
runs, and where each exercise's answer is.

Test cells are locked (nbgrader restores their source from the gradebook), so their
``check("exercise", answer, part="...")`` calls say, in the instructor's words, which
checks to run. The answer of an exercise is the source of the solution cell whose
nbgrader ``grade_id`` is the exercise's ``answer_cell``; a cell without that metadata
(deleted, or unmarked by the student) is no answer.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Any

CHECK_ARGUMENTS = ("exercise_id", "answer", "part")
LITERALS = "check() needs a literal exercise id and part"


@dataclass(frozen=True)
class CheckCall:
    """One ``check(exercise_id, answer, part)`` call of a test cell."""

    exercise: str
    part: str


class UngradableCellError(ValueError):
    """A test cell whose checks cannot be read from its source."""


def _is_check(node: ast.AST) -> bool:
    return isinstance(node, ast.Call) and (
        (isinstance(node.func, ast.Name) and node.func.id == "check")
        or (isinstance(node.func, ast.Attribute) and node.func.attr == "check"))


def check_calls(source: str) -> list[CheckCall]:
    """The checks a test cell runs, in order: top-level ``check("id", answer, part="...")``
    statements with a literal id and part.

    Raises
    ------
    UngradableCellError
        if the cell does not parse or calls check() any other way.
    """
    try:
        tree = ast.parse(source)
    except SyntaxError as error:
        raise UngradableCellError(f"the test cell does not parse: {error}") from error
    top = [s.value for s in tree.body if isinstance(s, ast.Expr) and _is_check(s.value)]
    if sum(_is_check(n) for n in ast.walk(tree)) != len(top):
        raise UngradableCellError("check() must be called at the top level of a test cell")
    calls = []
    for node in top:
        if any(isinstance(a, ast.Starred) for a in node.args) or any(
                k.arg is None for k in node.keywords):
            raise UngradableCellError("check() must be called without * or ** arguments")
        named = dict(zip(CHECK_ARGUMENTS, node.args, strict=False))
        named.update({k.arg: k.value for k in node.keywords})
        try:
            exercise, part = (ast.literal_eval(named[k]) for k in ("exercise_id", "part"))
        except (KeyError, ValueError) as error:
            raise UngradableCellError(LITERALS) from error
        if not (isinstance(exercise, str) and isinstance(part, str)):
            raise UngradableCellError(LITERALS)
        calls.append(CheckCall(exercise, part))
    return calls


def nbgrader_meta(cell: Any) -> dict:
    """A cell's nbgrader metadata ({} if it has none or it is not a dict)."""
    meta = cell.get("metadata", {}) if isinstance(cell, dict) else {}
    meta = meta.get("nbgrader", {}) if isinstance(meta, dict) else {}
    return meta if isinstance(meta, dict) else {}


def grade_id(cell: Any) -> str | None:
    """A cell's nbgrader ``grade_id`` (None if it has none)."""
    return nbgrader_meta(cell).get("grade_id")


def is_test_cell(cell: Any) -> bool:
    """An autograded test cell: a graded code cell that is not a solution."""
    meta = nbgrader_meta(cell)
    return cell.get("cell_type") == "code" and bool(meta.get("grade")) and not meta.get(
        "solution")


def is_hidden(source: str) -> bool:
    """A hidden test (the release strips it; feedback must not reveal its cases)."""
    return "BEGIN HIDDEN TESTS" in source


def answer_source(nb: Any, grade_id: str) -> str | None:
    """The source of the solution cell ``grade_id`` (None if there is none)."""
    for cell in nb.get("cells", []):
        meta = nbgrader_meta(cell)
        if meta.get("solution") and meta.get("grade_id") == grade_id \
                and cell.get("cell_type") == "code":
            source = cell.get("source", "")
            return "".join(source) if isinstance(source, list) else str(source)
    return None
