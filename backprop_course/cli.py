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
