"""What the numbers say about the checks, the mistakes and the students.

- :func:`check_stats`: per check, its difficulty (the mean fraction of its points the
  students got) and its discrimination (the correlation of its score with the rest of
  the assignment's score: near 0 or negative, the check measures something else);
- :func:`exercise_scores`: per exercise, each student's fraction of its points;
- :func:`kind_counts`: per exercise and kind of mistake, the students who made it;
- :func:`reach_out`: students who make the same kind of mistake in several assignments;
- :func:`trends`: per assignment, the mean score and how common each kind is.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from .data import Check, CourseData


@dataclass(frozen=True)
class CheckStat:
    """Difficulty and discrimination of one check (None: fewer than two students, or a
    check everyone scored the same on)."""

    check: Check
    students: int
    difficulty: float | None
    discrimination: float | None


def _correlation(x: np.ndarray, y: np.ndarray) -> float | None:
    if len(x) < 2 or np.std(x) == 0 or np.std(y) == 0:
        return None
    return float(np.corrcoef(x, y)[0, 1])


def check_stats(data: CourseData) -> list[CheckStat]:
    """Per check: difficulty and (corrected item-total) discrimination."""
    out = []
    for check in data.checks:
        subs = [s for (a, _), s in data.submissions.items() if a == check.assignment]
        if not subs or not check.points:
            out.append(CheckStat(check, len(subs), None, None))
            continue
        item = np.array([s.scores.get(check.cell, 0.0) / check.points for s in subs])
        rest = np.array([s.raw - s.scores.get(check.cell, 0.0) for s in subs])
        out.append(CheckStat(check, len(subs), float(item.mean()), _correlation(item, rest)))
    return out


def exercises(data: CourseData) -> list[tuple[str, str]]:
    """The (assignment, exercise) pairs graded, in course order."""
    return list(dict.fromkeys((c.assignment, c.exercise) for c in data.checks))


def exercise_scores(data: CourseData) -> dict[tuple[str, str], list[float]]:
    """Per (assignment, exercise): each graded student's fraction of its points."""
    out = {}
    for assignment, exercise in exercises(data):
        checks = [c for c in data.checks if (c.assignment, c.exercise) == (assignment,
                                                                            exercise)]
        points = sum(c.points for c in checks)
        subs = [s for (a, _), s in sorted(data.submissions.items()) if a == assignment]
        out[assignment, exercise] = [sum(s.scores.get(c.cell, 0.0) for c in checks) / points
                                     if points else 0.0 for s in subs]
    return out


def kind_counts(data: CourseData) -> dict[tuple[str, str], dict[str, set[str]]]:
    """Per (assignment, exercise): kind -> the students with that kind in any check."""
    out: dict[tuple[str, str], dict[str, set[str]]] = {e: {} for e in exercises(data)}
    for row in data.diagnoses:
        if row["kind"]:
            found = out.setdefault((row["assignment"], row["exercise"]), {})
            found.setdefault(row["kind"], set()).add(row["student"])
    return out


@dataclass(frozen=True)
class Repeated:
    """A kind of mistake one student made in several assignments (``where``: the
    (assignment, exercise) pairs)."""

    student: str
    kind: str
    where: tuple[tuple[str, str], ...]

    @property
    def assignments(self) -> list[str]:
        return list(dict.fromkeys(a for a, _ in self.where))


def reach_out(data: CourseData, at_least: int = 2) -> list[Repeated]:
    """Students of the report's assignments who made one kind of mistake in at least
    ``at_least`` assignments (any recorded assignment counts, one of the report's
    among them), most repeated first."""
    seen: dict[tuple[str, str], dict[tuple[str, str], None]] = defaultdict(dict)
    for row in data.history:
        if row["kind"]:
            seen[row["student"], row["kind"]][row["assignment"], row["exercise"]] = None
    ours = set(data.assignments)
    out = [Repeated(student, kind, tuple(where)) for (student, kind), where in seen.items()
           if len({a for a, _ in where}) >= at_least and ours & {a for a, _ in where}]
    return sorted(out, key=lambda r: (-len(r.assignments), -len(r.where), r.student, r.kind))


@dataclass(frozen=True)
class Trend:
    """One assignment in the course view: students graded, mean and median score (a
    fraction of the points, after late penalties) and, per kind, the share of students
    who made it."""

    assignment: str
    students: int
    mean: float
    median: float
    kinds: dict[str, float]


def trends(data: CourseData) -> list[Trend]:
    """Per assignment, in course order."""
    out = []
    for assignment in data.assignments:
        subs = [s for (a, _), s in data.submissions.items() if a == assignment]
        maximum = data.maxima.get(assignment) or 1.0
        fractions = np.array([s.score / maximum for s in subs]) if subs else np.zeros(0)
        who: dict[str, set[str]] = defaultdict(set)
        for row in data.diagnoses:
            if row["assignment"] == assignment and row["kind"]:
                who[row["kind"]].add(row["student"])
        out.append(Trend(assignment, len(subs),
                         float(fractions.mean()) if len(subs) else 0.0,
                         float(np.median(fractions)) if len(subs) else 0.0,
                         {k: len(v) / max(len(subs), 1) for k, v in sorted(who.items())}))
    return out
