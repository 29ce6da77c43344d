"""nbgrader's ``Execute`` with a sandboxed kernel and limits that end one notebook only.

A breach (cell timeout, notebook wall time, output bytes, CPU time, memory, a kernel
that dies or calls ``os._exit``) stops that notebook: the cell that was running gets
an error output saying why, every later code cell gets a "not run" error output (so
its test cannot score), the cells that ran before keep their outputs and points, and
``preprocess`` returns normally so nbgrader goes on with the next submission.
"""

from __future__ import annotations

import os
import signal
import time
import typing as t

from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import run_sync
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbformat import NotebookNode
from nbgrader.preprocessors import Execute
from traitlets import Bool, Dict, Integer, List, Unicode

from . import launch
from .manager import SandboxKernelManager

ENAME = "GradingStopped"
#: The nbconvert resources key under which the grader says a notebook is a stand-in for a
#: refused file (``{"refused": reason}``): nothing is run, every code cell gets "not run".
RESOURCES_KEY = "backprop_course"


def text_size(obj: t.Any) -> int:
    """Number of characters in all the strings inside ``obj`` (dicts, lists, strings)."""
    if isinstance(obj, str):
        return len(obj)
    if isinstance(obj, dict):
        return sum(text_size(v) for v in obj.values())
    if isinstance(obj, list):
        return sum(text_size(v) for v in obj)
    return 0


def stop_output(message: str) -> NotebookNode:
    """The error output that tells the student why grading stopped."""
    return NotebookNode(output_type="error", ename=ENAME, evalue=message,
                        traceback=[f"\x1b[0;31m{ENAME}\x1b[0m: {message}"])


class SandboxedExecute(Execute):
    """Execute a submission in the sandbox; a breach ends this notebook, not the batch.

    Configure with ``c.SandboxedExecute.timeout`` (seconds per cell),
    ``notebook_timeout`` and ``max_output_bytes``; the kernel's limits live on
    ``c.SandboxKernelManager``. With ``sandbox = False`` the kernel is a plain local
    one (a student checking their own notebook) with the same time and output bounds.
    """

    notebook_timeout = Integer(600, help="wall seconds for the whole notebook").tag(config=True)
    max_output_bytes = Integer(10 << 20, help="characters of output per notebook").tag(
        config=True)
    sandbox = Bool(True, help="run kernels in the sandbox (False: plain local kernels)").tag(
        config=True)
    kernel_env = Dict(value_trait=Unicode(), help="extra environment variables of the "
                      "kernel (the sandbox passes on only its allow-list)").tag(config=True)
    hidden_paths = List(Unicode(), help="paths the kernel must not see, added to "
                        "SandboxKernelManager.hidden_paths; the nbgrader course root "
                        "(CourseDirectory.root) is always added").tag(config=True)

    def __init__(self, **kwargs: t.Any) -> None:
        kwargs.setdefault("kernel_manager_class", SandboxKernelManager)
        super().__init__(**kwargs)
        if not self.sandbox:
            self.kernel_manager_class = AsyncKernelManager
        self.interrupt_on_timeout = False  # a timeout ends the notebook: no interrupt games

    def _log_isolation(self) -> None:
        """Say how isolated the student's code is: info if fully, else a warning."""
        if not self.sandbox:
            self.log.warning("no sandbox: the kernel runs as you, with your files and "
                             "network (time and output limits only)")
            return
        level = launch.isolation_level()
        if launch.MISSING[level]:
            self.log.warning("sandbox isolation %r: missing %s", level,
                             "; ".join(launch.MISSING[level]))
        else:
            self.log.info("sandbox isolation %r: no network, no course files, own uid, "
                          "rlimits", level)

    def _hidden(self) -> list[str]:
        """The configured hidden paths plus the course root this run grades in."""
        course = self.config.get("CourseDirectory", {})
        root = [course["root"]] if "root" in course else []
        return sorted({os.path.realpath(p) for p in [*self.hidden_paths, *root]})

    def create_kernel_manager(self) -> t.Any:
        """The kernel manager, with the course root among its hidden paths."""
        km = super().create_kernel_manager()
        if isinstance(km, SandboxKernelManager):
            km.hidden_paths = sorted({*km.hidden_paths, *self._hidden()})
        return km

    async def async_start_new_kernel(self, **kwargs: t.Any) -> None:
        """Start the kernel with ``kernel_env`` added to its environment."""
        kwargs["env"] = {**os.environ, **kwargs.get("env", {}), **self.kernel_env}
        await super().async_start_new_kernel(**kwargs)

    start_new_kernel = run_sync(async_start_new_kernel)

    def preprocess(self, nb: NotebookNode, resources: t.Any = None,
                   km: t.Any = None) -> tuple[NotebookNode, dict[str, t.Any]]:
        """Execute ``nb``; stop at the first breach and mark the cells not run."""
        self._log_isolation()
        self._deadline = time.monotonic() + self.notebook_timeout
        self._output_chars = 0
        self._stop_reason: str | None = None  # set when we decide to stop
        self._stopped = False
        self._start_failure: str | None = None
        refused = (resources or {}).get(RESOURCES_KEY, {}).get("refused")
        if refused:  # a stand-in for a file that is not a notebook: nothing to run
            return self._mark_not_run(nb, resources, f"the submitted file was refused: "
                                      f"{refused}")
        try:
            return super().preprocess(nb, resources, km)
        except RuntimeError:
            if self._start_failure is None:
                raise
        return self._mark_not_run(nb, resources, self._start_failure)

    def _mark_not_run(self, nb: NotebookNode, resources: t.Any,
                      why: str) -> tuple[NotebookNode, dict[str, t.Any]]:
        """Give every code cell a "not run" error saying ``why`` (no kernel ran)."""
        self._stopped, self._why = True, why
        for cell in nb.cells:
            if cell.cell_type == "code" and cell.source.strip():
                cell.outputs = [stop_output(f"not run: {why}")]
        return nb, resources

    async def async_start_new_kernel_client(self) -> t.Any:
        """Connect to the kernel; if it died while starting, remember why."""
        km = self.km
        try:
            return await super().async_start_new_kernel_client()
        except RuntimeError:
            self._start_failure = self._death_message(km)
            raise

    start_new_kernel_client = run_sync(async_start_new_kernel_client)

    def _get_timeout(self, cell: NotebookNode | None) -> int | None:
        remaining = max(1, int(self._deadline - time.monotonic()))
        per_cell = super()._get_timeout(cell)
        return remaining if per_cell is None else min(per_cell, remaining)

    def preprocess_cell(self, cell: NotebookNode, resources: t.Any,
                        index: int) -> tuple[NotebookNode, t.Any]:
        """Run one cell unless grading stopped; turn a breach into a stop."""
        if self._stopped:
            if cell.cell_type == "code" and cell.source.strip():
                cell.outputs = [stop_output(f"not run: grading stopped above ({self._why})")]
            return cell, resources
        try:
            cell, resources = super().preprocess_cell(cell, resources, index)
        except CellTimeoutError as e:
            self._stop(cell, self._stop_reason or self._timeout_message(str(e)))
        except DeadKernelError:
            self._stop(cell, self._stop_reason or self._death_message(self.km))
        else:
            error = [o for o in cell.get("outputs", []) if o.output_type == "error"]
            if self._stop_reason is not None:
                self._stop(cell, self._stop_reason)
            elif error and error[-1].ename == "MemoryError":
                mb = getattr(self.km, "memory_bytes", 0) >> 20
                self._stop(cell, f"memory limit ({mb} MB) reached" if mb else "out of memory")
        return cell, self.resources

    def _stop(self, cell: NotebookNode, why: str) -> None:
        self._stopped, self._why = True, why
        cell.outputs.append(stop_output(f"{why}. Grading of this notebook stopped here; "
                                        "the cells above keep their points."))
        if self.km is not None and self.km.has_kernel:
            self.km.provisioner.process.kill()

    def _timeout_message(self, error: str) -> str:
        if "IOPub" in error:
            mb = getattr(self.km, "max_message_bytes", 0) >> 20
            return (f"output limit exceeded (an output over {mb} MB was dropped), or the "
                    "kernel stopped sending output")
        if time.monotonic() >= self._deadline - 1:
            return f"the notebook ran longer than {self.notebook_timeout} s in total"
        return f"the cell ran longer than {self.timeout} s"

    def _death_message(self, km: t.Any) -> str:
        code = getattr(km, "exit_code", None)
        if code == 128 + signal.SIGXCPU:
            return f"CPU time limit ({km.cpu_seconds} s) exceeded: the kernel was stopped"
        if code == 128 + signal.SIGKILL:
            return (f"the kernel was killed (CPU time limit of {km.cpu_seconds} s, "
                    "or out of memory)")
        if code == launch.EXIT_SETUP_FAILED:
            return (f"the sandbox could not start: are the submitted files larger than "
                    f"{km.disk_bytes >> 20} MB? (details in the grader's log)")
        detail = "" if code is None else f" (exit code {code})"
        return ("the kernel died" + detail + ": os._exit(), a crash, or the memory or "
                "process limit")

    def output(self, outs: list[NotebookNode], msg: dict[str, t.Any], display_id: str | None,
               cell_index: int) -> NotebookNode | None:
        """Keep outputs until the notebook's output budget is spent, then stop."""
        self._output_chars += text_size(msg["content"])
        if self._output_chars > self.max_output_bytes:
            if self._stop_reason is None:
                self._stop_reason = (f"output limit ({self.max_output_bytes >> 20} MB per "
                                     "notebook) exceeded")
                self.km.provisioner.process.kill()
            return None
        return super().output(outs, msg, display_id, cell_index)
