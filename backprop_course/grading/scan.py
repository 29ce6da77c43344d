"""A static scan of the student's answers: a backward pass must be written by hand.

The trusted verdicts judge what the student's function returned, not how it computed
it, so an answer that calls torch's autograd (or the course's own reference code in
``backprop_course.grading``) would pass. This scan reads the *submitted* source of every
answer cell (nbgrader keeps it: solution cells are not locked) with :mod:`ast` and looks
for:

- an import of an autodiff library (torch, functorch, jax, tensorflow, autograd) or of
  ``backprop_course.grading``, by ``import``/``from``, ``__import__``,
  ``importlib.import_module`` or an attribute such as ``bc.grading``;
- a dynamic import of a computed name, ``exec``, ``eval`` or ``compile`` (code the scan
  cannot read).

An answer cell is a solution cell, or a cell the student added that redefines a name a
solution cell defines. A finding fails every test cell of that answer: the test cells
that use a name the cell defines and, for a solution cell ``<exercise>_solution``, the
test cells whose grade id starts with ``<exercise>_``; the feedback says why.

It is a tripwire, not a proof: a determined student can hide a call from any static
scan (see docs/THREAT-MODEL.md).
"""

from __future__ import annotations

import ast
from typing import Any

import nbformat
from nbformat import NotebookNode
from nbgrader.preprocessors import NbGraderPreprocessor

from .trusted import is_test_cell

AUTODIFF = ("torch", "functorch", "jax", "tensorflow", "autograd")
INTERNALS = "backprop_course.grading"
DYNAMIC_IMPORTS = ("__import__", "import_module")
STRING_CODE = ("exec", "eval", "compile")


def _forbidden_module(name: str) -> str | None:
    """Why importing module ``name`` is forbidden in an answer, or None."""
    if name.split(".")[0] in AUTODIFF:
        return f"imports {name} (an autodiff library does the work)"
    if name == INTERNALS or name.startswith(INTERNALS + "."):
        return f"imports {name} (the course's grading code)"
    return None


def _call_name(node: ast.Call) -> str | None:
    func = node.func
    if isinstance(func, ast.Name):
        return func.id
    return func.attr if isinstance(func, ast.Attribute) else None


def _builtin_name(node: ast.Call) -> str | None:
    """``f`` for ``f(...)`` or ``builtins.f(...)``; None for methods like ``re.compile``."""
    func = node.func
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and \
            func.value.id in ("builtins", "__builtins__"):
        return func.attr
    return func.id if isinstance(func, ast.Name) else None


def findings(source: str) -> list[str]:
    """What is forbidden in one answer cell's source (empty if nothing, or if it does not
    parse: then it fails by itself)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [_forbidden_module(a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.append(_forbidden_module(node.module))
            found += [_forbidden_module(f"{node.module}.{a.name}") for a in node.names]
        elif isinstance(node, ast.Attribute) and node.attr == "grading":
            found.append(f"uses {ast.unparse(node)} (the course's grading code)")
        elif isinstance(node, ast.Call) and _call_name(node) in DYNAMIC_IMPORTS:
            arg = node.args[0] if node.args else None
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                found.append(_forbidden_module(arg.value))
            else:
                found.append(f"imports a computed module name ({ast.unparse(node)[:60]})")
        elif isinstance(node, ast.Call) and _builtin_name(node) in STRING_CODE:
            found.append(f"runs code from a string ({_builtin_name(node)}())")
    return sorted({f for f in found if f})


def bound_names(source: str) -> set[str]:
    """Names a cell binds at its top level (functions, classes, assignments, imports)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
    return names


def used_names(source: str) -> set[str]:
    """Every name a cell reads."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}


def _meta(cell: NotebookNode) -> dict[str, Any]:
    return cell.get("metadata", {}).get("nbgrader", {})


def scan_notebook(nb: NotebookNode) -> dict[str, list[str]]:
    """Per test cell grade id, the findings in the answers it tests."""
    code = [c for c in nb.cells if c.get("cell_type") == "code"]
    solutions = [c for c in code if _meta(c).get("solution")]
    answers = set().union(*(bound_names(c.source) for c in solutions))
    tests = [c for c in code if is_test_cell(c)]
    out: dict[str, list[str]] = {}
    for cell in code:
        meta = _meta(cell)
        if meta.get("solution"):
            names, prefix = bound_names(cell.source), str(meta.get("grade_id", ""))
            prefix = prefix.removesuffix("solution") if prefix.endswith("_solution") else None
        elif not meta.get("locked") and not meta.get("grade"):
            names, prefix = bound_names(cell.source) & answers, None
            if not names:
                continue
        else:
            continue
        found = findings(cell.source)
        if not found:
            continue
        for test in tests:
            grade_id = str(_meta(test).get("grade_id", ""))
            if used_names(test.source) & names or (prefix and grade_id.startswith(prefix)):
                out.setdefault(grade_id, []).extend(f for f in found
                                                    if f not in out.get(grade_id, []))
    return out


def verdict(findings_: list[str], previous: list[NotebookNode]) -> list[NotebookNode]:
    """The failing outputs of a test cell whose answer has ``findings_``; the verdict it
    had before (``previous``) follows, for information."""
    before = "".join(str(o.get("text", "")) + str(o.get("evalue", "")) for o in previous)
    report = ("[FAIL] this answer must be written by hand, but its cell "
              + "; ".join(findings_) + ". This check scores 0."
              + (f"\n(without that, the check said:)\n{before}" if before else ""))
    return [nbformat.v4.new_output("error", ename="HandWrittenRule", evalue=report,
                                   traceback=[f"HandWrittenRule: {report}"])]


class SolutionScan(NbGraderPreprocessor):
    """nbgrader preprocessor: fail the test cells of answers that use torch, the grading
    code or code in strings (run it after :class:`.TrustedVerdicts`)."""

    def preprocess(self, nb: NotebookNode, resources: dict) -> tuple[NotebookNode, dict]:
        flagged = scan_notebook(nb)
        for cell in nb.cells:
            grade_id = _meta(cell).get("grade_id")
            if cell.get("cell_type") == "code" and grade_id in flagged and is_test_cell(cell):
                self.log.warning("%s: %s", grade_id, "; ".join(flagged[grade_id]))
                cell.outputs = verdict(flagged[grade_id], cell.outputs)
        return nb, resources
