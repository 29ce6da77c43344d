"""Restore the nbgrader metadata of a submitted notebook from the gradebook.

nbgrader's ``OverwriteCells`` restores a locked cell's source, its ``locked`` flag and
its points, but trusts the rest of the student's metadata. Two edits then break that
student's grading (nbgrader 0.9.6): a test cell whose ``grade_id`` was renamed loses its
id but stays a grade cell (``KeyError: 'grade_id'``), and a test cell turned into a
solution cell fails with "Inconsistent checksums"; a ``schema_version`` changed to an
old or future number stops the whole batch (``SchemaTooOldError``). Neither gains a
point, but the student gets no grade at all, or nobody does.

:class:`RestoreMetadata` runs before ``OverwriteCells``: every cell whose ``grade_id``
is a cell of the assignment gets that cell's ``grade``, ``solution``, ``task`` flags,
points and schema version back, and keeps only the fields of nbgrader's schema (a
``comment`` or ``score`` of the student's own never reaches a page); any other nbgrader
metadata is dropped (the cell is an ordinary cell, and a deleted test cell comes back
through ``add_missing_cells``).
"""

from __future__ import annotations

from nbformat import NotebookNode
from nbgrader.api import Gradebook
from nbgrader.nbgraderformat import SCHEMA_VERSION
from nbgrader.preprocessors import NbGraderPreprocessor

#: the fields of nbgrader's cell metadata (schema version 3)
SCHEMA_FIELDS = ("grade", "grade_id", "locked", "points", "schema_version", "solution",
                 "task", "checksum", "cell_type")


class RestoreMetadata(NbGraderPreprocessor):
    """nbgrader sanitize preprocessor: nbgrader metadata comes from the gradebook."""

    def preprocess(self, nb: NotebookNode, resources: dict) -> tuple[NotebookNode, dict]:
        info = resources["nbgrader"]
        with Gradebook(info["db_url"]) as gradebook:
            source = gradebook.find_notebook(info["notebook"], info["assignment"])
            known = {c.name for c in source.source_cells}
            points = {c.name: float(c.max_score) for c in source.grade_cells}
            points |= {c.name: float(c.max_score) for c in source.task_cells}
            solutions = {c.name for c in source.solution_cells}
            tasks = {c.name for c in source.task_cells}
        for cell in nb.cells:
            meta = cell.get("metadata", {}).get("nbgrader")
            if meta is None:
                continue
            grade_id = meta.get("grade_id")
            if grade_id not in known:
                self.log.warning("dropping nbgrader metadata of a cell the assignment does "
                                 "not have (grade_id %r)", grade_id)
                del cell.metadata["nbgrader"]
                continue
            restored = {"grade": grade_id in points and grade_id not in tasks,
                        "solution": grade_id in solutions, "schema_version": SCHEMA_VERSION}
            if "task" in meta or grade_id in tasks:
                restored["task"] = grade_id in tasks
            if grade_id in points:
                restored["points"] = points[grade_id]
            else:
                meta.pop("points", None)
            changed = {k: (meta.get(k), v) for k, v in restored.items() if meta.get(k) != v}
            if changed:
                self.log.warning("cell %s: restoring nbgrader metadata %s", grade_id, changed)
            for key in set(meta) - set(SCHEMA_FIELDS):
                del meta[key]
            meta.update(restored)
        return nb, resources
