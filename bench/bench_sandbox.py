"""Overhead of the sandboxed kernel: start + run a trivial notebook + shut down.

Prints the mean wall time per notebook for a plain kernel and the sandboxed one, and
their ratio. Run as root on Linux: ``python bench/bench_sandbox.py [repeats]``.
"""

from __future__ import annotations

import sys
import tempfile
import time

import nbformat
from nbclient import NotebookClient

from backprop_course.sandbox.manager import SandboxKernelManager


def once(sandboxed: bool, workdir: str) -> float:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1 + 1\nprint(x)")])
    extra = {"kernel_manager_class": SandboxKernelManager} if sandboxed else {}
    start = time.perf_counter()
    NotebookClient(nb, kernel_name="python3", resources={"metadata": {"path": workdir}},
                   **extra).execute()
    assert nb.cells[0].outputs[0]["text"] == "2\n"
    return time.perf_counter() - start


def main(repeats: int = 5) -> None:
    with tempfile.TemporaryDirectory() as workdir:
        once(True, workdir), once(False, workdir)  # warm the page cache
        plain = sum(once(False, workdir) for _ in range(repeats)) / repeats
        sandboxed = sum(once(True, workdir) for _ in range(repeats)) / repeats
    print(f"plain kernel     {plain:.3f} s per notebook")
    print(f"sandboxed kernel {sandboxed:.3f} s per notebook")
    print(f"ratio sandboxed/plain = {sandboxed / plain:.2f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
