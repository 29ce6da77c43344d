"""The one writer of the course's gradebook (SQLite or PostgreSQL, nbgrader's ``db_url``).

Every result is recorded in one database transaction: the student and submission rows,
the grades and comments, the late penalty, and a row of :data:`RESULTS` that names the
submission it came from (its timestamp and content digest), and every diagnosis the
autograded notebook carries (:mod:`..diagnoses`: replaced, never duplicated; the workers'
throw-away gradebooks get theirs too, and are discarded). The grades are written by
nbgrader's own ``SaveAutoGrades`` and ``AssignLatePenalties`` run over the autograded
notebook, against this gradebook: so ``needs_manual_grade`` sees the manual scores and the
late penalty sees the extensions recorded here, exactly as in a serial ``nbgrader
autograde``. The autograded folder is swapped in by renames inside the transaction.

A result whose submission is already recorded is a duplicate, and a result older than
the submission the gradebook holds is stale: neither changes anything. A failure is
recorded as nbgrader leaves it (the submission row, no grades, no autograded folder) with
one of two statuses: ``failed`` when the submitted folder itself cannot be graded (it is
tried again once it changes), ``error`` when nbgrader failed on a worker (the grader's
fault, a sandbox that could not start, say: it settles nothing, and the next run tries
again).
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from unittest import mock

import nbformat
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.coursedir import CourseDirectory
from nbgrader.preprocessors import (
    AssignLatePenalties,
    SaveAutoGrades,
    latesubmissions,
    saveautogrades,
)
from sqlalchemy import Column, DateTime, Float, MetaData, String, Table, Text, select

from .. import diagnoses
from .task import Graded, Submission

_METADATA = MetaData()
#: Which submission each recorded result came from (one row per assignment and student).
RESULTS = Table(
    "backprop_autograde_result", _METADATA,
    Column("assignment", String(128), primary_key=True),
    Column("student", String(128), primary_key=True),
    Column("timestamp", DateTime, nullable=True),
    Column("digest", String(64), nullable=False),
    Column("status", String(16), nullable=False),  # "graded", "failed" or "error"
    Column("detail", Text, nullable=False, default=""),
    Column("seconds", Float, nullable=True),
    Column("worker", String(256), nullable=False, default=""),
    Column("recorded_at", DateTime, nullable=False),
)
GRADED, FAILED, ERROR, DUPLICATE, STALE = "graded", "failed", "error", "duplicate", "stale"
#: The statuses that settle a submission: it is not graded again until it changes.
SETTLED = (GRADED, FAILED)


@contextmanager
def one_transaction(gradebook: Gradebook) -> Iterator[None]:
    """Make every ``commit()`` of nbgrader's gradebook API a ``flush()`` until the block
    ends, then commit once (or roll back everything if the block raises)."""
    session = gradebook.db
    session.commit = session.flush
    try:
        with warnings.catch_warnings():  # nbgrader's API warns about its own sessions
            warnings.simplefilter("ignore")
            yield
    except BaseException:
        del session.commit
        session.rollback()
        raise
    del session.commit
    session.commit()


class _Unclosed:
    """A gradebook that nbgrader's preprocessors may enter and leave without closing."""

    def __init__(self, gradebook: Gradebook) -> None:
        self._gradebook = gradebook

    def __enter__(self) -> Gradebook:
        return self._gradebook

    def __exit__(self, *exc: object) -> None:
        return None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._gradebook, name)


def install(dest: Path, files: dict[str, tuple[bytes, int]] | None) -> None:
    """Replace the folder ``dest`` by ``files`` (None: remove it) with renames only, so a
    reader never sees a half-written folder."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    for leftover in dest.parent.glob(f".{dest.name}.*-*"):  # from a crashed earlier run
        shutil.rmtree(leftover, ignore_errors=True)
    new = None
    if files is not None:
        new = Path(tempfile.mkdtemp(prefix=f".{dest.name}.new-", dir=dest.parent))
        for name, (data, mode) in files.items():
            path = new / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            path.chmod(mode)
        new.chmod(0o755)
    old = dest.parent / f".{dest.name}.old-{uuid.uuid4().hex}"
    if dest.exists():
        dest.rename(old)
    if new is not None:
        new.rename(dest)
    shutil.rmtree(old, ignore_errors=True)


class GradebookWriter:
    """Record autograding results in the course's gradebook: the only code that writes it.

    Parameters
    ----------
    config : the course's nbgrader configuration (``db_url``, ``course_id``, folders,
        the late-penalty plugin)
    """

    def __init__(self, config: Any) -> None:
        self.config = config
        self.coursedir = CourseDirectory(config=config)
        self.gradebook = Gradebook(self.coursedir.db_url, self.coursedir.course_id)
        _METADATA.create_all(self.gradebook.engine)
        diagnoses.create_tables(self.gradebook.engine)

    def close(self) -> None:
        self.gradebook.close()

    def __enter__(self) -> GradebookWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def recorded(self, assignment: str) -> dict[str, tuple[datetime | None, str]]:
        """Per student: the (timestamp, digest) of the submission last recorded as graded
        or failed (an ``error`` settles nothing: that submission is still to grade)."""
        rows = self.gradebook.db.execute(
            select(RESULTS.c.student, RESULTS.c.timestamp, RESULTS.c.digest)
            .where(RESULTS.c.assignment == assignment, RESULTS.c.status.in_(SETTLED))).all()
        self.gradebook.db.commit()
        return {student: (timestamp, digest) for student, timestamp, digest in rows}

    def forget(self, assignment: str, students: list[str]) -> None:
        """Forget which submissions were recorded, so that they are graded again."""
        with one_transaction(self.gradebook):
            self.gradebook.db.execute(RESULTS.delete().where(
                RESULTS.c.assignment == assignment, RESULTS.c.student.in_(students)))

    def record(self, assignment: str, graded: Graded) -> str:
        """Record a graded submission; return ``graded``, ``duplicate`` or ``stale``."""
        with one_transaction(self.gradebook):
            verdict = self._supersedes(assignment, graded.student, graded.timestamp,
                                       graded.digest)
            if verdict:
                return verdict
            notebooks = self._record_submission(assignment, graded.student, graded.timestamp,
                                                set(graded.files))
            for notebook in notebooks:
                data = graded.files[f"{notebook}.ipynb"][0]
                self._save_grades(assignment, graded.student, notebook, data)
                diagnoses.record(self.gradebook.db, assignment, notebook, graded.student,
                                 diagnoses.from_bytes(data))
            self._mark(assignment, graded.student, graded.timestamp, graded.digest, GRADED,
                       "", graded.seconds, graded.worker)
            install(self._autograded(assignment, graded.student), graded.files)
        return GRADED

    def record_failure(self, assignment: str, submission: Submission, reason: str,
                       status: str = FAILED) -> str:
        """Record that a submission was not graded, as a serial ``nbgrader autograde``
        leaves it: the submission row, no new grades, no autograded folder. ``status``:
        ``failed`` (the submitted folder cannot be graded; settled until it changes) or
        ``error`` (nbgrader failed: the grader's fault; the next run tries again).
        Return ``status``, ``duplicate`` or ``stale``."""
        if status not in (FAILED, ERROR):
            raise ValueError(f"a failure's status is {FAILED!r} or {ERROR!r}, not {status!r}")
        with one_transaction(self.gradebook):
            verdict = self._supersedes(assignment, submission.student, submission.timestamp,
                                       submission.digest)
            if verdict:
                return verdict
            self._record_submission(assignment, submission.student, submission.timestamp,
                                    {n for n in submission.files if "/" not in n})
            self._mark(assignment, submission.student, submission.timestamp,
                       submission.digest, status, reason, None, "")
            install(self._autograded(assignment, submission.student), None)
        return status

    def _autograded(self, assignment: str, student: str) -> Path:
        return Path(self.coursedir.format_path(self.coursedir.autograded_directory, student,
                                               assignment))

    def _supersedes(self, assignment: str, student: str, timestamp: datetime | None,
                    digest: str) -> str | None:
        """``duplicate`` if this submission is recorded (graded or failed), ``stale`` if the
        gradebook holds a newer one, else None."""
        row = self.gradebook.db.execute(
            select(RESULTS.c.timestamp, RESULTS.c.digest).where(
                RESULTS.c.assignment == assignment, RESULTS.c.student == student,
                RESULTS.c.status.in_(SETTLED))).first()
        if row is not None and tuple(row) == (timestamp, digest):
            return DUPLICATE
        try:
            held = self.gradebook.find_submission(assignment, student).timestamp
        except MissingEntry:
            return None
        if held is not None and (timestamp is None or timestamp < held):
            return STALE
        return None

    def _record_submission(self, assignment: str, student: str, timestamp: datetime | None,
                           submitted: set[str]) -> list[str]:
        """What ``Autograde.init_assignment`` writes: the student, the submission (with its
        timestamp) and zero scores for notebooks not handed in. Return the notebooks that
        were handed in."""
        gradebook = self.gradebook
        gradebook.update_or_create_student(student)
        if timestamp is not None:
            gradebook.update_or_create_submission(assignment, student, timestamp=timestamp)
        else:
            gradebook.update_or_create_submission(assignment, student)
        handed_in = []
        for notebook in gradebook.find_assignment(assignment).notebooks:
            if f"{notebook.name}.ipynb" in submitted:
                handed_in.append(notebook.name)
                continue
            for grade in gradebook.find_submission_notebook(notebook.name, assignment,
                                                             student).grades:
                grade.auto_score = 0
                grade.needs_manual_grade = False
        return handed_in

    def _save_grades(self, assignment: str, student: str, notebook: str, data: bytes) -> None:
        """Run nbgrader's ``SaveAutoGrades`` and ``AssignLatePenalties`` over the autograded
        notebook, writing into this transaction."""
        resources = {"nbgrader": {"notebook": notebook, "assignment": assignment,
                                  "student": student, "db_url": self.coursedir.db_url}}
        nb = nbformat.reads(data.decode("utf-8"), as_version=4)
        bound = _Unclosed(self.gradebook)
        with mock.patch.object(saveautogrades, "Gradebook", lambda *a, **k: bound), \
                mock.patch.object(latesubmissions, "Gradebook", lambda *a, **k: bound):
            for step in (SaveAutoGrades, AssignLatePenalties):
                nb, resources = step(config=self.config).preprocess(nb, resources)

    def _mark(self, assignment: str, student: str, timestamp: datetime | None, digest: str,
              status: str, detail: str, seconds: float | None, worker: str) -> None:
        session = self.gradebook.db
        session.execute(RESULTS.delete().where(RESULTS.c.assignment == assignment,
                                               RESULTS.c.student == student))
        session.execute(RESULTS.insert().values(
            assignment=assignment, student=student, timestamp=timestamp, digest=digest,
            status=status, detail=detail, seconds=seconds, worker=worker,
            recorded_at=datetime.now(timezone.utc).replace(tzinfo=None)))
