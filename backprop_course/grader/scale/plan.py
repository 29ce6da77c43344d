"""The coordinator's view of the course: its configuration, what a worker must be sent, and
which submissions still need grading."""

from __future__ import annotations

import glob
import hashlib
import os
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from nbgrader.api import Gradebook
from nbgrader.coursedir import CourseDirectory
from nbgrader.utils import find_all_files
from sqlalchemy import inspect

from ..exporter import symlinks
from .gradebook import one_transaction
from .task import AssignmentSpec, Files, Submission

_KEYS = {"id", "name", "type", "notebook_id", "assignment_id", "course_id"}


def load_config(root: Path | None = None) -> Any:
    """The nbgrader configuration that ``nbgrader`` run in ``root`` (default: the current
    folder) would load: ``nbgrader_config.py`` there plus the user's and system's."""
    from nbgrader.apps.baseapp import NbGrader

    cwd = Path.cwd()
    os.chdir(root or cwd)
    try:
        app = NbGrader()
        app.load_config_file()
    finally:
        os.chdir(cwd)
    return app.config


def _fields(row: Any) -> dict[str, Any]:
    return {a.key: getattr(row, a.key) for a in inspect(row).mapper.column_attrs
            if a.key not in _KEYS}


def copy_assignment(source: Gradebook, name: str, target: Gradebook) -> None:
    """Copy an assignment's records (notebooks and every kind of cell, hidden tests
    included) from one gradebook into another, as ``generate_assignment`` wrote them."""
    assignment = source.find_assignment(name)
    with one_transaction(target):
        target.add_assignment(name, **_fields(assignment))
        for notebook in assignment.notebooks:
            target.add_notebook(notebook.name, name, **_fields(notebook))
            for cells, add in ((notebook.grade_cells, target.add_grade_cell),
                               (notebook.solution_cells, target.add_solution_cell),
                               (notebook.task_cells, target.add_task_cell),
                               (notebook.source_cells, target.add_source_cell)):
                for cell in cells:
                    add(cell.name, notebook.name, name, **_fields(cell))


def assignment_spec(config: Any, gradebook: Gradebook, name: str) -> AssignmentSpec:
    """Everything a worker needs besides the submission: the configuration, a gradebook
    with only this assignment, its non-notebook source files and its released notebooks.

    Raises
    ------
    nbgrader.api.MissingEntry
        if the assignment is not in the gradebook (run ``generate_assignment`` first).
    """
    coursedir = CourseDirectory(config=config)
    with tempfile.TemporaryDirectory(prefix="bp-autograde-spec-") as tmp:
        path = Path(tmp) / "gradebook.db"
        with Gradebook(f"sqlite:///{path}", coursedir.course_id) as copy:
            copy_assignment(gradebook, name, copy)
        data = path.read_bytes()
    source = Path(coursedir.format_path(coursedir.source_directory, ".", name))
    release = Path(coursedir.format_path(coursedir.release_directory, ".", name))
    return AssignmentSpec(name, coursedir.course_id, config, data,
                          read_folder(source, coursedir.ignore + ["*.ipynb"]),
                          {p.name: p.read_bytes() for p in sorted(release.glob("*.ipynb"))})


def read_folder(folder: Path, ignore: list[str]) -> Files:
    """The files under ``folder`` not matched by the ``ignore`` globs (nbgrader's rule)."""
    return {os.path.relpath(p, folder): Path(p).read_bytes()
            for p in sorted(find_all_files(str(folder), ignore))}


def digest(files: Files) -> str:
    """A content hash of a folder's files (names and bytes)."""
    h = hashlib.sha256()
    for name in sorted(files):
        h.update(name.encode() + b"\0" + hashlib.sha256(files[name]).digest())
    return h.hexdigest()


def load_submission(coursedir: CourseDirectory, assignment: str, student: str) -> Submission:
    """A student's submitted folder, read now. A folder that holds symbolic links, cannot
    be read or whose ``timestamp.txt`` is not a time gives a submission with a ``problem``
    (stock nbgrader fails such a student). A folder without the notebook is graded: the
    course's exporter grades a stand-in that says so."""
    folder = Path(coursedir.format_path(coursedir.submitted_directory, student, assignment))
    links = symlinks(str(folder))
    if links:  # never read what they point at (as the instructor)
        return Submission(student, None, digest({}), {}, "the submission holds symbolic "
                          f"links ({', '.join(links[:5])}); replace them with files")
    try:
        files = read_folder(folder, coursedir.ignore)
    except OSError as error:
        return Submission(student, None, digest({}), {},
                          f"the submitted folder cannot be read: {error}")
    try:
        timestamp: datetime | None = coursedir.get_existing_timestamp(str(folder))
    except Exception:  # noqa: BLE001  (nbgrader 0.9 raises AttributeError for a bad one)
        text = files.get("timestamp.txt", b"")[:100].decode("utf-8", "replace").strip()
        return Submission(student, None, digest(files), files,
                          f"timestamp.txt does not hold a date and time: {text!r}")
    return Submission(student, timestamp, digest(files), files)


def students(coursedir: CourseDirectory, assignment: str,
             only: list[str] | None = None) -> list[str]:
    """The students with a submitted folder for the assignment (all, or those in ``only``)."""
    pattern = coursedir.format_path(coursedir.submitted_directory, "*", assignment)
    found = sorted(Path(p).parent.name for p in glob.glob(pattern) if os.path.isdir(p))
    if only is None:
        return found
    missing = sorted(set(only) - set(found))
    if missing:
        raise FileNotFoundError(f"no submission of {assignment} by {', '.join(missing)}")
    return [s for s in found if s in only]


def pending(coursedir: CourseDirectory, assignment: str, candidates: list[str],
            recorded: dict[str, tuple[datetime | None, str]]) -> list[str]:
    """The students whose current submission has no recorded result."""
    out = []
    for student in candidates:
        submission = load_submission(coursedir, assignment, student)
        if recorded.get(student) != (submission.timestamp, submission.digest):
            out.append(student)
    return out
