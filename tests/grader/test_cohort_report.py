"""The instructor's report on a synthetic cohort (issue 13).

204 students (:mod:`backprop_course.grader.cohort`: 200 who work alone, each answer a
random mix of the examples' seeded mistakes in their own coding style, and 4 planted
copiers who hand in another student's wrong answers with the variables renamed) hand
in assignment 02 (three exercises with a probe; one assignment keeps this test near
three minutes of grading on two cores); ``backprop-course autograde --workers 2``
grades them. The report must count exactly the planted mistakes, rank every planted
pair above every other pair and flag no pair of students who worked alone; the
false-positive rate on those independent pairs is printed. The Canvas export applies
the late penalty.
"""

from __future__ import annotations

import csv
import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from nbgrader.api import Gradebook
from nbgrader.utils import parse_utc

from backprop_course.grader.cohort import BLANK, SOLUTION, Plan, draw, hand_in
from backprop_course.grader.course import COURSE_ID
from backprop_course.grader.pipeline import Course
from backprop_course.grader.report.build import Report, write_report
from backprop_course.grader.report.canvas import export_canvas
from backprop_course.grader.report.items import kind_counts
from backprop_course.grader.sandbox import isolation
from backprop_course.grader.secret import SECRET_FILE

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(isolation() == "none", reason="needs Linux namespaces")]

REPO = Path(__file__).resolve().parents[2]
ASSIGNMENTS = ["02_sigmoid_neuron"]
STUDENTS, PLANTED, SEED = 200, 4, 13
LATE = ["student-003", "student-004", "student-005"]
DUE = "2026-01-10 12:00:00 UTC"
SECRET = hashlib.sha256(b"backprop-course cohort fixture").digest()
#: The kind of mistake each seeded mistake shows, per answer cell (the examples' names).
KINDS = {
    "sigmoid_neuron_backward_solution": {"skip_sigmoid": "chain", "upstream": "upstream",
                                         "shapes": "shape"},
    "sigmoid_backward_solution": {"sigmoid_of_x": "input_not_output", "sign": "sign",
                                  "shapes": "shape"},
    "max_backward_solution": {"partly": "route", "ties": "ties", "shapes": "shape"},
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The cohort, graded by ``backprop-course autograde --workers 2``, and its report."""
    tmp = tmp_path_factory.mktemp("cohort")
    root = tmp / "course"
    root.mkdir()
    (root / SECRET_FILE).write_text(SECRET.hex() + "\n")  # the same cases on every run
    course = Course(root, REPO / "notebooks")
    with (root / "nbgrader_config.py").open("a") as config:
        config.write('get_config().LateSubmissionPlugin.penalty_method = "zero"\n')
    releases = {a: course.release(a) for a in ASSIGNMENTS}
    sources = {a: nbformat.read(course.path("source", a), 4) for a in ASSIGNMENTS}
    start = time.perf_counter()
    plan = draw(REPO / "grading" / "examples", sources, releases, STUDENTS, PLANTED, SEED)
    hand_in(plan, root, releases)
    with Gradebook(course.db_url, COURSE_ID) as gb:
        gb.update_or_create_assignment(ASSIGNMENTS[0], duedate=parse_utc(DUE))
    for student in LATE:
        (root / "submitted" / student / ASSIGNMENTS[0] / "timestamp.txt").write_text(
            "2026-01-11 12:00:00 UTC")
    built = time.perf_counter() - start
    start = time.perf_counter()
    for assignment in ASSIGNMENTS:
        run = subprocess.run([sys.executable, "-m", "backprop_course.cli", "autograde",
                              assignment, "--workers", "2"], cwd=root, capture_output=True,
                             text=True, timeout=900, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        assert run.returncode == 0, run.stdout + run.stderr
        print(run.stdout.strip())
    grading = time.perf_counter() - start
    start = time.perf_counter()
    report = write_report(root, None, tmp / "report")
    reporting = time.perf_counter() - start
    print(f"\ncohort: {len(plan.students)} students x {len(ASSIGNMENTS)} assignments; "
          f"built in {built:.0f} s, graded in {grading:.0f} s, report in {reporting:.1f} s")
    return {"plan": plan, "report": report, "root": root, "tmp": tmp}


def expected_counts(plan: Plan) -> dict[tuple[str, str], dict[str, set[str]]]:
    """Per (assignment, exercise): kind -> the students the plan gave that mistake."""
    out: dict[tuple[str, str], dict[str, set[str]]] = {}
    for student in plan.students:
        for (assignment, cell), variant in student.variants.items():
            key = (assignment, cell.removesuffix("_solution"))
            found = out.setdefault(key, {})
            if variant == SOLUTION:
                continue
            kind = "not_implemented" if variant == BLANK else KINDS[cell][variant]
            found.setdefault(kind, set()).add(student.name)
    return out


def test_the_cohort_is_large_and_mixed(graded: dict) -> None:
    plan: Plan = graded["plan"]
    assert len(plan.students) >= 200 and len(plan.planted) == PLANTED
    for key, variants in plan.variants.items():
        used = {s.variants[key] for s in plan.students}
        assert used == {v.name for v in variants}, key  # every seeded mistake is in it


def test_the_report_counts_exactly_the_planted_mistakes(graded: dict) -> None:
    report: Report = graded["report"]
    found, expected = kind_counts(report.data), expected_counts(graded["plan"])
    assert found.keys() == expected.keys()
    differ = {(key, kind): sorted(expected[key].get(kind, set()) ^ found[key].get(kind, set()))
              for key in expected for kind in set(expected[key]) | set(found[key])
              if expected[key].get(kind) != found[key].get(kind)}
    assert differ == {}  # (exercise, kind): the students planted or found, not both
    with (report.html.parent / "mistakes.csv").open(newline="") as f:
        rows = {(r["assignment"], r["exercise"], r["kind"]): int(r["students"])
                for r in csv.DictReader(f)}
    expected = {(a, e, k): len(who) for (a, e), kinds in expected_counts(graded["plan"]).items()
                for k, who in kinds.items()}
    assert rows == expected


def test_planted_pairs_rank_first_and_no_independent_pair_is_flagged(graded: dict) -> None:
    report: Report = graded["report"]
    planted = {frozenset(p) for p in graded["plan"].planted}
    ranked = [frozenset((p.first, p.second)) for p in report.pairs.pairs]
    assert set(ranked[:len(planted)]) == planted
    flagged = {frozenset((p.first, p.second)) for p in report.pairs.flagged}
    assert flagged == planted
    students = len(graded["plan"].students)
    independent = students * (students - 1) // 2 - len(planted)
    false = len(flagged - planted)
    scores = {frozenset((p.first, p.second)): p for p in report.pairs.pairs}
    best_other = max(p.score for k, p in scores.items() if k not in planted)
    print(f"\nfalse-positive rate: {false} of {independent} independent pairs flagged "
          f"({false / independent:.2%}); planted pairs' scores "
          f"{sorted(round(scores[k].score, 1) for k in planted)}, best independent pair "
          f"{best_other:.1f}, threshold {report.pairs.threshold:.1f}")
    for pair in report.pairs.flagged:  # evidence a person can read: same wrong output
        assert len(pair.shared) >= 2 and pair.disagreements == 0
        assert all(s.similarity == pytest.approx(1.0) for s in pair.shared)


def test_the_report_files(graded: dict) -> None:
    report: Report = graded["report"]
    html = report.html.read_text()
    assert {p.name for p in report.csvs} == {"checks.csv", "mistakes.csv", "reach_out.csv",
                                              "pairs.csv", "trends.csv"}
    for first, second in graded["plan"].planted:
        assert first in html and second in html
    assert "http://" not in html and "https://" not in html  # nothing from the network
    with (report.html.parent / "checks.csv").open(newline="") as f:
        checks = list(csv.DictReader(f))
    assert len(checks) == 3 + 4 + 4  # every test cell of 02
    assert all(0 <= float(c["difficulty"]) <= 1 for c in checks)
    assert "One assignment so far: no trend yet." in html


def test_the_report_of_one_assignment_from_the_command_line(graded: dict) -> None:
    out = graded["tmp"] / "one"
    run = subprocess.run([sys.executable, "-m", "backprop_course.cli", "report",
                          ASSIGNMENTS[0], "--out", str(out)], cwd=graded["root"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert f"report  {out / 'report.html'}" in run.stdout
    assert not (out / "trends.csv").exists()


def test_canvas_export_applies_the_late_penalty(graded: dict) -> None:
    path = export_canvas(graded["tmp"] / "canvas.csv", graded["root"], canvas_ids={
        ASSIGNMENTS[0]: "101"})
    with path.open(newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section",
                       f"{ASSIGNMENTS[0]} (101)"]
    assert rows[1][:1] == ["Points Possible"] and rows[1][5:] == ["17"]
    by_id = {r[3]: r for r in rows[2:]}
    assert len(by_id) == len(graded["plan"].students)
    data = graded["report"].data
    for student in LATE:
        assert by_id[student][5] == "0"  # penalty_method "zero": late scores nothing
        assert data.submissions[ASSIGNMENTS[0], student].penalty == \
            data.submissions[ASSIGNMENTS[0], student].raw
    on_time = [s for s in by_id if s not in LATE]
    assert all(float(by_id[s][5]) == data.submissions[ASSIGNMENTS[0], s].raw for s in on_time)
    assert any(float(by_id[s][5]) > 0 for s in on_time)
