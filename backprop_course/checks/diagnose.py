"""Name the likely mistake when an answer's gradient differs from the reference.

Each hypothesis is a transformation of the correct answer that a common mistake
produces (transposed, wrong sign, a constant factor such as the batch size, a missing
sum over the batch, the upstream gradient ignored, overwrite instead of accumulate, and
the exercise's own :class:`Mistake` list). The first hypothesis that reproduces the
answer's array names the mistake; otherwise the report gives the worst element.

With ``reveal=False`` (hidden checks) messages name the mistake and the relative error,
never a value or a shape of the hidden case.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..gradcheck import compare, rel_error
from .harness import NotNumeric
from .kinds import Kind


@dataclass(frozen=True)
class Mistake:
    """What one specific mistake gives: ``grads`` (one array per gradient, or a list of
    such tuples when the mistake can give several results, e.g. in different visiting
    orders), and the message that explains it to the student."""

    kind: Kind
    message: str
    grads: tuple | list[tuple]


@dataclass
class Diagnosis:
    """What is wrong with one gradient (``kind`` is None when it is right)."""

    kind: Kind | None
    message: str

    @property
    def ok(self) -> bool:
        return self.kind is None


def _close(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and compare(a, b) is None


def as_float_array(value: Any) -> np.ndarray:
    """An answer's value as float64 (raises TypeError or ValueError if it is not one)."""
    if isinstance(value, NotNumeric):
        raise TypeError(value.type_name)
    if not isinstance(value, (np.ndarray, np.generic)):  # a numpy array's .data is a buffer
        value = getattr(value, "data", value)  # a course or torch-like tensor's array
    return np.asarray(value, dtype=np.float64)


def explains(got: tuple, wrong: tuple) -> bool:
    """True if the arrays an answer returned equal, one for one, those of a mistake."""
    try:
        return len(got) == len(wrong) and all(
            _close(as_float_array(a), np.asarray(w, dtype=np.float64))
            for a, w in zip(got, wrong, strict=True))
    except (TypeError, ValueError):
        return False


def closest(got: tuple, mistake: Mistake) -> tuple:
    """Of the results a mistake can give, the one that matches the most of the answer's
    arrays (the first on a tie)."""
    if isinstance(mistake.grads, tuple):
        return mistake.grads
    return max(mistake.grads, key=lambda variant: sum(
        explains((a,), (w,)) for a, w in zip(got, variant, strict=False)))


def _worst(actual: np.ndarray, expected: np.ndarray, reveal: bool) -> str:
    if not reveal:
        return f"relative error {rel_error(actual, expected):.2e}"
    diff = np.abs(actual - expected)
    index = np.unravel_index(np.argmax(diff), diff.shape) if diff.size else ()
    where = f"worst element [{', '.join(str(int(i)) for i in index)}]: " if index else ""
    return (f"{where}expected {expected[index]:.6g}, got {actual[index]:.6g} "
            f"(relative error {rel_error(actual[index], expected[index]):.2e})")


def diagnose(actual: object, expected: np.ndarray, name: str = "gradient",
             batch_size: int | None = None,
             alternatives: list[tuple[Kind, str, np.ndarray]] | None = None,
             nonfinite_hint: str = "", reveal: bool = True) -> Diagnosis:
    """Compare one answer array with the reference and name the mistake.

    Parameters
    ----------
    actual : what the answer returned for this gradient
    expected : the reference, float64
    name : what the array is, for messages (e.g. ``"dL/dW"``)
    batch_size : N, to recognise "off by the batch size" and "missing sum over the batch"
    alternatives : (kind, message, the array that mistake gives), checked in order
    nonfinite_hint : the usual cause of NaN or inf here
    reveal : say values and shapes (False for hidden checks)
    """
    expected = np.asarray(expected, dtype=np.float64)
    shape = f" {expected.shape}" if reveal else ""
    if actual is None:
        return Diagnosis(Kind.MISSING, f"{name}: you returned None; return an array of the "
                                       f"input's shape{shape}.")
    try:
        actual = as_float_array(actual)
    except (TypeError, ValueError) as error:
        what = error.args[0] if isinstance(actual, NotNumeric) else type(actual).__name__
        return Diagnosis(Kind.TYPE, f"{name}: expected a numeric array (the input's "
                                    f"shape{shape}), got {what}.")
    if actual.shape != expected.shape:
        return _diagnose_shape(actual, expected, name, batch_size, reveal)
    if not np.all(np.isfinite(actual)):
        hint = f" ({nonfinite_hint})" if nonfinite_hint else ""
        where = "it must be finite"
        if reveal:  # the first such element, as it is (nan_to_num would say inf or 1.8e308)
            bad = np.unravel_index(int(np.argmax(~np.isfinite(actual))), actual.shape)
            at = f" [{', '.join(str(int(i)) for i in bad)}]" if bad else ""
            where = f"element{at}: expected {expected[bad]:.6g}, got {actual[bad]:g}"
        return Diagnosis(Kind.NAN, f"{name}: contains NaN or inf{hint}; {where}.")
    if _close(actual, expected):
        return Diagnosis(None, f"{name}: correct (relative error "
                               f"{rel_error(actual, expected):.1e}).")
    worst = _worst(actual, expected, reveal)
    for kind, message, wrong in alternatives or []:
        if _close(actual, np.asarray(wrong, dtype=np.float64)):
            return Diagnosis(kind, f"{name}: {message}. {worst}.")
    if _close(actual, -expected):
        which = "every entry has" if expected.size > 1 else "it has"
        return Diagnosis(Kind.SIGN, f"{name}: {which} the wrong sign (you return -1 times "
                                    f"the gradient). {worst}.")
    if expected.ndim == 2 and expected.shape[0] == expected.shape[1] and _close(actual,
                                                                                 expected.T):
        return Diagnosis(Kind.TRANSPOSED, f"{name}: this is the transpose of the gradient; "
                                          f"check the order of the matrix product. {worst}.")
    factor = _factor(actual, expected)
    if factor is not None:
        kind, hint = _factor_hint(factor, batch_size, reveal)
        # hidden: the factor may be a value of the case (N, or a number like 1 / (y - h))
        times = f"{factor:.6g} times" if reveal else "a constant times"
        return Diagnosis(kind, f"{name}: off by a constant factor: yours is {times} "
                               f"the gradient{hint}. {worst}.")
    return Diagnosis(Kind.VALUES, f"{name}: wrong values; {worst}.")


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


def _factor_hint(factor: float, batch_size: int | None, reveal: bool) -> tuple[Kind, str]:
    if batch_size and batch_size > 1:
        n = f" N={batch_size}" if reveal else " N"
        if np.isclose(factor, batch_size):
            return Kind.BATCH_FACTOR, f" = the batch size{n}: divide by N (the loss is a mean)"
        if np.isclose(factor, 1 / batch_size):
            return Kind.BATCH_FACTOR, (f" = 1/N with{n}: you divided by the batch size once "
                                       "too often")
    if np.isclose(factor, 2) or np.isclose(factor, 0.5):
        return Kind.FACTOR, " (a factor of 2: check the derivative of a square)"
    return Kind.FACTOR, ""


def _diagnose_shape(actual: np.ndarray, expected: np.ndarray, name: str,
                    batch_size: int | None, reveal: bool) -> Diagnosis:
    shape_msg = (f"{name}: has shape {actual.shape}, but a gradient has the shape of its "
                 f"input, {expected.shape}" if reveal else
                 f"{name}: has the wrong shape; a gradient has the shape of its input")
    if actual.shape == expected.shape[::-1] and expected.ndim == 2:
        hint = "this is the transposed shape: check the order of the matrix product"
        if _close(actual.T, expected):
            hint = "it is the transpose of the correct gradient"
        return Diagnosis(Kind.TRANSPOSED, f"{shape_msg}; {hint}.")
    if actual.ndim == expected.ndim + 1 and actual.shape[1:] == expected.shape:
        if _close(actual.sum(axis=0), expected):
            return Diagnosis(Kind.BATCH_SUM, f"{shape_msg}; you kept one row per example: "
                                             "sum over the batch axis (every example used "
                                             "the same parameter, so their gradients add up).")
        if batch_size and _close(actual.mean(axis=0), expected):
            return Diagnosis(Kind.BATCH_SUM, f"{shape_msg}; sum over the batch axis.")
        return Diagnosis(Kind.SHAPE, f"{shape_msg}; reduce over the batch axis.")
    return Diagnosis(Kind.SHAPE, f"{shape_msg}.")
