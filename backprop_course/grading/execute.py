"""Executing a student's notebook within time bounds."""

from __future__ import annotations

import os
import time
from typing import Any

from jupyter_core.utils import run_sync
from nbformat import NotebookNode, v4
from nbgrader.preprocessors import Execute
from traitlets import Integer

from .exercise import GRADER_ENV


class BoundedExecute(Execute):
    """nbgrader's ``Execute`` with a time bound for the whole notebook as well as the
    per-cell ``timeout``: once ``notebook_timeout`` seconds have passed, every remaining
    code cell gets a ``NotebookTimeoutError`` output instead of running (so it scores 0).

    Its kernels run with ``BACKPROP_COURSE_GRADER=trusted``: their checks only publish
    what the student's code returned, and :class:`.TrustedVerdicts` judges it (which saves
    the kernel computing references, torch included).
    """

    notebook_timeout = Integer(
        600, help="Seconds the whole notebook may run (cells after that are not run)."
    ).tag(config=True)

    _deadline = 0.0

    def preprocess(self, nb: NotebookNode, resources: Any = None,
                   km: Any = None) -> tuple[NotebookNode, dict]:
        self._deadline = time.monotonic() + self.notebook_timeout
        return super().preprocess(nb, resources, km)

    async def async_start_new_kernel(self, **kwargs: Any) -> None:
        kwargs["env"] = {**os.environ, **kwargs.get("env", {}), GRADER_ENV: "trusted"}
        await super().async_start_new_kernel(**kwargs)

    start_new_kernel = run_sync(async_start_new_kernel)

    def _get_timeout(self, cell: NotebookNode | None) -> int | None:
        timeout = super()._get_timeout(cell)
        remaining = max(1, int(self._deadline - time.monotonic()))
        return remaining if timeout is None else min(timeout, remaining)

    def preprocess_cell(self, cell: NotebookNode, resources: Any,
                        index: int) -> tuple[NotebookNode, Any]:
        if cell.cell_type == "code" and time.monotonic() >= self._deadline:
            cell.outputs = [v4.new_output(
                "error", ename="NotebookTimeoutError", evalue="not run",
                traceback=[f"NotebookTimeoutError: the notebook ran out of its "
                           f"{self.notebook_timeout} s; this cell was not run"])]
            return cell, resources
        return super().preprocess_cell(cell, resources, index)
