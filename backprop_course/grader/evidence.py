"""What the grader keeps of each answer besides its verdicts, for the instructor's report.

Two things, collected while :func:`.grade.grade_notebook` grades a notebook (pass it an
:class:`Evidence`) and written by :class:`.GradeAnswers` into the autograded notebook's
``metadata.backprop_course.diagnoses`` (:meth:`Evidence.to_metadata`), from where
:mod:`.diagnoses` records them in the gradebook:

- **per check**: the verdict, the kinds of mistake, and for a failed *visible* check the
  worst element (which gradient, which index, its relative error). A hidden check keeps
  its kinds only, never a value of its case.
- **per exercise, a probe**: one fixed case, the same for every student (drawn from the
  exercise id alone, not from the course secret), on which the grader calls every
  answer once more. A wrong answer leaves a compact fingerprint there: a digest of what
  it returned, the kinds, and the pattern of its residual (where it is too big, too
  small or right). Students graded on different cases are compared on the probe: two
  answers that return the same wrong values there behave alike (:mod:`.report.copying`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from ..checks.diagnose import as_float_array
from ..checks.exercise import Case, Exercise, Result, ValueExercise, VJPExercise
from ..checks.harness import FORWARD_FIRST
from .answers import is_hidden

#: The version of the metadata this module writes.
VERSION = 1
#: Wall seconds the probe may take (a backward pass on a small case takes milliseconds).
PROBE_SECONDS = 5.0
#: Relative resolution at which probe outputs are compared (a different order of
#: floating-point operations in the same formula changes only the last bits).
RESOLUTION = 1e-6
#: The probe's verdicts.
RIGHT, WRONG, NO_OUTPUT, UNJUDGED = "right", "wrong", "no_output", "unjudged"


@dataclass(frozen=True)
class Worst:
    """The worst element of a failed check: the gradient (or answer) it is in, its index
    (None when the gradient has the wrong shape) and its relative error."""

    gradient: str
    element: tuple[int, ...] | None
    rel_error: float | None


@dataclass(frozen=True)
class Probe:
    """An answer's behaviour on its exercise's probe case.

    ``status``: :data:`RIGHT`, :data:`WRONG`, :data:`NO_OUTPUT` (it raised, timed out or
    crashed) or :data:`UNJUDGED`; for a wrong answer, ``output`` is a digest of what it
    returned, ``residual`` a digest of its residual's pattern and ``pattern`` that
    pattern to read (per gradient: ``+`` too big, ``-`` too small, ``0`` right, or the
    wrong shape; cut short for large arrays).
    """

    exercise: str
    status: str
    kinds: tuple[str, ...] = ()
    output: str = ""
    residual: str = ""
    pattern: str = ""


def probe_case(exercise: Exercise) -> Case | None:
    """The exercise's probe case (None for exercises without one: answers by hand and
    training runs); the same for every student and every course."""
    if not isinstance(exercise, VJPExercise):
        return None
    digest = hashlib.sha256(f"backprop-course probe {exercise.id}".encode()).digest()
    return exercise.cases("random", np.random.default_rng(int.from_bytes(digest[:8], "big")))[0]


def _array(value: Any) -> np.ndarray | None:
    try:
        return as_float_array(value)
    except (TypeError, ValueError):
        return None


def _quantized(value: Any, scale: float) -> bytes:
    """A value's bytes at :data:`RESOLUTION` relative to ``scale`` (or its type name)."""
    array = _array(value)
    if array is None:  # not numbers: what it was (the wire's NotNumeric names the type)
        return f"<{getattr(value, 'type_name', type(value).__name__)}>".encode()
    ratio = np.nan_to_num(array / scale, nan=7e9, posinf=8e9, neginf=-8e9)
    steps = np.rint(np.clip(ratio / RESOLUTION, -1e15, 1e15)).astype(np.int64)
    return repr(array.shape).encode() + steps.tobytes()


def _pattern(value: Any, expected: np.ndarray, scale: float) -> str:
    array = _array(value)
    if array is None or array.shape != expected.shape:
        return f"shape {None if array is None else array.shape}"
    residual = np.nan_to_num(array - expected, nan=np.inf)
    tolerance = RESOLUTION * scale
    signs = np.where(residual > tolerance, "+", np.where(residual < -tolerance, "-", "0"))
    return "".join(signs.reshape(-1).tolist())


def fingerprint(exercise: VJPExercise, case: Case, returned: tuple) -> tuple[str, str, str]:
    """(output digest, residual digest, readable pattern) of what an answer returned on
    ``case``."""
    expected = exercise.torch_reference(case.values)
    grads = returned[1:] if exercise.call in FORWARD_FIRST else returned
    scales = [max(float(np.max(np.abs(e))) if e.size else 0.0, 1e-12) for e in expected]
    output = hashlib.sha256()
    for value, scale in zip(returned, [scales[0]] * (len(returned) - len(grads)) + scales,
                            strict=False):
        output.update(_quantized(value, scale) + b"|")
    patterns = [f"dL/d{name}: {_pattern(value, e, s)}" for name, value, e, s
                in zip(exercise.wrt, grads, expected, scales, strict=False)]
    full = "; ".join(patterns)
    readable = "; ".join(p if len(p) <= 40 else p[:37] + "..." for p in patterns)
    return (output.hexdigest()[:16], hashlib.sha256(full.encode()).hexdigest()[:16], readable)


def _worst_arrays(exercise: VJPExercise, case: Case, returned: tuple) -> Worst | None:
    """The worst element of the gradients an answer returned on ``case`` (None if they
    are all right)."""
    expected = exercise.torch_reference(case.values)
    grads = returned[1:] if exercise.call in FORWARD_FIRST else returned
    worst: Worst | None = None
    for name, value, exp in zip(exercise.wrt, grads, expected, strict=False):
        array = _array(value)
        if array is None or array.shape != exp.shape:
            return Worst(f"dL/d{name}", None, None)
        errors = np.abs(array - exp) / np.maximum(1e-8, np.abs(array) + np.abs(exp))
        errors = np.nan_to_num(errors, nan=1.0, posinf=1.0)
        if not errors.size or float(errors.max()) <= RESOLUTION:
            continue
        index = np.unravel_index(int(np.argmax(errors)), errors.shape)
        if worst is None or float(errors[index]) > (worst.rel_error or 0.0):
            worst = Worst(f"dL/d{name}", tuple(int(i) for i in index), float(errors[index]))
    return worst


@dataclass
class Evidence:
    """Collects the worst elements and probes while a notebook is graded."""

    worst: dict[tuple[str, str], Worst] = field(default_factory=dict)
    probes: dict[str, Probe] = field(default_factory=dict)
    checks: list[dict] = field(default_factory=list)

    def probe(self, exercise: Exercise, call: Callable[[dict, float | None], dict]) -> None:
        """Run the answer (``call(values, budget)``) on the exercise's probe case."""
        case = probe_case(exercise)
        if case is None:
            return
        outcome = call(case.values, PROBE_SECONDS)
        if "returned" not in outcome:
            self.probes[exercise.id] = Probe(exercise.id, NO_OUTPUT)
            return
        try:
            result = exercise.judge("random", [case], [outcome], reveal=False)
        except RuntimeError:  # the references disagree on this case: a bug of the exercise
            self.probes[exercise.id] = Probe(exercise.id, UNJUDGED)
            return
        kinds = tuple(dict.fromkeys(k.value for k in result.kinds))
        if result.passed:
            self.probes[exercise.id] = Probe(exercise.id, RIGHT)
            return
        self.probes[exercise.id] = Probe(exercise.id, WRONG, kinds,
                                         *fingerprint(exercise, case, outcome["returned"]))

    def check(self, exercise: Exercise, part: str, cases: list[Case],
              outcomes: list[dict], result: Result, reveal: bool) -> None:
        """Keep the worst element of a failed visible check of a backward pass (on the
        first case it got wrong)."""
        if result.passed or not reveal or not isinstance(exercise, VJPExercise):
            return
        for case, outcome in zip(cases, outcomes, strict=False):
            if "returned" not in outcome:
                return
            worst = _worst_arrays(exercise, case, tuple(outcome["returned"]))
            if worst is not None:
                self.worst[exercise.id, part] = worst
                return

    def values(self, exercise: ValueExercise, numbers: dict, values: dict,
               results: dict[str, Result], parts: dict[str, bool]) -> None:
        """Keep the relative error of each wrong visible answer given by hand."""
        solved = exercise.solve(numbers)
        for part, result in results.items():
            value = _array(values.get(part))
            if result.passed or parts[part] or value is None or value.shape != ():
                continue
            expected = float(solved[part])
            error = abs(float(value) - expected) / max(1e-8, abs(float(value)) + abs(expected))
            self.worst[exercise.id, part] = Worst(part, (), error)

    def collect(self, cells: list[tuple[Any, Any]], results: dict[tuple[str, str], Result]
                ) -> None:
        """One record per check of each gradable test cell, in the notebook's order (a
        check a cell calls twice is one check: one result)."""
        for cell, calls in cells:
            if isinstance(calls, str):
                continue
            hidden = is_hidden(cell.source)
            for call in dict.fromkeys(calls):
                result = results[call.exercise, call.part]
                worst = None if hidden else self.worst.get((call.exercise, call.part))
                self.checks.append({
                    "cell": cell.metadata.nbgrader["grade_id"], "exercise": call.exercise,
                    "part": call.part, "hidden": hidden, "passed": result.passed,
                    "kinds": list(dict.fromkeys(k.value for k in result.kinds)),
                    "worst": None if worst is None else asdict(worst)})

    def to_metadata(self, graded_at: datetime) -> dict:
        """What :mod:`.diagnoses` records (JSON-ready)."""
        return {"version": VERSION, "graded_at": graded_at.isoformat(timespec="seconds"),
                "checks": self.checks,
                "probes": [asdict(p) for p in self.probes.values()]}

