"""Every diagnosis is recorded in the gradebook beside the grades (issue 13): by stock
``nbgrader autograde`` (the ``RecordDiagnoses`` preprocessor) and by ``backprop-course
autograde`` (its one writer), the same rows, in SQLite and PostgreSQL; regrading
replaces them; what a student writes into the notebook's metadata is not recorded."""

from __future__ import annotations

import io
import os
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import nbformat
import numpy as np
import pytest
from fixtures_scale.scale_course import (
    ASSIGNMENT,
    copy_course,
    make_course,
    stock_autograde,
)
from sqlalchemy import create_engine

from backprop_course.checks import get
from backprop_course.grader import diagnoses
from backprop_course.grader.evidence import fingerprint, probe_case
from backprop_course.grader.sandbox import isolation
from backprop_course.grader.scale.coordinator import autograde

#: Students of the scale fixture whose answers cover the kinds of rows: right, blank,
#: wrong in a visible and a hidden check, a refused file, an answer that raises, a
#: missing answer cell; ``right_2`` also forges diagnoses in its notebook's metadata.
SOME = ["right_1", "right_2", "relu_kink", "relu_sign", "tanh_no_square", "blank_1",
        "corrupt_json", "answer_raises", "drops_answer"]
FORGED = {"version": 1, "graded_at": "2020-01-01T00:00:00",
          "checks": [{"cell": "relu_given", "exercise": "relu_backward", "part": "given",
                      "hidden": False, "passed": False, "kinds": ["overwrite"],
                      "worst": None}],
          "probes": []}

needs_sandbox = pytest.mark.skipif(isolation() == "none", reason="needs Linux namespaces")


def rows(db_url: str) -> list[tuple]:
    """The recorded rows of both tables, without the time of grading, sorted."""
    engine = create_engine(db_url)
    try:
        found = diagnoses.read(engine)
    finally:
        engine.dispose()
    return sorted((tuple(sorted((k, v) for k, v in row.items() if k != "graded_at"))
                   for row in [*found.diagnoses, *found.probes]), key=repr)


def forge(root: Path, student: str) -> None:
    """Write fake diagnoses into the metadata of a student's submitted notebook."""
    path = root / "submitted" / student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    nb = nbformat.read(path, 4)
    nb.metadata["backprop_course"] = {"diagnoses": FORGED, "autograded": True}
    nbformat.write(nb, path)


def sqlite(root: Path) -> str:
    return f"sqlite:///{root / 'gradebook.db'}"


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One course graded by stock serial nbgrader and by ``backprop-course autograde``."""
    tmp = tmp_path_factory.mktemp("diagnoses")
    base = make_course(tmp / "base", students=SOME)
    forge(base, "right_2")
    serial, parallel = copy_course(base, tmp / "serial"), copy_course(base, tmp / "parallel")
    assert stock_autograde(serial).returncode == 0
    summary = autograde(ASSIGNMENT, root=parallel, workers=2, stream=io.StringIO())
    assert sorted(summary.graded) == sorted(SOME), summary.report()
    return {"tmp": tmp, "base": base, "serial": serial, "parallel": parallel}


def by_student(db_url: str) -> dict[str, list[dict]]:
    engine = create_engine(db_url)
    found = diagnoses.read(engine)
    engine.dispose()
    out: dict[str, list[dict]] = {}
    for row in found.diagnoses:
        out.setdefault(row["student"], []).append(row)
    return out


@pytest.mark.slow
@needs_sandbox
def test_stock_and_parallel_autograde_record_the_same_rows(graded: dict) -> None:
    serial, parallel = rows(sqlite(graded["serial"])), rows(sqlite(graded["parallel"]))
    assert serial and serial == parallel
    students = {dict(r)["student"] for r in serial}
    assert students == set(SOME)


@pytest.mark.slow
@needs_sandbox
def test_the_rows_say_what_the_grader_found(graded: dict) -> None:
    found = by_student(sqlite(graded["parallel"]))
    kinds = {s: Counter((r["exercise"], r["part"], r["kind"]) for r in found[s])
             for s in found}
    checks = {(r["exercise"], r["part"]) for r in found["right_1"]}
    assert all(r["passed"] and r["kind"] is None for r in found["right_1"])
    # the student's forged diagnoses are not what is recorded: the grader's are
    assert all(r["passed"] and r["kind"] is None for r in found["right_2"])
    assert {(e, p) for e, p, _ in kinds["right_2"]} == checks
    assert {k for *_, k in kinds["blank_1"]} == {"not_implemented"}
    assert {k for *_, k in kinds["corrupt_json"]} == {"no_answer"}
    assert ("relu_backward", "given", "sign") in kinds["relu_sign"]
    assert ("relu_backward", "edge", "kink") in kinds["relu_kink"]
    assert ("relu_backward", "given", None) in kinds["relu_kink"]  # right but at the kink
    assert ("tanh_backward", "given", "no_answer") in kinds["drops_answer"]
    assert ("relu_backward", "given", "error") in kinds["answer_raises"]
    visible = [r for r in found["relu_sign"] if r["kind"] == "sign" and not r["hidden"]]
    assert visible and all(r["gradient"] == "dL/dx" and r["element"].startswith("[")
                           and r["rel_error"] == pytest.approx(1.0) for r in visible)
    hidden = [r for r in found["relu_sign"] + found["relu_kink"] if r["hidden"]]
    assert hidden and all(r["gradient"] is r["element"] is r["rel_error"] is None
                          for r in hidden)
    graded_at = {r["graded_at"] for r in found["relu_sign"]}
    assert len(graded_at) == 1 and isinstance(graded_at.pop(), datetime)


@pytest.mark.slow
@needs_sandbox
def test_every_answer_is_probed_on_the_same_case(graded: dict) -> None:
    engine = create_engine(sqlite(graded["parallel"]))
    probes = {(p["student"], p["exercise"]): p for p in diagnoses.read(engine).probes}
    engine.dispose()
    assert probes["right_1", "relu_backward"]["status"] == "right"
    assert probes["relu_kink", "relu_backward"]["status"] == "right"  # the probe has no 0
    sign = probes["relu_sign", "relu_backward"]
    assert (sign["status"], sign["kinds"]) == ("wrong", "sign") and sign["output"]
    assert probes["blank_1", "relu_backward"]["status"] == "no_output"
    assert ("corrupt_json", "relu_backward") not in probes  # refused: nothing ran
    wrong_tanh = probes["tanh_no_square", "tanh_backward"]
    assert wrong_tanh["status"] == "wrong" and wrong_tanh["output"] != sign["output"]


@pytest.mark.slow
@needs_sandbox
def test_regrading_replaces_the_rows(graded: dict) -> None:
    """A new submission, graded again by either path, replaces the student's rows."""
    before = rows(sqlite(graded["serial"]))
    again = stock_autograde(graded["serial"], "--force", "--student", "relu_sign")
    assert again.returncode == 0
    assert rows(sqlite(graded["serial"])) == before  # the same rows, none twice
    summary = autograde(ASSIGNMENT, root=graded["parallel"], students=["relu_sign"],
                        force=True, workers=1, stream=io.StringIO())
    assert summary.graded == ["relu_sign"]
    assert rows(sqlite(graded["parallel"])) == before

    for root in (graded["serial"], graded["parallel"]):  # right_1 hands in relu_sign's work
        folder = root / "submitted" / "right_1" / ASSIGNMENT
        source = root / "submitted" / "relu_sign" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
        (folder / f"{ASSIGNMENT}.ipynb").write_bytes(source.read_bytes())
        (folder / "timestamp.txt").write_text("2026-01-09 13:00:00 UTC")
    assert stock_autograde(graded["serial"], "--force", "--student", "right_1"
                           ).returncode == 0
    autograde(ASSIGNMENT, root=graded["parallel"], workers=1, stream=io.StringIO())
    for root in (graded["serial"], graded["parallel"]):
        found = by_student(sqlite(root))
        mine = sorted((r["exercise"], r["part"], r["kind"]) for r in found["right_1"])
        theirs = sorted((r["exercise"], r["part"], r["kind"]) for r in found["relu_sign"])
        assert mine == theirs
        assert len(found["right_1"]) == len({(r["cell"], r["exercise"], r["part"],
                                              r["position"]) for r in found["right_1"]})
    assert rows(sqlite(graded["serial"])) == rows(sqlite(graded["parallel"]))


@pytest.fixture
def postgres() -> Iterator[str]:
    """A fresh-database factory on the PostgreSQL server of ``BACKPROP_TEST_POSTGRES_URL``
    (set by ``.ci/postgres.sh``); without it the test skips, except in CI where it fails."""
    server = os.environ.get("BACKPROP_TEST_POSTGRES_URL")
    if not server:
        if os.environ.get("CI") == "true":
            pytest.fail("CI must run the PostgreSQL tests: BACKPROP_TEST_POSTGRES_URL is "
                        "not set (eval \"$(.ci/postgres.sh)\" first)")
        pytest.skip("no PostgreSQL server (set BACKPROP_TEST_POSTGRES_URL, see .ci/postgres.sh)")
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    made: list[str] = []

    def fresh() -> str:
        name = f"bp_diagnoses_{uuid.uuid4().hex[:12]}"
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        made.append(name)
        return str(admin.url.set(database=name).render_as_string(hide_password=False))

    try:
        yield fresh
    finally:
        with admin.connect() as connection:
            for name in made:
                connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.mark.slow
@needs_sandbox
def test_postgresql_gradebooks_get_the_same_rows(graded: dict, postgres: object,
                                                 tmp_path: Path) -> None:
    students = ["right_2", "relu_sign", "blank_1", "corrupt_json"]
    expected = [r for r in rows(sqlite(graded["parallel"])) if dict(r)["student"] in students]
    stock_url, parallel_url = postgres(), postgres()
    stock = make_course(tmp_path / "stock", db_url=stock_url, students=students)
    assert stock_autograde(stock).returncode == 0
    make_course(tmp_path / "parallel", db_url=parallel_url, students=students)
    autograde(ASSIGNMENT, root=tmp_path / "parallel", workers=2, stream=io.StringIO())
    assert rows(stock_url) == rows(parallel_url) == expected


# ----------------------------------------------------------------- no sandbox needed
def test_record_replaces_one_submissions_rows() -> None:
    engine = create_engine("sqlite://")
    diagnoses.create_tables(engine)
    first = {"version": 1, "graded_at": "2026-01-09T12:00:00",
             "checks": [{"cell": "a_given", "exercise": "a", "part": "given", "hidden": False,
                         "passed": False, "kinds": ["sign", "factor"],
                         "worst": {"gradient": "dL/dx", "element": [1, 0],
                                   "rel_error": 1.0}}],
             "probes": [{"exercise": "a", "status": "wrong", "kinds": ["sign"],
                         "output": "ab", "residual": "cd", "pattern": "dL/dx: +-"}]}
    second = {**first, "checks": [{**first["checks"][0], "passed": True, "kinds": [],
                                   "worst": None}], "probes": []}
    with engine.begin() as connection:
        diagnoses.record(connection, "A", "A", "s", first)
        diagnoses.record(connection, "A", "A", "other", first)
    found = diagnoses.read(engine)
    assert [(r["student"], r["position"], r["kind"], r["element"]) for r in found.diagnoses
            ] == [("other", 0, "sign", "[1, 0]"), ("other", 1, "factor", "[1, 0]"),
                  ("s", 0, "sign", "[1, 0]"), ("s", 1, "factor", "[1, 0]")]
    with engine.begin() as connection:
        diagnoses.record(connection, "A", "A", "s", second)
    found = diagnoses.read(engine)
    assert [(r["student"], r["kind"], r["passed"]) for r in found.diagnoses
            if r["student"] == "s"] == [("s", None, True)]
    assert [p["student"] for p in found.probes] == ["other"]
    with engine.begin() as connection:
        diagnoses.record(connection, "A", "A", "other", None)
    assert [r["student"] for r in diagnoses.read(engine).diagnoses] == ["s"]


def test_the_probe_is_the_same_for_everyone_and_its_fingerprint_ignores_rounding() -> None:
    exercise = get("linear_backward")
    case = probe_case(exercise)
    assert all(np.array_equal(case.values[k], probe_case(exercise).values[k])
               for k in case.values)
    right = exercise.torch_reference(case.values)
    wrong = tuple(-g for g in right)
    noisy = tuple(g * (1 + 1e-13) for g in wrong)
    assert fingerprint(exercise, case, wrong) == fingerprint(exercise, case, noisy)
    other = (wrong[0], wrong[1], 2 * right[2])
    assert fingerprint(exercise, case, other)[:2] != fingerprint(exercise, case, wrong)[:2]
    assert fingerprint(exercise, case, (wrong[0].T, *wrong[1:]))[2].startswith("dL/dx: shape")


def test_every_exercise_has_a_probe_its_references_agree_on() -> None:
    """The probe is judged like a check: torch and the numerical gradient must agree on it
    (else every answer's probe would be "unjudged")."""
    from backprop_course.checks.exercise import REGISTRY, VJPExercise

    get("relu_backward")  # registers every exercise
    probed = [e for e in REGISTRY.values() if isinstance(e, VJPExercise)]
    assert probed
    for exercise in probed:
        case = probe_case(exercise)
        assert case.budget is None
        exercise.reference(case)

