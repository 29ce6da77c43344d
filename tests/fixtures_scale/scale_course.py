"""The scale fixture course: configured like ``grading/`` (``configure`` of
``backprop_course.grader.course``: the answer cells are graded in the sandbox, the
notebooks are never run), the release generated, and the scripted submissions of
``submissions.json`` handed in; plus what the tests compare.

``scale.txt`` is a data file released with the assignment: nbgrader copies the source's
version over a student's when it autogrades (a student's copy is not what is graded, and
the sandboxed answers see neither)."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import nbformat
from nbgrader.api import Gradebook
from nbgrader.apps import NbGraderAPI
from nbgrader.utils import parse_utc

from backprop_course.grader.course import COURSE_ID
from backprop_course.grader.scale.plan import load_config
from backprop_course.grader.secret import SECRET_FILE

HERE = Path(__file__).resolve().parent
ASSIGNMENT = "scale_fixture"
SPEC = json.loads((HERE / "submissions.json").read_text())
STUDENTS = sorted(SPEC["submissions"])
DEFAULT_TIMESTAMP = "2026-01-09 12:00:00 UTC"
#: The course secret of every fixture course (the seeds of the hidden checks and the salt
#: of the visible ones): fixed, so that each check's verdict is the same on every run.
SECRET = hashlib.sha256(b"backprop-course scale fixture").digest()
CONFIG = '''from pathlib import Path

from backprop_course.grader.course import configure

HERE = Path(__file__).resolve().parent
c = get_config()  # noqa: F821
configure(c, HERE, HERE / "notebooks")
c.LateSubmissionPlugin.penalty_method = "zero"
'''


def make_course(root: Path, db_url: str | None = None,
                students: list[str] | None = None) -> Path:
    """A course in ``root`` with the release generated and the submissions of ``students``
    (default: all) handed in. Every such course has the secret :data:`SECRET`: the same
    visible and hidden cases for each student, run after run."""
    (root / "notebooks").mkdir(parents=True)
    (root / SECRET_FILE).write_text(SECRET.hex() + "\n")
    (root / SECRET_FILE).chmod(0o600)
    shutil.copy(HERE / f"{ASSIGNMENT}.ipynb", root / "notebooks")
    (root / "source" / ASSIGNMENT).mkdir(parents=True)
    shutil.copy(HERE / "scale.txt", root / "source" / ASSIGNMENT)
    extra = f"c.CourseDirectory.db_url = {db_url!r}\n" if db_url else ""
    (root / "nbgrader_config.py").write_text(CONFIG + extra)
    config = load_config(root)
    config.NbGraderAPI.log_level = logging.WARNING
    result = NbGraderAPI(config=config).generate_assignment(ASSIGNMENT, force=True)
    assert result["success"], result.get("log")
    url = config.CourseDirectory.db_url
    with Gradebook(url, COURSE_ID) as gb:
        gb.update_or_create_assignment(ASSIGNMENT, duedate=parse_utc(SPEC["duedate"]))
    release = nbformat.read(root / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", 4)
    source = nbformat.read(HERE / f"{ASSIGNMENT}.ipynb", 4)
    for student in students or STUDENTS:
        spec = SPEC["submissions"][student]
        hand_in(root, url, student, spec, release, source)
    return root


def _grade_id(cell: Any) -> str | None:
    return cell.metadata.get("nbgrader", {}).get("grade_id")


def hand_in(root: Path, db_url: str, student: str, spec: dict, release: Any,
            source: Any) -> None:
    """Write one scripted submission into ``submitted/`` (and its gradebook pre-state)."""
    solutions = {_grade_id(c): c.source for c in source.cells}
    nb = nbformat.from_dict(json.loads(json.dumps(release)))
    edits = {**spec["cells"], **spec.get("metadata", {})}
    unknown = (set(edits) | set(spec.get("drop", []))) - {_grade_id(c) for c in nb.cells}
    if unknown:
        raise KeyError(f"{student}: no cells {sorted(unknown)} in the release")
    nb.cells = [c for c in nb.cells if _grade_id(c) not in spec.get("drop", [])]
    for cell in nb.cells:
        new = spec["cells"].get(_grade_id(cell))
        if new is not None:
            cell.source = solutions[_grade_id(cell)] if new == "SOLUTION" else new
        if _grade_id(cell) in spec.get("metadata", {}):
            cell.metadata.nbgrader.update(spec["metadata"][_grade_id(cell)])
    folder = root / "submitted" / student / ASSIGNMENT
    shutil.copytree(root / "release" / ASSIGNMENT, folder)
    if "raw" in spec:  # a broken file instead of a notebook
        (folder / f"{ASSIGNMENT}.ipynb").write_text(spec["raw"])
    elif spec.get("missing"):
        (folder / f"{ASSIGNMENT}.ipynb").unlink()
    else:
        nbformat.write(nb, folder / f"{ASSIGNMENT}.ipynb")
    for name, text in spec.get("files", {}).items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    (folder / "timestamp.txt").write_text(spec.get("timestamp", DEFAULT_TIMESTAMP))
    if "extension_hours" in spec or "manual" in spec:
        with Gradebook(db_url, COURSE_ID) as gb:
            gb.update_or_create_student(student)
            gb.update_or_create_submission(ASSIGNMENT, student)
            if "extension_hours" in spec:
                gb.grant_extension(ASSIGNMENT, student, hours=spec["extension_hours"])
            for cell, score in spec.get("manual", {}).items():
                gb.find_grade(cell, ASSIGNMENT, ASSIGNMENT, student).manual_score = score
            gb.db.commit()


def copy_course(course: Path, root: Path) -> Path:
    """A copy of a (SQLite) course folder; its configuration finds its own folder."""
    shutil.copytree(course, root, symlinks=True)
    return root


def stock_autograde(root: Path, *args: str,
                    env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Serial, stock ``nbgrader autograde`` run in ``root`` (in the environment ``env``,
    default: this process's)."""
    return subprocess.run([sys.executable, "-m", "nbgrader", "autograde", ASSIGNMENT, *args],
                          cwd=root, capture_output=True, text=True, timeout=600, env=env)


def dump(db_url: str) -> dict[str, Any]:
    """Everything autograde writes to a gradebook, keyed by names (not database ids)."""
    out: dict[str, Any] = {}
    with Gradebook(db_url, COURSE_ID) as gb:
        for submission in gb.assignment_submissions(ASSIGNMENT):
            notebooks = {}
            for nb in submission.notebooks:
                notebooks[nb.name] = {
                    "late_penalty": nb.late_submission_penalty, "flagged": nb.flagged,
                    "grades": {g.name: (g.auto_score, g.manual_score, g.extra_credit,
                                        g.needs_manual_grade) for g in nb.grades},
                    "comments": {c.name: (c.auto_comment, c.manual_comment)
                                 for c in nb.comments}}
            out[submission.student.id] = {
                "timestamp": submission.timestamp, "extension": submission.extension,
                "notebooks": notebooks}
    return out


def autograded(root: Path) -> dict[str, Any]:
    """The autograded folders: per student, each file's mode and (for notebooks) cells."""
    out: dict[str, Any] = {}
    for folder in sorted((root / "autograded").glob(f"*/{ASSIGNMENT}")):
        files = {}
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            content: Any = path.read_text()
            if path.suffix == ".ipynb":
                nb = nbformat.reads(content, 4)
                content = [(c.cell_type, c.source, c.get("outputs")) for c in nb.cells]
            files[str(path.relative_to(folder))] = (path.stat().st_mode & 0o777, content)
        out[folder.parent.name] = files
    return out

