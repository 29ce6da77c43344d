"""``backprop-course``: the command line of the course package."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import __version__


def _demo(args: argparse.Namespace) -> int:
    from .grader.demo import demo

    return demo(args.folder, args.assignment or None)


def _check(args: argparse.Namespace) -> int:
    from .checks.variants import student_id
    from .grader.grade import grade_file

    path = Path(args.notebook)
    if not path.is_file():
        print(f"no notebook {path}", file=sys.stderr)
        return 2
    student = args.student or student_id()
    print(f"grading {path} as the grader will (student {student!r}): each answer cell "
          "runs on its own in the grader's sandbox ...")
    verdicts = grade_file(path, student)
    if not verdicts:
        print("this notebook has no graded checks")
        return 0
    exercises: dict[str, list] = {}
    for verdict in verdicts:
        exercises.setdefault(verdict.exercise, []).append(verdict)
    for exercise, cells in exercises.items():
        score, points = sum(v.score for v in cells), sum(v.points for v in cells)
        print(f"\n{exercise}: {score:g}/{points:g}")
        for verdict in cells:
            mark = "ok  " if verdict.passed else "FAIL"
            print(f"  {mark} {verdict.grade_id} ({verdict.score:g}/{verdict.points:g})")
            if not verdict.passed:
                print("\n".join("       " + line for line in verdict.report.splitlines()))
    score = sum(v.score for v in verdicts)
    points = sum(v.points for v in verdicts)
    print(f"\ntotal: {score:g}/{points:g} (hidden tests are not in your copy: the grader "
          f"runs more cases)")
    return 0 if score == points else 1


def _report(args: argparse.Namespace) -> int:
    from .grader.report.build import write_report

    if args.all == bool(args.assignment):
        print("name one ASSIGNMENT, or --all for the whole course", file=sys.stderr)
        return 2
    try:
        report = write_report(args.course, None if args.all else [args.assignment], args.out)
    except (KeyError, FileNotFoundError) as error:
        print(error.args[0] if error.args else error, file=sys.stderr)
        return 2
    flagged = len(report.pairs.flagged)
    print(f"{len(report.data.students)} students, {', '.join(report.data.assignments)}: "
          f"{flagged} flagged pair{'s' * (flagged != 1)} of answers that go wrong alike")
    print(f"report  {report.html}")
    print(f"csv     {', '.join(p.name for p in report.csvs)} (beside it)")
    return 0


def _export_canvas(args: argparse.Namespace) -> int:
    from .grader.report.canvas import export_canvas

    ids = {}
    for item in args.canvas_id or []:
        name, _, number = item.partition("=")
        if not name or not number:
            print(f"--canvas-id takes ASSIGNMENT=ID, not {item!r}", file=sys.stderr)
            return 2
        ids[name] = number
    try:
        path = export_canvas(args.out, args.course, args.assignment or None, ids, args.match,
                             args.section)
    except KeyError as error:
        print(error.args[0], file=sys.stderr)
        return 2
    print(f"grades for Canvas (late penalties applied): {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="backprop-course",
        description="Learn backpropagation: lesson notebooks, widgets, an autograd engine, "
                    "and an nbgrader course that grades backward passes.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = commands.add_parser(
        "demo", help="run the instructor pipeline on example submissions",
        description="Generate the student release, autograde example submissions (full "
                    "solution, blank, partly right, seeded mistakes) in an nbgrader course, "
                    "write feedback HTML and print the grades; the course is kept in "
                    "./backprop-course-demo (replaced on every run).")
    demo.add_argument("--folder", type=Path, metavar="DIR",
                      help="keep the course in DIR instead (replaced if it exists)")
    demo.add_argument("--assignment", action="append", metavar="NAME",
                      help="only this assignment (repeatable); default: all with examples")
    demo.set_defaults(handler=_demo)

    check = commands.add_parser(
        "check", help="grade your notebook the way the grader will",
        description="Run each answer cell of NOTEBOOK in the grader's sandbox, on your own "
                    "cases, and print the score per exercise with the feedback.")
    check.add_argument("notebook", metavar="NOTEBOOK")
    check.add_argument("--student", help="your student id (default: $BACKPROP_COURSE_STUDENT, "
                       "$JUPYTERHUB_USER or your login name)")
    check.set_defaults(handler=_check)

    report = commands.add_parser(
        "report", help="what the class got wrong, and answers that go wrong alike",
        description="Write an HTML report (one self-contained page) and CSV files from the "
                    "gradebook: score distributions, each check's difficulty and "
                    "discrimination, the kinds of mistake per exercise with the lessons and "
                    "widgets that teach them, students to reach out to, pairs of students "
                    "whose answers return the same wrong values (evidence for a person, "
                    "never a penalty) and, for the course, trends. Run it from the course "
                    "folder (grading/) or name it with --course.")
    report.add_argument("assignment", nargs="?", metavar="ASSIGNMENT")
    report.add_argument("--all", action="store_true", help="the whole course")
    report.add_argument("--course", type=Path, metavar="DIR",
                        help="the course folder (default: the current folder)")
    report.add_argument("--out", type=Path, metavar="DIR",
                        help="where to write (default: DIR/reports/ASSIGNMENT or "
                             "DIR/reports/course)")
    report.set_defaults(handler=_report)

    canvas = commands.add_parser(
        "export-canvas", help="the grades as a CSV for Canvas's gradebook import",
        description="Write the gradebook's scores, after nbgrader's late penalties, in the "
                    "CSV layout Canvas's gradebook import reads.")
    canvas.add_argument("out", type=Path, metavar="CSV")
    canvas.add_argument("--assignment", action="append", metavar="NAME",
                        help="only this assignment (repeatable); default: all")
    canvas.add_argument("--course", type=Path, metavar="DIR",
                        help="the course folder (default: the current folder)")
    canvas.add_argument("--canvas-id", action="append", metavar="ASSIGNMENT=ID",
                        help="the Canvas id of an assignment's column (repeatable); without "
                             "one Canvas creates the assignment")
    canvas.add_argument("--match", choices=("login", "sis"), default="login",
                        help="put the student id in SIS Login ID (default) or SIS User ID")
    canvas.add_argument("--section", default="", help="the Section column's value")
    canvas.set_defaults(handler=_export_canvas)

    from .grader.scale.cli import add_parser as add_autograde

    add_autograde(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
