"""Shared helpers for the engine tests: numpy <-> torch, and float64 comparisons."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

import backprop_course as bc

RTOL = 1e-10  # values and gradients must equal torch's (float64) to this relative error


def as_torch(x: Any, requires_grad: bool = False) -> torch.Tensor:
    """A float64 (or integer) torch leaf with the values of ``x``."""
    array = np.array(x.data if isinstance(x, bc.Tensor) else x)
    return torch.tensor(array, requires_grad=requires_grad)


def assert_close(ours: Any, theirs: Any, rtol: float = RTOL) -> None:
    """``ours`` (array or bc.Tensor) equals ``theirs`` (array or torch tensor)."""
    if isinstance(ours, bc.Tensor):
        ours = ours.data
    if isinstance(theirs, torch.Tensor):
        theirs = theirs.detach().numpy()
    ours, theirs = np.asarray(ours), np.asarray(theirs)
    assert ours.shape == theirs.shape, f"shape {ours.shape} != {theirs.shape}"
    scale = max(1.0, float(np.max(np.abs(theirs)))) if theirs.size else 1.0
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=rtol * 1e-2 * scale)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


#: The layers of the test suite: a folder of tests/ each, and a marker of the same name
#: (``pytest -m grader``, ``pytest -m "not browser"``).
LAYERS = ("engine", "checks", "grader", "course", "widgets", "browser", "bench")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test with the layer its folder names."""
    for item in items:
        parts = item.path.parts
        if "tests" in parts:
            layer = parts[parts.index("tests") + 1]
            if layer in LAYERS:
                item.add_marker(getattr(pytest.mark, layer))
