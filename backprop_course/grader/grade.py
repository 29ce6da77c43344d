"""Grade a notebook: run each exercise's answer cell in the sandbox, judge every check.

Nothing the student's kernel produced is read: not an output, not a published value.
For each exercise a test cell names, the grader takes the source of the exercise's
answer cell, runs it in a fresh sandboxed interpreter (:mod:`.sandbox`), calls it on
cases it draws itself (the student's visible variant, or hidden cases from the course
secret: :class:`Seeds`), and judges what comes back with the exercise's references
(torch and numerical gradients, computed here). Each test cell then gets one verdict,
written as the cell's outputs so that nbgrader's stock scoring reads it
(:meth:`CellVerdict.outputs`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
import numpy as np
from nbformat import NotebookNode

from ..checks import get, seed_label
from ..checks.exercise import Case, Exercise, Result, ValueExercise, VJPExercise
from ..checks.harness import WireError, decode, encode_case
from ..checks.kinds import Kind
from ..checks.variants import course_salt, rng_for, student_id
from . import secret as course_secret
from .answers import (
    CheckCall,
    UngradableCellError,
    answer_source,
    check_calls,
    is_hidden,
    is_test_cell,
)
from .evidence import Evidence
from .sandbox import DEFAULT_LIMITS, GraderFaultError, Limits, Session, isolation

#: How many times an interpreter that fails to start is started again.
STARTS = 3


@dataclass
class Seeds:
    """Where one student's cases come from: visible checks from (salt, student), hidden
    ones from the course secret; without a secret (a student checking their own copy)
    hidden checks are practice runs on visible seeds."""

    student: str
    salt: str
    secret: bytes | None = None

    @classmethod
    def for_course(cls, secret: bytes, student: str) -> Seeds:
        return cls(student, course_secret.salt(secret), secret)

    def rng(self, exercise: Exercise, part: str, hidden: bool) -> np.random.Generator:
        if hidden and self.secret is not None:
            return course_secret.hidden_rng(self.secret, self.student, exercise.id, part)
        return rng_for(self.salt, self.student, exercise.id, seed_label(exercise, part))

    def reveal(self, hidden: bool) -> bool:
        """Whether feedback may show the case's values."""
        return not (hidden and self.secret is not None)


@dataclass
class CellVerdict:
    """The verdict on one graded test cell."""

    grade_id: str
    exercise: str
    part: str
    points: float
    passed: bool
    report: str
    kinds: list[Kind] = field(default_factory=list)

    @property
    def score(self) -> float:
        return self.points if self.passed else 0.0

    def outputs(self) -> list[NotebookNode]:
        """Cell outputs from which nbgrader's ``determine_grade`` reads this verdict."""
        if self.passed:
            return [nbformat.v4.new_output("stream", name="stdout", text=self.report + "\n")]
        return [nbformat.v4.new_output("error", ename="AssertionError", evalue=self.report,
                                       traceback=[f"AssertionError: {self.report}"])]


# --------------------------------------------------------------- running answers
def _decode_outcome(reply: dict) -> dict:
    """A runner's reply with its values decoded (a malformed reply: the answer crashed)."""
    try:
        if "returned" in reply:
            values = reply["returned"]
            if not isinstance(values, list):
                raise WireError("the returned values are not a list")
            return {"returned": tuple(decode(v) for v in values)}
        if "values" in reply:
            values = reply["values"]
            if not isinstance(values, dict):
                raise WireError("the values are not an object")
            return {"values": {str(k): decode(v) for k, v in values.items()}}
    except WireError as error:
        return {"crashed": f"it sent a malformed result ({error})"}
    if "error" in reply:
        return {"error": str(reply["error"])[:100], "message": str(reply.get("message"))[:2000]}
    if reply.get("defined") is True or "timeout" in reply or "crashed" in reply:
        return reply
    return {"crashed": "it sent something that is not a result"}


def _route(exercise: Exercise) -> dict:
    """Which answer the runner calls, and how (see :mod:`.runner`)."""
    names = exercise.answer
    return {"answer": names if isinstance(names, str) else list(names),
            "call": getattr(exercise, "call", "vjp"),
            "inputs": list(getattr(exercise, "inputs", ())),
            "wrt": list(getattr(exercise, "wrt", ()))}


class _Answer:
    """One exercise's answer cell, run in a sandboxed interpreter that is started again
    (and the cell run again) when a case kills it."""

    def __init__(self, exercise: Exercise, source: str, numbers: dict, level: str,
                 limits: Limits) -> None:
        self.exercise, self.level, self.limits = exercise, level, limits
        self.setup = {"preamble": exercise.sandbox.preamble, "source": source,
                      "provides": encode_case(numbers), **_route(exercise)}
        self.session: Session | None = None
        self.cell: dict = {}

    def start(self) -> dict:
        """Run the answer cell: ``{"defined": True}`` or why it did not finish."""
        for attempt in range(STARTS):
            self.close()
            self.session = Session(self.exercise.sandbox, self.level, self.limits)
            try:
                self.cell = _decode_outcome(self.session.start(self.setup))
                return self.cell
            except GraderFaultError:
                if attempt == STARTS - 1:
                    raise
        raise AssertionError("unreachable")

    def call(self, values: dict, budget: float | None) -> dict:
        dead = self.session is None or self.session.dead is not None
        if dead and "defined" not in self.start():
            return self.cell
        return _decode_outcome(self.session.call(values, budget))

    def call_other(self, other: VJPExercise, case: Case) -> dict:
        """The answer of another exercise whose cell ran here (a layer the network's
        answer relies on) on one case, by that exercise's convention."""
        return _decode_outcome(self.session.call(case.values, route=_route(other)))

    def values(self, names: list[str]) -> dict:
        return _decode_outcome(self.session.values(names))

    def close(self) -> None:
        if self.session is not None:
            self.session.close()
            self.session = None


def _fail_all(exercise: Exercise, parts: dict[str, bool], kind: Kind,
              message: str) -> dict[str, Result]:
    return {part: Result(exercise.id, part).fail(kind, message) for part in parts}


def _cell_failure(exercise: Exercise, parts: dict[str, bool], outcome: dict) -> dict[str, Result]:
    """Every part fails: the answer cell itself did not run to the end."""
    if "error" in outcome and outcome["error"] == "NotImplementedError":
        return _fail_all(exercise, parts, Kind.NOT_IMPLEMENTED,
                         f"not implemented yet: write {exercise.answer} in its answer cell.")
    if "error" in outcome:
        hint = getattr(exercise, "error_hints", {}).get(outcome["error"])
        allowed = "numpy (as np)" + (" and the course engine's tensors (as bc)"
                                     if exercise.sandbox.engine else "")
        return _fail_all(exercise, parts, Kind.ERROR,
                         f"your answer cell raised {outcome['error']}: {outcome['message']}"
                         + (f" ({hint})" if hint else "")
                         + f". The grader runs the answer cell on its own, with {allowed} "
                           "and nothing else: define everything the answer needs in that cell.")
    if "timeout" in outcome:
        return _fail_all(exercise, parts, Kind.TIMEOUT, "your answer cell ran longer than "
                                                        f"{outcome['timeout']:g} s.")
    return _fail_all(exercise, parts, Kind.CRASHED,
                     f"your answer cell stopped its interpreter: {outcome.get('crashed')}.")


def run_exercise(exercise: Exercise, source: str, parts: dict[str, bool], seeds: Seeds,
                 level: str, limits: Limits = DEFAULT_LIMITS,
                 evidence: Evidence | None = None) -> dict[str, Result]:
    """Run one exercise's answer cell on the checks ``parts`` (part -> hidden) and judge
    them. ``evidence``, if given, also gets the answer's probe and worst elements.

    Raises
    ------
    GraderFaultError
        if the sandbox cannot start an interpreter (then no result is the student's).
    """
    numbers = {}
    if isinstance(exercise, ValueExercise):
        numbers = exercise.provides(seeds.rng(exercise, "provides", False))
    answer = _Answer(exercise, source, numbers, level, limits)
    try:
        cell = answer.start()
        if "defined" not in cell:
            return _cell_failure(exercise, parts, cell)
        if isinstance(exercise, ValueExercise):
            reply = answer.values(list(parts))
            values = reply.get("values", {})
            judged = {part: exercise.judge(part, numbers, {"value": values[part]}
                                           if part in values else reply, seeds.reveal(hidden))
                      for part, hidden in parts.items()}
            if evidence is not None:
                evidence.values(exercise, numbers, values, judged, parts)
            return judged
        if evidence is not None:  # first: every student's answer probed in the same state
            evidence.probe(exercise, answer.call)
        large = exercise.large_case(seeds.rng(exercise, "large", True)) \
            if hasattr(exercise, "large_case") else None
        if large is not None:
            first = answer.call(large.values, large.budget)
            if first.get("large"):  # not a backward pass: nothing for this exercise
                return {part: exercise.judge(part, [large], [first]) for part in parts}
        results = {}
        for part, hidden in parts.items():
            cases = exercise.cases(part, seeds.rng(exercise, part, hidden))
            outcomes = []
            for case in cases:
                outcomes.append(answer.call(case.values, case.budget))
                if isinstance(exercise, VJPExercise):
                    exercise.probe_layers(case, outcomes[-1], answer.call_other)
                if "returned" not in outcomes[-1]:
                    break
            if part == "random" and large is not None and "returned" in outcomes[-1]:
                cases, outcomes = [*cases, large], [*outcomes, first]
            results[part] = exercise.judge(part, cases, outcomes, seeds.reveal(hidden))
            if evidence is not None:
                evidence.check(exercise, part, cases, outcomes, results[part],
                               seeds.reveal(hidden))
        return results
    finally:
        answer.close()


# ------------------------------------------------------------------- a notebook
def _test_cells(nb: NotebookNode) -> list[tuple[Any, list[CheckCall] | str]]:
    """Each test cell with its checks (or why it cannot be graded)."""
    cells = []
    for cell in nb.cells:
        if not is_test_cell(cell):
            continue
        try:
            calls = check_calls(cell.source)
            cells.append((cell, calls or "this test cell runs no check()"))
        except UngradableCellError as error:
            cells.append((cell, f"this test cell cannot be graded: {error}"))
    return cells


def grade_notebook(nb: NotebookNode, seeds: Seeds, level: str, limits: Limits = DEFAULT_LIMITS,
                   refused: str | None = None,
                   log: Callable[[str], None] | None = None,
                   evidence: Evidence | None = None) -> list[CellVerdict]:
    """Grade every test cell of ``nb`` and write each verdict into its outputs.

    ``refused``: the submitted file was not a notebook (``nb`` is a stand-in): every
    check fails with that reason and nothing runs. ``evidence``, if given, collects each
    check's record and each answer's probe (:mod:`.evidence`).
    """
    cells = _test_cells(nb)
    wanted: dict[str, dict[str, bool]] = {}
    for cell, calls in cells:
        for call in calls if isinstance(calls, list) else []:
            wanted.setdefault(call.exercise, {})[call.part] = is_hidden(cell.source)
    results: dict[tuple[str, str], Result] = {}
    for exercise_id, parts in wanted.items():
        try:
            exercise = get(exercise_id)
            for part in parts:
                exercise.check_part(part)
        except (KeyError, ValueError) as error:
            for part in parts:
                results[exercise_id, part] = Result(exercise_id, part).fail(
                    Kind.ERROR, f"this check cannot be graded: {error}")
            continue
        if refused:
            found = _fail_all(exercise, parts, Kind.NO_ANSWER,
                              f"not run: the submitted file was refused: {refused}")
        else:
            needed = [*(get(r) for r in exercise.requires), exercise]
            sources = {e.id: answer_source(nb, e.answer_cell) for e in needed}
            missing = [e for e in needed if sources[e.id] is None]
            if missing:
                which = "" if missing[0] is exercise else f", which {exercise_id} needs"
                found = _fail_all(exercise, parts, Kind.NO_ANSWER, (
                    f"your notebook has no answer cell for {missing[0].id} (a solution cell "
                    f"with nbgrader id {missing[0].answer_cell}){which}: it was deleted, or "
                    "its nbgrader metadata was removed. Put your answer back into that cell "
                    "(copy it from a fresh copy of the assignment) and submit again."))
            else:
                found = run_exercise(exercise, "\n\n".join(sources.values()), parts, seeds,
                                     level, limits, evidence)
        if log is not None:
            passed = sum(r.passed for r in found.values())
            log(f"{exercise_id}: {passed}/{len(found)} checks passed")
        results.update({(exercise_id, part): r for part, r in found.items()})
    if evidence is not None:
        evidence.collect(cells, results)
    return _verdicts(cells, results)


def _verdicts(cells: list, results: dict[tuple[str, str], Result]) -> list[CellVerdict]:
    verdicts = []
    for cell, calls in cells:
        meta = cell.metadata.nbgrader
        points = float(meta.get("points", 0) or 0)
        if isinstance(calls, str):
            verdict = CellVerdict(meta["grade_id"], "?", "?", points, False,
                                  f"[FAIL] {calls}", [Kind.ERROR])
        else:
            found = [results[c.exercise, c.part] for c in calls]
            verdict = CellVerdict(meta["grade_id"], calls[0].exercise, calls[0].part, points,
                                  all(r.passed for r in found),
                                  "\n".join(r.report() for r in found),
                                  [k for r in found for k in r.kinds])
        cell.outputs = verdict.outputs()
        verdicts.append(verdict)
    return verdicts


def grade_file(path: str | Path, student: str | None = None) -> list[CellVerdict]:
    """Grade a notebook file as the grader will, without the course secret: the student's
    own check of their copy (hidden checks, where the file has them, are practice runs
    on the student's visible seeds)."""
    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    seeds = Seeds(student or student_id(), course_salt(path.parent))
    return grade_notebook(nb, seeds, isolation())
