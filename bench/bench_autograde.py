"""Seconds per autograded notebook: the course's grading against a bare kernel (and
against plain nbgrader, which runs every lesson cell).

The course's ``nbgrader autograde`` runs no notebook: it runs each answer cell in the
sandbox. Its peer is the floor any notebook grader that uses a kernel pays: starting a
kernel, running an empty notebook and shutting it down. Plain nbgrader (the same release
and submissions, every cell run) is printed for comparison. Each assignment is graded by
both courses, alternately, so that both see the same load::

    python bench/bench_autograde.py [--assignment 04_linear_layer] [--repeat 2]

Target (issue 11): at most 2.5 times the bare kernel per notebook, aim 1.5.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from backprop_course.grader.pipeline import Course
from backprop_course.grader.submissions import load_examples

REPO = Path(__file__).resolve().parents[1]


def bare_kernel_seconds(repeats: int = 5) -> float:
    """Mean seconds to start a python3 kernel, run an empty notebook and shut it down."""
    start = time.perf_counter()
    for _ in range(repeats):
        NotebookClient(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("")]),
                       kernel_name="python3",
                       extra_arguments=["--IPKernelApp.log_level=ERROR"]).execute()
    return (time.perf_counter() - start) / repeats


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assignment", action="append", help="default: all with examples")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--no-plain", action="store_true", help="skip plain nbgrader")
    args = parser.parse_args(argv)
    assignments = args.assignment or sorted(p.stem for p in (REPO / "grading" / "examples")
                                            .glob("*.json"))
    names = ["backprop-course"] + ([] if args.no_plain else ["plain nbgrader"])
    seconds: dict[str, list[float]] = {name: [] for name in [*names, "bare kernel"]}
    with tempfile.TemporaryDirectory() as tmp:
        courses = {name: Course(Path(tmp) / name.replace(" ", "-"), REPO / "notebooks",
                                trusted=name == "backprop-course", log=lambda _: None)
                   for name in names}
        for assignment in assignments:
            _, examples = load_examples(REPO / "grading" / "examples" / f"{assignment}.json")
            examples = [e for e in examples if e.handed_in == "notebook"]  # files that run
            for course in courses.values():
                course.release(assignment)
                course.submit(assignment, examples)
            for _ in range(args.repeat):
                seconds["bare kernel"].append(bare_kernel_seconds())
                for name, course in courses.items():
                    took = course.autograde(assignment) / len(examples)
                    seconds[name].append(took)
                    print(f"{assignment:<26} {name:<16} {took:6.2f} s per notebook "
                          f"({len(examples)} notebooks)")
    mean = {name: statistics.mean(values) for name, values in seconds.items()}
    print("\nseconds per notebook: " + ", ".join(f"{k} {v:.2f}" for k, v in mean.items()))
    ratio = mean["backprop-course"] / mean["bare kernel"]
    print(f"ratio backprop-course / bare kernel: {ratio:.2f}x (target <= 2.5, aim 1.5)")
    if "plain nbgrader" in mean:
        print(f"ratio backprop-course / plain nbgrader: "
              f"{mean['backprop-course'] / mean['plain nbgrader']:.2f}x")
    return mean


if __name__ == "__main__":
    main()
