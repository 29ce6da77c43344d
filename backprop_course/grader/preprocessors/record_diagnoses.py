"""``RecordDiagnoses``: nbgrader autograde step that records every diagnosis in the gradebook.

It runs after nbgrader's ``SaveAutoGrades`` (:func:`..course.configure` puts it there):
it reads what :class:`.GradeAnswers` wrote into the notebook's
``metadata.backprop_course.diagnoses`` and replaces this submission's rows of the
gradebook's diagnosis tables with it, in one transaction (:mod:`..diagnoses`). A
failure raises, so nbgrader reports the student as not graded and the notebook is not
marked finished: the next run grades them again.

Under ``backprop-course autograde`` it runs on a worker against that worker's throw-away
gradebook, which is discarded; the course's gradebook gets the rows from the one writer
(:mod:`..scale.gradebook`), read from the autograded notebook.
"""

from __future__ import annotations

from typing import Any

from nbformat import NotebookNode
from nbgrader.preprocessors import NbGraderPreprocessor
from sqlalchemy import create_engine

from .. import diagnoses


class RecordDiagnoses(NbGraderPreprocessor):
    """Record the diagnoses of an autograded notebook next to its grades."""

    def preprocess(self, nb: NotebookNode, resources: dict[str, Any]
                   ) -> tuple[NotebookNode, dict[str, Any]]:
        found = diagnoses.from_notebook(nb)
        if found is None:  # not graded by GradeAnswers (stock nbgrader's peer)
            return nb, resources
        info = resources["nbgrader"]
        engine = create_engine(info["db_url"])
        try:
            diagnoses.create_tables(engine)
            with engine.begin() as connection:
                diagnoses.record(connection, info["assignment"], info["notebook"],
                                 info["student"], found)
        finally:
            engine.dispose()
        return nb, resources
