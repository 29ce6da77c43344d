"""The worker's side: autograde one submission with stock nbgrader in a private course.

A worker needs only this package and what it is sent: the :class:`AssignmentSpec` (the
course's nbgrader configuration, the assignment's records from the gradebook and its
source files; sent once per worker) and one :class:`Submission` per task. It builds a
throw-away course folder with its own SQLite gradebook, runs nbgrader's ``Autograde``
with the course's configuration (the same preprocessors, kernel manager and limits as a
serial ``nbgrader autograde``) and returns the autograded folder as bytes. It never sees
the course's gradebook.
"""

from __future__ import annotations

import copy
import os
import re
import socket
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Files = dict[str, bytes]


class GradingError(RuntimeError):
    """nbgrader could not autograde the submission (its log says why)."""


@dataclass(frozen=True)
class AssignmentSpec:
    """What every task of one assignment shares.

    Parameters
    ----------
    name : the assignment
    course_id : the course (the gradebook's ``course_id``)
    config : the course's nbgrader configuration (a traitlets ``Config``)
    gradebook : a SQLite gradebook file holding the assignment's records only
    source_files : the assignment's non-notebook source files (``autograde`` restores them)
    release_notebooks : the released notebooks (the stand-in for a file that is refused)
    """

    name: str
    course_id: str
    config: Any
    gradebook: bytes
    source_files: Files
    release_notebooks: Files


@dataclass(frozen=True)
class Submission:
    """One student's submitted folder, identified by its timestamp and content digest;
    ``problem`` says why it cannot be graded at all (then no worker sees it)."""

    student: str
    timestamp: str | None
    digest: str
    files: Files
    problem: str = ""


@dataclass(frozen=True)
class Graded:
    """The autograded folder of one submission (relative path -> (bytes, mode))."""

    student: str
    timestamp: str | None
    digest: str
    files: dict[str, tuple[bytes, int]]
    seconds: float
    worker: str


_ONE_AT_A_TIME = threading.Lock()  # nbgrader chdir()s and sets os.environ: one per process


def _write(folder: Path, files: Files) -> None:
    for name, data in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def _read(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mode & 0o7777)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def grade(spec: AssignmentSpec, submission: Submission) -> Graded:
    """Autograde one submission in a private course folder (run on a worker).

    Raises
    ------
    GradingError
        when nbgrader reports an error for this submission (e.g. its kernel died).
    """
    from nbgrader.apps import NbGraderAPI
    from nbgrader.apps.api import capture_log, temp_attrs

    with _ONE_AT_A_TIME, tempfile.TemporaryDirectory(prefix="bp-autograde-") as tmp:
        root = Path(tmp)
        (root / "gradebook.db").write_bytes(spec.gradebook)
        _write(root / "source" / spec.name, spec.source_files)
        _write(root / "release" / spec.name, spec.release_notebooks)
        _write(root / "submitted" / submission.student / spec.name, submission.files)
        config = copy.deepcopy(spec.config)
        config.CourseDirectory.root = str(root)
        config.CourseDirectory.course_id = spec.course_id
        config.CourseDirectory.db_url = f"sqlite:///{root / 'gradebook.db'}"
        config.NbGraderAPI.log_level = "WARN"
        start = time.perf_counter()
        with warnings.catch_warnings():  # nbgrader's gradebook warns about its own sessions
            warnings.simplefilter("ignore")
            api = NbGraderAPI(config=config)
            with temp_attrs(api.coursedir, assignment_id=spec.name,
                            student_id=submission.student):
                app = _autograde_app()(coursedir=api.coursedir, parent=api)
                app.force = app.create_student = True
                outcome = capture_log(app)
        seconds = time.perf_counter() - start
        autograded = root / "autograded" / submission.student / spec.name
        if not outcome["success"] or not autograded.is_dir():
            raise GradingError(_why(outcome))
        return Graded(submission.student, submission.timestamp, submission.digest,
                      _read(autograded), seconds, f"{socket.gethostname()}:{os.getpid()}")


def _autograde_app() -> type:
    """nbgrader's ``Autograde``, except that a student folder without the notebook is not
    an error: the course's exporter grades a stand-in for it, as in a serial batch (where
    other students' notebooks keep stock nbgrader from raising "No notebooks were
    matched")."""
    from nbgrader.converters import Autograde
    from nbgrader.converters.base import NbGraderException

    class OneStudentAutograde(Autograde):
        def init_notebooks(self) -> None:
            try:
                super().init_notebooks()
            except NbGraderException:
                self.assignments = {}  # the exporter adds the folder, or the batch is empty

    return OneStudentAutograde


_EXCEPTION = re.compile(r"^\s*([\w.]+(?:Error|Exception|Exit)): (.*)$")


def _why(outcome: dict[str, Any]) -> str:
    """Why nbgrader failed: the last exception in its log (not its own summary), then the
    log's last lines."""
    log = str(outcome.get("log") or "") + "\n" + str(outcome.get("error") or "")
    lines = [line for line in log.splitlines() if line.strip()]
    causes = [m.group(0).strip() for m in map(_EXCEPTION.match, lines)
              if m and not m.group(1).endswith("NbGraderException")]
    return "\n".join([causes[-1] if causes else "nbgrader failed", *lines[-20:]])
