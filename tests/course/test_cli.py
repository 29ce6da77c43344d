"""Stock nbgrader commands with ``grading/nbgrader_config.py``, the student's
``backprop-course check``, and why nothing the kernel shows may count (on the small
fixture assignment in ``tests/fixtures/``)."""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from backprop_course.cli import main
from backprop_course.grader.grade import Seeds, grade_notebook
from backprop_course.grader.sandbox import isolation
from backprop_course.grader.submissions import build, load_examples

pytestmark = pytest.mark.slow

REPO = Path(__file__).parents[2]
FIXTURES = REPO / "tests" / "fixtures"
ASSIGNMENT = "relu_fixture"
EXAMPLES = {e.name: e for e in load_examples(FIXTURES / "examples" / "relu_fixture.json")[1]}


def nbgrader(cwd: Path, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=cwd, text=True,
                          capture_output=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> Path:
    """A copy of grading/ next to the fixture notebooks; ``nbgrader generate_assignment``
    run there."""
    root = tmp_path_factory.mktemp("repo")
    (root / "grading").mkdir()
    shutil.copy(REPO / "grading" / "nbgrader_config.py", root / "grading")
    (root / "notebooks").symlink_to(FIXTURES / "notebooks")
    nbgrader(root / "grading", "generate_assignment", ASSIGNMENT, "--force")
    return root / "grading"


def submit(grading: Path, student: str) -> Path:
    source = nbformat.read(grading / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", 4)
    release = nbformat.read(grading / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", 4)
    path = grading / "submitted" / student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(build(release, source, EXAMPLES[student]), path)
    return path


def test_stock_commands_work_from_the_course_folder(release: Path) -> None:
    assert (release / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").is_symlink()
    submit(release, "sign")
    path = submit(release, "tamper_check")
    # a deleted test cell comes back (OverwriteCells.add_missing_cells)
    nb = nbformat.read(path, 4)
    nb.cells = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id")
                != "relu_edge"]
    nbformat.write(nb, path)
    nbgrader(release, "autograde", ASSIGNMENT, "--force")
    nbgrader(release, "generate_feedback", ASSIGNMENT, "--force")
    nbgrader(release, "export", "--to", "grades.csv")
    with open(release / "grades.csv", newline="") as handle:
        scores = {r["student_id"]: float(r["raw_score"]) for r in csv.DictReader(handle)}
    assert scores == {"sign": 3.0, "tamper_check": 1.0}
    page = (release / "feedback" / "sign" / ASSIGNMENT / f"{ASSIGNMENT}.html").read_text()
    assert "every entry has the wrong sign" in page
    graded = nbformat.read(release / "autograded" / "tamper_check" / ASSIGNMENT
                           / f"{ASSIGNMENT}.ipynb", 4)
    assert "relu_edge" in [c.metadata.get("nbgrader", {}).get("grade_id") for c in graded.cells]


def test_self_check_prints_scores_and_feedback(release: Path, capsys) -> None:
    path = submit(release, "partly")
    assert main(["check", str(path)]) == 1
    out = capsys.readouterr().out
    assert "add_mul_by_hand: 1/2" in out and "relu_backward: 5/6" in out
    assert "wrong sign" in out and "use x > 0, not x >= 0" in out
    assert "total: 6/8" in out


def test_a_patched_check_fools_the_kernel_but_not_the_grader(release: Path) -> None:
    """In the student's kernel check() is whatever the student makes it: stock nbgrader,
    which scores what the kernel printed, gives full points; the grader runs the answer."""
    path = submit(release, "sign")
    nb = nbformat.read(path, 4)
    answer = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id")
                  == "relu_backward_solution")
    answer.source += "\ncheck = lambda *args, **kwargs: print('[PASS]')\n"
    NotebookClient(nb, kernel_name="python3", allow_errors=True, timeout=60,
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    given = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id")
                 == "relu_given")
    assert not any(o.output_type == "error" for o in given.outputs)  # stock: full points
    assert "[PASS]" in "".join(o.get("text", "") for o in given.outputs)
    verdicts = {v.grade_id: v for v in grade_notebook(nb, Seeds("sign", "salt"), isolation())}
    assert not verdicts["relu_given"].passed
    assert "wrong sign" in verdicts["relu_given"].report
