"""Speed-up of ``backprop-course autograde`` over serial stock ``nbgrader autograde``.

Both grade the same scripted submissions (the scale fixture of the tests, repeated to
``--submissions``) in copies of the same course, each as a fresh command; the bare cost
of starting and stopping a kernel is the floor per notebook.

    python bench/bench_autograde_parallel.py [--submissions 96] [--workers N]

The parallel command pays a fixed ~8-10 s (starting the cluster; each worker importing
nbgrader, torch and the course once), so small batches understate it. Since grading runs
no notebook (answers run in the sandbox), a serial notebook costs less than a kernel
start, and two cores leave little to win: measured on this 2-core machine, 96
submissions 1.12x (0.34 s per notebook against 0.38 s serial; a bare kernel start is
0.55 s), 240 submissions 1.29x (0.28 against 0.36 s).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from fixtures_scale.scale_course import (  # noqa: E402
    ASSIGNMENT,
    STUDENTS,
    copy_course,
    make_course,
)


def kernel_start_seconds(repeats: int = 5) -> float:
    """Mean seconds to start a python3 kernel, run nothing, and shut it down."""
    from jupyter_client.manager import start_new_kernel

    start = time.perf_counter()
    for _ in range(repeats):
        manager, client = start_new_kernel(kernel_name="python3")
        client.stop_channels()
        manager.shutdown_kernel(now=False)
    return (time.perf_counter() - start) / repeats


def course_with(root: Path, submissions: int) -> Path:
    """The scale course with ``submissions`` submissions (the fixture's, repeated)."""
    names = [s for s in STUDENTS if s not in ("corrupt_json", "no_notebook")]  # all run
    make_course(root, students=names)
    submitted = root / "submitted"
    for number in range(len(names), submissions):
        name = names[number % len(names)]
        shutil.copytree(submitted / name, submitted / f"{name}_{number}")
    return root


def timed(command: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(command, cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", type=int, default=96)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-autograde-") as tmp:
        base = course_with(Path(tmp) / "base", args.submissions)
        serial, parallel = copy_course(base, Path(tmp) / "s"), copy_course(base, Path(tmp) / "p")
        kernel = kernel_start_seconds()
        stock = timed([sys.executable, "-m", "nbgrader", "autograde", ASSIGNMENT], serial)
        ours = timed([sys.executable, "-m", "backprop_course.grader.scale", ASSIGNMENT,
                      "--workers", str(args.workers)], parallel)
    n = args.submissions
    print(f"{n} submissions, {os.cpu_count()} cores, {args.workers} workers")
    print(f"bare kernel start+shutdown: {kernel:.2f} s")
    print(f"serial stock nbgrader:   {stock:6.1f} s = {stock / n:.2f} s/notebook "
          f"({stock / n / kernel:.1f}x a kernel start)")
    print(f"backprop-course autograde: {ours:6.1f} s = {ours / n:.2f} s/notebook "
          f"({ours / n / kernel:.1f}x a kernel start)")
    print(f"speed-up over serial stock nbgrader: {stock / ours:.2f}x")


if __name__ == "__main__":
    main()
