"""``backprop-course export-canvas``: the gradebook's scores as a CSV that Canvas's
gradebook import reads.

Canvas's layout: the columns ``Student``, ``ID``, ``SIS User ID``, ``SIS Login ID``,
``Section``, then one column per assignment named ``Name (id)`` (``id``: the Canvas
assignment's id; a column without one makes Canvas create the assignment on import); a
second row, ``Points Possible``, gives each assignment's points. Each score is nbgrader's
score minus its late penalty (never below 0, as ``nbgrader export`` computes it); a
student who did not submit an assignment gets an empty cell, which Canvas leaves as it
is. nbgrader's student id goes in ``SIS Login ID`` (or ``SIS User ID``), which Canvas
matches on; ``ID`` (Canvas's own number) stays empty.
"""

from __future__ import annotations

import csv
from pathlib import Path

from .data import CourseData, load

HEADER = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
MATCH = ("login", "sis")


def _text(value: str) -> str:
    """A name cell a spreadsheet will not run as a formula."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def rows(data: CourseData, canvas_ids: dict[str, str] | None = None, match: str = "login",
         section: str = "") -> list[list[str]]:
    """The CSV's rows, header and ``Points Possible`` first."""
    if match not in MATCH:
        raise ValueError(f"match is one of {MATCH}, not {match!r}")
    ids = canvas_ids or {}
    header = HEADER + [f"{a} ({ids[a]})" if a in ids else a for a in data.assignments]
    points = ["Points Possible", "", "", "", ""] + [f"{data.maxima.get(a, 0.0):g}"
                                                    for a in data.assignments]
    out = [header, points]
    for student in data.students:
        person = data.people[student]
        name = ", ".join(n for n in (person.last_name, person.first_name) if n) or student
        sis, login = (student, "") if match == "sis" else ("", student)
        scores = []
        for assignment in data.assignments:
            submission = data.submissions.get((assignment, student))
            scores.append("" if submission is None else f"{round(submission.score, 2):g}")
        out.append([_text(name), "", sis, login, _text(section)] + scores)
    return out


def export_canvas(out: Path, root: Path | None = None, assignments: list[str] | None = None,
                  canvas_ids: dict[str, str] | None = None, match: str = "login",
                  section: str = "") -> Path:
    """Write the Canvas CSV of ``assignments`` (default: all) of the course in ``root``
    (default: the current folder) to ``out``."""
    data = load(root, assignments)
    out = Path(out)
    with out.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows(data, canvas_ids, match, section))
    return out
