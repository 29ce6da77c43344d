"""A synthetic cohort built from the example submissions, to test the instructor's report.

Each student answers every answer cell of the chosen assignments with one *variant*
drawn at random: the source notebook's solution, the untouched release (not attempted),
or one of the seeded mistakes of ``grading/examples/<assignment>.json`` for that cell.
Most students are right (:data:`RIGHT`); a cell's mistakes are drawn with weights that
halve from one to the next (in an order shuffled per cell), so that some mistakes are
common and some rare, as in a real class.

Independent students also write their own code: each answer is rewritten at random with
the same floating-point operations (operands of ``+`` and ``*`` swapped, ``np.multiply``
for ``*``, a part of an expression computed on its own line, a result named before it
is returned), and a rewriting is kept only if the answer returns bit for bit what it
returned before on the exercise's probe and on random and edge cases. *Planted copiers*
take another student's answer cells as they are, with the local variables renamed and
the code laid out anew (the usual disguise), after an original who went wrong in every
answer cell, in a way the probe shows wherever a mistake of that cell does.

:func:`draw` draws the cohort; :func:`hand_in` writes it into an nbgrader course's
``submitted/`` folder.
"""

from __future__ import annotations

import ast
import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
import numpy as np

from ..checks import get
from ..checks.exercise import VJPExercise
from ..checks.harness import CALLS
from .answers import grade_id, nbgrader_meta
from .evidence import probe_case
from .submissions import fill, load_examples, solutions

SOLUTION, BLANK = "solution", "blank"
#: How often a student is right, and how often they leave an answer as released.
RIGHT, LEFT_BLANK = 0.7, 0.05
#: The timestamp every synthetic submission carries.
TIMESTAMP = "2026-01-09 12:00:00 UTC"


@dataclass(frozen=True)
class Variant:
    """One way to fill one answer cell: its name, the cell's source (None: as released)
    and whether the probe shows it (it returns something else than the solution there)."""

    name: str
    source: str | None
    shows: bool = False


@dataclass
class StudentPlan:
    """One synthetic student: the variant of each (assignment, answer cell), the seed of
    their coding style and, for a copier, whom they copied."""

    name: str
    variants: dict[tuple[str, str], str]
    style: int
    copy_of: str | None = None


@dataclass
class Plan:
    """A cohort: its assignments, each answer cell's variants (solution, blank, then the
    mistakes from the most to the least common), and the students."""

    assignments: list[str]
    variants: dict[tuple[str, str], list[Variant]]
    students: list[StudentPlan] = field(default_factory=list)

    @property
    def planted(self) -> list[tuple[str, str]]:
        """The planted pairs (original, copier)."""
        return [(s.copy_of, s.name) for s in self.students if s.copy_of]


def exercise_of(cell: str) -> Any:
    """The exercise whose answer cell has nbgrader id ``cell`` (None if there is none)."""
    try:
        return get(cell.removesuffix("_solution"))
    except KeyError:
        return None


# ------------------------------------------------------- running our own answers
def _run(source: str, exercise: VJPExercise, cases: list[dict]) -> list[Any]:
    """What an answer cell's answer returns on ``cases`` (run here: these are our own
    examples, not students' code)."""
    engine = None
    if exercise.sandbox.engine:
        import backprop_course as engine
    namespace: dict[str, Any] = {}
    try:
        exec(compile(exercise.sandbox.preamble + source, "<cohort>", "exec"),  # noqa: S102
             namespace)
    except Exception as error:  # noqa: BLE001  (a blank answer's stub raises)
        return [type(error).__name__]
    out: list[Any] = []
    for case in cases:
        try:
            returned = CALLS[exercise.call](namespace[exercise.answer], case, exercise.inputs,
                                            exercise.wrt, engine)
            out.append([np.asarray(getattr(r, "data", r), dtype=np.float64) for r in returned])
        except Exception as error:  # noqa: BLE001
            out.append(type(error).__name__)
    return out


def _same(a: list[Any], b: list[Any]) -> bool:
    def one(x: Any, y: Any) -> bool:
        if isinstance(x, list) and isinstance(y, list):
            return len(x) == len(y) and all(
                u.shape == v.shape and np.array_equal(u, v, equal_nan=True)
                for u, v in zip(x, y, strict=True))
        return x == y
    return len(a) == len(b) and all(one(x, y) for x, y in zip(a, b, strict=True))


def _cases(exercise: VJPExercise) -> list[dict]:
    """The probe case and some random and edge cases (to check a restyled answer)."""
    rng = np.random.default_rng(0)
    cases = [probe_case(exercise).values, *(c.values for c in exercise.cases("random", rng))]
    if exercise.edge is not None:
        cases += [c.values for c in exercise.cases("edge", rng)]
    return cases


# ------------------------------------------------------------ styles and disguises
def _replace(tree: ast.AST, old: ast.AST, new: ast.AST) -> None:
    """Put ``new`` where ``old`` is in ``tree``."""
    for node in ast.walk(tree):
        for name, value in ast.iter_fields(node):
            if value is old:
                setattr(node, name, new)
                return
            if isinstance(value, list) and any(item is old for item in value):
                value[[item is old for item in value].index(True)] = new
                return


class _Restyle(ast.NodeTransformer):
    """Rewrite a function the way another student might have written it, with the same
    floating-point operations: swap the operands of ``+`` and ``*``, write a product as
    ``np.multiply``, compute a part of an expression on a line of its own, name what is
    returned, all at random."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:  # noqa: N802 (ast's naming)
        self.generic_visit(node)
        if isinstance(node.op, (ast.Add, ast.Mult)) and self.rng.random() < 0.5:
            node.left, node.right = node.right, node.left
        if isinstance(node.op, ast.Mult) and self.rng.random() < 0.25:
            return ast.Call(ast.Attribute(ast.Name("np", ast.Load()), "multiply", ast.Load()),
                            [node.left, node.right], [])
        return node

    def _hoist(self, statement: ast.stmt) -> list[ast.stmt]:
        """``statement`` with one of its inner products or sums computed first."""
        inner = [n for n in ast.walk(statement.value) if isinstance(n, ast.BinOp)
                 and n is not statement.value]
        if not inner or self.rng.random() < 0.5:
            return [statement]
        part = self.rng.choice(inner)
        name = self.rng.choice(["part", "term", "factor", "piece"])
        _replace(statement.value, part, ast.Name(name, ast.Load()))
        return [ast.Assign([ast.Name(name, ast.Store())], part), statement]

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:  # noqa: N802
        self.generic_visit(node)
        body: list[ast.stmt] = []
        for statement in node.body:
            if isinstance(statement, (ast.Assign, ast.Return)) and statement.value is not None:
                body += self._hoist(statement)
            else:
                body.append(statement)
        node.body = []
        for statement in body:
            if isinstance(statement, ast.Return) and statement.value is not None \
                    and not isinstance(statement.value, ast.Name) and self.rng.random() < 0.5:
                name = self.rng.choice(["result", "grads", "out", "answer"])
                node.body += [ast.Assign([ast.Name(name, ast.Store())], statement.value),
                              ast.Return(ast.Name(name, ast.Load()))]
            else:
                node.body.append(statement)
        return node


class _Rename(ast.NodeTransformer):
    """Rename every local variable a function assigns (not its parameters)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.names: dict[str, str] = {}

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:  # noqa: N802
        params = {a.arg for a in node.args.args}
        stored = sorted({n.id for n in ast.walk(node) if isinstance(n, ast.Name)
                         and isinstance(n.ctx, ast.Store)} - params)
        self.names = {name: f"{self.rng.choice(['tmp', 'val', 'my', 'q'])}_{name[::-1]}{i}"
                      for i, name in enumerate(stored)}
        self.generic_visit(node)
        return node

    def visit_Name(self, node: ast.Name) -> ast.AST:  # noqa: N802
        node.id = self.names.get(node.id, node.id)
        return node


def restyle(source: str, exercise: Any, seed: int, tries: int = 5) -> str:
    """An independent student's way to write ``source``: the first of ``tries`` random
    rewritings that returns bit for bit what ``source`` returns on the exercise's probe,
    random and edge cases (``source`` itself if none does)."""
    if not isinstance(exercise, VJPExercise):
        return source
    cases = _cases(exercise)
    original = _run(source, exercise, cases)
    for attempt in range(tries):
        tree = _Restyle(random.Random(seed + attempt)).visit(ast.parse(source))
        styled = ast.unparse(ast.fix_missing_locations(tree))
        if _same(_run(styled, exercise, cases), original):
            return styled
    return source


def disguise(source: str, seed: int) -> str:
    """A copier's version of ``source``: local variables renamed, comments and blank
    lines added, the layout redone."""
    rng = random.Random(seed)
    renamed = ast.unparse(ast.fix_missing_locations(_Rename(rng).visit(ast.parse(source))))
    lines = ["# my answer", ""]
    for line in renamed.splitlines():
        lines.append(line)
        if line.strip().startswith(("def ", "return")):
            lines.append("")
        elif rng.random() < 0.3:
            lines.append(" " * (len(line) - len(line.lstrip())) + "# next step")
    return "\n".join(lines).rstrip() + "\n"


# ----------------------------------------------------------------- the cohort
def variants(examples_dir: Path, assignment: str, source: Any, release: Any
             ) -> dict[str, list[Variant]]:
    """Per answer cell of an assignment: the solution, blank, and each distinct seeded
    mistake of its examples file (in the file's order)."""
    right = solutions(source)
    stubs = {grade_id(c): c.source for c in release.cells
             if nbgrader_meta(c).get("solution") and c.cell_type == "code"}
    solved = {cell: fill(stubs[cell], right[cell]) for cell in stubs}
    out = {cell: [Variant(SOLUTION, solved[cell]), Variant(BLANK, None)] for cell in stubs}
    _, examples = load_examples(examples_dir / f"{assignment}.json")
    for example in examples:
        if example.handed_in != "notebook":
            continue
        for cell, text in example.cells.items():
            filled = fill(stubs[cell], [text] if isinstance(text, str) else list(text))
            if any(v.source == filled for v in out[cell]):
                continue
            exercise = exercise_of(cell)
            shows = isinstance(exercise, VJPExercise) and not _same(
                *(_run(s, exercise, [probe_case(exercise).values])
                  for s in (filled, solved[cell])))
            out[cell].append(Variant(example.name, filled, shows))
    return out


def draw(examples_dir: Path, sources: dict[str, Any], releases: dict[str, Any],
         students: int = 200, planted: int = 4, seed: int = 0) -> Plan:
    """Draw a cohort of ``students`` independent students (``planted`` of them are
    copied) and ``planted`` copiers.

    Parameters
    ----------
    examples_dir : ``grading/examples``
    sources, releases : per assignment, its source notebook and its released notebook
    students, planted, seed : the cohort's size, its copy pairs, its random seed
    """
    rng = np.random.default_rng(seed)
    cells: dict[tuple[str, str], list[Variant]] = {}
    for assignment in releases:
        for cell, found in variants(examples_dir, assignment, sources[assignment],
                                    releases[assignment]).items():
            mistakes = [found[2 + i] for i in rng.permutation(len(found) - 2)]
            cells[assignment, cell] = found[:2] + mistakes
    cohort = Plan(list(releases), cells)

    def choose(options: list[Variant], copied: bool) -> str:
        mistakes = options[2:]
        if copied and mistakes:
            pool = [v for v in mistakes if v.shows] or mistakes
            return pool[int(rng.integers(len(pool)))].name
        weights = 0.5 ** np.arange(len(mistakes))
        p = np.concatenate([[RIGHT, LEFT_BLANK],
                            (1 - RIGHT - LEFT_BLANK) * weights / max(weights.sum(), 1)])
        return options[int(rng.choice(len(options), p=p / p.sum()))].name

    originals = set(rng.choice(students, size=planted, replace=False).tolist())
    for number in range(students):
        chosen = {key: choose(options, number in originals) for key, options in cells.items()}
        cohort.students.append(StudentPlan(f"student-{number:03d}", chosen,
                                           int(rng.integers(2**31))))
    for number, original in enumerate(sorted(originals)):
        source = cohort.students[original]
        cohort.students.append(StudentPlan(f"student-{students + number:03d}",
                                           dict(source.variants), source.style, source.name))
    return cohort


def notebook(cohort: Plan, student: StudentPlan, assignment: str, release: Any) -> Any:
    """The notebook ``student`` hands in for ``assignment``."""
    nb = nbformat.from_dict(json.loads(json.dumps(release)))
    for index, cell in enumerate(nb.cells):
        key = (assignment, grade_id(cell))
        if key not in cohort.variants:
            continue
        chosen = next(v for v in cohort.variants[key] if v.name == student.variants[key])
        if chosen.source is None:
            continue
        text = restyle(chosen.source, exercise_of(key[1]), student.style + index)
        cell.source = disguise(text, student.style + 7 * index) if student.copy_of else text
    return nb


def hand_in(cohort: Plan, root: Path, releases: dict[str, Any]) -> None:
    """Write every student's submissions into ``root/submitted``."""
    for student in cohort.students:
        for assignment in cohort.assignments:
            folder = root / "submitted" / student.name / assignment
            folder.mkdir(parents=True, exist_ok=True)
            nbformat.write(notebook(cohort, student, assignment, releases[assignment]),
                           folder / f"{assignment}.ipynb")
            (folder / "timestamp.txt").write_text(TIMESTAMP)
