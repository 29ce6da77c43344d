"""The instructor's pipeline, in-process: generate the release, autograde example
submissions, write feedback, read the grades (the demo, the tests and the benchmark)."""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from traitlets.config import Config

from .course import COURSE_ID, configure
from .submissions import Example, handed_in, load_examples

CONFIG_FILE = '''"""nbgrader configuration of a course made by backprop-course."""

from backprop_course.grader.course import configure

configure(get_config(), {root!r}, {notebooks!r}, trusted={trusted!r})  # noqa: F821
'''


class PipelineError(RuntimeError):
    """An nbgrader step failed."""


@dataclass
class Grades:
    """Scores per (assignment, student): test cell id -> (score, max score)."""

    scores: dict[tuple[str, str], dict[str, tuple[float, float]]] = field(default_factory=dict)
    seconds_per_notebook: float = 0.0

    def total(self, assignment: str, student: str) -> tuple[float, float]:
        cells = self.scores[assignment, student].values()
        return sum(s for s, _ in cells), sum(m for _, m in cells)


@dataclass
class Course:
    """An nbgrader course folder configured like ``grading/``.

    Parameters
    ----------
    root : the course folder (created)
    notebooks : the lesson notebooks (the assignments' single source)
    trusted : grade with :class:`.TrustedVerdicts` (False: stock nbgrader, for comparison)
    """

    root: Path
    notebooks: Path
    trusted: bool = True
    log: Callable[[str], None] = print

    def __post_init__(self) -> None:
        from nbgrader.apps import NbGraderAPI

        self.root = Path(self.root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "nbgrader_config.py").write_text(CONFIG_FILE.format(
            root=str(self.root), notebooks=str(Path(self.notebooks).resolve()),
            trusted=self.trusted))
        config = Config()
        self.assignments = configure(config, self.root, self.notebooks, self.trusted)
        config.NbGraderAPI.log_level = logging.WARNING
        self.api = NbGraderAPI(config=config)
        self.db_url = config.CourseDirectory.db_url

    def _run(self, what: str, step: Callable[[], dict]) -> None:
        with warnings.catch_warnings():  # nbgrader's gradebook warns about its own sessions
            warnings.filterwarnings("ignore", module="nbgrader.*")
            result = step()
        if not result["success"]:
            raise PipelineError(f"{what} failed:\n{result.get('log', '')}\n"
                                f"{result.get('error', '')}")

    def path(self, step: str, assignment: str, student: str | None = None,
             suffix: str = ".ipynb") -> Path:
        """``<root>/<step>/[<student>/]<assignment>/<assignment><suffix>``."""
        folder = self.root / step / (student or "") / assignment
        return folder / f"{assignment}{suffix}"

    def release(self, assignment: str) -> nbformat.NotebookNode:
        """Generate the student release and return its notebook."""
        self._run(f"generate_assignment {assignment}",
                  lambda: self.api.generate_assignment(assignment, force=True))
        return nbformat.read(self.path("release", assignment), as_version=4)

    def submit(self, assignment: str, examples: list[Example]) -> None:
        """Write the example students' files into ``submitted/``."""
        source = nbformat.read(self.path("source", assignment), as_version=4)
        release = nbformat.read(self.path("release", assignment), as_version=4)
        for example in examples:
            target = self.path("submitted", assignment, example.name)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(handed_in(release, source, example))

    def autograde(self, assignment: str) -> float:
        """Autograde every submission of the assignment; return the seconds it took."""
        start = time.perf_counter()
        self._run(f"autograde {assignment}",
                  lambda: self.api.autograde(assignment, "*", force=True))
        return time.perf_counter() - start

    def feedback(self, assignment: str) -> None:
        """Write the feedback HTML of every autograded submission."""
        self._run(f"generate_feedback {assignment}",
                  lambda: self.api.generate_feedback(assignment, force=True))

    def scores(self, assignment: str) -> dict[str, dict[str, tuple[float, float]]]:
        """Per student: test cell id -> (score, max score), from the gradebook."""
        from nbgrader.api import Gradebook

        out = {}
        with Gradebook(self.db_url, COURSE_ID) as gradebook:
            for submission in gradebook.assignment_submissions(assignment):
                notebook = gradebook.find_submission_notebook(
                    assignment, assignment, submission.student.id)
                out[submission.student.id] = {
                    g.name: (float(g.score), float(g.max_score))
                    for g in notebook.grades if g.cell_type == "code" and g.max_score}
        return out

    def reports(self, assignment: str, student: str) -> dict[str, str]:
        """Per test cell: the trusted report in the autograded notebook (what the
        feedback shows)."""
        from .answers import is_test_cell

        nb = nbformat.read(self.path("autograded", assignment, student), as_version=4)
        return {cell.metadata.nbgrader.grade_id: "".join(
                    str(o.get("text", "")) + str(o.get("evalue", "")) for o in cell.outputs)
                for cell in nb.cells if is_test_cell(cell)}

    def export(self, csv: Path) -> None:
        """Export the grades like ``nbgrader export``."""
        from nbgrader.api import Gradebook
        from nbgrader.plugins import CsvExportPlugin

        with Gradebook(self.db_url, COURSE_ID) as gradebook:
            CsvExportPlugin(to=str(csv)).export(gradebook)


def run(course: Course, examples_dir: Path, assignments: list[str] | None = None,
        feedback: bool = True) -> Grades:
    """The whole pipeline for each assignment that has an examples file."""
    grades = Grades()
    notebooks, seconds = 0, 0.0
    if assignments is None:
        assignments = [a for a in course.assignments
                       if (Path(examples_dir) / f"{a}.json").exists()]
    for assignment in assignments:
        examples_file = Path(examples_dir) / f"{assignment}.json"
        if assignment not in course.assignments or not examples_file.exists():
            raise FileNotFoundError(f"no assignment {assignment!r} with examples "
                                    f"{examples_file}")
        _, examples = load_examples(examples_file)
        course.log(f"{assignment}: release, {len(examples)} example submissions, autograde")
        course.release(assignment)
        course.submit(assignment, examples)
        seconds += course.autograde(assignment)
        notebooks += len(examples)
        if feedback:
            course.feedback(assignment)
        for student, cells in course.scores(assignment).items():
            grades.scores[assignment, student] = cells
    grades.seconds_per_notebook = seconds / max(notebooks, 1)
    return grades
