"""Keep bench/bench_mlp.py from rotting: run it for a few steps (no timing assertions)."""

from __future__ import annotations

import runpy
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parents[2] / "bench" / "bench_mlp.py"


def test_bench_mlp_runs(capsys) -> None:
    bench = runpy.run_path(str(BENCH))
    result = bench["main"](["--steps", "2", "--warmup", "1", "--batch", "8"])
    out = capsys.readouterr().out
    assert "ms/step" in out and "ratio ours/torch" in out
    assert result["ours_ms"] > 0 and result["torch_ms"] > 0
    # same weights, same data, same rule: the two trainings agree
    assert np.isclose(result["ours_loss"], result["torch_loss"], rtol=1e-4)
