"""Exercises and their graded checks.

An exercise is split into *parts*, each one graded check with its own points:

``shape``   every returned gradient has the shape of its input (deck example)
``given``   values on the deck's example
``random``  values on fresh random inputs and shapes (several trials)
``edge``    values on edge cases (ReLU at 0, logits of 1000, ...)

Every value is compared with two references in float64: the numerical gradient
(central differences) and torch's autograd. A failed check names the likely mistake
(see :mod:`.diagnose`) and the worst element.

Notebook test cells call :func:`check`::

    check("relu_backward", relu_backward, part="given")
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..gradcheck import compare, numerical_vjp
from . import wire
from .diagnose import Diagnosis, diagnose, explains

REGISTRY: dict[str, Exercise] = {}
GRADER_ENV = "BACKPROP_COURSE_GRADER"


def register(exercise: Exercise) -> Exercise:
    """Add an exercise to the registry (ids are unique)."""
    if exercise.id in REGISTRY:
        raise ValueError(f"exercise {exercise.id!r} is registered twice")
    REGISTRY[exercise.id] = exercise
    return exercise


def get(exercise_id: str) -> Exercise:
    from . import exercises  # noqa: F401  (registers every exercise)

    if exercise_id not in REGISTRY:
        raise KeyError(f"no exercise {exercise_id!r}; known: {', '.join(sorted(REGISTRY))}")
    return REGISTRY[exercise_id]


@dataclass
class Result:
    """The outcome of one graded check: the verdict, the messages for the student and
    the kinds of mistake found (:class:`.Diagnosis` kinds, plus ``"error"``,
    ``"not_implemented"``, ``"unanswered"`` and ``"data"`` for a garbled payload)."""

    exercise: str
    part: str
    passed: bool
    messages: list[str] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def fail(self, kind: str, message: str) -> Result:
        """Record a failure."""
        self.passed = False
        self.kinds.append(kind)
        self.messages.append(message)
        self.failures.append(message)
        return self

    def report(self) -> str:
        """The verdict, then what is wrong (``-``) and what is right (``ok``)."""
        mark = "PASS" if self.passed else "FAIL"
        return "\n".join([f"[{mark}] {self.exercise} / {self.part}"]
                         + [f"  - {m}" for m in self.failures]
                         + [f"  ok  {m}" for m in self.messages if m not in self.failures])


class Exercise:
    """Base class: an id, a title and the graded parts.

    A check has two halves. :meth:`collect` runs the student's code on the check's cases
    (in the student's kernel) and returns JSON-ready outcomes (:mod:`.wire`);
    :meth:`judge` is pure: it regenerates the cases and references and judges those
    outcomes. The kernel and the trusted grader call the same :meth:`judge` on the same
    data, so the notebook's report and the grade agree.
    """

    id: str
    title: str

    @property
    def parts(self) -> tuple[str, ...]:
        raise NotImplementedError

    def collect(self, student: Any, part: str, seed: int = 0) -> list[dict]:
        raise NotImplementedError

    def judge(self, part: str, seed: int, outcomes: list[dict]) -> Result:
        raise NotImplementedError

    def run(self, student: Any, part: str, seed: int = 0) -> Result:
        """Collect and judge in one go."""
        return self.judge(part, seed, self.collect(student, part, seed))

    def _check_part(self, part: str) -> None:
        if part not in self.parts:
            raise ValueError(f"{self.id} has parts {self.parts}, not {part!r}")


def random_shape(rng: np.random.Generator, max_size: int = 5, max_ndim: int = 2) -> tuple:
    """A random shape for elementwise exercises: 1 to ``max_ndim`` axes of 1 to ``max_size``."""
    return tuple(int(s) for s in rng.integers(1, max_size + 1, size=rng.integers(1, max_ndim + 1)))


def _as_arrays(case: dict, differentiable: tuple[str, ...]) -> dict:
    """Differentiable inputs and the upstream gradient as float64, others as arrays."""
    return {k: np.array(v, dtype=np.float64 if k in differentiable else None)
            for k, v in case.items()}


def _student_error(result: Result, outcome: dict, signature: str, label: str,
                   hints: dict[str, str] | None = None) -> Result:
    name, message = str(outcome["error"])[:100], str(outcome.get("message", ""))[:2000]
    if name == "NotImplementedError":
        return result.fail("not_implemented",
                           f"{label}not implemented yet: write the body of {signature}.")
    hint = (hints or {}).get(name)
    return result.fail("error", f"{label}your code raised {name}: {message}"
                                + (f" ({hint})" if hint else ""))


def _decode(outcome: dict) -> list:
    """The arrays of a ``returned`` outcome; raises :class:`.wire.PayloadError`."""
    arrays = outcome.get("returned")
    if not isinstance(arrays, list):
        raise wire.PayloadError("an outcome has no returned values")
    return [wire.decode_array(a) for a in arrays]


def _closest(got: tuple, wrong: tuple | list[tuple]) -> tuple:
    """Of the results one mistake can give, the one that matches the most of the
    student's arrays (the first on a tie)."""
    if isinstance(wrong, tuple):
        return wrong
    return max(wrong, key=lambda variant: sum(explains((a,), (w,))
                                              for a, w in zip(got, variant, strict=False)))


@dataclass
class VJPExercise(Exercise):
    """The student writes a backward pass: given the inputs and the upstream gradient,
    return the gradient with respect to each input in ``wrt``.

    Parameters
    ----------
    id, title : names for the registry and for messages
    signature : how the student's function is called, e.g. ``"relu_backward(x, grad_out)"``
    inputs : argument names, in order; the student's function gets them positionally
        followed by ``grad_out``
    wrt : the inputs whose gradients the student returns, in order
    forward : numpy forward, ``forward(**inputs) -> output``, for the numerical gradient
    torch_forward : the same in torch, ``torch_forward(**tensors) -> tensor``
    given : the deck's example(s): dicts of inputs and ``grad_out`` (drawn if absent)
    random_case : ``rng -> dict`` of inputs with random shapes and values
    edge : edge cases, dicts like ``given``
    call : ``(student, case) -> gradients``; default ``student(*inputs, grad_out)``
    mistakes : ``case -> {"kind: message": wrong gradients}`` for exercise-specific
        mistakes (e.g. overwrite instead of accumulate); a list of tuples of gradients
        when the mistake can give several results (e.g. in different visiting orders)
    edge_at_kink : the edge cases sit on a kink (ReLU at 0), where the numerical
        gradient averages two slopes; there torch's convention alone is the reference
    nonfinite_hint : the usual cause of NaN or inf in a student's gradient, for messages
    error_hints : exception name -> its usual cause in this exercise, for messages
    """

    id: str
    title: str
    signature: str
    inputs: tuple[str, ...]
    wrt: tuple[str, ...]
    forward: Callable[..., np.ndarray]
    torch_forward: Callable[..., Any]
    given: tuple[dict, ...]
    random_case: Callable[[np.random.Generator], dict]
    edge: tuple[dict, ...] = ()
    call: Callable[[Any, dict], Any] | None = None
    mistakes: Callable[[dict], dict[str, tuple | list[tuple]]] | None = None
    edge_at_kink: bool = False
    nonfinite_hint: str = ""
    error_hints: dict[str, str] = field(default_factory=dict)
    random_trials: int = 3

    @property
    def parts(self) -> tuple[str, ...]:
        return ("shape", "given", "random") + (("edge",) if self.edge else ())

    # ---------------------------------------------------------------- references
    def _upstream(self, case: dict, rng: np.random.Generator) -> np.ndarray:
        if "grad_out" in case:
            return np.array(case["grad_out"], dtype=np.float64)
        out = np.asarray(self.forward(**self._inputs(case)))
        return rng.standard_normal(out.shape)

    def _inputs(self, case: dict) -> dict:
        return {k: case[k] for k in self.inputs}

    def numerical(self, case: dict, grad_out: np.ndarray) -> tuple[np.ndarray, ...]:
        grads = []
        for name in self.wrt:
            def f(v: np.ndarray, name: str = name) -> np.ndarray:
                return np.asarray(self.forward(**{**self._inputs(case), name: v}))
            grads.append(numerical_vjp(f, np.array(case[name], dtype=np.float64), grad_out))
        return tuple(grads)

    def torch_reference(self, case: dict, grad_out: np.ndarray) -> tuple[np.ndarray, ...]:
        import torch

        tensors = {k: torch.tensor(np.asarray(v), requires_grad=k in self.wrt)
                   for k, v in self._inputs(case).items()}
        out = self.torch_forward(**tensors)
        out.backward(torch.tensor(grad_out, dtype=out.dtype))
        return tuple(tensors[name].grad.numpy().copy() for name in self.wrt)

    def reference(self, case: dict, grad_out: np.ndarray,
                  at_kink: bool = False) -> tuple[np.ndarray, ...]:
        """torch's gradients, after checking that they agree with the numerical ones
        (torch's alone ``at_kink``)."""
        if at_kink:
            return self.torch_reference(case, grad_out)
        numerical = self.numerical(case, grad_out)
        try:
            exact = self.torch_reference(case, grad_out)
        except ImportError:
            return numerical
        for name, a, b in zip(self.wrt, exact, numerical, strict=True):
            mismatch = compare(a, b)
            if mismatch is not None:
                raise RuntimeError(f"{self.id}: torch and the numerical gradient disagree for "
                                   f"{name}: {mismatch.describe()} (a bug in the exercise)")
        return exact

    # ------------------------------------------------------------------ student
    def _call(self, student: Any, case: dict, grad_out: np.ndarray) -> Any:
        copies = {k: np.array(v, copy=True) for k, v in case.items()}
        if self.call is not None:
            return self.call(student, {**copies, "grad_out": grad_out.copy()})
        return student(*(copies[k] for k in self.inputs), grad_out.copy())

    def run_student(self, student: Any, case: dict, grad_out: np.ndarray) -> tuple:
        """The student's gradients on one case, as a tuple in the order of ``wrt``."""
        out = self._call(student, case, grad_out)
        if len(self.wrt) == 1:
            return (out,)
        if not isinstance(out, (tuple, list)) or len(out) != len(self.wrt):
            got = len(out) if isinstance(out, (tuple, list)) else type(out).__name__
            raise TypeError(f"return {len(self.wrt)} gradients ({', '.join(self.wrt)}), got {got}")
        return tuple(out)

    def _cases(self, part: str, seed: int) -> list[dict]:
        if part in ("shape", "given"):
            cases = self.given
        elif part == "edge":
            cases = self.edge
        else:
            rng = np.random.default_rng(seed)
            cases = tuple(self.random_case(rng) for _ in range(self.random_trials))
        return [_as_arrays(c, (*self.wrt, "grad_out")) for c in cases]

    def _with_upstream(self, part: str, seed: int) -> list[tuple[dict, np.ndarray]]:
        rng = np.random.default_rng(seed + 1)
        return [(case, self._upstream(case, rng)) for case in self._cases(part, seed)]

    def collect(self, student: Any, part: str, seed: int = 0) -> list[dict]:
        """Run the student's function on every case of the check (stops at an error)."""
        self._check_part(part)
        outcomes = []
        for case, grad_out in self._with_upstream(part, seed):
            try:
                out = self._call(student, case, grad_out)
            except Exception as error:
                outcomes.append(wire.raised(error))
                break
            outcomes.append(wire.returned(out, len(self.wrt)))
        return outcomes

    def judge(self, part: str, seed: int, outcomes: list[dict]) -> Result:
        """Judge the outcomes of :meth:`collect` against freshly computed references."""
        self._check_part(part)
        result = Result(self.id, part, True)
        cases = self._with_upstream(part, seed)
        if len(outcomes) > len(cases):
            return result.fail("data", f"the check's data has {len(outcomes)} results for "
                                       f"{len(cases)} cases.")
        for number, (case, grad_out) in enumerate(cases):
            label = "" if len(cases) == 1 else f"case {number + 1}: "
            if number == len(outcomes):
                return result.fail("data", f"{label}your function was not run on this case.")
            outcome = outcomes[number]
            if "error" in outcome:
                return _student_error(result, outcome, self.signature, label,
                                      self.error_hints)
            try:
                got = _decode(outcome)
            except wire.PayloadError as error:
                return result.fail("data", f"{label}the check's data is garbled: {error}.")
            if len(got) != len(self.wrt):
                got_what = outcome.get("container", len(got))
                return result.fail("count", f"{label}return {len(self.wrt)} gradients "
                                            f"({', '.join(self.wrt)}), got {got_what}.")
            at_kink = part == "edge" and self.edge_at_kink
            expected = self.reference(case, grad_out, at_kink)
            diagnoses = self._diagnose(case, grad_out, expected, tuple(got), part == "shape",
                                       at_kink)
            for diagnosis in diagnoses:
                if not diagnosis.ok:
                    result.fail(diagnosis.kind, label + diagnosis.message)
                elif number == 0:
                    result.messages.append(label + diagnosis.message)
        return result

    def _diagnose(self, case: dict, grad_out: np.ndarray, expected: tuple, got: tuple,
                  shapes_only: bool, at_kink: bool) -> list[Diagnosis]:
        first = np.asarray(case[self.inputs[0]])
        batch = first.shape[0] if first.ndim >= 2 else None
        alternatives = {label: _closest(got, wrong) for label, wrong
                        in self._alternatives(case, grad_out, at_kink).items()}
        # one mistake explains all the arrays: name the ones that do before the others
        alternatives = dict(sorted(alternatives.items(),
                                   key=lambda item: not explains(got, item[1])))
        out = []
        for i, (name, exp, actual) in enumerate(zip(self.wrt, expected, got, strict=True)):
            if shapes_only:
                shape = np.shape(actual) if isinstance(actual, np.ndarray) else None
                if shape == exp.shape:
                    out.append(Diagnosis(None, f"dL/d{name}: shape {exp.shape}, as it should be."))
                    continue
            wrong = {label: grads[i] for label, grads in alternatives.items()}
            out.append(diagnose(actual, exp, f"dL/d{name}", batch, wrong,
                                self.nonfinite_hint))
        return out

    def _alternatives(self, case: dict, grad_out: np.ndarray,
                      at_kink: bool) -> dict[str, tuple | list[tuple]]:
        alternatives = dict(self.mistakes(case) if self.mistakes else {})
        ones = np.ones_like(grad_out)
        if not np.allclose(grad_out, ones):
            alternatives["upstream: you ignored the upstream gradient grad_out (this is the "
                         "local gradient alone); multiply by grad_out"] = self.reference(
                             case, ones, at_kink)
        return alternatives


@dataclass
class ValueExercise(Exercise):
    """The student derives numbers by hand; code computes the reference.

    ``answers`` maps each answer's name to its reference value (or a callable that
    computes it); each answer is one part. The student passes a dict of answers.
    ``mistakes`` maps an answer's name to ``{"kind: message": the value that mistake
    gives}``, checked in order when the answer is wrong.
    """

    id: str
    title: str
    answers: dict[str, Any]
    mistakes: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def parts(self) -> tuple[str, ...]:
        return tuple(self.answers)

    def collect(self, student: Any, part: str, seed: int = 0) -> list[dict]:
        """The student's answer to ``part``."""
        self._check_part(part)
        if not isinstance(student, dict) or part not in student:
            return [{"unanswered": "no_dict"}]
        if student[part] is ... or student[part] is None:
            return [{"unanswered": "blank"}]
        return [wire.returned(student[part], 1)]

    def judge(self, part: str, seed: int, outcomes: list[dict]) -> Result:
        """Judge the answer collected by :meth:`collect`."""
        self._check_part(part)
        result = Result(self.id, part, True)
        if len(outcomes) != 1:
            return result.fail("data", f"the check's data has {len(outcomes)} answers, not 1.")
        outcome = outcomes[0]
        if outcome.get("unanswered") == "no_dict":
            return result.fail("unanswered", f"pass a dict with the answer {part!r}.")
        if "unanswered" in outcome:
            return result.fail("unanswered", f"{part}: not answered yet.")
        try:
            (value,) = _decode(outcome)
        except (wire.PayloadError, ValueError) as error:
            return result.fail("data", f"the check's data is garbled: {error}.")
        reference = self.answers[part]
        expected = np.asarray(reference() if callable(reference) else reference, dtype=np.float64)
        diagnosis = diagnose(value, expected, part, alternatives=self.mistakes.get(part))
        if not diagnosis.ok:
            return result.fail(diagnosis.kind, diagnosis.message)
        result.messages.append(diagnosis.message)
        return result


def _publish(data: dict) -> None:
    """Show ``data`` to the trusted grader: a display output of MIME type
    :data:`.wire.MIME` (and an empty text form, so that frontends show nothing)."""
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:
        return
    shell = get_ipython()
    if shell is not None and getattr(shell, "kernel", None) is not None:
        display({wire.MIME: data, "text/plain": ""}, raw=True)


def check(exercise_id: str, student: Any, part: str, seed: int = 0) -> None:
    """Run one graded check, print its report, and raise AssertionError if it fails.

    In a Jupyter kernel it also publishes what the student's code returned (see
    :mod:`.wire`); the grader recomputes the verdict from that, outside the kernel. In the
    grader's kernels (``BACKPROP_COURSE_GRADER=trusted``) it does nothing else.

    Parameters
    ----------
    exercise_id : the registered exercise
    student : the student's function (or dict of answers for a ValueExercise)
    part : which check (see the exercise's ``parts``)
    seed : seed of the random cases
    """
    exercise = get(exercise_id)
    outcomes = exercise.collect(student, part, seed)
    _publish(wire.payload(exercise_id, part, seed, outcomes))
    if os.environ.get(GRADER_ENV) == "trusted":
        return
    result = exercise.judge(part, seed, outcomes)
    if not result.passed:
        raise AssertionError(result.report())
    print(result.report())
