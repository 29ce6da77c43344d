"""``BoundNotebook``: a submitted notebook's text, cut to a size the grader's pages can carry.

After nbgrader's ``ClearOutput`` (the sanitize pass) a notebook holds only its cells'
sources and attachments, which a student controls. Each cell's source is cut to
``max_cell_chars`` and the notebook's to ``max_chars`` in all (with a note saying so),
and attachments go, so the autograded notebook and its feedback page stay small whatever
was submitted.
"""

from __future__ import annotations

from typing import Any

from nbformat import NotebookNode
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Integer


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n# [{len(text) - limit} more characters cut by the grader]\n"


class BoundNotebook(NbGraderPreprocessor):
    """Cut every cell's source, and the notebook's in all; drop attachments."""

    max_cell_chars = Integer(200_000, help="characters kept of one cell's source").tag(
        config=True)
    max_chars = Integer(2_000_000, help="characters kept of all sources together").tag(
        config=True)

    def preprocess(self, nb: NotebookNode, resources: dict[str, Any]
                   ) -> tuple[NotebookNode, dict[str, Any]]:
        left = self.max_chars
        for cell in nb.cells:
            source = cell.get("source", "")
            source = "".join(source) if isinstance(source, list) else str(source)
            cell.source = _cut(source, max(0, min(self.max_cell_chars, left)))
            left -= min(len(source), self.max_cell_chars)
            cell.pop("attachments", None)
        return nb, resources
