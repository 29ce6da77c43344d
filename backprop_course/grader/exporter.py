"""The exporter of ``nbgrader autograde``: bad files refused with a page, killed batches resumed.

nbgrader autogrades each notebook in two passes through one exporter: a *sanitize* pass
reads the submitted file and writes it to ``autograded/<student>/<assignment>/``, an
*autograde* pass reads it back from there, grades it and saves the grades. The course sets
``c.Autograde.exporter_class = AutogradeExporter``, which adds three things to stock
nbgrader, all through public traits and the exporter's own hooks:

1. **Bad files get a page.** A submitted file that is not a gradable notebook (missing,
   corrupt, binary, the wrong nbformat, too large: :func:`.validate_submission`) is
   replaced by a *stand-in*: the released notebook with a first cell that says what was
   wrong. The autograde pass runs none of it (:class:`.GradeAnswers` fails every check
   with the reason), so every test scores 0 and the student's feedback page says why.
   The reason also goes to nbgrader's log.
2. **A finished notebook is marked.** The autograde pass writes
   ``metadata.backprop_course.autograded`` into the notebook it saves, after the grades
   are in the gradebook. A folder whose notebooks lack the mark was left by a batch that
   died while grading it.
3. **A killed batch resumes.** Stock nbgrader skips every student whose autograded folder
   exists, so after a crash or SIGKILL a plain re-run would skip the student who was being
   graded. When a batch starts (nbgrader builds the exporter once, after it has listed
   the submissions and before it looks at any folder) unfinished folders are removed so
   the batch grades those students again. Submitted folders without the notebook are
   added to the batch, so that a missing notebook also gets a stand-in and a page; a
   folder holding symbolic links is taken out of the batch with an error in the log
   (nbgrader would copy what they point at, read as the instructor).

``metadata.backprop_course`` belongs to this exporter: the sanitize pass drops whatever a
student wrote there. The autograde pass keeps the ``diagnoses`` that the grading
preprocessor wrote there (:mod:`.evidence`; recorded by :mod:`.diagnoses`).
"""

from __future__ import annotations

import fnmatch
import glob
import json
import os
import re
import shutil
import typing as t

import nbformat
from nbconvert.exporters import NotebookExporter
from nbformat import NotebookNode

from .validate import validate_submission

#: The notebook metadata key and the nbconvert resources key this exporter owns (the
#: grading preprocessor reads a refusal from the latter).
KEY = "backprop_course"


class InvalidSubmissionError(ValueError):
    """A submitted file that is not a notebook nbgrader can grade (the message says why)."""


def refusal_cell(reason: str) -> NotebookNode:
    """The first cell of a stand-in: what was wrong with the submitted file."""
    return nbformat.v4.new_markdown_cell(
        "## This notebook was not graded\n\n"
        f"The file you submitted could not be graded: **{reason}**.\n\n"
        "None of your code ran, so every test below scores 0. What follows is the "
        "assignment as it was released. Fix the file and submit it again, or ask your "
        "instructor.")


def refusal(nb: dict) -> str | None:
    """Why an autograded notebook is a stand-in for a refused file (None if it is not)."""
    ours = nb.get("metadata", {}).get(KEY, {})
    return ours.get("refused") if isinstance(ours, dict) else None


def finished(path: str) -> bool:
    """True if ``path`` is a notebook that an autograde pass saved (it has the mark)."""
    try:
        with open(path, encoding="utf-8") as f:
            ours = json.load(f).get("metadata", {}).get(KEY, {})
    except (OSError, ValueError, AttributeError):
        return False
    return isinstance(ours, dict) and ours.get("autograded") is True


def symlinks(folder: str) -> list[str]:
    """The symbolic links under ``folder`` (relative paths)."""
    found = []
    for parent, dirs, files in os.walk(folder):
        found += [os.path.relpath(os.path.join(parent, name), folder)
                  for name in dirs + files if os.path.islink(os.path.join(parent, name))]
    return sorted(found)


class AutogradeExporter(NotebookExporter):
    """nbgrader's notebook exporter for ``Autograde`` (see the module docstring).

    Use it with ``c.Autograde.exporter_class``. Outside an autograde batch (no converter
    as its parent) a bad file raises :class:`InvalidSubmissionError`.
    """

    def __init__(self, **kwargs: t.Any) -> None:
        super().__init__(**kwargs)
        converter = self.parent
        if hasattr(converter, "assignments") and hasattr(converter, "coursedir"):
            self._start_batch(converter)

    # -- the batch ------------------------------------------------------------------
    def _ids(self, folder: str) -> tuple[str, str] | None:
        """(student, assignment) of a submitted folder."""
        coursedir = self.parent.coursedir
        pattern = coursedir.format_path(coursedir.submitted_directory, "(?P<student>.*)",
                                        "(?P<assignment>.*)", escape=True)
        m = re.fullmatch(pattern, folder)
        return (m["student"], m["assignment"]) if m else None

    def _dest(self, student: str, assignment: str) -> str:
        coursedir = self.parent.coursedir
        return os.path.normpath(coursedir.format_path(coursedir.autograded_directory,
                                                      student, assignment))

    def _start_batch(self, converter: t.Any) -> None:
        """Add submitted folders that lack the notebook; remove unfinished folders."""
        coursedir = converter.coursedir
        pattern = coursedir.format_path(coursedir.submitted_directory, coursedir.student_id,
                                        coursedir.assignment_id)
        notebooks: dict[str, list[str]] = {}  # per assignment, from the gradebook
        for folder in sorted(glob.glob(pattern)):
            ids = self._ids(folder)
            if ids is None or not os.path.isdir(folder):
                continue
            if ids[1] not in notebooks:
                notebooks[ids[1]] = self._notebooks(ids[1])
            expected = [os.path.join(folder, f"{name}.ipynb") for name in notebooks[ids[1]]
                        if fnmatch.fnmatchcase(name, coursedir.notebook_id)]
            found = converter.assignments.get(folder, [])
            missing = [p for p in expected if p not in found]
            if missing:
                converter.assignments[folder] = sorted([*found, *missing])
        for folder in list(converter.assignments):
            links = symlinks(folder)
            if links:  # nbgrader would copy what they point at, reading as the instructor
                self.log.error("%s: not graded: the submission holds symbolic links (%s); "
                               "replace them with files", folder, ", ".join(links[:5]))
                del converter.assignments[folder]
        for folder, found in converter.assignments.items():
            ids = self._ids(folder)
            if ids is not None:
                self._discard_unfinished(self._dest(*ids), found, coursedir.notebook_id)

    def _notebooks(self, assignment: str) -> list[str]:
        """The notebooks of an assignment in the gradebook (none if it is not there)."""
        from nbgrader.api import Gradebook, MissingEntry

        coursedir = self.parent.coursedir
        with Gradebook(coursedir.db_url, coursedir.course_id) as gb:
            try:
                return [nb.name for nb in gb.find_assignment(assignment).notebooks]
            except MissingEntry:
                return []

    def _discard_unfinished(self, dest: str, notebooks: list[str], notebook_id: str) -> None:
        if not os.path.isdir(dest):
            return
        outputs = [os.path.join(dest, os.path.basename(p)) for p in notebooks]
        unfinished = [p for p in outputs if not finished(p)]
        if not unfinished:
            return
        self.log.warning("%s: the last autograde stopped before it finished here; "
                         "grading it again", dest)
        if notebook_id == "*":
            shutil.rmtree(dest)
        else:
            for path in unfinished:
                if os.path.lexists(path):
                    os.remove(path)

    # -- one notebook ---------------------------------------------------------------
    def from_filename(self, filename: str, resources: dict | None = None,
                      **kw: t.Any) -> tuple[str, dict]:
        """Export one notebook; a bad submitted file becomes a stand-in (see module)."""
        ids = (resources or {}).get("nbgrader")
        if ids is None or not hasattr(self.parent, "coursedir"):
            problem = validate_submission(filename)
            if problem is not None:
                raise InvalidSubmissionError(problem)
            return super().from_filename(filename, resources, **kw)
        dest = self._dest(ids["student"], ids["assignment"])
        if os.path.normpath(os.path.dirname(os.path.abspath(filename))) == dest:
            resources[KEY] = {"pass": "autograde"}  # our own sanitized file
            return super().from_filename(filename, resources, **kw)
        resources[KEY] = {"pass": "sanitize"}
        problem = validate_submission(filename)
        if problem is None:
            return super().from_filename(filename, resources, **kw)
        self.log.warning("%s/%s: file refused, graded as 0 with a page that says why: %s",
                         ids["student"], ids["assignment"], problem)
        resources[KEY]["refused"] = problem
        stand_in = self._stand_in(ids["assignment"], os.path.basename(filename), problem)
        resources["metadata"] = {"name": ids["notebook"], "path": os.path.dirname(filename)}
        return self.from_notebook_node(stand_in, resources, **kw)

    def _stand_in(self, assignment: str, name: str, reason: str) -> NotebookNode:
        """The released notebook (an empty one if there is none) with the reason first."""
        coursedir = self.parent.coursedir
        release = os.path.join(coursedir.format_path(coursedir.release_directory, ".",
                                                     assignment), name)
        nb = nbformat.v4.new_notebook()
        if validate_submission(release) is None:
            nb = nbformat.read(release, as_version=4)
        nb.cells.insert(0, refusal_cell(reason))
        return nb

    def _preprocess(self, nb: NotebookNode, resources: dict) -> tuple[NotebookNode, dict]:
        """Run the preprocessors with our metadata set by us alone; mark a graded notebook.

        The sanitize pass drops what the student wrote under ``metadata.backprop_course``
        and records a refusal; the autograde pass reads the refusal back (for the
        grading preprocessor, from ``resources``) and marks the notebook as finished.
        """
        ours = resources.get(KEY)
        if ours is None:
            return super()._preprocess(nb, resources)
        previous = nb.metadata.pop(KEY, {})
        if ours["pass"] == "autograde" and isinstance(previous, dict) and previous.get(
                "refused"):
            ours["refused"] = previous["refused"]
        nb, resources = super()._preprocess(nb, resources)
        written = nb.metadata.pop(KEY, None)  # by the preprocessors just run, never a student
        mark = {"refused": ours["refused"]} if ours.get("refused") else {}
        if ours["pass"] == "autograde":
            mark["autograded"] = True
            if isinstance(written, dict) and "diagnoses" in written:
                mark["diagnoses"] = written["diagnoses"]
        if mark:
            nb.metadata[KEY] = mark
        return nb, resources
