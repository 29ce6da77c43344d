"""``backprop-course report``: the instructor's page and CSV files for a batch.

:func:`write_report` reads the gradebook (grades, diagnoses, probes) and the autograded
answer cells of one assignment or of the whole course, and writes ``report.html`` (one
self-contained page) with ``checks.csv``, ``mistakes.csv``, ``reach_out.csv``,
``pairs.csv`` and, for the course, ``trends.csv`` beside it.
"""

from __future__ import annotations

import csv
import glob
import statistics
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from ...checks.kinds import ABOUT, WIDGETS, Kind
from . import figures
from .copying import EPSILON, MIN_SHARED, Pair, Pairs, find_pairs
from .data import CourseData, load
from .items import check_stats, exercise_scores, exercises, kind_counts, reach_out, trends
from .page import (
    Markup,
    image,
    join,
    lesson_links,
    number,
    page,
    percent,
    pre,
    table,
    tag,
)

#: Pairs listed in the page besides the flagged ones.
LISTED_PAIRS = 15
#: Below this discrimination a check is marked for review.
LOW_DISCRIMINATION = 0.2


@dataclass(frozen=True)
class Report:
    """What :func:`write_report` wrote, and what it found."""

    html: Path
    csvs: list[Path]
    data: CourseData
    pairs: Pairs


def about(kind: str) -> tuple[str, str, str, str]:
    """(title, lesson, widget, re-teach hint) of a kind (a kind this version does not
    know is shown by its name)."""
    try:
        known = Kind(kind)
    except ValueError:
        return kind, "", "", ""
    info = ABOUT.get(known)
    if info is None:
        return kind, "", WIDGETS.get(known, ""), ""
    return info.title, info.lesson, WIDGETS.get(known, ""), info.reteach


def _safe(value: object) -> object:
    """A CSV cell a spreadsheet will not run as a formula."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _write_csv(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows([[_safe(v) for v in row] for row in rows])
    return path


def _notebooks(data: CourseData) -> dict[str, Path]:
    """Lesson number ("03") -> the lesson notebook (through the course's source links)."""
    out = {}
    for found in sorted(glob.glob(str(data.folder("source", "*") / "*.ipynb"))):
        path = Path(found)
        if path.stem[:2].isdigit():
            out.setdefault(path.stem[:2], path.resolve())
    return out


def _label(data: CourseData, assignment: str, exercise: str) -> str:
    return exercise if len(data.assignments) == 1 else f"{assignment[:2]} {exercise}"


# ------------------------------------------------------------------ the sections
def _scores(data: CourseData) -> Markup:
    scores = exercise_scores(data)
    rows = []
    for (assignment, exercise), fractions in scores.items():
        rows.append([assignment, exercise, len(fractions),
                     percent(float(np.mean(fractions)) if fractions else None),
                     percent(statistics.median(fractions) if fractions else None),
                     sum(f >= 1 for f in fractions), sum(f <= 0 for f in fractions)])
    totals = []
    for assignment in data.assignments:
        subs = [s for (a, _), s in data.submissions.items() if a == assignment]
        late = sum(s.penalty > 0 for s in subs)
        maximum = data.maxima.get(assignment, 0.0)
        mean = statistics.fmean(s.score for s in subs) if subs else 0.0
        totals.append([assignment, len(subs), f"{mean:.1f} / {maximum:g}", late])
    plot = figures.score_histograms({_label(data, a, e): v for (a, e), v in scores.items()})
    return join([
        tag("p", "Each student's fraction of an exercise's points (every check of the "
                 "exercise, hidden ones included), before late penalties."),
        table(["assignment", "exercise", "students", "mean", "median", "full marks",
               "nothing"], rows, numeric=range(2, 7), id_="scores-table"),
        image(plot, "histograms of the students' scores per exercise"),
        tag("h3", "Totals"),
        table(["assignment", "students", "mean score (after late penalties)",
               "late submissions"], totals, numeric=(1, 2, 3))])


def _checks(data: CourseData, out: Path) -> tuple[Markup, Path]:
    stats = check_stats(data)
    rows = [[s.check.assignment, s.check.exercise, s.check.part, s.check.cell,
             f"{s.check.points:g}", s.students, percent(s.difficulty),
             number(s.discrimination)
             + (" (review)" if s.discrimination is not None
                and s.discrimination < LOW_DISCRIMINATION else "")] for s in stats]
    path = _write_csv(out / "checks.csv", [
        "assignment", "exercise", "part", "cell", "points", "students", "difficulty",
        "discrimination"], [[s.check.assignment, s.check.exercise, s.check.part, s.check.cell,
                             s.check.points, s.students, s.difficulty, s.discrimination]
                            for s in stats])
    return join([
        tag("p", "Difficulty: the mean fraction of the check's points the students got "
                 "(low = hard). Discrimination: the correlation of the check's score with "
                 "the rest of the assignment's score (point-biserial for a pass/fail "
                 f"check); below {LOW_DISCRIMINATION} the check does not separate "
                 "students who know the material from those who do not: review it."),
        table(["assignment", "exercise", "check", "test cell", "points", "students",
               "difficulty", "discrimination"], rows, numeric=(4, 5, 6, 7),
              id_="checks-table")]), path


def _mistakes(data: CourseData, out: Path) -> tuple[Markup, Path]:
    counts = kind_counts(data)
    columns = exercises(data)
    students: dict[str, set[str]] = {}
    for found in counts.values():
        for kind, who in found.items():
            students.setdefault(kind, set()).update(who)
    kinds = sorted(students, key=lambda k: (-len(students[k]), k))
    notebooks = _notebooks(data)
    rows, csv_rows = [], []
    for kind in kinds:
        title, lesson, widget, reteach = about(kind)
        where = [(e, len(counts[e][kind])) for e in columns if kind in counts[e]]
        rows.append([tag("code", kind), title, len(students[kind]),
                     join([f"{_label(data, a, x)}: {n}" for (a, x), n in where], "; "),
                     lesson_links(lesson, notebooks, out), widget, reteach])
        csv_rows += [[a, x, kind, n, title, lesson, widget, reteach] for (a, x), n in where]
    path = _write_csv(out / "mistakes.csv", ["assignment", "exercise", "kind", "students",
                                              "title", "lesson", "widget", "reteach"],
                      csv_rows)
    if not kinds:
        return tag("p", "No mistakes recorded."), path
    matrix = np.array([[len(counts[e].get(k, ())) for e in columns] for k in kinds])
    plot = figures.heatmap(matrix, kinds, [_label(data, a, e) for a, e in columns])
    return join([
        tag("p", "How many students showed each kind of mistake in each exercise (in any "
                 "of its checks, hidden ones included), where the lessons teach it, the "
                 "widget that shows it, and a line on how to re-teach it."),
        image(plot, "heatmap of the kinds of mistake per exercise"),
        table(["kind", "what it is", "students", "where (students)", "taught in",
               "widget", "re-teach"], rows, numeric=(2,), id_="mistakes-table")]), path


def _reach_out(data: CourseData, out: Path) -> tuple[Markup, Path]:
    repeated = [r for r in reach_out(data) if r.student in data.students]
    rows = [[r.student, tag("code", r.kind), about(r.kind)[0], len(r.assignments),
             join([f"{a}/{e}" for a, e in r.where], ", "), about(r.kind)[3]]
            for r in repeated]
    path = _write_csv(out / "reach_out.csv", ["student", "kind", "title", "assignments",
                                               "where", "reteach"],
                      [[r.student, r.kind, about(r.kind)[0], len(r.assignments),
                        " ".join(f"{a}/{e}" for a, e in r.where), about(r.kind)[3]]
                       for r in repeated])
    intro = tag("p", "Students who made the same kind of mistake in two or more "
                     "assignments (any graded assignment counts): a conversation may help "
                     "more than another exercise.")
    if not repeated:
        return join([intro, tag("p", "Nobody, so far.", class_="note")]), path
    return join([intro, table(["student", "kind", "what it is", "assignments", "where",
                               "re-teach"], rows, numeric=(3,), id_="reach-out-table")]), path


def _evidence(pair: Pair) -> Markup:
    return join([tag("div", f"{s.assignment}/{s.exercise}: {s.kinds or 'wrong'} "
                            f"[{s.pattern}], {s.count} of {s.answered} students gave this "
                            f"output; code similarity {s.similarity:.2f} (as similar or "
                            f"more: {percent(s.as_similar)} of their pairs)")
                 for s in pair.shared])


def _side_by_side(data: CourseData, pair: Pair) -> Markup:
    parts = [tag("h3", f"{pair.first} and {pair.second}: score {pair.score:.1f}")]
    for s in pair.shared:
        sources = [data.source(s.assignment, s.notebook, student, s.exercise) or ""
                   for student in (pair.first, pair.second)]
        parts.append(tag("p", f"{s.assignment} / {s.exercise}", class_="note"))
        parts.append(tag("div", join([
            tag("div", join([tag("strong", student), pre(source)]))
            for student, source in zip((pair.first, pair.second), sources, strict=True)]),
            class_="pair"))
    return join(parts)


def _copying(data: CourseData, pairs: Pairs, out: Path) -> tuple[Markup, Path]:
    listed = pairs.flagged + [p for p in pairs.pairs if not p.flagged][:LISTED_PAIRS]
    rows = [[i + 1, p.first, p.second, f"{p.score:.1f}", "yes" if p.flagged else "",
             len(p.shared), p.disagreements, f"{p.similarity:.2f}", _evidence(p)]
            for i, p in enumerate(listed)]
    path = _write_csv(out / "pairs.csv", [
        "rank", "first", "second", "score", "flagged", "shared", "disagreements",
        "similarity", "evidence"], [
        [i + 1, p.first, p.second, round(p.score, 3), p.flagged, len(p.shared),
         p.disagreements, round(p.similarity, 3),
         "; ".join(f"{s.assignment}/{s.exercise}: {s.kinds} {s.count}/{s.answered} "
                   f"sim {s.similarity:.2f}" for s in p.shared)]
        for i, p in enumerate(pairs.pairs)])
    parts = [
        tag("p", "Every answer was also run on one probe case per exercise, the same for "
                 "everyone. Right answers agree there and count for nothing; answers that "
                 "return the same wrong values (same output, kinds and residual pattern) "
                 "behave alike. A pair's score adds, for each exercise both got wrong that "
                 "way, how rare that output is (-log10 of its share of the class) and how "
                 "rare it is for two such answers to be this similar as code (copydetect "
                 "tokens: renamed variables and layout do not count), minus "
                 f"{np.log10(1 / EPSILON):.0f} per exercise where they differ and one is "
                 "wrong."),
        tag("p", f"{pairs.students} students, {pairs.compared} pairs. Flagged: wrong the "
                 f"same way in {MIN_SHARED} or more exercises and a score above "
                 f"{pairs.threshold:.1f} (if everyone worked alone, a class this size shows "
                 "a pair this alike less than once in 20). This is evidence for a person to "
                 "read, never a penalty: students who studied together or used the same "
                 "wrong source look alike too.", class_="note"),
        tag("p", f"{len(pairs.flagged)} flagged pairs.",
            class_="warn" if pairs.flagged else "")]
    if pairs.pairs:
        parts.append(image(figures.pair_scores(pairs), "histogram of the pairs' scores"))
    if rows:
        parts.append(table(["rank", "student", "student", "score", "flagged", "shared",
                            "differ", "similarity", "evidence"], rows,
                           numeric=(0, 3, 5, 6, 7),
                           row_classes=["flagged" if p.flagged else "" for p in listed],
                           id_="pairs-table"))
    for cluster in pairs.clusters():
        parts.append(tag("p", "Linked by flagged pairs: " + ", ".join(cluster),
                         class_="warn"))
    parts += [_side_by_side(data, p) for p in pairs.flagged]
    return join(parts), path


def _trends(data: CourseData, out: Path) -> tuple[Markup, Path]:
    found = trends(data)
    if len(found) < 2:
        return tag("p", "One assignment so far: no trend yet.", class_="note"), \
            _write_csv(out / "trends.csv", ["assignment", "students", "mean", "median"],
                       [[t.assignment, t.students, t.mean, t.median] for t in found])
    totals: dict[str, float] = {}
    for t in found:
        for kind, share in t.kinds.items():
            totals[kind] = totals.get(kind, 0.0) + share
    top = sorted(totals, key=lambda k: (-totals[k], k))[:5]
    rows = [[t.assignment, t.students, percent(t.mean), percent(t.median),
             join([f"{k} {percent(t.kinds[k])}" for k in top if k in t.kinds], ", ")]
            for t in found]
    path = _write_csv(out / "trends.csv", ["assignment", "students", "mean", "median",
                                            *top],
                      [[t.assignment, t.students, t.mean, t.median,
                        *(t.kinds.get(k, 0.0) for k in top)] for t in found])
    return join([
        tag("p", "Per assignment, in course order: the scores after late penalties, and the "
                 "share of the students with each of the most common kinds of mistake."),
        image(figures.trend_lines(found, top), "trends across the assignments"),
        table(["assignment", "students", "mean", "median", "most common mistakes"], rows,
              numeric=(1, 2, 3), id_="trends-table")]), path


def write_report(root: Path | None = None, assignments: list[str] | None = None,
                 out: Path | None = None) -> Report:
    """Write the report on ``assignments`` (default: the whole course) of the course in
    ``root`` (default: the current folder) into ``out`` (default:
    ``<root>/reports/<assignment or "course">``)."""
    data = load(root, assignments)
    name = data.assignments[0] if assignments and len(data.assignments) == 1 else "course"
    out = Path(out or data.root / "reports" / name).resolve()
    out.mkdir(parents=True, exist_ok=True)
    pairs = find_pairs(data)
    sections, csvs = [], []
    sections.append(("scores", "Scores", _scores(data)))
    for anchor, heading, make in (("checks", "Checks: difficulty and discrimination",
                                   _checks),
                                  ("mistakes", "Mistakes", _mistakes),
                                  ("reach-out", "Students to reach out to", _reach_out)):
        content, path = make(data, out)
        sections.append((anchor, heading, content))
        csvs.append(path)
    content, path = _copying(data, pairs, out)
    sections.append(("copying", "Answers that go wrong alike", content))
    csvs.append(path)
    if name == "course":
        content, path = _trends(data, out)
        sections.append(("trends", "Trends across assignments", content))
        csvs.append(path)
    files = join([tag("li", tag("a", p.name, href=p.name)) for p in csvs])
    sections.append(("files", "Files", tag("ul", files)))
    title = (f"{name}: what the class got wrong" if name != "course"
             else f"{data.course_id}: the course so far")
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lead = (f"{len(data.students)} students, {', '.join(data.assignments) or 'no assignments'}"
            f"; from the gradebook, {when}.")
    html = out / "report.html"
    html.write_text(page(title, lead, sections), encoding="utf-8")
    return Report(html, csvs, data, pairs)

