"""Example submissions, built from the student release and a few lines of code each.

Nothing is copied from the notebooks: ``grading/examples/<assignment>.json`` says, per
example student, which answers to type into the release's ``# YOUR CODE HERE`` stubs::

    {"assignment": "03_jacobians_relu",
     "submissions": {
       "solution": {"base": "solution"},
       "blank": {"base": "blank", "fail": "all"},
       "sign": {"base": "solution",
                "cells": {"tanh_backward_solution":
                          "t = np.tanh(x)\nreturn -grad_out * (1 - t * t)"},
                "fail": ["tanh_backward_given", "tanh_backward_random", "tanh_backward_edge"],
                "feedback": {"tanh_backward_given": "wrong sign"}}}}

``base`` "solution" fills every stub with the source notebook's solution, "blank" leaves
the release untouched; ``cells`` then replace the answers of some solution cells (a
string, or a list with one string per stub of the cell). ``fail`` lists the test cells
that must score 0 ("all" for every one; all others score full points) and ``feedback``
a phrase that each named test cell's feedback must contain. ``handed_in`` says what file
the student hands in: "notebook" (the default), "truncated" (the notebook's first half, as
left by a save cut short) or "image" (a PNG named like the notebook).
"""

from __future__ import annotations

import json
import re
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbformat import NotebookNode

from .answers import grade_id, nbgrader_meta

STUB = ("# YOUR CODE HERE", "raise NotImplementedError()")
_BEGIN, _END = "### BEGIN SOLUTION", "### END SOLUTION"
_PNG = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR" + bytes(range(256)) * 4


@dataclass
class Example:
    """One example student of an assignment and what their grade must be."""

    name: str
    base: str
    cells: dict[str, str | list[str]] = field(default_factory=dict)
    fail: list[str] | str = field(default_factory=list)
    feedback: dict[str, str] = field(default_factory=dict)
    about: str = ""
    handed_in: str = "notebook"

    def fails(self, test_cells: list[str]) -> set[str]:
        """The test cells that must score 0."""
        return set(test_cells) if self.fail == "all" else set(self.fail)


def load_examples(path: Path) -> tuple[str, list[Example]]:
    """The assignment and the example students of an examples file."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    return data["assignment"], [Example(name, **spec)
                                for name, spec in data["submissions"].items()]


def solutions(source: NotebookNode) -> dict[str, list[str]]:
    """The answers of the source notebook: per solution cell, the dedented text of each
    ``### BEGIN SOLUTION`` region (the whole cell if it has none)."""
    answers = {}
    for cell in source.cells:
        if not nbgrader_meta(cell).get("solution"):
            continue
        regions = re.findall(rf"^[ \t]*{_BEGIN}[^\n]*\n(.*?)^[ \t]*{_END}", cell.source,
                             flags=re.M | re.S)
        answers[grade_id(cell)] = ([textwrap.dedent(r) for r in regions] if regions
                                    else [cell.source])
    return answers


def fill(source: str, answers: list[str]) -> str:
    """Replace each ``# YOUR CODE HERE`` / ``raise NotImplementedError()`` stub of a cell
    with the next answer, indented like the stub."""
    lines, out, remaining = source.split("\n"), [], list(answers)
    index = 0
    while index < len(lines):
        line = lines[index]
        indent = line[:len(line) - len(line.lstrip())]
        if (line.strip() == STUB[0] and index + 1 < len(lines)
                and lines[index + 1].strip() == STUB[1]):
            if not remaining:
                raise ValueError("more stubs than answers in a cell")
            out += [indent + s if s else s for s in remaining.pop(0).rstrip("\n").split("\n")]
            index += 2
            continue
        out.append(line)
        index += 1
    if remaining:
        raise ValueError(f"{len(remaining)} answer(s) but no stub left in the cell")
    return "\n".join(out)


def handed_in(release: NotebookNode, source: NotebookNode, example: Example) -> bytes:
    """The bytes of the file the example student hands in."""
    text = nbformat.writes(build(release, source, example)).encode()
    files = {"notebook": text, "truncated": text[:len(text) // 2], "image": _PNG}
    if example.handed_in not in files:
        raise ValueError(f"{example.name}: handed_in must be one of {sorted(files)}")
    return files[example.handed_in]


def build(release: NotebookNode, source: NotebookNode, example: Example) -> NotebookNode:
    """The notebook the example student hands in."""
    answers: dict[str, list[str]] = solutions(source) if example.base == "solution" else {}
    if example.base not in ("solution", "blank"):
        raise ValueError(f"{example.name}: base must be 'solution' or 'blank'")
    answers.update({k: [v] if isinstance(v, str) else list(v)
                    for k, v in example.cells.items()})
    submitted = nbformat.from_dict(json.loads(json.dumps(release)))
    unknown = set(example.cells) - {grade_id(c) for c in submitted.cells}
    if unknown:
        raise KeyError(f"{example.name}: no solution cells {sorted(unknown)} in the release")
    for cell in submitted.cells:
        if grade_id(cell) in answers and cell.get("cell_type") == "code":
            cell.source = fill(cell.source, answers[grade_id(cell)])
    return submitted
