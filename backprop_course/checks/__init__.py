"""The checks a lesson notebook's test cells call, in the student's kernel (numpy only).

``check("relu_backward", relu_backward, part="given")`` runs the answer on the student's
own cases and prints what is right and what is wrong; it raises AssertionError when the
check fails. What it prints is feedback, not a grade: the grader runs the answer cell
itself, in an interpreter of its own (see :mod:`backprop_course.grader`), on the same
visible cases and on hidden ones.
"""

from __future__ import annotations

from typing import Any

from .exercise import REGISTRY, Exercise, Result, ValueExercise, VJPExercise, get
from .kinds import Kind
from .variants import course_salt, rng_for, student_id

__all__ = ["REGISTRY", "Exercise", "Kind", "Result", "VJPExercise", "ValueExercise", "check",
           "get", "my_numbers", "seed_label"]


def seed_label(exercise: Exercise, part: str) -> str:
    """Which of the student's seeds a part draws its cases from: ``shape`` and ``given``
    share the student's given cases; a by-hand exercise has one set of numbers."""
    if isinstance(exercise, ValueExercise):
        return "provides"
    return "given" if part in ("shape", "given") else part


def check(exercise_id: str, answer: Any, part: str) -> None:
    """Run one check on the student's own cases, print its report, and raise
    AssertionError if it fails.

    Parameters
    ----------
    exercise_id : the registered exercise
    answer : the student's function or class (a dict of answers for a by-hand exercise)
    part : which check (see the exercise's ``parts``)
    """
    exercise = get(exercise_id)
    rng = rng_for(course_salt(), student_id(), exercise_id, seed_label(exercise, part))
    result = exercise.run_in_kernel(answer, part, rng)
    if not result.passed:
        raise AssertionError(result.report())
    print(result.report())


def my_numbers(exercise_id: str) -> tuple:
    """The numbers of a by-hand exercise for the student working here, in the exercise's
    order; prints them with the student id they belong to."""
    exercise = get(exercise_id)
    if not isinstance(exercise, ValueExercise):
        raise TypeError(f"{exercise_id} is not a by-hand exercise")
    student = student_id()
    numbers = exercise.provides(rng_for(course_salt(), student, exercise_id, "provides"))
    shown = ", ".join(f"{k} = {v:g}" for k, v in numbers.items())
    print(f"your numbers (student {student!r}): {shown}")
    return tuple(numbers.values())
