"""Time one widget update: a slider move on a 10x10 Jacobian until the new SVG is set.

Run: ``python bench/bench_widgets.py``. Prints the median and 95th percentile in ms for
each layer (the budget is 50 ms) and the time of the static-fallback PNG.
"""

from __future__ import annotations

import time

import numpy as np

import backprop_course as bc
from backprop_course.widgets import BackwardStepper, JacobianExplorer


def time_moves(explorer: JacobianExplorer, moves: int = 60) -> np.ndarray:
    times = []
    for k in range(moves):
        start = time.perf_counter()
        explorer.sliders[k % len(explorer.sliders)].value = round(-2.9 + 0.1 * (k % 59), 1)
        times.append(time.perf_counter() - start)
    return 1000 * np.array(times)


def main() -> None:
    print("slider move -> new SVG, 10x10 Jacobian (budget 50 ms)")
    for layer in ["relu", "sigmoid", "tanh", "linear", "softmax"]:
        e = JacobianExplorer(layer, x=np.linspace(-2, 2, 10))
        ms = time_moves(e)
        print(f"  {layer:8s} median {np.median(ms):6.2f} ms   p95 {np.percentile(ms, 95):6.2f} ms")
    custom = JacobianExplorer(fn=lambda t: (t * t).sum() * t.tanh(), x=np.linspace(-2, 2, 10))
    ms = time_moves(custom)
    print(f"  {'custom':8s} median {np.median(ms):6.2f} ms   p95 {np.percentile(ms, 95):6.2f} ms"
          "  (backward Jacobian + numerical Jacobian)")
    start = time.perf_counter()
    custom._repr_mimebundle_()
    print(f"static fallback (PNG + SVG) {1000 * (time.perf_counter() - start):.0f} ms")
    x = bc.tensor(-2.0, requires_grad=True)
    f = (x + 5.0) * -4.0
    stepper = BackwardStepper(f)
    start = time.perf_counter()
    for _ in range(100):
        stepper.step.value = (stepper.step.value + 1) % (stepper.step.max + 1)
    print(f"stepper step -> new SVG {10 * (time.perf_counter() - start):.2f} ms")


if __name__ == "__main__":
    main()
