"""The ``backprop-course autograde`` sub-command."""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``autograde`` to the sub-commands of ``backprop-course``."""
    parser = subparsers.add_parser(
        "autograde", help="autograde an assignment on every core or a Dask cluster",
        description="Autograde the submissions of ASSIGNMENT like `nbgrader autograde` (run "
                    "it from the course folder, grading/), in parallel: on all cores of this "
                    "machine, or on the Dask cluster at --scheduler. One process writes the "
                    "gradebook; an interrupted run, started again, grades only what is left.")
    parser.add_argument("assignment", metavar="ASSIGNMENT")
    parser.add_argument("--student", action="append", dest="students", metavar="ID",
                        help="grade only this student (repeat for several)")
    parser.add_argument("--workers", type=int, metavar="N",
                        help="local worker processes (default: one per core)")
    parser.add_argument("--scheduler", metavar="ADDRESS",
                        help="run on the Dask cluster at ADDRESS (tcp://host:8786); its "
                             "workers need only this package installed")
    parser.add_argument("--force", action="store_true",
                        help="grade again submissions whose result is already recorded")
    parser.set_defaults(handler=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Run the sub-command; exit status 1 if any submission was not graded."""
    from .coordinator import autograde

    summary = autograde(args.assignment, students=args.students, workers=args.workers,
                        scheduler=args.scheduler, force=args.force)
    print(summary.report())
    return 0 if summary.ok else 1
