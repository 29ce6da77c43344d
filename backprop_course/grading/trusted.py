"""Trusted verdicts: grade check cells outside the student's kernel.

Code in the kernel can patch numpy, builtins and :func:`~.exercise.check` itself, so the
kernel's verdict (an error or not) decides nothing here. For every graded test cell the
grader process

1. parses the cell's source with :mod:`ast` to learn which checks it runs (exercise, part,
   seed); nbgrader restores that source from the gradebook, so the student cannot change it;
2. reads, in order, the data each check published (:mod:`.wire`): only the arrays the
   student's code returned, never a verdict;
3. regenerates the cases and references and judges the arrays with
   :meth:`.Exercise.judge`;
4. rewrites the cell's outputs so that nbgrader's stock ``determine_grade`` gives the
   trusted score: the report on stdout when it passes, an ``AssertionError`` output
   carrying the report when it fails.

:class:`TrustedVerdicts` is the nbgrader preprocessor (after ``Execute`` in
``Autograde.autograde_preprocessors``); :func:`grade_notebook` does the same without
nbgrader, on any notebook file. A check cell that the executor stopped or did not run
(a ``GradingStopped`` error: a limit breach in or above it) fails with the executor's
message, whatever data it published.
"""

from __future__ import annotations

import ast
import contextlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
from nbformat import NotebookNode
from nbgrader.preprocessors import NbGraderPreprocessor

from ..sandbox.execute import ENAME as STOPPED
from ..sandbox.execute import SandboxedExecute
from . import exercises as _exercises  # noqa: F401  (register every exercise now)
from . import wire
from .exercise import GRADER_ENV, Result, get

CHECK_ARGUMENTS = ("exercise_id", "student", "part", "seed")
LITERALS = "check() needs a literal exercise id, part and seed"


@dataclass(frozen=True)
class CheckCall:
    """One ``check(exercise_id, student, part, seed)`` call of a test cell."""

    exercise: str
    part: str
    seed: int = 0


class UngradableCellError(ValueError):
    """A test cell whose checks cannot be read from its source."""


def _is_check(node: ast.AST) -> bool:
    return isinstance(node, ast.Call) and (
        (isinstance(node.func, ast.Name) and node.func.id == "check")
        or (isinstance(node.func, ast.Attribute) and node.func.attr == "check"))


def check_calls(source: str) -> list[CheckCall]:
    """The checks a test cell runs, in order.

    Only top-level expression statements ``check("id", fn, part="...", seed=N)`` with
    literal id, part and seed count; a check call anywhere else makes the cell ungradable.

    Raises
    ------
    UngradableCellError
    """
    try:
        tree = ast.parse(source)
    except SyntaxError as error:
        raise UngradableCellError(f"the test cell does not parse: {error}") from error
    top = [s.value for s in tree.body if isinstance(s, ast.Expr) and _is_check(s.value)]
    if sum(_is_check(n) for n in ast.walk(tree)) != len(top):
        raise UngradableCellError("check() must be called at the top level of a test cell")
    calls = []
    for node in top:
        if any(isinstance(a, ast.Starred) for a in node.args) or any(
                k.arg is None for k in node.keywords):
            raise UngradableCellError("check() must be called without * or ** arguments")
        named = dict(zip(CHECK_ARGUMENTS, node.args, strict=False))
        named.update({k.arg: k.value for k in node.keywords})
        try:
            values = {k: ast.literal_eval(named[k]) for k in ("exercise_id", "part")}
            seed = ast.literal_eval(named["seed"]) if "seed" in named else 0
        except (KeyError, ValueError) as error:
            raise UngradableCellError(LITERALS) from error
        if not (isinstance(values["exercise_id"], str) and isinstance(values["part"], str)
                and type(seed) is int):
            raise UngradableCellError(LITERALS)
        calls.append(CheckCall(values["exercise_id"], values["part"], seed))
    return calls


def _payloads(outputs: list) -> list[Any]:
    return [o["data"][wire.MIME] for o in outputs
            if o.get("output_type") == "display_data" and wire.MIME in o.get("data", {})]


def _stopped(outputs: list) -> str | None:
    """The sandbox's message if grading stopped in or above this cell (a limit breach)."""
    for output in outputs:
        if output.get("output_type") == "error" and output.get("ename") == STOPPED:
            return str(output.get("evalue"))[:1000]
    return None


def _why_not_run(outputs: list) -> str:
    for output in outputs:
        if output.get("output_type") == "error":
            return (f"the check did not run: {str(output.get('ename'))[:100]}: "
                    f"{str(output.get('evalue'))[:500]}")
    return "the check did not run (was check() replaced, or its output cleared?)"


@dataclass
class CellVerdict:
    """The trusted verdict on one graded test cell."""

    grade_id: str
    exercise: str
    points: float
    passed: bool
    report: str
    kinds: list[str] = field(default_factory=list)

    @property
    def score(self) -> float:
        return self.points if self.passed else 0.0

    def outputs(self) -> list[NotebookNode]:
        """Cell outputs from which nbgrader's ``determine_grade`` reads this verdict."""
        if self.passed:
            return [nbformat.v4.new_output("stream", name="stdout", text=self.report + "\n")]
        return [nbformat.v4.new_output("error", ename="AssertionError", evalue=self.report,
                                       traceback=[f"AssertionError: {self.report}"])]


def judge_cell(source: str, outputs: list) -> tuple[bool, str, list[str]] | None:
    """Judge one executed test cell: ``(passed, report, kinds)``, or None if the cell
    runs no check (then stock nbgrader grades it)."""
    try:
        calls = check_calls(source)
    except UngradableCellError as error:
        return False, f"[FAIL] this test cell cannot be graded: {error}", ["data"]
    if not calls:
        return None
    stopped = _stopped(outputs)
    if stopped is not None:
        return False, f"[FAIL] {calls[0].exercise} / {calls[0].part}\n  - {stopped}", ["error"]
    payloads = _payloads(outputs)
    reports, kinds = [], []
    for number, call in enumerate(calls):
        if number >= len(payloads):
            result = Result(call.exercise, call.part, True).fail("data", _why_not_run(outputs))
        else:
            try:
                outcomes = wire.outcomes_of(payloads[number], call.exercise, call.part,
                                            call.seed)
                result = get(call.exercise).judge(call.part, call.seed, outcomes)
            except wire.PayloadError as error:
                result = Result(call.exercise, call.part, True).fail("data", f"{error}.")
        reports.append(result.report())
        kinds += result.kinds
        if not result.passed:
            return False, "\n".join(reports), kinds
    if len(payloads) > len(calls):
        return False, (f"[FAIL] the cell published {len(payloads)} check results for "
                       f"{len(calls)} checks"), ["data"]
    return True, "\n".join(reports), kinds


def _exercise_of(source: str) -> str:
    try:
        return check_calls(source)[0].exercise
    except UngradableCellError:
        return "?"


def is_test_cell(cell: NotebookNode) -> bool:
    """An autograded test cell: a graded code cell that is not a solution."""
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return (cell.get("cell_type") == "code" and bool(meta.get("grade"))
            and not meta.get("solution"))


def judge_notebook(nb: NotebookNode) -> list[CellVerdict]:
    """Judge every check cell of an executed notebook and rewrite its outputs (see the
    module docstring); drop the check data from every other cell."""
    verdicts = []
    for cell in nb.cells:
        if cell.get("cell_type") != "code":
            continue
        judged = judge_cell(cell.source, cell.outputs) if is_test_cell(cell) else None
        if judged is None:
            cell.outputs = [o for o in cell.outputs
                            if not (o.get("output_type") == "display_data"
                                    and wire.MIME in o.get("data", {}))]
            continue
        meta = cell.metadata.nbgrader
        verdict = CellVerdict(meta["grade_id"], _exercise_of(cell.source),
                              float(meta.get("points", 0)), *judged)
        cell.outputs = verdict.outputs()
        verdicts.append(verdict)
    return verdicts


class TrustedVerdicts(NbGraderPreprocessor):
    """nbgrader preprocessor: replace the kernel's verdicts by trusted ones (run it right
    after ``Execute``)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # the references' torch, loaded before any student kernel runs (without torch,
        # the references are the numerical gradients alone)
        with contextlib.suppress(ImportError):
            import torch  # noqa: F401

    def preprocess(self, nb: NotebookNode, resources: dict) -> tuple[NotebookNode, dict]:
        for verdict in judge_notebook(nb):
            self.log.info("%s: %s (%g/%g points)", verdict.grade_id,
                          "pass" if verdict.passed else "FAIL", verdict.score, verdict.points)
        return nb, resources


def grade_notebook(path: str | Path, timeout: int = 60,
                   notebook_timeout: int = 600) -> tuple[NotebookNode, list[CellVerdict]]:
    """Execute a notebook in a fresh kernel (in its own folder) and judge its check
    cells, without nbgrader's gradebook: the student's self-check.

    Returns
    -------
    the executed notebook (outputs rewritten) and one verdict per check cell
    """
    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    quiet = logging.getLogger("backprop_course.check")  # no "no sandbox" warning: own code
    quiet.setLevel(logging.ERROR)
    executor = SandboxedExecute(timeout=timeout, notebook_timeout=notebook_timeout,
                                kernel_name="python3", sandbox=False, log=quiet,
                                kernel_env={GRADER_ENV: "trusted"})
    executor.preprocess(nb, {"metadata": {"path": str(path.parent.resolve())}})
    return nb, judge_notebook(nb)
