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

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..gradcheck import compare, numerical_vjp
from .diagnose import Diagnosis, diagnose

REGISTRY: dict[str, Exercise] = {}


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
    """The outcome of one graded check."""

    exercise: str
    part: str
    passed: bool
    messages: list[str] = field(default_factory=list)

    def report(self) -> str:
        mark = "PASS" if self.passed else "FAIL"
        lines = [f"[{mark}] {self.exercise} / {self.part}"]
        return "\n".join(lines + [f"  - {m}" for m in self.messages])


class Exercise:
    """Base class: an id, a title and the graded parts."""

    id: str
    title: str

    @property
    def parts(self) -> tuple[str, ...]:
        raise NotImplementedError

    def run(self, student: Any, part: str, seed: int = 0) -> Result:
        raise NotImplementedError

    def _check_part(self, part: str) -> None:
        if part not in self.parts:
            raise ValueError(f"{self.id} has parts {self.parts}, not {part!r}")


def _as_arrays(case: dict, differentiable: tuple[str, ...]) -> dict:
    """Differentiable inputs and the upstream gradient as float64, others as arrays."""
    return {k: np.array(v, dtype=np.float64 if k in differentiable else None)
            for k, v in case.items()}


def _student_error(error: BaseException, signature: str) -> str:
    if isinstance(error, NotImplementedError):
        return f"not implemented yet: write the body of {signature}."
    return f"your code raised {type(error).__name__}: {error}"


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
        mistakes (e.g. overwrite instead of accumulate)
    edge_at_kink : the edge cases sit on a kink (ReLU at 0), where the numerical
        gradient averages two slopes; there torch's convention alone is the reference
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
    mistakes: Callable[[dict], dict[str, tuple]] | None = None
    edge_at_kink: bool = False
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
    def run_student(self, student: Any, case: dict, grad_out: np.ndarray) -> tuple:
        copies = {k: np.array(v, copy=True) for k, v in case.items()}
        if self.call is not None:
            out = self.call(student, {**copies, "grad_out": grad_out.copy()})
        else:
            out = student(*(copies[k] for k in self.inputs), grad_out.copy())
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

    def run(self, student: Any, part: str, seed: int = 0) -> Result:
        self._check_part(part)
        rng = np.random.default_rng(seed + 1)
        result = Result(self.id, part, True)
        cases = self._cases(part, seed)
        for number, case in enumerate(cases):
            grad_out = self._upstream(case, rng)
            at_kink = part == "edge" and self.edge_at_kink
            expected = self.reference(case, grad_out, at_kink)
            label = "" if len(cases) == 1 else f"case {number + 1}: "
            try:
                got = self.run_student(student, case, grad_out)
            except Exception as error:
                result.passed = False
                result.messages.append(label + _student_error(error, self.signature))
                return result
            diagnoses = self._diagnose(case, grad_out, expected, got, part == "shape", at_kink)
            for diagnosis in diagnoses:
                result.passed &= diagnosis.ok
                if not diagnosis.ok or number == 0:
                    result.messages.append(label + diagnosis.message)
        return result

    def _diagnose(self, case: dict, grad_out: np.ndarray, expected: tuple, got: tuple,
                  shapes_only: bool, at_kink: bool) -> list[Diagnosis]:
        first = np.asarray(case[self.inputs[0]])
        batch = first.shape[0] if first.ndim >= 2 else None
        alternatives = self._alternatives(case, grad_out, at_kink)
        out = []
        for i, (name, exp, actual) in enumerate(zip(self.wrt, expected, got, strict=True)):
            if shapes_only:
                shape = np.shape(getattr(actual, "data", actual)) if actual is not None else None
                if shape == exp.shape:
                    out.append(Diagnosis(None, f"dL/d{name}: shape {exp.shape}, as it should be."))
                    continue
            wrong = {label: grads[i] for label, grads in alternatives.items()}
            out.append(diagnose(actual, exp, f"dL/d{name}", batch, wrong))
        return out

    def _alternatives(self, case: dict, grad_out: np.ndarray,
                      at_kink: bool) -> dict[str, tuple]:
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
    """

    id: str
    title: str
    answers: dict[str, Any]

    @property
    def parts(self) -> tuple[str, ...]:
        return tuple(self.answers)

    def run(self, student: Any, part: str, seed: int = 0) -> Result:
        self._check_part(part)
        reference = self.answers[part]
        expected = np.asarray(reference() if callable(reference) else reference, dtype=np.float64)
        if not isinstance(student, dict) or part not in student:
            return Result(self.id, part, False, [f"pass a dict with the answer {part!r}"])
        value = student[part]
        if value is ... or value is None:
            return Result(self.id, part, False, [f"{part}: not answered yet"])
        diagnosis = diagnose(value, expected, part)
        return Result(self.id, part, diagnosis.ok, [diagnosis.message])


def check(exercise_id: str, student: Any, part: str, seed: int = 0) -> Result:
    """Run one graded check, print its report, and raise AssertionError if it fails.

    Parameters
    ----------
    exercise_id : the registered exercise
    student : the student's function (or dict of answers for a ValueExercise)
    part : which check (see the exercise's ``parts``)
    seed : seed of the random cases
    """
    result = get(exercise_id).run(student, part, seed)
    if not result.passed:
        raise AssertionError(result.report())
    print(result.report())
    return result
