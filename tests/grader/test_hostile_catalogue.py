"""The hostile catalogue: one student per attack, on the real assignments, autograded by
stock ``nbgrader autograde`` (and ``generate_feedback``) run from a course configured
like ``grading/``.

Every expected score is exact. Most attacks take a shortcut on ``linear_backward`` of
notebook 04 (6 of its 12 points) while ``matmul_backward`` stays honest: a shortcut that
is refused leaves 6. Blank notebooks, however they are dressed, score 0. Then: no
process, file or other student is harmed, every file the grader writes stays small,
and the batch exits 0.
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import nbformat
import pytest
from nbformat import NotebookNode

from backprop_course.checks.variants import rng_for
from backprop_course.grader import secret
from backprop_course.grader.exporter import refusal
from backprop_course.grader.pipeline import Course
from backprop_course.grader.sandbox import isolation
from backprop_course.grader.submissions import Example, build

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(isolation() != "full", reason="needs root and bubblewrap")]

NOTEBOOKS = Path(__file__).parents[2] / "notebooks"
MAX_FILE = 20 << 20  # every autograded notebook and feedback page stays under this
Edit = Callable[[NotebookNode, dict], None]


def cell(nb: NotebookNode, grade_id: str) -> NotebookNode:
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def answer(grade_id: str, source: str, uses_ctx: bool = False) -> Edit:
    """Replace a whole answer cell (``uses_ctx``: fill in the batch's ports and paths)."""
    def edit(nb: NotebookNode, ctx: dict) -> None:
        cell(nb, grade_id).source = source.format(**ctx) if uses_ctx else source
    return edit


def linear(body: str, uses_ctx: bool = False) -> Edit:
    """A ``linear_backward`` whose body is ``body``."""
    return answer("linear_backward_solution", "def linear_backward(x, weight, bias, grad_out):\n"
                  + "\n".join("    " + line for line in body.strip().splitlines()) + "\n",
                  uses_ctx)


def add_cell(after: str, source: str, cell_type: str = "code") -> Edit:
    def edit(nb: NotebookNode, ctx: dict) -> None:
        new = (nbformat.v4.new_code_cell if cell_type == "code"
               else nbformat.v4.new_markdown_cell)(source)
        nb.cells.insert(nb.cells.index(cell(nb, after)) + 1, new)
    return edit


def edit_test_cell(which: str, **changes: object) -> Edit:
    def edit(nb: NotebookNode, ctx: dict) -> None:
        target = cell(nb, which)
        if "source" in changes:
            target.source = str(changes["source"])
        target.metadata.nbgrader.update({k: v for k, v in changes.items() if k != "source"})
    return edit


def delete(*grade_ids: str) -> Edit:
    def edit(nb: NotebookNode, ctx: dict) -> None:
        nb.cells = [c for c in nb.cells
                    if c.metadata.get("nbgrader", {}).get("grade_id") not in grade_ids]
    return edit


def unmark(grade_id: str) -> Edit:
    def edit(nb: NotebookNode, ctx: dict) -> None:
        del cell(nb, grade_id).metadata["nbgrader"]
    return edit


def forge_outputs(nb: NotebookNode, ctx: dict) -> None:
    """Every test cell carries a passing report, an old-style payload and a count."""
    for c in nb.cells:
        if c.metadata.get("nbgrader", {}).get("grade"):
            c.outputs = [nbformat.v4.new_output("stream", name="stdout", text="[PASS]\n"),
                         nbformat.v4.new_output("display_data", data={
                             "application/vnd.backprop-course.check+json": {
                                 "version": 1, "exercise": "linear_backward", "part": "given",
                                 "seed": 0, "outcomes": []}, "text/plain": ""})]
            c.execution_count = 1


def forge_metadata(nb: NotebookNode, ctx: dict) -> None:
    nb.metadata["backprop_course"] = {"refused": "nothing to see", "autograded": True}


def big_markdown(nb: NotebookNode, ctx: dict) -> None:
    nb.cells.insert(0, nbformat.v4.new_markdown_cell("<" * (15 << 20)))


def stored_display_flood(nb: NotebookNode, ctx: dict) -> None:
    """1000 stored display outputs of 10 kB (and the code that would update them all)."""
    nb.cells[0:0] = [nbformat.v4.new_code_cell(
        "from IPython.display import display, update_display\n"
        "for _ in range(1000):\n    display('x', display_id='same')\n"
        "update_display('x' * 10**8, display_id='same')",
        outputs=[nbformat.v4.new_output("display_data", data={"text/plain": "x" * 10_000})
                 for _ in range(1000)])]


HONEST_LINEAR = "return grad_out @ weight, grad_out.T @ x, grad_out.sum(axis=0)"
SIGN_LINEAR = "return -grad_out @ weight, -grad_out.T @ x, -grad_out.sum(axis=0)"
TORCH_LINEAR = '''xt = {mod}.tensor(x, requires_grad=True)
wt = {mod}.tensor(weight, requires_grad=True)
bt = {mod}.tensor(bias, requires_grad=True)
({mod}.nn.functional.linear(xt, wt, bt) * {mod}.tensor(grad_out)).sum().backward()
return xt.grad.numpy(), wt.grad.numpy(), bt.grad.numpy()'''
FINITE_DIFFERENCES = '''def f(x, weight, bias):
    return x @ weight.T + bias
grads = []
args = [x, weight, bias]
for k, a in enumerate(args):
    g = np.zeros_like(a)
    for i in np.ndindex(a.shape):
        old = a[i]
        a[i] = old + 1e-5
        plus = np.sum(f(*args) * grad_out)
        a[i] = old - 1e-5
        minus = np.sum(f(*args) * grad_out)
        a[i] = old
        g[i] = (plus - minus) / 2e-5
    grads.append(g)
return tuple(grads)'''
COMPLEX_STEP = '''grads = []
args = [x.astype(complex), weight.astype(complex), bias.astype(complex)]
for k, a in enumerate(args):
    g = np.zeros(a.shape)
    for i in np.ndindex(a.shape):
        a[i] += 1e-20j
        g[i] = np.sum((args[0] @ args[1].T + args[2]) * grad_out).imag / 1e-20
        a[i] -= 1e-20j
    grads.append(g)
return tuple(grads)'''
READ_COURSE = '''import os
for path in {targets!r} + ["/etc/shadow", "/root/.bashrc", "/root/.ssh"]:
    if os.path.exists(path):
        raise ValueError("ATTACK SUCCEEDED: found " + path)
''' + HONEST_LINEAR
WRITE_OUTSIDE = '''for path in {write_targets!r}:
    try:
        open(path, "w").write("pwned")
    except OSError:
        pass
''' + HONEST_LINEAR
NETWORK = '''import socket
for host in ("127.0.0.1", "localhost", "10.0.2.2"):
    try:
        socket.create_connection((host, {port}), timeout=1).sendall(b"ATTACK")
    except OSError:
        pass
''' + HONEST_LINEAR
FORGED_FRAME = '''import os, struct
for fd in range(3, 12):
    try:
        os.write(fd, struct.pack(">I", 2**31) + b"x" * 100)
    except OSError:
        pass
''' + HONEST_LINEAR

#: student -> (edits of the honest notebook, expected score out of 12); "blank" bases
#: start from the untouched release instead
CATALOGUE_04: dict[str, tuple[str, list[Edit], float]] = {
    "honest": ("solution", [], 12),
    # blank answers, dressed up
    "blank": ("blank", [], 0),
    "blank_forged_outputs": ("blank", [forge_outputs], 0),
    "blank_publishes_payload": ("blank", [add_cell(
        "linear_backward_solution", 'from IPython.display import display\ndisplay({'
        '"application/vnd.backprop-course.check+json": {"version": 1, "exercise": '
        '"linear_backward", "part": "given", "seed": 0, "outcomes": []}}, raw=True)')], 0),
    "blank_swaps_check": ("blank", [add_cell(
        "matmul_backward_solution", "import backprop_course.checks as c\n"
        "c.check.__code__ = (lambda *a, **k: print('[PASS]')).__code__\n"
        "check = lambda *a, **k: print('[PASS]')")], 0),
    "blank_patches_in_answer": ("blank", [answer(
        "linear_backward_solution", "import backprop_course.checks as c\n"
        "c.check = lambda *a, **k: None\nraise NotImplementedError()")], 0),
    # a backward pass somebody else computes
    "torch_name_from_imports": ("solution", [linear(TORCH_LINEAR.format(mod="torch"))], 6),
    "torch_sys_modules": ("solution", [linear("import sys\nt = sys.modules['tor' + 'ch']\n"
                                              + TORCH_LINEAR.format(mod="t"))], 6),
    "torch_builtins_import": ("solution", [linear(
        "t = getattr(__builtins__, '__im' + 'port__')('tor' + 'ch')\n"
        + TORCH_LINEAR.format(mod="t"))], 6),
    "torch_sys_path": ("solution", [linear(
        f"import sys\nsys.path[:0] = {sys.path!r}\nimport torch as t\n"
        + TORCH_LINEAR.format(mod="t"))], 6),
    "engine_name_from_imports": ("solution", [linear(
        "xb = bc.tensor(x, requires_grad=True)\nwb = bc.tensor(weight, requires_grad=True)\n"
        "bb = bc.tensor(bias, requires_grad=True)\n"
        "bc.functional.linear(xb, wb, bb).backward(grad_out)\n"
        "return xb.grad.data, wb.grad.data, bb.grad.data")], 6),
    "engine_import": ("solution", [linear(
        "import backprop_course as b\nreturn b.gradcheck.numerical_vjp(lambda v: v, x, grad_out)")],
        6),
    "reference_via_globals": ("solution", [linear(
        "ex = check.__globals__['get']('linear_backward')\n"
        "return ex.torch_reference({'x': x, 'weight': weight, 'bias': bias, "
        "'grad_out': grad_out})")], 6),
    "finite_differences": ("solution", [linear(FINITE_DIFFERENCES)], 6),
    "complex_step": ("solution", [linear(COMPLEX_STEP)], 6),
    "unmarked_answer_cell": ("solution", [unmark("linear_backward_solution")], 6),
    "rewritten_answer_cell": ("solution", [delete("linear_backward_solution"), add_cell(
        "linear_backward_given", "import torch\ndef linear_backward(x, weight, bias, grad_out):\n"
        + "\n".join("    " + x for x in TORCH_LINEAR.format(mod="torch").splitlines()))], 6),
    # the grader's own data
    "forged_metadata": ("solution", [forge_metadata], 12),
    "forged_frame": ("solution", [linear(FORGED_FRAME)], 6),
    "malformed_return": ("solution", [linear(
        "import numpy as np\nreturn np.ones((1,) * 40), {'a': 1}, np.ones(10**7 + 1)")], 6),
    # locked cells and points, with a sign mistake in linear (its shape check still passes)
    "edits_test_cells": ("solution", [linear(SIGN_LINEAR), edit_test_cell(
        "linear_backward_given", source="print('[PASS]')"), edit_test_cell(
        "linear_backward_edge", points=100, grade_id="bonus"), delete(
        "linear_backward_random")], 7),
    "edits_metadata": ("solution", [linear(SIGN_LINEAR), edit_test_cell(
        "linear_backward_given", grade=False, solution=True, locked=False, schema_version=1)],
        7),
    # limits and isolation: each ends the linear answer only
    "endless_cell": ("solution", [answer("linear_backward_solution", "while True:\n    pass")],
                     6),
    "sleeps": ("solution", [linear("import time\ntime.sleep(600)")], 6),
    "os_exit": ("solution", [linear("import os\nos._exit(0)")], 6),
    "fork_bomb": ("solution", [answer("linear_backward_solution",
                                      "import os\nwhile True:\n    os.fork()")], 6),
    "memory_hog": ("solution", [linear("hog = [bytearray(1 << 26) for _ in range(64)]")], 6),
    "prints_a_lot": ("solution", [linear("import sys\nprint('x' * (64 << 20))\n"
                                         "sys.stderr.write('y' * (64 << 20))\n" + HONEST_LINEAR)],
                     12),
    "reads_course": ("solution", [linear(READ_COURSE, uses_ctx=True)], 12),
    "writes_outside": ("solution", [linear(WRITE_OUTSIDE, uses_ctx=True)], 12),
    "network": ("solution", [linear(NETWORK, uses_ctx=True)], 12),
    # what the pages show: inert (tests/browser), and small
    "html_carriers": ("solution", [add_cell(
        "linear_backward_solution", "<script>document.title='PWNED'</script>"
        "<img src=x onerror=\"document.title='PWNED'\">", cell_type="markdown")], 12),
    "big_markdown": ("solution", [big_markdown], 12),
    "stored_display_flood": ("solution", [stored_display_flood], 12),
}
BAD_FILES: dict[str, tuple[Callable[[Path], None], str]] = {
    "corrupt_json": (lambda p: p.write_text('{"cells": [ nope'), "corrupt notebook"),
    "binary": (lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n\0\0" * 100), "binary data"),
    "wrong_version": (lambda p: p.write_text(json.dumps(
        {"nbformat": 3, "nbformat_minor": 0, "metadata": {}, "worksheets": []})),
        "wrong notebook version"),
    "huge": (lambda p: p.write_bytes(b" " * (60 << 20)), "file too large"),
}
ENGINE_LOOP = "def backward(output, grad_output):\n    {body}\n"
CATALOGUE_07: dict[str, tuple[str, list[Edit], float]] = {
    "honest": ("solution", [], 17),
    "blank_forged_outputs": ("blank", [forge_outputs], 0),
    "engine_loop_method": ("solution", [answer("engine_backward_solution", ENGINE_LOOP.format(
        body="bc.Tensor.backward(output, grad_output)"))], 7),
    "engine_loop_import": ("solution", [answer("engine_backward_solution", ENGINE_LOOP.format(
        body="from backprop_course.backward import run_backward\n"
             "    run_backward(output.grad_fn, grad_output)"))], 7),
    "engine_loop_torch": ("solution", [answer("engine_backward_solution", ENGINE_LOOP.format(
        body="torch.autograd.backward(output, grad_output)"))], 7),
    "tanh_apply_is_engine": ("solution", [answer(
        "tanh_function_solution", "class Tanh(bc.Function):\n"
        "    apply = staticmethod(lambda x: x.tanh())")], 10),
    "tanh_builtin_backward": ("solution", [answer(
        "tanh_function_solution", "class Tanh(bc.ops.Tanh):\n    pass")], 10),
}


def digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def hand_in(course: Course, assignment: str, catalogue: dict, ctx: dict) -> None:
    release = course.release(assignment)
    source = nbformat.read(course.path("source", assignment), as_version=4)
    for student, (base, edits, _) in catalogue.items():
        nb = build(release, source, Example(student, base))
        for edit in edits:
            edit(nb, ctx)
        path = course.path("submitted", assignment, student)
        path.parent.mkdir(parents=True)
        nbformat.write(nb, path)


def nbgrader(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=root,
                          capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Every catalogue handed in; one stock autograde and feedback run per assignment."""
    root = tmp_path_factory.mktemp("hostile")
    course = Course(root / "course", NOTEBOOKS, log=lambda _: None)
    with (course.root / "nbgrader_config.py").open("a") as f:  # shorter waits, same rules
        f.write("c = get_config()  # noqa: F821\nc.GradeAnswers.cell_seconds = 4\n"
                "c.GradeAnswers.case_seconds = 4\n")
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    server.settimeout(0)
    canary = root / "canary"
    ctx = {"port": server.getsockname()[1],
           "targets": [str(course.root / "gradebook.db"), str(course.root / "source"),
                       str(NOTEBOOKS), str(NOTEBOOKS.parent / "pyproject.toml"),
                       str(course.root / secret.SECRET_FILE)],
           "write_targets": [str(canary), str(course.root / "pwned"),
                             str(course.root / "autograded" / "honest" / "pwned")]}
    hand_in(course, "04_linear_layer", CATALOGUE_04, ctx)
    for student, (write, _) in BAD_FILES.items():
        path = course.path("submitted", "04_linear_layer", student)
        path.parent.mkdir(parents=True)
        write(path)
    honest = course.path("submitted", "04_linear_layer", "honest")
    linked = course.path("submitted", "04_linear_layer", "symlink")
    linked.parent.mkdir(parents=True)
    linked.write_bytes(honest.read_bytes())
    (linked.parent / "notes.txt").symlink_to(course.root / "gradebook.db")
    hand_in(course, "07_autograd_engine", CATALOGUE_07, ctx)
    before = {"source": digest(course.root / "source"), "notebooks": digest(NOTEBOOKS)}
    runs, seconds = {}, {}
    for assignment in ("04_linear_layer", "07_autograd_engine"):
        start = time.monotonic()
        runs[assignment] = nbgrader(course.root, "autograde", assignment)
        seconds[assignment] = time.monotonic() - start
        runs[assignment + "/feedback"] = nbgrader(course.root, "generate_feedback", assignment)
    connections = []
    try:
        while True:
            connections.append(server.accept())
    except BlockingIOError:
        pass
    server.close()
    return {"course": course, "runs": runs, "seconds": seconds, "connections": connections,
            "before": before, "canary": canary}


def total(course: Course, assignment: str, student: str) -> float:
    return sum(s for s, _ in course.scores(assignment)[student].values())


@pytest.mark.parametrize("student", list(CATALOGUE_04))
def test_04_exact_score(batch: dict, student: str) -> None:
    course: Course = batch["course"]
    scores = course.scores("04_linear_layer")[student]
    assert sum(m for _, m in scores.values()) == 12, scores  # points cannot be changed
    assert total(course, "04_linear_layer", student) == CATALOGUE_04[student][2], (
        scores, course.reports("04_linear_layer", student))


@pytest.mark.parametrize("student", list(CATALOGUE_07))
def test_07_exact_score(batch: dict, student: str) -> None:
    assert total(batch["course"], "07_autograd_engine", student) == CATALOGUE_07[student][2], \
        batch["course"].reports("07_autograd_engine", student)


def test_every_batch_exits_zero(batch: dict) -> None:
    for name, run in batch["runs"].items():
        assert run.returncode == 0, (name, run.stderr[-3000:])


def test_the_feedback_says_why_a_shortcut_scores_nothing(batch: dict) -> None:
    course: Course = batch["course"]
    expected = {"torch_name_from_imports": "NameError: name 'torch' is not defined",
                "torch_sys_modules": "KeyError",
                "torch_builtins_import": "No module named 'torch'",
                "torch_sys_path": "No module named 'torch'",
                "engine_name_from_imports": "name 'bc' is not defined",
                "engine_import": "No module named 'backprop_course'",
                "reference_via_globals": "name 'check' is not defined",
                "finite_differences": "numerical differentiation",
                "complex_step": "numerical differentiation",
                "unmarked_answer_cell": "no answer cell for linear_backward",
                "rewritten_answer_cell": "no answer cell for linear_backward",
                "endless_cell": "ran longer than",
                "sleeps": "took more than 5 s",
                "os_exit": "exited with code 0",
                "fork_bomb": "BlockingIOError",
                "memory_hog": "MemoryError",
                "forged_frame": "not a result",
                "malformed_return": "expected a numeric array"}
    for student, phrase in expected.items():
        report = course.reports("04_linear_layer", student)["linear_backward_given"]
        assert phrase in report, (student, report)


def test_hidden_checks_reveal_no_values(batch: dict) -> None:
    course: Course = batch["course"]
    report = course.reports("04_linear_layer", "edits_test_cells")
    assert "worst element" in report["linear_backward_given"]  # the student's own case
    hidden = report["linear_backward_random"]
    assert "wrong sign" in hidden and "expected" not in hidden and "worst element" not in hidden
    assert not re.search(r"\(\d+, \d+\)", hidden), hidden  # no shapes either


def test_bad_files_get_zero_and_a_page_that_says_why(batch: dict) -> None:
    course: Course = batch["course"]
    for student, (_, phrase) in BAD_FILES.items():
        assert total(course, "04_linear_layer", student) == 0
        page = nbformat.read(course.path("autograded", "04_linear_layer", student), 4)
        assert phrase in refusal(page)
    assert "symlink" not in course.scores("04_linear_layer")
    assert "holds symbolic links" in batch["runs"]["04_linear_layer"].stderr


def test_nothing_outside_was_touched_and_nothing_was_reached(batch: dict) -> None:
    course: Course = batch["course"]
    assert batch["before"] == {"source": digest(course.root / "source"),
                               "notebooks": digest(NOTEBOOKS)}
    assert not batch["canary"].exists() and not (course.root / "pwned").exists()
    assert not (course.root / "autograded" / "honest" / "pwned").exists()
    assert batch["connections"] == []
    for student in ("reads_course", "honest"):
        assert "ATTACK SUCCEEDED" not in str(course.reports("04_linear_layer", student))


def test_files_the_grader_writes_stay_small(batch: dict) -> None:
    course: Course = batch["course"]
    for folder in ("autograded", "feedback"):
        for path in (course.root / folder).rglob("*"):
            if path.is_file():
                assert path.stat().st_size < MAX_FILE, (path, path.stat().st_size)


def test_our_own_metadata_cannot_be_forged(batch: dict) -> None:
    course: Course = batch["course"]
    page = nbformat.read(course.path("autograded", "04_linear_layer", "forged_metadata"), 4)
    ours = page.metadata["backprop_course"]
    assert {k: v for k, v in ours.items() if k != "diagnoses"} == {"autograded": True}
    assert ours["diagnoses"]["checks"]  # the grader's record (issue 13), not the student's


def test_the_honest_students_are_untouched(batch: dict) -> None:
    course: Course = batch["course"]
    for assignment in ("04_linear_layer", "07_autograd_engine"):
        reports = course.reports(assignment, "honest")
        assert all(r.startswith("[PASS]") for r in reports.values()), reports


def test_the_gradebook_is_consistent(batch: dict) -> None:
    with sqlite3.connect(batch["course"].root / "gradebook.db") as con:
        assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        duplicates = con.execute("SELECT cell_id, notebook_id, count(*) FROM grade "
                                 "GROUP BY cell_id, notebook_id HAVING count(*) > 1").fetchall()
        assert duplicates == []


def test_seconds_per_attack_are_bounded(batch: dict) -> None:
    """Timeouts (4 s per case or cell here, 5 s for a large case) bound the batch."""
    students = len(CATALOGUE_04) + len(BAD_FILES)
    assert batch["seconds"]["04_linear_layer"] < 4 * students + 60, batch["seconds"]


def test_the_students_own_numbers_are_not_the_decks(tmp_path: Path) -> None:
    """The by-hand answers of the decks' point score nothing at a student's own point."""
    from backprop_course.checks import get

    exercise = get("add_mul_by_hand")
    numbers = exercise.provides(rng_for("salt", "alice", "add_mul_by_hand", "provides"))
    assert (numbers["x"], numbers["y"], numbers["z"]) != (-2.0, 5.0, -4.0)
    for part, deck in {"dfdx": -4.0, "dfdy": -4.0, "dfdz": 3.0}.items():
        if exercise.solve(numbers)[part] != deck:
            assert not exercise.judge(part, numbers, {"value": deck}).passed
