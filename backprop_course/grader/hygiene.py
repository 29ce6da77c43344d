"""Release hygiene: what the student release must not contain."""

from __future__ import annotations

import re
from pathlib import Path

from nbformat import NotebookNode

MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")
COMPILED = {".pyc", ".pyo", ".so", ".pyd"}


def _regions(source: str, marker: str) -> list[str]:
    return re.findall(rf"### BEGIN {marker}[^\n]*\n(.*?)### END {marker}", source, flags=re.S)


def _secret_lines(source: NotebookNode) -> set[str]:
    """The code lines of the source's solutions and hidden tests, except comments, short
    lines (such as ``return x``) and lines the lesson shows outside those regions."""
    secret, public = set(), set()
    for cell in source.cells:
        if cell.cell_type != "code":
            continue
        regions = _regions(cell.source, "SOLUTION") + _regions(cell.source, "HIDDEN TESTS")
        for region in regions:
            secret |= {s.strip() for s in region.splitlines()
                       if len(s.strip()) >= 12 and not s.strip().startswith("#")}
        rest = cell.source
        for region in regions:
            rest = rest.replace(region, "")
        public |= {s.strip() for s in rest.splitlines()}
    return secret - public


def release_problems(source: NotebookNode, release: NotebookNode,
                     release_dir: Path | None = None) -> list[str]:
    """Everything wrong with a student release, as sentences (empty when clean).

    Checks that no solution line or hidden test of ``source`` survives in ``release``,
    that no nbgrader marker and no output (which could show an answer) is left, and that
    ``release_dir`` holds no compiled files.
    """
    problems = []
    secrets = _secret_lines(source)
    for number, cell in enumerate(release.cells):
        for marker in MARKERS:
            if marker in cell.source:
                problems.append(f"cell {number}: still has the marker '### {marker}'")
        if cell.cell_type != "code":
            continue
        if cell.get("outputs"):
            problems.append(f"cell {number}: has outputs (they may show answers)")
        for line in {s.strip() for s in cell.source.splitlines()} & secrets:
            problems.append(f"cell {number}: shows solution or hidden-test code: {line!r}")
    if release_dir is not None:
        for path in Path(release_dir).rglob("*"):
            if path.suffix in COMPILED or path.name == "__pycache__":
                problems.append(f"compiled file in the release: {path.relative_to(release_dir)}")
    return problems
