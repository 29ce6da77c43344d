"""Reference pieces more than one exercise uses.

The torch references run only in the grader (and in ``backprop-course check``): torch
is imported when one is called, never when a student's kernel imports the checks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np


def torch_elementwise(name: str) -> Callable[[Any], Any]:
    """``torch.<name>`` (``"relu"``, ``"sigmoid"``, ``"tanh"``) as a ``torch_forward``.

    Shape
    -----
    x : (*);  out : (*), same as x
    """
    def forward(x: Any) -> Any:
        import torch

        return getattr(torch, name)(x)

    forward.__name__ = f"torch_{name}"
    return forward


def torch_cross_entropy(scores: Any, target: Any) -> Any:
    """torch's mean softmax cross-entropy of ``scores`` against integer ``target``.

    Shape
    -----
    scores : (N, C);  target : (N,);  out : ()
    """
    import torch

    return torch.nn.functional.cross_entropy(scores, target.long())


def one_hot(target: np.ndarray, classes: int) -> np.ndarray:
    """Rows of the identity picked by ``target``.

    Shape
    -----
    target : (N,) integers in [0, classes);  out : (N, classes)
    """
    return np.eye(classes)[np.asarray(target).reshape(-1)]
