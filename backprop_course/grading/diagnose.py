"""Name the likely mistake when a student's gradient differs from the reference.

Each hypothesis is a transformation of the correct answer that a common mistake
produces (transposed, wrong sign, a constant factor such as the batch size, a missing
sum over the batch, the upstream gradient ignored, overwrite instead of accumulate).
The first hypothesis that reproduces the student's array names the mistake; otherwise
the report gives the worst element.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..gradcheck import compare, rel_error
from .wire import NotNumeric


@dataclass
class Diagnosis:
    """What is wrong with one gradient (``kind`` is None when it is right)."""

    kind: str | None
    message: str

    @property
    def ok(self) -> bool:
        return self.kind is None


def _close(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and compare(a, b) is None


def explains(got: tuple, wrong: tuple) -> bool:
    """True if the arrays a student returned equal, one for one, those of a mistake."""
    try:
        return len(got) == len(wrong) and all(
            _close(np.asarray(getattr(a, "data", a), dtype=np.float64),
                   np.asarray(w, dtype=np.float64)) for a, w in zip(got, wrong, strict=True))
    except (TypeError, ValueError):
        return False


def _worst(actual: np.ndarray, expected: np.ndarray) -> str:
    diff = np.abs(actual - expected)
    index = np.unravel_index(np.argmax(diff), diff.shape) if diff.size else ()
    where = f"worst element [{', '.join(str(int(i)) for i in index)}]: " if index else ""
    return (f"{where}expected {expected[index]:.6g}, got {actual[index]:.6g} "
            f"(relative error {rel_error(actual[index], expected[index]):.2e})")


def diagnose(actual: object, expected: np.ndarray, name: str = "gradient",
             batch_size: int | None = None,
             alternatives: dict[str, np.ndarray] | None = None,
             nonfinite_hint: str = "") -> Diagnosis:
    """Compare one student array with the reference and name the mistake.

    Parameters
    ----------
    actual : what the student returned for this gradient
    expected : the reference, float64
    name : what the array is, for messages (e.g. ``"dL/dW"``)
    batch_size : N, to recognise "off by the batch size" and "missing sum over the batch"
    alternatives : label -> the array a specific mistake would give (e.g. ``"the upstream
        gradient was ignored"`` -> the VJP with an upstream of ones); checked in order.
    """
    expected = np.asarray(expected, dtype=np.float64)
    if actual is None:
        return Diagnosis("missing", f"{name}: you returned None; return an array of shape "
                                    f"{expected.shape}.")
    if isinstance(actual, NotNumeric):
        return Diagnosis("type", f"{name}: expected a numeric array of shape {expected.shape}, "
                                 f"got {actual.type_name}.")
    try:
        actual = np.asarray(getattr(actual, "data", actual), dtype=np.float64)
    except (TypeError, ValueError):
        return Diagnosis("type", f"{name}: expected a numeric array of shape {expected.shape}, "
                                 f"got {type(actual).__name__}.")
    if actual.shape != expected.shape:
        return _diagnose_shape(actual, expected, name, batch_size)
    if not np.all(np.isfinite(actual)):
        hint = f" ({nonfinite_hint})" if nonfinite_hint else ""
        return Diagnosis("nan", f"{name}: contains NaN or inf{hint}; "
                                f"{_worst(actual, expected)}.")
    if _close(actual, expected):
        return Diagnosis(None, f"{name}: correct (relative error "
                               f"{rel_error(actual, expected):.1e}).")
    for label, wrong in (alternatives or {}).items():
        if _close(actual, np.asarray(wrong, dtype=np.float64)):
            return Diagnosis(label.split(":")[0], f"{name}: {label.split(':', 1)[-1].strip()}. "
                                                  f"{_worst(actual, expected)}.")
    if _close(actual, -expected):
        which = "every entry has" if expected.size > 1 else "it has"
        return Diagnosis("sign", f"{name}: {which} the wrong sign (you return -1 times the "
                                 f"gradient). {_worst(actual, expected)}.")
    if expected.ndim == 2 and expected.shape[0] == expected.shape[1] and _close(actual, expected.T):
        return Diagnosis("transposed", f"{name}: this is the transpose of the gradient; check "
                                       f"the order of the matrix product. "
                                       f"{_worst(actual, expected)}.")
    factor = _factor(actual, expected)
    if factor is not None:
        return Diagnosis("factor", f"{name}: off by a constant factor: yours is {factor:.6g} "
                                   f"times the gradient{_factor_hint(factor, batch_size)}. "
                                   f"{_worst(actual, expected)}.")
    return Diagnosis("values", f"{name}: wrong values; {_worst(actual, expected)}.")


def _factor(actual: np.ndarray, expected: np.ndarray) -> float | None:
    """The constant c with actual = c * expected, if there is one. Any two single numbers
    are a factor apart, which tells a student nothing: only arrays qualify."""
    norm = float(np.sum(expected * expected))
    if norm == 0 or expected.size < 2:
        return None
    factor = float(np.sum(actual * expected) / norm)
    if abs(factor - 1) < 1e-6 or abs(factor) < 1e-12:
        return None
    return factor if _close(actual, factor * expected) else None


def _factor_hint(factor: float, batch_size: int | None) -> str:
    if batch_size and batch_size > 1:
        if np.isclose(factor, batch_size):
            return f" = the batch size N={batch_size}: divide by N (the loss is a mean)"
        if np.isclose(factor, 1 / batch_size):
            return f" = 1/N with N={batch_size}: you divided by the batch size once too often"
    if np.isclose(factor, 2) or np.isclose(factor, 0.5):
        return " (a factor of 2: check the derivative of a square)"
    return ""


def _diagnose_shape(actual: np.ndarray, expected: np.ndarray, name: str,
                    batch_size: int | None) -> Diagnosis:
    shape_msg = f"{name}: has shape {actual.shape}, but a gradient has the shape of its " \
                f"input, {expected.shape}"
    if actual.shape == expected.shape[::-1] and expected.ndim == 2:
        hint = "this is the transposed shape: check the order of the matrix product"
        if _close(actual.T, expected):
            hint = "it is the transpose of the correct gradient"
        return Diagnosis("transposed", f"{shape_msg}; {hint}.")
    if actual.ndim == expected.ndim + 1 and actual.shape[1:] == expected.shape:
        if _close(actual.sum(axis=0), expected):
            return Diagnosis("batch_sum", f"{shape_msg}; you kept one row per example: sum "
                                          f"over the batch axis (every example used the same "
                                          f"parameter, so their gradients add up).")
        if batch_size and _close(actual.mean(axis=0), expected):
            return Diagnosis("batch_sum", f"{shape_msg}; sum over the batch axis.")
        return Diagnosis("shape", f"{shape_msg}; reduce over the batch axis.")
    return Diagnosis("shape", f"{shape_msg}.")

