"""``backprop-course autograde`` survives a worker killed mid-run (on a scheduler and two
workers started as separate processes) and a coordinator killed and started again,
records into a PostgreSQL gradebook as into SQLite, and never turns a grader fault into a
student's 0 (nor does serial stock ``nbgrader autograde``)."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fixtures_scale.scale_course import (
    ASSIGNMENT,
    autograded,
    copy_course,
    dump,
    make_course,
    stock_autograde,
)
from sqlalchemy import create_engine, select

from backprop_course.grader.grade import STARTS
from backprop_course.grader.sandbox import isolation
from backprop_course.grader.scale.coordinator import autograde
from backprop_course.grader.scale.gradebook import RESULTS

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(isolation() == "none", reason="needs Linux namespaces")]
#: Cheap, varied submissions: right, blank, wrong, partly right, stderr, tampering, late,
#: a file next to the notebook.
SOME = ["right_1", "blank_1", "relu_kink", "answer_stderr", "relu_sign", "tamper_check",
        "late", "reads_files"]
DASK = str(Path(sys.executable).parent / "dask")


def sqlite(root: Path) -> str:
    return f"sqlite:///{root / 'gradebook.db'}"


def results(db_url: str) -> dict[str, tuple]:
    """The recorded results: student -> (status, recorded_at, worker)."""
    engine = create_engine(db_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(select(RESULTS.c.student, RESULTS.c.status,
                                             RESULTS.c.recorded_at, RESULTS.c.worker))
            return {student: tuple(rest) for student, *rest in rows}
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def course(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_course(tmp_path_factory.mktemp("recovery") / "base", students=SOME)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[str, list[subprocess.Popen]]]:
    """A Dask scheduler and two single-threaded workers, each its own process, on
    127.0.0.1: (scheduler address, worker processes)."""
    scheduler_file = tmp_path / "scheduler.json"
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    processes = [subprocess.Popen([DASK, "scheduler", "--host", "127.0.0.1", "--port", "0",
                                   "--no-dashboard", "--scheduler-file", str(scheduler_file)],
                                  **quiet)]
    try:
        deadline = time.monotonic() + 60
        while not scheduler_file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        address = json.loads(scheduler_file.read_text())["address"]
        workers = [subprocess.Popen([DASK, "worker", address, "--host", "127.0.0.1",
                                     "--nthreads", "1", "--no-nanny", "--no-dashboard"],
                                    **quiet) for _ in range(2)]
        processes += workers
        yield address, workers
    finally:
        for process in reversed(processes):
            if process.poll() is None:
                process.terminate()
                process.wait(timeout=30)


def test_a_worker_killed_mid_run_loses_no_submission(course: Path, tmp_path: Path,
                                                     cluster: tuple) -> None:
    address, workers = cluster
    root = copy_course(course, tmp_path / "course")
    recorded: list[str] = []
    killed: list[subprocess.Popen] = []

    def kill_the_first_recorder(student: str, outcome: str) -> None:
        """Kill the worker that graded the first result while it holds more work: it
        has graded one, so the other worker must finish what it had in hand."""
        recorded.append(student)
        if not killed:
            pid = int(results(sqlite(root))[student][2].rsplit(":", 1)[1])
            killed.extend(w for w in workers if w.pid == pid)
            os.kill(pid, signal.SIGKILL)

    summary = autograde(ASSIGNMENT, root=root, scheduler=address, stream=io.StringIO(),
                        on_recorded=kill_the_first_recorder)
    assert len(killed) == 1 and killed[0].wait(timeout=10) == -signal.SIGKILL
    assert sorted(summary.graded) == sorted(SOME) == sorted(recorded)
    rows = results(sqlite(root))
    assert sorted(rows) == sorted(SOME) and {r[0] for r in rows.values()} == {"graded"}
    assert len({r[2] for r in rows.values()}) == 2  # both workers graded some
    grades = dump(sqlite(root))
    assert grades["right_1"]["notebooks"][ASSIGNMENT]["grades"]["relu_given"][0] == 2


def _recorded_count(db_url: str) -> int:
    try:
        return len(results(db_url))
    except Exception:  # noqa: BLE001  (the table does not exist yet)
        return 0


def test_a_coordinator_killed_and_restarted_finishes_without_duplicates(
        course: Path, tmp_path: Path) -> None:
    root = copy_course(course, tmp_path / "course")
    coordinator = subprocess.Popen(
        [sys.executable, "-m", "backprop_course.grader.scale", ASSIGNMENT, "--workers", "2"],
        cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while _recorded_count(sqlite(root)) < 3 and time.monotonic() < deadline:
            assert coordinator.poll() is None, "the coordinator ended before it was killed"
            time.sleep(0.1)
        os.kill(coordinator.pid, signal.SIGKILL)
        coordinator.wait(timeout=10)
    finally:
        os.killpg(coordinator.pid, signal.SIGKILL)  # its local cluster
    before = results(sqlite(root))
    assert 3 <= len(before) < len(SOME)

    summary = autograde(ASSIGNMENT, root=root, workers=2, stream=io.StringIO())
    assert summary.already == len(before)
    assert sorted(summary.graded) == sorted(set(SOME) - set(before))
    after = results(sqlite(root))
    assert sorted(after) == sorted(SOME)
    assert {s: after[s] for s in before} == before  # recorded once: not graded again
    assert all(v["notebooks"][ASSIGNMENT]["grades"]["relu_given"][0] is not None
               for v in dump(sqlite(root)).values())


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh database on the PostgreSQL server of ``BACKPROP_TEST_POSTGRES_URL`` (set by
    ``.ci/postgres.sh``); without it the test skips, except in CI where it fails."""
    server = os.environ.get("BACKPROP_TEST_POSTGRES_URL")
    if not server:
        if os.environ.get("CI") == "true":
            pytest.fail("CI must run the PostgreSQL tests: BACKPROP_TEST_POSTGRES_URL is "
                        "not set (eval \"$(.ci/postgres.sh)\" first)")
        pytest.skip("no PostgreSQL server (set BACKPROP_TEST_POSTGRES_URL, see .ci/postgres.sh)")
    name = f"bp_autograde_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield str(admin.url.set(database=name).render_as_string(hide_password=False))
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def test_a_postgresql_gradebook_gets_the_grades_of_serial_nbgrader(
        tmp_path: Path, postgres_url: str) -> None:
    students = SOME[:5]
    serial = make_course(tmp_path / "serial", students=students)
    stock_autograde(serial)
    make_course(tmp_path / "postgres", db_url=postgres_url, students=students)
    summary = autograde(ASSIGNMENT, root=tmp_path / "postgres", workers=2,
                        stream=io.StringIO())
    assert sorted(summary.graded) == sorted(students)
    assert dump(postgres_url) == dump(sqlite(serial))
    assert autograded(tmp_path / "postgres") == autograded(serial)
    again = autograde(ASSIGNMENT, root=tmp_path / "postgres", stream=io.StringIO())
    assert (again.planned, again.already) == (0, len(students))
    assert sorted(results(postgres_url)) == sorted(students)


#: A bubblewrap that cannot make namespaces (as where the kernel or AppArmor forbids
#: unprivileged user namespaces): every sandbox fails to start. It notes its command lines.
BROKEN_BWRAP = """#!/bin/sh
echo "$*" >> {starts}
echo "bwrap: No permissions to create a new namespace, likely because the kernel does \
not allow non-privileged user namespaces." >&2
exit 1
"""


@pytest.fixture
def broken_path(tmp_path: Path) -> tuple[str, Path]:
    """A ``PATH`` on which ``bwrap`` is :data:`BROKEN_BWRAP`, and the file of its runs."""
    folder, starts = tmp_path / "broken-bin", tmp_path / "bwrap-starts"
    folder.mkdir()
    (folder / "bwrap").write_text(BROKEN_BWRAP.format(starts=starts))
    (folder / "bwrap").chmod(0o755)
    starts.touch()
    return f"{folder}{os.pathsep}{os.environ['PATH']}", starts


def _starts(path: Path) -> int:
    """How many sandboxes were started (not counting the isolation probe)."""
    return sum("/sandbox/runner/run.py" in line for line in path.read_text().splitlines())


def test_a_grader_fault_is_never_a_students_zero(tmp_path: Path, broken_path: tuple,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The course pins its isolation level (``c.GradeAnswers.isolation``: the one this
    machine gives), and then bubblewrap cannot make namespaces: no sandbox starts. Serial
    stock ``nbgrader autograde`` records no grade for the student (not a 0), leaves no
    autograded folder and exits 1; ``backprop-course autograde`` reports a failure, tries
    again (Dask's retry) and records the same as nbgrader. With the fault fixed, a plain
    re-run of either grades the student normally. A refused file needs no sandbox: it
    is graded 0 meanwhile."""
    path, starts = broken_path
    base = make_course(tmp_path / "base", students=["right_1", "blank_1", "corrupt_json"])
    with (base / "nbgrader_config.py").open("a") as config:  # never grade with less
        config.write(f"c.GradeAnswers.isolation = {isolation()!r}\n")
    serial, parallel = copy_course(base, tmp_path / "serial"), copy_course(base,
                                                                          tmp_path / "parallel")
    faulty = stock_autograde(serial, env={**os.environ, "PATH": path})
    assert faulty.returncode != 0
    assert "GraderFaultError: the answer's interpreter did not start" in faulty.stderr
    assert _starts(starts) == 2 * STARTS  # each sandbox tried STARTS times, then given up
    book = dump(sqlite(serial))
    for student in ("right_1", "blank_1"):
        grades = book[student]["notebooks"][ASSIGNMENT]["grades"]
        assert {auto for auto, *_ in grades.values()} == {None}, (student, grades)
        assert not (serial / "autograded" / student / ASSIGNMENT).exists()
    assert {auto for auto, *_ in book["corrupt_json"]["notebooks"][ASSIGNMENT]["grades"]
            .values()} == {0}

    monkeypatch.setenv("PATH", path)  # the local cluster's workers inherit it
    summary = autograde(ASSIGNMENT, root=parallel, workers=1, stream=io.StringIO())
    assert summary.graded == ["corrupt_json"] and not summary.ok
    assert sorted(summary.failed) == sorted(summary.retry) == ["blank_1", "right_1"]
    for why in summary.failed.values():
        assert "GraderFaultError: the answer's interpreter did not start" in why
        assert "No permissions to create a new namespace" in why
    assert "failed right_1 (the next run tries again): " in summary.report()
    assert _starts(starts) == 2 * STARTS + 2 * (2 * STARTS)  # each submission tried twice
    assert dump(sqlite(parallel)) == book
    assert autograded(parallel) == autograded(serial)

    monkeypatch.undo()  # the fault fixed
    fixed = stock_autograde(serial)
    assert fixed.returncode == 0, fixed.stderr[-3000:]
    again = autograde(ASSIGNMENT, root=parallel, workers=1, stream=io.StringIO())
    assert sorted(again.graded) == ["blank_1", "right_1"] and again.already == 1 and again.ok
    book = dump(sqlite(serial))
    assert dump(sqlite(parallel)) == book
    assert autograded(parallel) == autograded(serial)
    auto = {s: {cell: g[0] for cell, g in v["notebooks"][ASSIGNMENT]["grades"].items()}
            for s, v in book.items()}
    assert auto["right_1"] == {"relu_given": 2, "relu_edge": 1, "tanh_shape": 1,
                               "tanh_given": 2, "explain": None}  # explain: by hand
    assert set(auto["blank_1"].values()) == set(auto["corrupt_json"].values()) == {0}
    assert _starts(starts) == 6 * STARTS  # the fixed runs used the real bubblewrap
