"""What a check sends from the student's kernel to the trusted grader.

A check cell runs the student's code in the kernel and publishes what it returned as a
display output with the MIME type :data:`MIME`: the exercise, part and seed the kernel
claims, and one *outcome* per case::

    {"returned": [<array>, ...]}               the gradients (or the answer) returned
    {"error": "TypeError", "message": "..."}   the student's code raised
    {"unanswered": "<why>"}                    no answer to judge (ValueExercise)

An ``<array>`` is ``{"shape": [...], "b64": <float64 bytes>}`` (exact, NaN-safe),
``{"none": true}`` or ``{"other": "<type name>"}`` (not convertible to numbers).

The grader trusts none of this beyond the arrays themselves: it learns which check ran
from the locked cell's source and recomputes every reference (see :mod:`.trusted`).
Everything here is pure data; decoding never executes anything.
"""

from __future__ import annotations

import base64
import binascii
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..autograd import Tensor

MIME = "application/vnd.backprop-course.check+json"
VERSION = 1
MAX_ELEMENTS = 1_000_000


class PayloadError(ValueError):
    """A payload that does not have the documented form."""


@dataclass(frozen=True)
class NotNumeric:
    """The student returned something that is not an array of numbers."""

    type_name: str


def encode_array(value: Any) -> dict:
    """One returned value as JSON-ready data (float64, exact)."""
    if value is None:
        return {"none": True}
    data = value.data if isinstance(value, Tensor) else value
    with warnings.catch_warnings():  # e.g. ComplexWarning: never write to stderr here
        warnings.simplefilter("ignore")
        try:
            array = np.asarray(data, dtype=np.float64)
        except (TypeError, ValueError, OverflowError):
            return {"other": type(value).__name__}
    return {"shape": list(array.shape),
            "b64": base64.b64encode(array.tobytes(order="C")).decode()}


def decode_array(item: Any) -> np.ndarray | NotNumeric | None:
    """Inverse of :func:`encode_array`; raises :class:`PayloadError` on anything else."""
    if not isinstance(item, dict):
        raise PayloadError("an array entry is not an object")
    if item.get("none") is True:
        return None
    if isinstance(item.get("other"), str):
        return NotNumeric(item["other"][:100])
    shape, b64 = item.get("shape"), item.get("b64")
    if (not isinstance(shape, list) or not isinstance(b64, str)
            or not all(isinstance(n, int) and 0 <= n <= MAX_ELEMENTS for n in shape)):
        raise PayloadError("an array entry has no valid shape and data")
    size = int(np.prod(shape, dtype=np.int64))
    if size > MAX_ELEMENTS:
        raise PayloadError(f"an array has {size} elements (more than {MAX_ELEMENTS})")
    try:
        raw = base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError) as error:
        raise PayloadError("an array's data is not base64") from error
    if len(raw) != 8 * size:
        raise PayloadError("an array's data does not match its shape")
    return np.frombuffer(raw, dtype=np.float64).reshape(shape).copy()


def returned(value: Any, count: int) -> dict:
    """The outcome of a call that returned ``value`` where ``count`` gradients are due."""
    if count == 1:
        return {"returned": [encode_array(value)]}
    if not isinstance(value, (tuple, list)):
        return {"returned": [], "container": type(value).__name__}
    return {"returned": [encode_array(v) for v in value]}


def raised(error: BaseException) -> dict:
    """The outcome of a call that raised ``error``."""
    return {"error": type(error).__name__, "message": str(error)[:2000]}


def payload(exercise: str, part: str, seed: int, outcomes: list[dict]) -> dict:
    """The display data a check publishes."""
    return {"version": VERSION, "exercise": exercise, "part": part, "seed": seed,
            "outcomes": outcomes}


def outcomes_of(data: Any, exercise: str, part: str, seed: int) -> list[dict]:
    """The outcomes of a published payload, after checking that it claims to be the
    check (exercise, part, seed) the grader expects; raises :class:`PayloadError`."""
    if not isinstance(data, dict) or data.get("version") != VERSION:
        raise PayloadError("the check's data has an unknown format")
    claimed = (data.get("exercise"), data.get("part"), data.get("seed"))
    if claimed != (exercise, part, seed):
        raise PayloadError(f"the check's data is for {claimed}, not {(exercise, part, seed)}")
    outcomes = data.get("outcomes")
    if not isinstance(outcomes, list) or not all(isinstance(o, dict) for o in outcomes):
        raise PayloadError("the check's data has no list of outcomes")
    return outcomes
