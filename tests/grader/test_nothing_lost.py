"""Nothing lost: a stock ``nbgrader autograde`` batch killed (SIGKILL) mid-run, then run
again, leaves a consistent gradebook with every grade exactly once, and no process of
its sandboxes survives the kill.

Stock nbgrader skips a student whose ``autograded/`` folder exists, and it writes that
folder (the sanitized notebook) *before* grading it, so the student being graded when
the batch died would keep no grades. The course's exporter marks a notebook once its
grades are saved, and a plain re-run grades a folder without the mark again ("grading
it again" in the log); ``backprop-course autograde`` has its own recovery
(``test_scale_recovery.py``).

The answer cells run in sandboxes (bubblewrap, then ``setpriv`` and ``python -I -S
/sandbox/runner/run.py``) in sessions of their own, so the kill of the batch's process
group does not reach them: they must die with the grader (bubblewrap's
``--die-with-parent``). The test kills the batch twice: once while some answer runs,
once while an answer sleeps through its large case (in a child process too).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import nbformat
import numpy as np
import pytest

from backprop_course.checks import get
from backprop_course.grader.exporter import finished
from backprop_course.grader.grade import Seeds
from backprop_course.grader.pipeline import Course
from backprop_course.grader.sandbox import isolation
from backprop_course.grader.secret import SECRET_FILE
from backprop_course.grader.submissions import Example, build, load_examples

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(isolation() == "none", reason="needs Linux namespaces")]

FIXTURES = Path(__file__).parents[1] / "fixtures"
ASSIGNMENT = "relu_fixture"
RUNNER = "/sandbox/runner/run.py"
TOKEN = "BP_NOTHING_LOST"
RELU_CHECKS = ["relu_shape", "relu_given", "relu_random", "relu_edge"]
#: The mistakes of relu_fixture.json's examples that the edge check may miss: its case
#: (6 inputs, 3 of them 0) holds no positive input for one student in eight.
EDGE_BLIND = {"sign": lambda x, g: -g * (x > 0), "upstream": lambda x, g: 1.0 * (x > 0)}


def course_secret(students: list[str]) -> bytes:
    """The first of a fixed sequence of course secrets under which the edge check catches
    the :data:`EDGE_BLIND` mistakes of ``students`` (named after their example), so that
    every expectation of relu_fixture.json holds, run after run."""
    exercise = get("relu_backward")
    for attempt in itertools.count():
        secret = hashlib.sha256(f"backprop-course nothing lost {attempt}".encode()).digest()
        caught = []
        for student in students:
            mistake = EDGE_BLIND.get(student.rstrip("0123456789"))
            if mistake is not None:
                case = exercise.cases("edge", Seeds.for_course(secret, student).rng(
                    exercise, "edge", False))[0].values
                x, g = np.asarray(case["x"]), np.asarray(case["grad_out"])
                caught.append(not np.allclose(mistake(x, g), g * (x > 0)))
        if all(caught):
            return secret
    raise AssertionError("unreachable")


def sleeper(marker: str) -> Example:
    """A student whose ReLU answer sleeps on its first case (the large one), and has
    started a child that sleeps too, named ``marker``: a kill lands inside its sandbox."""
    body = (f"import os\nimport time\n\nif os.fork() == 0:\n"
            f"    os.execv('/bin/sleep', ['{marker}', '600'])\ntime.sleep(600)")
    return Example("sleeper", "solution", cells={"relu_backward_solution": body},
                   fail=RELU_CHECKS, about="sleeps through its large case")


def interrupted(db: Path, students: list[str]) -> list[str]:
    """Students with no automatic scores in the gradebook."""
    with sqlite3.connect(db) as con:
        scored = {row[0] for row in con.execute(
            "SELECT submitted_assignment.student_id FROM grade "
            "JOIN submitted_notebook ON grade.notebook_id = submitted_notebook.id "
            "JOIN submitted_assignment ON submitted_notebook.assignment_id = "
            "submitted_assignment.id WHERE grade.auto_score IS NOT NULL")}
    return [s for s in students if s not in scored]


# ------------------------------------------------------------------- processes
def _stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, start time) of a process, None if it is gone (or a zombie: dead, its
    exit status not yet collected)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if fields[0] in ("Z", "X") else (int(fields[1]), int(fields[19]))


def _read(pid: int, name: str) -> bytes:
    try:
        return Path(f"/proc/{pid}/{name}").read_bytes()
    except OSError:
        return b""


def _pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def is_sandbox(cmdline: list[str], marker: str) -> bool:
    """A process of the sandbox: bubblewrap, setpriv, the runner, or the sleeper's child."""
    name = os.path.basename(cmdline[0]) if cmdline else ""
    return name in ("bwrap", "setpriv", marker) or RUNNER in cmdline


def sandbox_processes(root: int, marker: str) -> dict[tuple[int, int], list[str]]:
    """The sandbox processes descending from ``root``: (pid, start time) -> command line."""
    parents = {pid: stat[0] for pid in _pids() if (stat := _stat(pid))}
    family, grew = {root}, True
    while grew:
        new = {pid for pid, parent in parents.items() if parent in family} - family
        family |= new
        grew = bool(new)
    found = {}
    for pid in family - {root}:
        cmdline = _read(pid, "cmdline").decode(errors="replace").split("\0")[:-1]
        stat = _stat(pid)
        if stat and is_sandbox(cmdline, marker):
            found[pid, stat[1]] = cmdline
    return found


def survivors(snapshot: dict[tuple[int, int], list[str]], token: str,
              marker: str) -> list[str]:
    """The processes of the snapshot still alive, and any sandbox process that carries
    the batch's environment token or is the sleeper's child."""
    alive = [f"{pid}: {' '.join(cmd)}" for (pid, start), cmd in snapshot.items()
             if (_stat(pid) or (0, None))[1] == start]
    for pid in _pids():
        cmdline = _read(pid, "cmdline").decode(errors="replace").split("\0")[:-1]
        ours = f"{TOKEN}={token}".encode() in _read(pid, "environ") or marker in cmdline[:1]
        if ours and is_sandbox(cmdline, marker):
            alive.append(f"{pid}: {' '.join(cmdline)}")
    return sorted(set(alive))


def kill_batch_when(batch: subprocess.Popen, ready: Callable[[dict], bool], marker: str,
                    timeout: float = 300) -> dict[tuple[int, int], list[str]]:
    """Wait until ``ready(sandbox processes)`` holds while the batch is stopped (so that
    it starts nothing new), note its sandbox processes then, and SIGKILL its process
    group; return what was noted."""
    deadline = time.monotonic() + timeout
    while True:
        assert batch.poll() is None, "the batch ended before it was killed"
        assert time.monotonic() < deadline, "the batch never got where it should be killed"
        if ready(sandbox_processes(batch.pid, marker)):
            os.killpg(batch.pid, signal.SIGSTOP)
            snapshot = sandbox_processes(batch.pid, marker)
            if ready(snapshot):
                break
            os.killpg(batch.pid, signal.SIGCONT)  # it moved on meanwhile
        time.sleep(0.05)
    os.killpg(batch.pid, signal.SIGKILL)
    batch.wait()
    return snapshot


def assert_no_sandbox_survives(snapshot: dict, token: str, marker: str) -> None:
    deadline = time.monotonic() + 10
    while survivors(snapshot, token, marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert survivors(snapshot, token, marker) == []


# ------------------------------------------------------------------------ test
def test_killed_batch_rerun_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    _, examples = load_examples(FIXTURES / "examples" / f"{ASSIGNMENT}.json")
    marker = f"bp-nothing-lost-{uuid.uuid4().hex[:8]}"
    slow = sleeper(marker)  # graded after the first kill: the batch goes in sorted order
    example_of = {f"{example.name}{copy}": example  # enough students that the first
                  for copy in range(2) for example in examples}  # kill lands mid-batch
    example_of[slow.name] = slow
    shutil.copytree(FIXTURES / "notebooks", tmp_path / "notebooks")
    (tmp_path / "course").mkdir()
    (tmp_path / "course" / SECRET_FILE).write_text(course_secret(list(example_of)).hex())
    course = Course(tmp_path / "course", tmp_path / "notebooks", log=lambda _: None)
    release = course.release(ASSIGNMENT)
    source = nbformat.read(course.path("source", ASSIGNMENT), as_version=4)
    for name, example in example_of.items():
        path = course.path("submitted", ASSIGNMENT, name)
        path.parent.mkdir(parents=True)
        nbformat.write(build(release, source, example), path)
    students = sorted(example_of)
    token = uuid.uuid4().hex  # in the environment of the batch and of its bubblewraps
    env = {**os.environ, TOKEN: token}
    autograded = course.root / "autograded"
    db = course.root / "gradebook.db"

    def start_batch() -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "nbgrader", "autograde", ASSIGNMENT],
                                cwd=course.root, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)

    # 1. killed while some answer runs, a few students in
    def some_answer_runs(found: dict) -> bool:
        done = len(list(autograded.iterdir())) if autograded.is_dir() else 0
        return done >= 3 and any(RUNNER in cmd for cmd in found.values())

    snapshot = kill_batch_when(start_batch(), some_answer_runs, marker)
    assert any(RUNNER in cmd for cmd in snapshot.values()), snapshot
    assert_no_sandbox_survives(snapshot, token, marker)
    done_before = sorted(p.name for p in autograded.iterdir())
    assert 0 < len(done_before) < len(students), "the kill must land mid-batch"
    with sqlite3.connect(db) as con:
        assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    stranded = [s for s in interrupted(db, students) if s in done_before]
    assert len(stranded) == 1  # the one killed mid-grading: a folder, no scores

    # 2. a plain re-run, killed while the sleeper's answer sleeps in its large case
    snapshot = kill_batch_when(start_batch(), lambda found: any(
        cmd[:1] == [marker] for cmd in found.values()), marker)
    assert {marker, "bwrap"} <= {os.path.basename(cmd[0]) for cmd in snapshot.values()}
    assert any(RUNNER in cmd for cmd in snapshot.values()), snapshot
    assert_no_sandbox_survives(snapshot, token, marker)
    assert stranded[0] not in interrupted(db, students)  # graded again by the re-run
    assert slow.name in interrupted(db, students)

    # 3. a plain re-run (no --force) finishes the batch
    rerun = subprocess.run([sys.executable, "-m", "nbgrader", "autograde", ASSIGNMENT],
                           cwd=course.root, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    again = [line for line in rerun.stderr.splitlines() if "grading it again" in line]
    assert len(again) == 1 and f"/{slow.name}/" in again[0], again

    assert interrupted(db, students) == []
    assert all(finished(str(course.path("autograded", ASSIGNMENT, s))) for s in students)
    # a killed --force regrade leaves the old scores in the gradebook: the mark decides,
    # not the scores (here the folder is left as the sanitize pass writes it)
    victim = course.path("autograded", ASSIGNMENT, students[0])
    unmarked = json.loads(victim.read_text())
    del unmarked["metadata"]["backprop_course"]
    victim.write_text(json.dumps(unmarked))
    assert f"/{students[0]}/" in subprocess.run(
        [sys.executable, "-m", "nbgrader", "autograde", ASSIGNMENT], cwd=course.root,
        capture_output=True, text=True, timeout=600).stderr and finished(str(victim))
    scores = course.scores(ASSIGNMENT)
    assert sorted(scores) == sorted(students)
    with sqlite3.connect(db) as con:
        assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert con.execute("SELECT count(*) FROM submitted_assignment").fetchone() == (
            len(students),)
        assert con.execute("SELECT count(*) FROM (SELECT cell_id, notebook_id FROM grade "
                           "GROUP BY cell_id, notebook_id HAVING count(*) > 1)").fetchone() \
            == (0,)
    for student, example in example_of.items():
        got = scores[student]
        assert {cell for cell, (score, _) in got.items() if score == 0} == example.fails(
            list(got)), (student, got)
    assert "took more than 5 s" in course.reports(ASSIGNMENT, slow.name)["relu_given"]
