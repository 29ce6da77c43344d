"""The nbgrader course: configuration shared by ``grading/nbgrader_config.py``, the demo
and the tests.

Every lesson notebook with nbgrader cells is one assignment of the same name holding that
one notebook. ``notebooks/`` stays the single source: ``source/<name>/<name>.ipynb`` is a
symlink to ``notebooks/<name>.ipynb``, (re)made whenever the configuration is loaded, so
that stock nbgrader commands work with no other set-up.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

COURSE_ID = "backprop-course"


def is_graded(path: Path) -> bool:
    """True if the notebook has nbgrader solution or grade cells."""
    try:
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    except (OSError, ValueError, KeyError):
        return False
    return any(c.get("metadata", {}).get("nbgrader", {}).get(key)
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


def isolation() -> str:
    """The isolation the sandbox can give student code here: "full" (root on Linux),
    "namespaces" (unprivileged user namespaces), "none" (rlimits only) or
    "unavailable" (not a POSIX system: plain kernels, time and output bounds only)."""
    if os.name != "posix":
        return "unavailable"
    from ..sandbox.launch import isolation_level

    return isolation_level()


def autograde_preprocessors() -> list[Any]:
    """nbgrader's autograde preprocessors with :class:`.SandboxedExecute` for ``Execute``,
    then :class:`.TrustedVerdicts` and :class:`.SolutionScan` right after it."""
    from nbgrader.converters import Autograde
    from nbgrader.preprocessors import Execute

    from ..sandbox.execute import SandboxedExecute
    from .scan import SolutionScan
    from .trusted import TrustedVerdicts

    stock = Autograde.class_traits()["autograde_preprocessors"].default()
    if Execute not in stock:
        raise RuntimeError(f"nbgrader's autograde preprocessors have no Execute: {stock}")
    position = stock.index(Execute)
    return [*stock[:position], SandboxedExecute, TrustedVerdicts, SolutionScan,
            *stock[position + 1:]]


def sanitize_preprocessors() -> list[Any]:
    """nbgrader's sanitize preprocessors with :class:`.RestoreMetadata` right before
    ``OverwriteCells``."""
    from nbgrader.converters import Autograde
    from nbgrader.preprocessors import OverwriteCells

    from .sanitize import RestoreMetadata

    stock = Autograde.class_traits()["sanitize_preprocessors"].default()
    position = stock.index(OverwriteCells)
    return [*stock[:position], RestoreMetadata, *stock[position:]]


def configure(c: Any, root: str | Path, notebooks: str | Path,
              trusted: bool = True) -> list[str]:
    """Configure nbgrader (a traitlets ``Config``) for the course in ``root`` whose
    assignments are the graded notebooks in ``notebooks``; return the assignments.

    Student code runs in the sandbox (:mod:`backprop_course.sandbox`) at the strongest
    :func:`isolation` this machine allows, required from then on (so it never degrades
    silently; the executor logs the level, and warns when it is not "full"); the
    sandbox never shows ``root``, ``notebooks`` or the root of the course it grades in.
    A submitted file that is not a gradable notebook (or no notebook at all) is graded 0
    as a stand-in whose first cell says why, and a batch killed mid-run resumes where
    it stopped (:class:`.AutogradeExporter`).
    ``trusted=False`` keeps stock nbgrader's autograding (for the benchmark).
    """
    from .exercise import GRADER_ENV
    from .exporter import AutogradeExporter

    root, notebooks = Path(root).resolve(), Path(notebooks).resolve()
    names = materialise(root, notebooks)
    c.CourseDirectory.root = str(root)
    c.CourseDirectory.course_id = COURSE_ID
    c.CourseDirectory.db_url = f"sqlite:///{root / 'gradebook.db'}"
    c.Execute.timeout = 60
    # no widget state in graded notebooks: the feedback HTML then shows each widget's
    # static picture (its _repr_mimebundle_) instead of "Loading widget..."
    c.Execute.store_widget_state = False
    c.Execute.extra_arguments = ["--IPKernelApp.log_level=ERROR"]  # no "TCP" warnings
    c.OverwriteCells.add_missing_cells = True
    if trusted:
        level = isolation()
        c.Autograde.sanitize_preprocessors = sanitize_preprocessors()
        c.Autograde.autograde_preprocessors = autograde_preprocessors()
        c.Autograde.exporter_class = AutogradeExporter
        c.SandboxedExecute.notebook_timeout = 600
        c.SandboxedExecute.sandbox = level != "unavailable"
        c.SandboxedExecute.kernel_env = {GRADER_ENV: "trusted"}
        c.SandboxedExecute.hidden_paths = [str(root), str(notebooks)]
        c.SandboxKernelManager.require_isolation = "none" if level == "unavailable" else level
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
