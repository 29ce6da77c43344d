"""What the report reads: nbgrader's grades, our diagnoses and probes, the answer cells.

Everything comes from the course's gradebook (nbgrader's ``db_url``: SQLite or
PostgreSQL) and its folders; nothing is graded again.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from ...checks import get
from .. import diagnoses
from ..answers import answer_source


@dataclass(frozen=True)
class Check:
    """One autograded check: a test cell of an assignment's notebook."""

    assignment: str
    notebook: str
    cell: str
    exercise: str
    part: str
    points: float


@dataclass(frozen=True)
class Submission:
    """One student's graded submission of an assignment (scores per test cell)."""

    assignment: str
    student: str
    timestamp: datetime | None
    scores: dict[str, float]
    raw: float
    penalty: float

    @property
    def score(self) -> float:
        """The score after the late penalty (nbgrader's export rule)."""
        return max(0.0, self.raw - self.penalty)


@dataclass(frozen=True)
class Person:
    """A student as the gradebook knows them."""

    id: str
    first_name: str
    last_name: str
    email: str


@dataclass
class CourseData:
    """The recorded results of some assignments of a course (``assignments``, in course
    order); ``history`` holds the diagnoses of every assignment, for what a student
    keeps getting wrong across them."""

    root: Path
    course_id: str
    assignments: list[str]
    maxima: dict[str, float]
    checks: list[Check]
    submissions: dict[tuple[str, str], Submission]
    people: dict[str, Person]
    diagnoses: list[dict]
    probes: list[dict]
    history: list[dict]
    coursedir: Any = None
    _sources: dict[tuple[str, str, str], Any] = field(default_factory=dict)  # notebooks

    @property
    def students(self) -> list[str]:
        """The students with a graded submission of any of the assignments."""
        return sorted({s for _, s in self.submissions})

    def source(self, assignment: str, notebook: str, student: str, exercise: str) -> str | None:
        """A student's answer cell of an exercise, as graded (None if there is none)."""
        key = (assignment, student, notebook)
        if key not in self._sources:
            self._sources[key] = _read(self.folder("autograded", assignment, student)
                                       / f"{notebook}.ipynb")
        return _cell(self._sources[key], exercise)

    def folder(self, step: str, assignment: str, student: str = ".") -> Path:
        """An assignment's folder of nbgrader step ``step`` (``release``, ``autograded``,
        ...), of ``student`` for the steps that have one folder per student."""
        directory = getattr(self.coursedir, f"{step}_directory")
        return Path(self.coursedir.format_path(directory, student, assignment))

    def released(self, assignment: str, notebook: str, exercise: str) -> str | None:
        """The released answer cell of an exercise (its stub: boilerplate to ignore)."""
        key = (assignment, "", notebook)
        if key not in self._sources:
            self._sources[key] = _read(self.folder("release", assignment)
                                       / f"{notebook}.ipynb")
        return _cell(self._sources[key], exercise)


def _read(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _cell(nb: Any, exercise: str) -> str | None:
    if not isinstance(nb, dict):
        return None
    try:
        return answer_source(nb, get(exercise).answer_cell)
    except KeyError:
        return None


def load(root: Path | None = None, assignments: list[str] | None = None) -> CourseData:
    """The recorded results of ``assignments`` (default: every assignment in the
    gradebook) of the course whose ``nbgrader_config.py`` is in ``root`` (default: the
    current folder).

    Raises
    ------
    KeyError
        if an assignment is not in the gradebook.
    """
    from nbgrader.api import Gradebook
    from nbgrader.coursedir import CourseDirectory

    from ..scale.plan import load_config

    root = Path(root or Path.cwd()).resolve()
    coursedir = CourseDirectory(config=load_config(root))
    with warnings.catch_warnings():  # nbgrader's gradebook warns about its own sessions
        warnings.simplefilter("ignore")
        with Gradebook(coursedir.db_url, coursedir.course_id) as gb:
            diagnoses.create_tables(gb.engine)
            known = sorted(gb.assignments, key=lambda a: (a.duedate is None, a.duedate, a.name))
            order = [a.name for a in known]
            missing = sorted(set(assignments or []) - set(order))
            if missing:
                raise KeyError(f"no assignment {', '.join(missing)} in the gradebook "
                               f"{coursedir.db_url} (known: {', '.join(order) or 'none'})")
            chosen = [a for a in order if assignments is None or a in assignments]
            history = diagnoses.read(gb.engine)
            maxima = {a.name: float(a.max_score) for a in known if a.name in chosen}
            submissions, people, points = _submissions(gb, chosen)
    rows = [r for r in history.diagnoses if r["assignment"] in chosen]
    data = CourseData(
        root=root, course_id=coursedir.course_id, assignments=chosen, maxima=maxima,
        checks=[], submissions=submissions, people=people, diagnoses=rows,
        probes=[p for p in history.probes if p["assignment"] in chosen],
        history=history.diagnoses, coursedir=coursedir)
    data.checks = _checks(data, points)
    return data


def _submissions(gb: Any, assignments: list[str]) -> tuple[
        dict[tuple[str, str], Submission], dict[str, Person], dict[tuple[str, str], float]]:
    """The graded submissions, the students, and the points of each test cell."""
    out, people, points = {}, {}, {}
    for assignment in assignments:
        for sub in gb.assignment_submissions(assignment):
            student = sub.student
            people[student.id] = Person(student.id, student.first_name or "",
                                        student.last_name or "", student.email or "")
            scores = {}
            for nb in sub.notebooks:
                for grade in nb.grades:
                    if grade.cell_type == "code" and grade.max_score:
                        scores[grade.name] = float(grade.score)
                        points[assignment, grade.name] = float(grade.max_score)
            out[assignment, student.id] = Submission(
                assignment, student.id, sub.timestamp, scores, float(sub.score),
                float(sub.late_submission_penalty or 0.0))
    return out, people, points


def _checks(data: CourseData, points: dict[tuple[str, str], float]) -> list[Check]:
    """The autograded checks the diagnoses name, in the order of the released notebooks."""
    seen: dict[tuple[str, str], Check] = {}
    for row in data.diagnoses:
        key = (row["assignment"], row["cell"])
        if key not in seen:
            seen[key] = Check(row["assignment"], row["notebook"], row["cell"], row["exercise"],
                              row["part"], points.get(key, 0.0))
    order: dict[tuple[str, str], int] = {}
    for assignment, notebook in sorted({(c.assignment, c.notebook) for c in seen.values()}):
        nb = _read(data.folder("release", assignment) / f"{notebook}.ipynb") or {}
        for index, cell in enumerate(nb.get("cells", [])):
            grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
            order.setdefault((assignment, grade_id), index)
    rank = {a: i for i, a in enumerate(data.assignments)}
    return sorted(seen.values(), key=lambda c: (rank.get(c.assignment, len(rank)),
                                                order.get((c.assignment, c.cell), 10**6),
                                                c.cell))
