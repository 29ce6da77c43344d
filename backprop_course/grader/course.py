"""The nbgrader course: configuration shared by ``grading/nbgrader_config.py``, the demo
and the tests.

Every lesson notebook with nbgrader cells is one assignment of the same name holding that
one notebook. ``notebooks/`` stays the single source: ``source/<name>/<name>.ipynb`` is a
symlink to ``notebooks/<name>.ipynb``, (re)made whenever the configuration is loaded, so
that stock nbgrader commands work with no other set-up; next to it ``course.json`` holds
the course's public salt (released with the assignment).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from . import secret
from .answers import nbgrader_meta

COURSE_ID = "backprop-course"


def is_graded(path: Path) -> bool:
    """True if the notebook has nbgrader solution or grade cells."""
    try:
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    except (OSError, ValueError, KeyError):
        return False
    return any(nbgrader_meta(c).get(key)
               for c in cells for key in ("grade", "solution"))


def assignments(notebooks: Path) -> list[str]:
    """The assignments: the stems of the graded notebooks in ``notebooks``."""
    return sorted(p.stem for p in notebooks.glob("*.ipynb") if is_graded(p))


def materialise(root: Path, notebooks: Path) -> list[str]:
    """Link ``root/source/<name>/<name>.ipynb`` to each graded ``notebooks/<name>.ipynb``
    and remove links whose notebook is gone; return the assignments."""
    names = assignments(notebooks)
    source = root / "source"
    for link in source.glob("*/*.ipynb"):
        if link.is_symlink() and not link.exists():
            link.unlink()
    for name in names:
        link = source / name / f"{name}.ipynb"
        target = Path(os.path.relpath(notebooks / f"{name}.ipynb", link.parent))
        if link.is_symlink() and Path(os.readlink(link)) == target:
            continue
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink():
            link.unlink()
        link.symlink_to(target)
    return names


def autograde_preprocessors() -> list[Any]:
    """nbgrader's autograde preprocessors with :class:`.GradeAnswers` in place of
    ``Execute``: the submitted notebook is never run, its answer cells are; and
    :class:`.RecordDiagnoses` right after ``SaveAutoGrades``."""
    from nbgrader.converters import Autograde
    from nbgrader.preprocessors import Execute, SaveAutoGrades

    from .preprocessors.grade_answers import GradeAnswers
    from .preprocessors.record_diagnoses import RecordDiagnoses

    stock = Autograde.class_traits()["autograde_preprocessors"].default()
    if Execute not in stock:
        raise RuntimeError(f"nbgrader's autograde preprocessors have no Execute: {stock}")
    steps = [GradeAnswers if step is Execute else step for step in stock]
    return [s for step in steps for s in ([step, RecordDiagnoses] if step is SaveAutoGrades
                                          else [step])]


def sanitize_preprocessors() -> list[Any]:
    """nbgrader's sanitize preprocessors with :class:`.BoundNotebook` right after
    ``ClearOutput`` and :class:`.RestoreMetadata` right before ``OverwriteCells``."""
    from nbgrader.converters import Autograde
    from nbgrader.preprocessors import ClearOutput, OverwriteCells

    from .preprocessors.bound_notebook import BoundNotebook
    from .preprocessors.restore_metadata import RestoreMetadata

    stock = Autograde.class_traits()["sanitize_preprocessors"].default()
    out = []
    for step in stock:
        out += [RestoreMetadata] if step is OverwriteCells else []
        out.append(step)
        out += [BoundNotebook] if step is ClearOutput else []
    return out


def configure(c: Any, root: str | Path, notebooks: str | Path,
              trusted: bool = True) -> list[str]:
    """Configure nbgrader (a traitlets ``Config``) for the course in ``root`` whose
    assignments are the graded notebooks in ``notebooks``; return the assignments.

    The submitted notebooks are never run: :class:`.GradeAnswers` runs each exercise's
    answer cell in the sandbox (:mod:`.sandbox`) at the strongest isolation this machine
    gives, on each student's own cases (:mod:`.secret`: the course secret lives in
    ``root``; each assignment's ``course.json`` carries the public salt into the
    release). A submitted file that is not a gradable notebook (or no notebook at all)
    is graded 0 as a stand-in whose first cell says why, and a batch killed mid-run
    resumes where it stopped (:class:`.AutogradeExporter`).
    ``trusted=False`` keeps stock nbgrader's autograding, which runs the notebooks (the
    benchmark's peer).
    """
    from .exporter import AutogradeExporter
    from .preprocessors.inert_html import InertHTML, configure_inert_pages
    from .sandbox import isolation

    root, notebooks = Path(root).resolve(), Path(notebooks).resolve()
    names = materialise(root, notebooks)
    key = secret.load_or_create(root)
    for name in names:
        secret.write_course_file(root / "source" / name, key)
    c.CourseDirectory.root = str(root)
    c.CourseDirectory.course_id = COURSE_ID
    c.CourseDirectory.db_url = f"sqlite:///{root / 'gradebook.db'}"
    c.OverwriteCells.add_missing_cells = True
    c.Execute.timeout = 60  # stock Execute (trusted=False) only; it runs no kernel otherwise
    c.Execute.extra_arguments = ["--IPKernelApp.log_level=ERROR"]  # no "TCP" warnings
    configure_inert_pages(c)  # feedback and formgrader pages: student markup stays inert
    if trusted:
        c.Autograde.sanitize_preprocessors = [*sanitize_preprocessors(), InertHTML]
        c.Autograde.autograde_preprocessors = [*autograde_preprocessors(), InertHTML]
        c.Autograde.exporter_class = AutogradeExporter
        c.GradeAnswers.secret = key.hex()
        c.GradeAnswers.isolation = isolation()
    return names


def find_repository(start: Path | None = None) -> Path:
    """The checkout that holds ``notebooks/`` and ``grading/``: the package's parent
    folder (an editable install) or the current folder or one of its parents."""
    start = (start or Path.cwd()).resolve()
    for folder in (Path(__file__).resolve().parents[2], start, *start.parents):
        if (folder / "notebooks").is_dir() and (folder / "grading").is_dir():
            return folder
    raise FileNotFoundError("no checkout of backprop-course (with notebooks/ and grading/) "
                            "here or above; run from the repository")
