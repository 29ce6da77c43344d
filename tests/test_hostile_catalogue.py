"""The hostile catalogue: one student per attack, autograded in one stock ``nbgrader
autograde`` batch with the course's configuration (sandbox, trusted verdicts, scan).

The assignment is ``tests/fixtures/notebooks/relu_fixture.ipynb`` (8 points: the
``by_hand`` answers 1 + 1, then ``relu_backward`` 1 + 2 + 2 + 1). Most attacks sit in the
``relu_solution`` cell, after the two ``by_hand`` checks have passed: an attack that is
blocked raises (``relu_backward`` is never defined: 2 points), an attack that breaches a
limit stops the notebook there (the 2 points before it stay), an attack that would work
gains nothing. Every expected score is exact; the honest student gets 8.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import socket
import sqlite3
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import nbformat
import pytest
from nbformat import NotebookNode

from backprop_course.grading.exporter import refusal
from backprop_course.grading.pipeline import Course
from backprop_course.grading.submissions import Example, build
from backprop_course.sandbox.launch import isolation_level

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(isolation_level() != "full",
                                 reason="needs root on Linux (namespaces + a separate uid)")]

FIXTURES = Path(__file__).parent / "fixtures" / "notebooks"
HOSTILE = Path(__file__).parent / "hostile"
ASSIGNMENT = "relu_fixture"
HONEST_RELU = "def relu_backward(x, grad_out):\n    return grad_out * (x > 0)\n"
KINK_RELU = "def relu_backward(x, grad_out):\n    return grad_out * (x >= 0)\n"
WRONG_RELU = "def relu_backward(x, grad_out):\n    return grad_out\n"
BATCH_SECONDS = 240  # the bound on the whole batch (about 100 s on 2 idle cores)
LIMITS = '''
c = get_config()  # noqa: F821
c.Execute.timeout = 8
c.SandboxedExecute.notebook_timeout = 60
c.SandboxKernelManager.cpu_seconds = 6
'''

Edit = Callable[[NotebookNode, dict], None]


def snippet(name: str) -> str:
    return (HOSTILE / f"{name}.py").read_text()


def cell(nb: NotebookNode, grade_id: str) -> NotebookNode:
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def relu(source: str) -> Edit:
    """Replace the answer cell of ``relu_backward``."""
    def edit(nb: NotebookNode, ctx: dict) -> None:
        cell(nb, "relu_solution").source = source.format(**ctx)
    return edit


def attack(name: str, then: str = HONEST_RELU) -> Edit:
    """A hostile snippet at the top of the ``relu_backward`` answer cell."""
    def edit(nb: NotebookNode, ctx: dict) -> None:
        prelude = f"PORT = {ctx['port']}\nTARGETS = {ctx['targets'][name]!r}\n"
        cell(nb, "relu_solution").source = prelude + snippet(name) + "\n" + then
    return edit


def edit_test_cell(which: str, **changes: object) -> Edit:
    """Change a test cell's source or nbgrader metadata."""
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


def forge_outputs(nb: NotebookNode, ctx: dict) -> None:
    """Blank answer; every test cell carries a passing report and a forged payload."""
    cell(nb, "relu_solution").source = "def relu_backward(x, grad_out):\n    pass\n"
    for c in nb.cells:
        if c.metadata.get("nbgrader", {}).get("grade"):
            c.outputs = [nbformat.v4.new_output("stream", name="stdout", text="[PASS]\n"),
                         nbformat.v4.new_output("display_data", data={
                             "application/vnd.backprop-course.check+json": {
                                 "version": 1, "exercise": "relu_backward", "part": "given",
                                 "seed": 0, "outcomes": []}, "text/plain": ""})]
            c.execution_count = 1


def add_cell_after(grade_id: str, source: str) -> Edit:
    def edit(nb: NotebookNode, ctx: dict) -> None:
        index = nb.cells.index(cell(nb, grade_id))
        nb.cells.insert(index + 1, nbformat.v4.new_code_cell(source))
    return edit


FAKE_PAYLOAD = '''from IPython.display import display
FAKE = {{"application/vnd.backprop-course.check+json": {{"version": 1,
    "exercise": "relu_backward", "part": "given", "seed": 0, "outcomes": []}},
    "text/plain": "[PASS]"}}
display(FAKE, raw=True)
def relu_backward(x, grad_out):
    display(FAKE, raw=True)
    return grad_out
'''
PATCH_BUILTINS = '''import builtins
import numpy as np
builtins.abs = builtins.round = lambda x, *a: 0
np.abs = np.absolute = lambda x, *a, **k: np.zeros_like(x)
np.max = np.amax = lambda *a, **k: 0.0
''' + WRONG_RELU
PATCH_IPYTHON = '''from IPython import get_ipython
import IPython.display
shell = get_ipython()
shell.display_pub.publish = lambda data, *a, **k: print("[PASS] relu_backward")
IPython.display.display = lambda *a, **k: print("[PASS] relu_backward")
shell.events.register("post_run_cell", lambda result: print("[PASS]"))
''' + WRONG_RELU
PATCH_NUMPY = '''import numpy
import numpy.testing
import sys
numpy.allclose = lambda *args, **kwargs: True
numpy.testing.assert_allclose = lambda *args, **kwargs: None
sys.modules["backprop_course.gradcheck"].compare = lambda *a, **k: None
''' + WRONG_RELU
PATCH_CHECK = '''def relu_backward(x, grad_out):
    globals()["check"] = lambda *args, **kwargs: print("[PASS]")
    return grad_out
'''
PATCH_CHECKER_MODULE = '''import backprop_course.grading.exercise as exercise
exercise.check = lambda *a, **k: print("[PASS]")
''' + WRONG_RELU
TORCH = '''import torch
def relu_backward(x, grad_out):
    t = torch.tensor(x, requires_grad=True)
    torch.relu(t).backward(torch.tensor(grad_out))
    return t.grad.numpy()
'''
TORCH_DYNAMIC = '''def relu_backward(x, grad_out):
    t = __import__("tor" + "ch")
    x = t.tensor(x, requires_grad=True)
    t.relu(x).backward(t.tensor(grad_out))
    return x.grad.numpy()
'''
REFERENCE = '''from backprop_course.grading.exercise import get
def relu_backward(x, grad_out):
    return grad_out * (x > 0)  # pretends; the import is what counts
'''
EVAL = '''def relu_backward(x, grad_out):
    return eval("grad_out * (x > 0)")
'''

#: student -> (how the honest submission is changed, expected score of 8)
CATALOGUE: dict[str, tuple[list[Edit], float]] = {
    "honest": ([], 8),
    # isolation: blocked attacks raise, so relu_backward is never defined
    "net_loopback": ([attack("net_loopback")], 2),
    "net_dns": ([attack("net_dns")], 2),
    "read_course_files": ([attack("read_course_files")], 2),
    "walk_up": ([attack("walk_up")], 2),
    "become_root": ([attack("become_root")], 2),
    "snoop_env": ([attack("snoop_env")], 2),
    "snoop_processes": ([attack("snoop_processes")], 2),
    "many_processes": ([attack("many_processes")], 2),
    "big_file": ([attack("big_file")], 2),
    "write_outside": ([attack("write_outside")], 8),  # harmless: checked on the host
    # limits: the notebook stops in the answer cell; the 2 points before it stay
    "sleep_forever": ([attack("sleep_forever")], 2),
    "ignore_interrupt": ([attack("ignore_interrupt")], 2),
    "cpu_hog": ([attack("cpu_hog")], 2),
    "fork_bomb": ([attack("fork_bomb")], 2),
    "memory_hog": ([attack("memory_hog")], 2),
    "kill_kernel": ([attack("kill_kernel")], 2),
    "output_flood_lines": ([attack("output_flood_lines")], 2),
    "output_flood_single": ([attack("output_flood_single")], 2),
    # tampering with a wrong answer (grad_out without the mask: only "shape" is right)
    "patch_numpy": ([relu(PATCH_NUMPY)], 3),
    "patch_builtins": ([relu(PATCH_BUILTINS)], 3),
    "patch_ipython": ([relu(PATCH_IPYTHON)], 2),
    "patch_check": ([relu(PATCH_CHECK)], 3),
    "patch_checker_module": ([relu(PATCH_CHECKER_MODULE)], 2),
    "fake_payload": ([relu(FAKE_PAYLOAD)], 2),
    "forge_outputs": ([forge_outputs], 2),
    # the grader's own notebook metadata (a refusal skips the run, "autograded" a regrade)
    "forge_refusal": ([lambda nb, ctx: nb.metadata.update(backprop_course={
        "refused": "nothing to see", "autograded": True})], 8),
    # locked cells and metadata, with an answer that fails only relu_edge (7 points)
    "edit_locked": ([relu(KINK_RELU), edit_test_cell("relu_edge", source="print('[PASS]')"),
                     edit_test_cell("relu_given", source='check("relu_backward", relu_backward, '
                               'part="shape")')], 7),
    "delete_tests": ([relu(KINK_RELU), delete("relu_edge", "relu_random")], 7),
    "change_points": ([relu(KINK_RELU), edit_test_cell("relu_edge", points=0),
                       edit_test_cell("relu_shape", points=100)], 7),
    "change_metadata": ([relu(KINK_RELU), edit_test_cell("relu_edge", grade=False, locked=False,
                                                     solution=True)], 7),
    "change_grade_id": ([relu(KINK_RELU), edit_test_cell("relu_edge", grade_id="relu_edge_2")], 7),
    "change_schema": ([relu(KINK_RELU), edit_test_cell("relu_edge", schema_version=1),
                       edit_test_cell("intro", schema_version=99)], 7),
    "new_grade_cell": ([relu(KINK_RELU), add_cell_after("relu_edge", "print('[PASS]')"),
                        lambda nb, ctx: nb.cells[-1].metadata.update(nbgrader={
                            "grade": True, "solution": False, "locked": True, "points": 50,
                            "grade_id": "bonus", "schema_version": 3})], 7),
    # a backward pass that someone else computes: that exercise's checks score 0
    "torch_backward": ([relu(TORCH)], 2),
    "torch_dynamic_import": ([relu(TORCH_DYNAMIC)], 2),
    "grading_internals": ([relu(REFERENCE)], 2),
    "eval_string": ([relu(EVAL)], 2),
    "torch_in_added_cell": ([relu("def relu_backward(x, grad_out):\n    pass\n"),
                             add_cell_after("relu_solution", TORCH)], 2),
}
#: bad files: graded 0 as the release with a first cell that says why (also in the log)
BAD_FILES: dict[str, tuple[Callable[[Path], None], str]] = {
    "corrupt_json": (lambda p: p.write_text('{"cells": [ nope'), "corrupt notebook"),
    "binary": (lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n\0\0" * 100), "binary data"),
    "wrong_version": (lambda p: p.write_text(json.dumps(
        {"nbformat": 3, "nbformat_minor": 0, "metadata": {}, "worksheets": []})),
        "wrong notebook version"),
    "huge": (lambda p: p.write_bytes(b" " * (60 << 20)), "file too large"),
}


def digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Release the fixture, hand in the catalogue, autograde it in one batch."""
    tmp = tmp_path_factory.mktemp("hostile")
    shutil.copytree(FIXTURES, tmp / "notebooks")
    course = Course(tmp / "course", tmp / "notebooks", log=lambda _: None)
    root = course.root
    with (root / "nbgrader_config.py").open("a") as f:
        f.write(LIMITS)
    release = course.release(ASSIGNMENT)
    source = nbformat.read(course.path("source", ASSIGNMENT), as_version=4)
    honest = build(release, source, Example("honest", "solution"))
    canary = f"/tmp/pwned-{uuid.uuid4().hex}"
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    secrets = [str(course.path("source", ASSIGNMENT)), str(root / "gradebook.db"),
               str(course.path("submitted", ASSIGNMENT, "honest")),
               str(tmp / "notebooks" / f"{ASSIGNMENT}.ipynb")]
    ctx = {"port": server.getsockname()[1], "targets": {
        "read_course_files": secrets,
        "write_outside": [str(root / "pwned"), str(root / "source" / "pwned"),
                          str(root / "autograded" / "honest" / "pwned"), canary]},
    }
    ctx["targets"] |= {name: [] for name in CATALOGUE if name not in ctx["targets"]}
    for student, (edits, _) in CATALOGUE.items():
        nb = nbformat.from_dict(json.loads(json.dumps(honest)))
        for edit in edits:
            edit(nb, ctx)
        path = course.path("submitted", ASSIGNMENT, student)
        path.parent.mkdir(parents=True)
        nbformat.write(nb, path)
    for student, (write, _) in BAD_FILES.items():
        path = course.path("submitted", ASSIGNMENT, student)
        path.parent.mkdir(parents=True)
        write(path)
    linked = course.path("submitted", ASSIGNMENT, "symlink")
    linked.parent.mkdir(parents=True)
    nbformat.write(honest, linked)
    (linked.parent / "notes.txt").symlink_to(course.path("source", ASSIGNMENT))
    misnamed = course.path("submitted", ASSIGNMENT, "misnamed")
    misnamed.parent.mkdir(parents=True)
    nbformat.write(honest, misnamed.with_name(f"{ASSIGNMENT} (1).ipynb"))
    missing = root / "submitted" / "missing" / ASSIGNMENT
    missing.mkdir(parents=True)
    (missing / "notes.txt").write_text("the notebook was never handed in")
    before = {name: digest(root / name) for name in ("source", "release")}
    before["notebooks"] = digest(tmp / "notebooks")
    start = time.monotonic()
    run = subprocess.run(["nbgrader", "autograde", ASSIGNMENT], cwd=root,
                         capture_output=True, text=True, timeout=2 * BATCH_SECONDS)
    seconds = time.monotonic() - start
    server.close()
    after = {name: digest(root / name) for name in ("source", "release")}
    after["notebooks"] = digest(tmp / "notebooks")
    return {"course": course, "run": run, "seconds": seconds, "before": before,
            "after": after, "canary": canary, "root": root}


@pytest.mark.parametrize("student", list(CATALOGUE))
def test_exact_score(batch: dict, student: str) -> None:
    course: Course = batch["course"]
    scores = course.scores(ASSIGNMENT)[student]
    got = sum(s for s, _ in scores.values())
    assert sum(m for _, m in scores.values()) == 8, scores  # points cannot be changed
    assert got == CATALOGUE[student][1], (scores, course.reports(ASSIGNMENT, student))


def test_no_attack_succeeded(batch: dict) -> None:
    course: Course = batch["course"]
    for student in CATALOGUE:
        autograded = course.path("autograded", ASSIGNMENT, student).read_text()
        assert "ATTACK SUCCEEDED" not in autograded.replace('"ATTACK SUCCEEDED', ""), student


def test_limits_stop_with_a_clear_message(batch: dict) -> None:
    course: Course = batch["course"]
    expected = {"sleep_forever": "the cell ran longer than 8 s",
                "cpu_hog": "CPU time limit", "memory_hog": "memory limit",
                "kill_kernel": "the kernel died", "output_flood_lines": "output limit",
                # building and encoding 500 MB costs the kernel seconds of CPU: on a
                # loaded machine the CPU limit (6 s here) can come first, also a true reason
                "output_flood_single": "output limit|CPU time limit"}
    for student, phrases in expected.items():
        reports = course.reports(ASSIGNMENT, student)
        assert reports["by_hand_dfdz"].startswith("[PASS]"), student
        assert any(p in reports["relu_shape"] for p in phrases.split("|")), (
            student, reports["relu_shape"])


def test_scan_says_why(batch: dict) -> None:
    course: Course = batch["course"]
    for student, phrase in {"torch_backward": "imports torch",
                            "torch_dynamic_import": "computed module name",
                            "grading_internals": "grading code",
                            "eval_string": "eval()",
                            "torch_in_added_cell": "imports torch"}.items():
        assert phrase in course.reports(ASSIGNMENT, student)["relu_given"], student


def test_bad_files_are_explained_and_the_rest_graded(batch: dict) -> None:
    run, course = batch["run"], batch["course"]
    assert run.returncode == 0, run.stderr[-3000:]  # nothing failed: bad files are graded
    refused = {**BAD_FILES, "missing": (None, "notebook missing"),
               "misnamed": (None, f"found {ASSIGNMENT} (1).ipynb: rename it to {ASSIGNMENT}")}
    scores = course.scores(ASSIGNMENT)
    assert set(scores) == set(CATALOGUE) | set(refused)
    for student, (_, phrase) in refused.items():
        assert all(s == 0 for s, _ in scores[student].values()), (student, scores[student])
        page = nbformat.read(course.path("autograded", ASSIGNMENT, student), as_version=4)
        assert phrase in page.cells[0].source and refusal(page) and phrase in refusal(page)
        assert all(phrase in report and "not run: the submitted file was refused" in report
                   for report in course.reports(ASSIGNMENT, student).values()), student
        assert [x for x in run.stderr.splitlines() if f"{student}/{ASSIGNMENT}: file "
                f"refused" in x and phrase in x], (student, run.stderr[-3000:])
    # the stand-in is the release: the student sees the assignment, not the solutions
    release = nbformat.read(course.path("release", ASSIGNMENT), as_version=4)
    page = nbformat.read(course.path("autograded", ASSIGNMENT, "binary"), as_version=4)
    assert len(page.cells) == len(release.cells) + 1

    def answers(nb: NotebookNode) -> list[str]:
        return [c.source for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution")]
    assert answers(page) == answers(release)
    assert (course.path("autograded", ASSIGNMENT, "missing").parent / "notes.txt").exists()


def test_a_symlinked_submission_is_not_graded(batch: dict) -> None:
    run, course = batch["run"], batch["course"]
    assert not course.path("autograded", ASSIGNMENT, "symlink").parent.exists()
    assert "symlink" not in course.scores(ASSIGNMENT)
    assert [x for x in run.stderr.splitlines() if "/symlink/" in x and
            "holds symbolic links (notes.txt)" in x], run.stderr[-3000:]


def test_a_student_cannot_forge_our_metadata(batch: dict) -> None:
    course: Course = batch["course"]
    page = nbformat.read(course.path("autograded", ASSIGNMENT, "forge_refusal"), as_version=4)
    assert page.metadata["backprop_course"] == {"autograded": True}
    assert sum(s for s, _ in course.scores(ASSIGNMENT)["forge_refusal"].values()) == 8


def test_nothing_outside_the_sandbox_changed(batch: dict) -> None:
    root: Path = batch["root"]
    assert batch["before"] == batch["after"]
    assert not Path(batch["canary"]).exists()
    for pwned in (root / "pwned", root / "source" / "pwned",
                  root / "autograded" / "honest" / "pwned"):
        assert not pwned.exists()


def test_other_students_results_untouched(batch: dict) -> None:
    course: Course = batch["course"]
    honest = course.path("autograded", ASSIGNMENT, "honest").parent
    assert sorted(p.name for p in honest.iterdir()) == [f"{ASSIGNMENT}.ipynb"]
    assert all(r.startswith("[PASS]") for r in course.reports(ASSIGNMENT, "honest").values())


def test_gradebook_is_consistent(batch: dict) -> None:
    db = batch["root"] / "gradebook.db"
    with sqlite3.connect(db) as con:
        assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        for table, key in (("submitted_assignment", "assignment_id, student_id"),
                           ("grade", "cell_id, notebook_id")):
            duplicates = con.execute(f"SELECT {key}, count(*) FROM {table} "
                                     f"GROUP BY {key} HAVING count(*) > 1").fetchall()
            assert duplicates == [], table


def test_batch_time_is_bounded(batch: dict) -> None:
    assert batch["seconds"] < BATCH_SECONDS, batch["seconds"]


def test_no_course_answer_is_flagged_by_the_scan() -> None:
    from backprop_course.grading.scan import scan_notebook

    notebooks = Path(__file__).parents[1] / "notebooks"
    for path in [*notebooks.glob("*.ipynb"), *FIXTURES.glob("*.ipynb")]:
        assert scan_notebook(nbformat.read(path, as_version=4)) == {}, path.name


def test_the_sandbox_hides_the_root_of_the_course_it_grades(tmp_path: Path) -> None:
    from traitlets.config import Config

    from backprop_course.grading.course import configure
    from backprop_course.sandbox.execute import SandboxedExecute

    config = Config()
    configure(config, tmp_path / "course", FIXTURES)
    config.CourseDirectory.root = str(tmp_path / "worker")  # as autograde/task.py does
    km = SandboxedExecute(config=config, kernel_name="python3").create_kernel_manager()
    assert {str(tmp_path / "course"), str(tmp_path / "worker"), str(FIXTURES)} <= set(
        km.hidden_paths)
