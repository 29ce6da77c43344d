"""Nothing lost: a stock ``nbgrader autograde`` batch killed (SIGKILL) mid-run, then run
again, leaves a consistent gradebook with every grade exactly once.

Stock nbgrader skips a student whose ``autograded/`` folder exists, and it writes that
folder (the sanitized notebook) *before* executing it: the student being graded when the
batch died is skipped by a plain re-run and keeps no grades. The recovery is
``nbgrader autograde <assignment> --force --student <id>`` for each student the gradebook
has no scores for (:func:`interrupted`), which this test checks; ``backprop-course
autograde`` needs no such step (tests/test_autograde_recovery.py).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import nbformat
import pytest

from backprop_course.grading.exporter import finished
from backprop_course.grading.pipeline import Course
from backprop_course.grading.submissions import build, load_examples
from backprop_course.sandbox.launch import isolation_level

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(isolation_level() == "none", reason="needs Linux namespaces")]

FIXTURES = Path(__file__).parent / "fixtures"
ASSIGNMENT = "relu_fixture"


def interrupted(db: Path, students: list[str]) -> list[str]:
    """Students with an autograded folder but no automatic scores in the gradebook."""
    with sqlite3.connect(db) as con:
        scored = {row[0] for row in con.execute(
            "SELECT submitted_assignment.student_id FROM grade "
            "JOIN submitted_notebook ON grade.notebook_id = submitted_notebook.id "
            "JOIN submitted_assignment ON submitted_notebook.assignment_id = "
            "submitted_assignment.id WHERE grade.auto_score IS NOT NULL")}
    return [s for s in students if s not in scored]


def autograde(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["nbgrader", "autograde", ASSIGNMENT, *args], cwd=root,
                          capture_output=True, text=True, timeout=600)


def test_killed_batch_rerun_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    shutil.copytree(FIXTURES / "notebooks", tmp_path / "notebooks")
    course = Course(tmp_path / "course", tmp_path / "notebooks", log=lambda _: None)
    release = course.release(ASSIGNMENT)
    source = nbformat.read(course.path("source", ASSIGNMENT), as_version=4)
    _, examples = load_examples(FIXTURES / "examples" / f"{ASSIGNMENT}.json")
    students = []
    for copy in range(2):  # enough students that the kill lands mid-batch
        for example in examples:
            name = f"{example.name}{copy}"
            path = course.path("submitted", ASSIGNMENT, name)
            path.parent.mkdir(parents=True)
            nbformat.write(build(release, source, example), path)
            students.append(name)

    batch = subprocess.Popen(["nbgrader", "autograde", ASSIGNMENT], cwd=course.root,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
    autograded = course.root / "autograded"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and batch.poll() is None and (
            not autograded.is_dir() or len(list(autograded.iterdir())) < 3):
        time.sleep(0.05)
    os.killpg(batch.pid, signal.SIGKILL)
    batch.wait()
    done_before = sorted(p.name for p in autograded.iterdir())
    assert 0 < len(done_before) < len(students), "the kill must land mid-batch"

    db = course.root / "gradebook.db"
    with sqlite3.connect(db) as con:
        assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    stranded = [s for s in interrupted(db, students) if s in done_before]
    assert len(stranded) == 1  # the one killed mid-grading: a folder, no scores
    rerun = autograde(course.root)  # a plain re-run, no --force
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    again = [line for line in rerun.stderr.splitlines() if "grading it again" in line]
    assert len(again) == 1 and f"/{stranded[0]}/" in again[0], again

    assert interrupted(db, students) == []
    assert all(finished(str(course.path("autograded", ASSIGNMENT, s))) for s in students)
    # a killed --force regrade leaves the old scores in the gradebook: the mark decides,
    # not the scores (here the folder is left as the sanitize pass writes it)
    victim = course.path("autograded", ASSIGNMENT, students[0])
    unmarked = json.loads(victim.read_text())
    del unmarked["metadata"]["backprop_course"]
    victim.write_text(json.dumps(unmarked))
    assert f"/{students[0]}/" in autograde(course.root).stderr and finished(str(victim))
    scores = course.scores(ASSIGNMENT)
    assert sorted(scores) == sorted(students)
    with sqlite3.connect(db) as con:
        assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert con.execute("SELECT count(*) FROM submitted_assignment").fetchone() == (
            len(students),)
        assert con.execute("SELECT count(*) FROM (SELECT cell_id, notebook_id FROM grade "
                           "GROUP BY cell_id, notebook_id HAVING count(*) > 1)").fetchone() \
            == (0,)
    for example in examples:
        fails = example.fails(list(scores[f"{example.name}0"]))
        for copy in range(2):
            got = scores[f"{example.name}{copy}"]
            assert {cell for cell, (score, _) in got.items() if score == 0} == fails, (
                example.name, copy, got)
