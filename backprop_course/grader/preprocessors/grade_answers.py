"""``GradeAnswers``: nbgrader's autograde step, without running the student's notebook.

Stock nbgrader executes the submitted notebook and scores each test cell by whether it
raised. Here nothing the student's kernel produces counts, so no kernel runs at all: in
``Autograde.autograde_preprocessors`` this class takes the place of ``Execute``. It runs
each exercise's answer cell in the grader's sandbox and writes each test cell's verdict
as that cell's outputs (:func:`backprop_course.grader.grade.grade_notebook`); nbgrader's
stock ``SaveAutoGrades`` then records them. What the instructor's report needs besides
(each check's kinds and worst element, each answer's probe: :mod:`..evidence`) goes into
the notebook's ``metadata.backprop_course.diagnoses``, which :class:`.RecordDiagnoses`
(or the one writer of ``backprop-course autograde``) records next to the grades.

A sandbox that cannot start is retried, then raised: nbgrader then records nothing for
that student (the batch goes on and exits 1), and a plain re-run grades them, so a
grader fault never becomes a student's 0.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from nbformat import NotebookNode
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Enum, Float, Unicode

from ..evidence import Evidence
from ..exporter import KEY
from ..grade import Seeds, grade_notebook
from ..sandbox import MISSING, Limits


class GradeAnswers(NbGraderPreprocessor):
    """Grade the test cells of a submitted notebook from its answer cells."""

    secret = Unicode(help="the course secret, hex (set by the course configuration)").tag(
        config=True)
    isolation = Enum(["full", "namespaces", "none"], "none",
                     help="the sandbox's isolation level (see backprop_course.grader.sandbox)"
                     ).tag(config=True)
    cell_seconds = Float(10.0, help="wall seconds for an answer cell to run").tag(config=True)
    case_seconds = Float(10.0, help="wall seconds for one call of an answer").tag(config=True)

    def preprocess(self, nb: NotebookNode, resources: dict[str, Any]
                   ) -> tuple[NotebookNode, dict[str, Any]]:
        if not self.secret:
            raise ValueError("GradeAnswers.secret is not set: configure the course with "
                             "backprop_course.grader.course.configure")
        student = resources["nbgrader"]["student"]
        if MISSING[self.isolation]:
            self.log.warning("%s: sandbox isolation %r: missing %s", student, self.isolation,
                             MISSING[self.isolation])
        else:
            self.log.info("%s: sandbox isolation %r", student, self.isolation)
        for cell in nb.cells:
            if cell.cell_type == "code":
                cell.outputs, cell.execution_count = [], None
        limits = Limits(cell_seconds=self.cell_seconds, case_seconds=self.case_seconds)
        refused = (resources.get(KEY) or {}).get("refused")
        evidence = Evidence()
        grade_notebook(nb, Seeds.for_course(bytes.fromhex(self.secret), student),
                       self.isolation, limits, refused,
                       log=lambda line: self.log.info("%s: %s", student, line),
                       evidence=evidence)
        graded_at = datetime.now(timezone.utc).replace(tzinfo=None)
        ours = nb.metadata.get(KEY)
        nb.metadata[KEY] = {**(ours if isinstance(ours, dict) else {}),
                            "diagnoses": evidence.to_metadata(graded_at)}
        return nb, resources
