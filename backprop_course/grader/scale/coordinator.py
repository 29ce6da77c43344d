"""The coordinator: plan what is not yet recorded, fan it out to Dask workers, and record
each result as it arrives (the one writer of the gradebook).

Restarting is the recovery: a run plans from the results recorded in the gradebook, so
a coordinator killed mid-run and started again grades only what is left. Tasks lost with
a dead worker are rescheduled by Dask; a submission that nbgrader cannot grade is tried
once more (a sandbox that could not start, say) before it is recorded as an ``error``:
the grader's fault, never a grade, so the next run tries it again.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from nbgrader.coursedir import CourseDirectory
from tqdm import tqdm

from ..exporter import refusal
from . import plan
from .gradebook import ERROR, GradebookWriter
from .progress import LOST, Summary, progress_bar
from .task import Graded, GradingError, Submission, grade

#: Submissions in flight per worker: enough to keep workers busy, few enough that a
#: big course is not read into memory at once.
PER_WORKER = 4


@contextmanager
def dask_client(scheduler: str | None = None, workers: int | None = None) -> Iterator:
    """A Dask client: of the cluster at ``scheduler``, or of a local cluster with
    ``workers`` single-threaded worker processes (default: one per core)."""
    from distributed import Client, LocalCluster

    if scheduler:
        with Client(scheduler) as client:
            yield client
        return
    with LocalCluster(n_workers=workers or os.cpu_count() or 1, threads_per_worker=1,
                      processes=True, dashboard_address=None,
                      silence_logs=logging.CRITICAL) as cluster, Client(cluster) as client:
        yield client


def autograde(assignment: str, root: Path | None = None, students: list[str] | None = None,
              workers: int | None = None, scheduler: str | None = None, force: bool = False,
              stream: TextIO | None = None,
              on_recorded: Callable[[str, str], None] | None = None) -> Summary:
    """Autograde the submissions of ``assignment`` in the course at ``root``.

    Parameters
    ----------
    assignment : the assignment (as in ``nbgrader autograde ASSIGNMENT``)
    root : the folder with ``nbgrader_config.py`` (default: the current folder)
    students : grade only these students (default: every submission)
    workers : local worker processes (default: one per core); ignored with ``scheduler``
    scheduler : the address of a Dask scheduler to run the work on instead
    force : forget the recorded results and grade every submission again
    stream : where the progress bar goes (default: stderr)
    on_recorded : called with (student, outcome) after each recorded result

    Returns
    -------
    the summary of the run
    """
    start = time.monotonic()
    config = plan.load_config(root)
    coursedir = CourseDirectory(config=config)
    summary = Summary(assignment)
    with GradebookWriter(config) as writer:
        spec = plan.assignment_spec(config, writer.gradebook, assignment)
        candidates = plan.students(coursedir, assignment, students)
        if force:
            writer.forget(assignment, candidates)
        todo = plan.pending(coursedir, assignment, candidates, writer.recorded(assignment))
        summary.planned, summary.already = len(todo), len(candidates) - len(todo)
        if todo:
            with progress_bar(len(todo), stream) as progress, \
                    dask_client(scheduler, workers) as client:
                _fan_out(client, spec, coursedir, todo, writer, summary, progress, on_recorded)
    summary.wall_seconds = time.monotonic() - start
    return summary


def refused(graded: Graded) -> str:
    """Why the submission's file was refused (graded 0 as a stand-in), or ""."""
    reasons = [refusal(json.loads(data)) for name, (data, _) in sorted(graded.files.items())
               if name.endswith(".ipynb") and "/" not in name]
    return "; ".join(r for r in reasons if r)


def _fan_out(client: object, spec: object, coursedir: CourseDirectory, todo: list[str],
             writer: GradebookWriter, summary: Summary, progress: tqdm,
             on_recorded: Callable[[str, str], None] | None) -> None:
    """Keep a window of tasks in flight; record each result as it completes."""
    from distributed import as_completed

    shared = client.scatter(spec, broadcast=True)
    queue = iter(todo)
    in_flight = {}
    completed = as_completed()

    def finish(submission: Submission, outcome: str, why: str) -> None:
        summary.add(submission.student, outcome, why)
        progress.set_postfix(failed=len(summary.failed) + len(summary.lost), refresh=False)
        progress.update()
        if on_recorded is not None:
            on_recorded(submission.student, outcome)

    def submit_next() -> None:
        for student in queue:
            submission = plan.load_submission(coursedir, spec.name, student)
            if not submission.problem:
                future = client.submit(grade, shared, submission, retries=1, pure=False)
                in_flight[future] = submission
                completed.add(future)
                return
            finish(submission, writer.record_failure(spec.name, submission,
                                                     submission.problem), submission.problem)

    workers = max(len(client.scheduler_info()["workers"]), 1)
    for _ in range(PER_WORKER * workers):
        submit_next()
    for future in completed:
        submission = in_flight.pop(future)
        try:
            graded = future.result()
        except GradingError as error:  # nbgrader failed: the grader's fault, not a grade
            outcome = writer.record_failure(spec.name, submission, str(error), ERROR)
            why = str(error)
        except Exception as error:  # noqa: BLE001  (a lost task: left for the next run)
            outcome, why = LOST, f"{type(error).__name__}: {error}"
        else:
            outcome, why = writer.record(spec.name, graded), refused(graded)
            summary.worker_seconds.append(graded.seconds)
        future.release()
        finish(submission, outcome, why)
        submit_next()
