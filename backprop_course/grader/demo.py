"""``backprop-course demo``: the whole instructor pipeline on the example submissions."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import nbformat

from .course import find_repository
from .hygiene import release_problems
from .pipeline import Course, Grades, run
from .report.build import write_report
from .report.canvas import export_canvas
from .submissions import load_examples

#: Where the demo keeps its course (relative to the current folder).
DEMO_FOLDER = Path("backprop-course-demo")
MARK = ".backprop-course-demo"


def grade_table(grades: Grades, assignment: str) -> str:
    """Students x checks, with totals: one column per test cell, grouped by exercise."""
    rows = {s: cells for (a, s), cells in sorted(grades.scores.items()) if a == assignment}
    if not rows:
        return f"{assignment}: no submissions"
    columns = list(next(iter(rows.values())))
    split = [c.rsplit("_", 1) if "_" in c else ["", c] for c in columns]
    maxima = next(iter(rows.values()))
    labels = [f"{part}/{maxima[c][1]:g}" for c, (_, part) in zip(columns, split, strict=True)]
    widths = [max(len(label), 3) for label in labels]
    name_width = max(len(assignment), *(len(s) for s in rows)) + 2
    groups, header, previous = "", "", None
    for (exercise, _), label, width in zip(split, labels, widths, strict=True):
        if exercise != previous:
            groups = groups.ljust(len(header)) + exercise + " "
            previous = exercise
        header += label.ljust(width + 2)
    lines = [" " * name_width + groups.rstrip(),
             assignment.ljust(name_width) + header + "total"]
    for student, cells in rows.items():
        scores = "".join(f"{cells[c][0]:g}".ljust(w + 2) for c, w in zip(columns, widths,
                                                                          strict=True))
        total, maximum = grades.total(assignment, student)
        lines.append(student.ljust(name_width) + scores + f"{total:g}/{maximum:g}")
    return "\n".join(lines)


def demo(folder: Path | None = None, assignments: list[str] | None = None) -> int:
    """Generate, autograde the example submissions, write feedback, print the grades;
    the course is kept in ``folder`` (default ``./backprop-course-demo``, replaced on
    every run)."""
    repo = find_repository()
    root = Path(folder or DEMO_FOLDER).resolve()
    if root.exists():
        if not (root / MARK).exists() and any(root.iterdir()):
            raise SystemExit(f"refusing to replace {root}: it is not a folder the demo made "
                             f"(no {MARK} in it); choose another with --folder")
        shutil.rmtree(root)
    root.mkdir(parents=True)
    (root / MARK).write_text("made by backprop-course demo; replaced on its next run\n")
    examples_dir = repo / "grading" / "examples"
    start = time.perf_counter()
    course = Course(root / "course", repo / "notebooks")
    print(f"course in {course.root} (SQLite gradebook), notebooks from {repo / 'notebooks'}")
    grades = run(course, examples_dir, assignments)
    done = sorted({a for a, _ in grades.scores})
    for assignment in done:
        source = nbformat.read(course.path("source", assignment), as_version=4)
        release = nbformat.read(course.path("release", assignment), as_version=4)
        problems = release_problems(source, release, course.path("release", assignment).parent)
        print(f"\n{assignment}: release hygiene "
              + ("ok" if not problems else "PROBLEMS:\n  " + "\n  ".join(problems)))
        print(grade_table(grades, assignment))
        _, examples = load_examples(examples_dir / f"{assignment}.json")
        print("feedback on the seeded mistakes (first failed check):")
        width = max(len(e.name) for e in examples)
        for example in examples:
            failed = [c for c, (s, m) in grades.scores[assignment, example.name].items()
                      if s < m]
            if failed and example.base != "blank":
                report = course.reports(assignment, example.name)[failed[0]]
                first = next(line for line in report.splitlines() if line.startswith("  - "))
                print(f"  {example.name:<{width}} {failed[0]}: {first[4:]}")
    csv = course.root / "grades.csv"
    course.export(csv)
    report = write_report(course.root, None, course.root / "reports" / "course")
    canvas = export_canvas(course.root / "grades-canvas.csv", course.root)
    print(f"\n{grades.seconds_per_notebook:.1f} s per autograded notebook; "
          f"{time.perf_counter() - start:.0f} s in all")
    print(f"kept in {root}:\n  feedback pages  {course.root / 'feedback'}\n"
          f"  grades          {csv}\n  grades (Canvas) {canvas}\n"
          f"  report          {report.html} (what the class got wrong; "
          f"{len(report.pairs.flagged)} flagged pairs)")
    return 0
