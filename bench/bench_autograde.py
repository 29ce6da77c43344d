"""Seconds per autograded notebook: the course's trusted grading against plain nbgrader.

Both courses get the same release and the same example submissions
(``grading/examples/*.json``); each assignment is autograded by plain nbgrader and then by
ours, alternately, so that both see the same load on a shared machine::

    python bench/bench_autograde.py [--assignment 04_linear_layer] [--repeat 2]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from backprop_course.grading.pipeline import Course
from backprop_course.grading.submissions import load_examples

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assignment", action="append", help="default: all with examples")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    assignments = args.assignment or sorted(p.stem for p in (REPO / "grading" / "examples")
                                            .glob("*.json"))
    seconds: dict[str, list[float]] = {"nbgrader": [], "backprop-course": []}
    with tempfile.TemporaryDirectory() as tmp:
        courses = {name: Course(Path(tmp) / name, REPO / "notebooks",
                                trusted=name == "backprop-course", log=lambda _: None)
                   for name in seconds}
        for assignment in assignments:
            _, examples = load_examples(REPO / "grading" / "examples" / f"{assignment}.json")
            examples = [e for e in examples if e.handed_in == "notebook"]  # files that run
            for course in courses.values():
                course.release(assignment)
                course.submit(assignment, examples)
            for _ in range(args.repeat):
                for name, course in courses.items():
                    took = course.autograde(assignment) / len(examples)
                    seconds[name].append(took)
                    print(f"{assignment:<20} {name:<16} {took:6.2f} s per notebook "
                          f"({len(examples)} notebooks)")
    ours, plain = (statistics.mean(seconds[k]) for k in ("backprop-course", "nbgrader"))
    print(f"\nseconds per autograded notebook: backprop-course {ours:.2f}, "
          f"plain nbgrader {plain:.2f}; ratio {ours / plain:.2f}x")


if __name__ == "__main__":
    main()
