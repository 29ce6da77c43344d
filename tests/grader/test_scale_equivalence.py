"""``backprop-course autograde`` (Dask, :mod:`backprop_course.grader.scale`) records what
serial stock ``nbgrader autograde`` records, on 28 scripted submissions of the scale
fixture (every grading rule of the course's grader, see ``submissions.json``), and
records each submission once."""

from __future__ import annotations

import io
import shutil
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import nbformat
import pytest
from fixtures_scale.scale_course import (
    ASSIGNMENT,
    STUDENTS,
    autograded,
    copy_course,
    dump,
    make_course,
    stock_autograde,
)
from nbgrader.coursedir import CourseDirectory

from backprop_course.grader.sandbox import isolation
from backprop_course.grader.scale.coordinator import autograde
from backprop_course.grader.scale.gradebook import DUPLICATE, GRADED, STALE, GradebookWriter
from backprop_course.grader.scale.plan import load_config, load_submission
from backprop_course.grader.scale.task import Graded

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(isolation() == "none", reason="needs Linux namespaces")]

#: The autograded test cells and their points.
POINTS = {"relu_given": 2, "relu_edge": 1, "tanh_shape": 1, "tanh_given": 2}
FULL = list(POINTS.values())


def url(root: Path) -> str:
    return f"sqlite:///{root / 'gradebook.db'}"


@pytest.fixture(scope="module")
def courses(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The same course graded by stock serial nbgrader and by ``autograde``."""
    tmp = tmp_path_factory.mktemp("scale")
    base = make_course(tmp / "base")
    serial, parallel = copy_course(base, tmp / "serial"), copy_course(base, tmp / "parallel")
    stock = stock_autograde(serial)
    summary = autograde(ASSIGNMENT, root=parallel, workers=2, stream=io.StringIO())
    return {"tmp": tmp, "serial": serial, "parallel": parallel, "stock": stock,
            "summary": summary}


def test_gradebook_equals_serial_nbgrader(courses: dict) -> None:
    serial, parallel = dump(url(courses["serial"])), dump(url(courses["parallel"]))
    assert sorted(parallel) == STUDENTS
    assert parallel == serial


def reports(root: Path, student: str) -> dict[str, str]:
    """The verdict each test cell of a student's autograded notebook shows."""
    nb = nbformat.read(root / "autograded" / student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", 4)
    return {c.metadata.nbgrader.grade_id: "".join(str(o.get("text", "")) + str(o.get(
        "evalue", "")) for o in c.outputs) for c in nb.cells if c.metadata.get(
        "nbgrader", {}).get("grade_id") in POINTS}


def test_the_submissions_cover_the_grading_rules(courses: dict) -> None:
    """The equality above is about grades that differ, for each rule of the grader:
    right, blank and wrong answers (points per check: an answer right except at the kink
    keeps the points of its other checks), an answer cell that raises, does not parse,
    exits its interpreter or relies on another cell; tampering, printing and files next
    to the notebook gain nothing; locked tests restored; late, extension, manual grading.
    (No grade depends on chance: the fixture's course secret is fixed.)"""
    book = {s: v["notebooks"][ASSIGNMENT] for s, v in dump(url(courses["parallel"])).items()}

    def auto(student: str) -> list[float | None]:
        return [book[student]["grades"][cell][0] for cell in POINTS]

    for student in ("right_1", "right_2", "right_3", "late", "late_extended", "extra_files",
                    "regraded_manual"):
        assert auto(student) == FULL, student
    for student in ("blank_1", "blank_2", "corrupt_json", "no_notebook"):
        assert auto(student) == [0, 0, 0, 0], student
    assert auto("relu_kink") == [2, 0, 1, 2]  # x >= 0: right except at the kink
    assert auto("relu_sign")[0] == 0 and auto("relu_upstream")[0] == 0
    assert auto("tanh_no_square") == [2, 1, 1, 0]  # the shape is right, the values not
    assert auto("tanh_summed")[2:] == [0, 0]  # a number where an array is due
    assert auto("answer_stderr") == FULL  # stderr no longer costs a check
    assert auto("loud") == FULL  # nor does printing
    assert auto("answer_raises") == [0, 0, 1, 2]  # only that exercise's checks fail
    assert auto("answer_exit") == [0, 0, 1, 2]
    assert auto("syntax_error") == [2, 1, 0, 0]
    assert auto("other_cell") == [2, 1, 0, 0]  # a name from another cell: NameError
    assert auto("drops_answer") == [2, 1, 0, 0]  # no answer cell, no answer
    assert auto("reads_files") == [2, 1, 1, 0]  # the answer never sees the student's file
    assert auto("tamper_check")[0] == 0 and auto("numpy_patch")[0] == 0  # wrong stays wrong
    assert auto("edits_tests") == [0, 0, 1, 2]  # the tests, edited, are restored
    assert auto("drops_tests") == [0, 0, 1, 2]  # the tests, deleted, are restored
    assert book["late"]["late_penalty"] == sum(FULL)
    assert book["late_extended"]["late_penalty"] is None
    assert book["regraded_manual"]["grades"]["relu_given"][1] == 1.0  # manual score kept
    assert book["right_1"]["grades"]["explain"][3] is True  # an answer to grade by hand
    assert book["blank_1"]["comments"]["relu_backward_solution"][0] == "No response."

    parallel = courses["parallel"]
    assert "NameError" in reports(parallel, "other_cell")["tanh_shape"]
    assert "exited with code 3" in reports(parallel, "answer_exit")["relu_given"]
    assert "SyntaxError" in reports(parallel, "syntax_error")["tanh_given"]
    assert "no answer cell for tanh_backward" in reports(parallel, "drops_answer")["tanh_given"]
    assert "loud line" not in str(reports(parallel, "loud"))
    edited = nbformat.read(parallel / "autograded" / "edits_tests" / ASSIGNMENT
                           / f"{ASSIGNMENT}.ipynb", 4)
    given = next(c for c in edited.cells if c.metadata.get("nbgrader", {}).get(
        "grade_id") == "relu_given")
    assert '"relu_backward"' in given.source and given.metadata.nbgrader.points == 2


def test_autograded_folders_equal_serial_nbgrader(courses: dict) -> None:
    serial, parallel = autograded(courses["serial"]), autograded(courses["parallel"])
    assert sorted(parallel) == STUDENTS
    assert parallel == serial
    assert parallel["extra_files"]["notes/todo.md"] == (0o444, "check the sign\n")
    assert parallel["reads_files"]["scale.txt"][1] == "2.0\n"  # the source's file restored


def test_summary_says_what_was_refused_and_why(courses: dict) -> None:
    summary = courses["summary"]
    assert courses["stock"].returncode == 0, courses["stock"].stderr[-3000:]
    # an answer that exits its interpreter is graded (that exercise scores 0); a file that
    # is not a notebook, or none, is graded 0 as a stand-in that says why (as serial
    # nbgrader does: the folders and gradebooks above are equal)
    assert sorted(summary.graded) == STUDENTS and summary.failed == {}
    assert sorted(summary.refused) == ["corrupt_json", "no_notebook"]
    assert "corrupt notebook (invalid JSON" in summary.refused["corrupt_json"]
    assert "notebook missing" in summary.refused["no_notebook"]
    report = summary.report()
    assert f"{len(STUDENTS)} graded (2 refused files" in report and "s per notebook" in report
    assert f"refused corrupt_json: {ASSIGNMENT}.ipynb: corrupt notebook" in report


def test_summary_says_what_failed_and_why(courses: dict) -> None:
    """Folders nbgrader cannot grade at all fail with a reason, without a worker, and
    are not tried again until they change; a folder without the notebook alone in a run
    is graded as a stand-in (stock nbgrader would raise: "No notebooks were matched")."""
    root = copy_course(courses["parallel"], courses["tmp"] / "unreadable")
    submitted = root / "submitted"
    shutil.copytree(submitted / "right_1", submitted / "bad_time")
    (submitted / "bad_time" / ASSIGNMENT / "timestamp.txt").write_text("the day before\n")
    shutil.copytree(submitted / "right_1", submitted / "linked")
    (submitted / "linked" / ASSIGNMENT / "notes.txt").symlink_to(root / "gradebook.db")
    odd = ["bad_time", "linked"]
    summary = autograde(ASSIGNMENT, root=root, students=odd, workers=1, stream=io.StringIO())
    assert summary.graded == [] and sorted(summary.failed) == odd and summary.retry == []
    assert summary.worker_seconds == []  # no worker was asked
    assert "timestamp.txt does not hold a date and time: 'the day before'" in \
        summary.failed["bad_time"]
    assert "holds symbolic links (notes.txt)" in summary.failed["linked"]
    report = summary.report()
    assert "0 graded, 2 failed" in report and "failed linked: the submission holds" in report
    again = autograde(ASSIGNMENT, root=root, students=odd, stream=io.StringIO())
    assert (again.planned, again.already) == (0, 2)

    shutil.rmtree(root / "autograded" / "no_notebook")
    alone = autograde(ASSIGNMENT, root=root, students=["no_notebook"], force=True, workers=1,
                      stream=io.StringIO())
    assert alone.graded == ["no_notebook"] and "notebook missing" in alone.refused["no_notebook"]
    assert dump(url(root))["no_notebook"] == dump(url(courses["serial"]))["no_notebook"]


def test_a_second_run_grades_nothing(courses: dict) -> None:
    before = dump(url(courses["parallel"]))
    summary = autograde(ASSIGNMENT, root=courses["parallel"], stream=io.StringIO())
    assert (summary.planned, summary.already) == (0, len(STUDENTS))
    assert dump(url(courses["parallel"])) == before


def test_results_are_recorded_once_and_never_by_an_older_submission(courses: dict) -> None:
    root = copy_course(courses["parallel"], courses["tmp"] / "writer")
    folder = root / "autograded" / "right_1" / ASSIGNMENT
    files = {str(p.relative_to(folder)): (p.read_bytes(), 0o444)
             for p in folder.rglob("*") if p.is_file()}
    config = load_config(root)
    now = load_submission(CourseDirectory(config=config), ASSIGNMENT, "right_1")
    graded = Graded("right_1", now.timestamp, now.digest, files, 1.0, "test")
    newer = replace(graded, timestamp=now.timestamp + timedelta(hours=1), digest="n" * 64)
    older = replace(graded, timestamp=now.timestamp - timedelta(hours=1), digest="o" * 64)
    before = dump(url(root))
    with GradebookWriter(config) as writer:
        assert writer.record(ASSIGNMENT, graded) == DUPLICATE
        assert dump(url(root)) == before
        assert writer.record(ASSIGNMENT, newer) == GRADED
        assert writer.record(ASSIGNMENT, older) == STALE
        assert writer.record(ASSIGNMENT, newer) == DUPLICATE
        assert writer.recorded(ASSIGNMENT)["right_1"] == (newer.timestamp, newer.digest)
    after = dump(url(root))
    assert after["right_1"]["timestamp"] == newer.timestamp
    assert {s: v for s, v in after.items() if s != "right_1"} == \
        {s: v for s, v in before.items() if s != "right_1"}


def test_a_resubmission_is_graded_again(courses: dict) -> None:
    root = copy_course(courses["parallel"], courses["tmp"] / "resubmit")
    folder = root / "submitted" / "blank_1" / ASSIGNMENT
    shutil.copy(root / "submitted" / "right_1" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", folder)
    (folder / "timestamp.txt").write_text("2026-01-09 18:00:00 UTC")
    summary = autograde(ASSIGNMENT, root=root, workers=1, stream=io.StringIO())
    assert summary.graded == ["blank_1"] and summary.already == len(STUDENTS) - 1
    grades = dump(url(root))["blank_1"]["notebooks"][ASSIGNMENT]["grades"]
    assert [grades[cell][0] for cell in POINTS] == FULL
