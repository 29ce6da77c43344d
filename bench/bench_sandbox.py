"""Cost of the answer sandbox: start an interpreter, run an answer cell, call it once.

Prints the mean wall time per answer in bubblewrap at this machine's isolation level and
in a plain isolated interpreter (``python -I -S``, isolation "none"), and their ratio::

    python bench/bench_sandbox.py [repeats]
"""

from __future__ import annotations

import sys
import time

import numpy as np

from backprop_course.checks.exercise import NUMPY
from backprop_course.grader.sandbox import Session, isolation

SETUP = {"preamble": "import numpy as np\n",
         "source": "def relu_backward(x, grad_out):\n    return grad_out * (x > 0)\n",
         "provides": {}, "answer": "relu_backward", "call": "vjp", "inputs": ["x"],
         "wrt": ["x"]}
CASE = {"x": np.array([1.0, -2.0, 3.0]), "grad_out": np.array([4.0, 5.0, 6.0])}


def once(level: str) -> float:
    start = time.perf_counter()
    with Session(NUMPY, level) as session:
        assert session.start(SETUP) == {"defined": True}
        assert "returned" in session.call(CASE)
    return time.perf_counter() - start


def main(repeats: int = 10) -> dict[str, float]:
    level = isolation()
    once(level), once("none")  # warm the page cache
    sandboxed = sum(once(level) for _ in range(repeats)) / repeats
    plain = sum(once("none") for _ in range(repeats)) / repeats
    print(f"plain interpreter      {plain:.3f} s per answer")
    print(f"sandboxed ({level:<10}) {sandboxed:.3f} s per answer")
    print(f"ratio sandboxed/plain = {sandboxed / plain:.2f}")
    return {"plain": plain, "sandboxed": sandboxed}


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10)
