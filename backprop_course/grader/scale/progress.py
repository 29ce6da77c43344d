"""The progress bar while grading (tqdm), and the summary at the end."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import TextIO

from tqdm import tqdm

LOST = "lost"


@dataclass
class Summary:
    """What one ``autograde`` run did."""

    assignment: str
    planned: int = 0
    already: int = 0
    graded: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    retry: list[str] = field(default_factory=list)  # failed by the grader: the next run retries
    refused: dict[str, str] = field(default_factory=dict)  # graded 0: not a notebook
    lost: dict[str, str] = field(default_factory=dict)  # no result: not recorded, retry
    ignored: dict[str, str] = field(default_factory=dict)  # duplicate or stale results
    worker_seconds: list[float] = field(default_factory=list)
    wall_seconds: float = 0.0

    def add(self, student: str, outcome: str, why: str = "") -> None:
        """Count one result: ``graded`` (why, if the file was refused), ``failed`` or
        ``error`` (why; an error is tried again by the next run), ``lost`` (why) or
        ignored."""
        if outcome == "graded":
            self.graded.append(student)
            if why:
                self.refused[student] = why
        elif outcome in ("failed", "error"):
            self.failed[student] = why
            if outcome == "error":
                self.retry.append(student)
        elif outcome == LOST:
            self.lost[student] = why
        else:
            self.ignored[student] = outcome

    @property
    def ok(self) -> bool:
        return not self.failed and not self.lost

    def report(self) -> str:
        """The summary in words."""
        done = len(self.graded) + len(self.failed)
        refused = (f" ({len(self.refused)} refused files: scored 0, the reason on their "
                   "feedback page)") if self.refused else ""
        lines = [f"autograde {self.assignment}: {len(self.graded)} graded{refused}, "
                 f"{len(self.failed)} failed, {self.already} already recorded, "
                 f"{len(self.lost)} not graded (rerun to retry) in {self.wall_seconds:.1f} s"]
        if done:
            lines.append(f"  {self.wall_seconds / done:.2f} s per notebook folder (wall); "
                         f"{sum(self.worker_seconds) / max(len(self.worker_seconds), 1):.2f} "
                         f"s per folder on a worker")
        for title, entries in (("failed", self.failed), ("not graded", self.lost),
                               ("refused", self.refused),
                               ("ignored", self.ignored)):
            for student, why in sorted(entries.items()):
                first, *rest = why.strip().splitlines() or [""]
                again = " (the next run tries again)" if entries is self.failed \
                    and student in self.retry else ""
                lines.append(f"  {title} {student}{again}: {first}" + (" ..." if rest else ""))
        return "\n".join(lines)


def progress_bar(total: int, stream: TextIO | None = None) -> tqdm:
    """tqdm's bar with an ETA on ``stream`` (stderr); a line at most every 5 s when
    ``stream`` is not a terminal. ``bar.update()`` counts one submission; the number
    that failed goes in its postfix."""
    stream = stream or sys.stderr
    return tqdm(total=total, file=stream, unit="notebook", desc="autograde",
                mininterval=0.1 if stream.isatty() else 5.0, dynamic_ncols=True)
