"""The sandboxed kernel: isolation, limits, and one notebook's breach never ends the batch.

Every isolation test also runs the same attack without the sandbox (plain Python, same
cwd) and asserts that it works there, so a test that passes proves the sandbox blocked it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import nbformat
import pytest
from traitlets.config import Config

from backprop_course.sandbox.execute import ENAME, SandboxedExecute
from backprop_course.sandbox.launch import isolation_level

HOSTILE = Path(__file__).parent / "hostile"
pytestmark = pytest.mark.skipif(isolation_level() != "full",
                                reason="needs root on Linux (namespaces + a separate uid)")


def snippet(name: str) -> str:
    return (HOSTILE / f"{name}.py").read_text()


def run_notebook(cells: list[str], workdir: Path, timeout: int = 20, **limits: int) -> list:
    """Execute ``cells`` in the sandbox; return each cell's outputs."""
    config = Config()
    for key, value in limits.items():
        setattr(config.SandboxKernelManager, key, value)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    SandboxedExecute(config=config, timeout=timeout, kernel_name="python3").preprocess(
        nb, {"metadata": {"path": str(workdir)}})
    return [c.outputs for c in nb.cells]


def run_plain(prelude: str, code: str, cwd: Path) -> subprocess.CompletedProcess:
    """The same attack outside the sandbox: plain Python, same cwd."""
    return subprocess.run([sys.executable, "-c", prelude + "\n" + code], cwd=cwd,
                          capture_output=True, text=True, timeout=60)


def errors(outputs: list) -> list[str]:
    return [o.ename for o in outputs if o.output_type == "error"]


def text(outputs: list) -> str:
    return "".join(o.get("text", "") + str(o.get("evalue", "")) for o in outputs)


@pytest.fixture(scope="module")
def course(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A course root with solutions, a gradebook and two students' submissions."""
    root = tmp_path_factory.mktemp("course")
    (root / "source" / "ps1").mkdir(parents=True)
    (root / "source" / "ps1" / "ps1.ipynb").write_text("SECRET SOLUTION")
    (root / "gradebook.db").write_text("SECRET GRADEBOOK")
    for student in ("alice", "bob"):
        (root / "autograded" / student / "ps1").mkdir(parents=True)
        (root / "autograded" / student / "ps1" / "data.txt").write_text(f"{student}'s data")
    return root


@pytest.fixture(scope="module")
def port() -> int:
    """A TCP server on the grader's loopback (the backlog accepts connections)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    yield server.getsockname()[1]
    server.close()


@pytest.fixture(scope="module")
def attacks(course: Path, port: int) -> dict:
    """Run the isolation attacks in one sandboxed notebook and outside it."""
    alice = course / "autograded" / "alice" / "ps1"
    tag = uuid.uuid4().hex
    reads = [str(course / "source" / "ps1" / "ps1.ipynb"), str(course / "gradebook.db"),
             str(course / "autograded" / "bob" / "ps1" / "data.txt")]
    preludes = {
        "net_loopback": f"PORT = {port}",
        "net_dns": "",
        "read_course_files": f"TARGETS = {reads!r}",
        "walk_up": "",
        "write_outside": "TARGETS = {!r}".format([f"/tmp/pwned-{tag}-sandbox",
                                                  str(course / f"pwned-{tag}-sandbox")]),
        "become_root": "",
        "many_processes": "",
        "snoop_env": "",
        "snoop_processes": "",
    }
    os.environ["NBGRADER_EXECUTION"] = "autograde"  # what nbgrader sets in the grader
    try:
        cells = [c for name, prelude in preludes.items() for c in (prelude, snippet(name))]
        outputs = run_notebook(cells, alice)
        sandboxed = {name: outputs[2 * i + 1] for i, name in enumerate(preludes)}
        preludes["write_outside"] = preludes["write_outside"].replace("-sandbox", "-plain")
        plain = {name: run_plain(prelude, snippet(name), alice)
                 for name, prelude in preludes.items()}
    finally:
        del os.environ["NBGRADER_EXECUTION"]
    return {"sandboxed": sandboxed, "plain": plain, "tag": tag, "course": course}


def assert_blocked(attacks: dict, name: str, ename: str) -> None:
    plain = attacks["plain"][name]
    assert "ATTACK SUCCEEDED" in plain.stdout, f"control run failed: {plain.stderr[-500:]}"
    outputs = attacks["sandboxed"][name]
    assert "ATTACK SUCCEEDED" not in text(outputs)
    assert errors(outputs) == [ename], outputs


def test_no_loopback_network(attacks: dict) -> None:
    assert_blocked(attacks, "net_loopback", "OSError")


def test_no_dns(attacks: dict) -> None:
    if "ATTACK SUCCEEDED" not in attacks["plain"]["net_dns"].stdout:
        pytest.skip("this machine has no DNS, so the control cannot succeed")
    assert_blocked(attacks, "net_dns", "gaierror")


def test_cannot_read_solutions_gradebook_or_other_students(attacks: dict) -> None:
    assert_blocked(attacks, "read_course_files", "FileNotFoundError")


def test_cannot_find_course_dir_above_cwd(attacks: dict) -> None:
    assert_blocked(attacks, "walk_up", "FileNotFoundError")


def test_cannot_write_outside_scratch(attacks: dict) -> None:
    tag, course = attacks["tag"], attacks["course"]
    plain = [Path(f"/tmp/pwned-{tag}-plain"), course / f"pwned-{tag}-plain"]
    assert all(p.read_text() == "pwned" for p in plain)
    for p in plain:
        p.unlink()
    assert "blocked" in text(attacks["sandboxed"]["write_outside"])
    assert not Path(f"/tmp/pwned-{tag}-sandbox").exists()
    assert not (course / f"pwned-{tag}-sandbox").exists()


def test_runs_as_unprivileged_uid(attacks: dict) -> None:
    assert_blocked(attacks, "become_root", "PermissionError")


def test_process_limit(attacks: dict) -> None:
    assert_blocked(attacks, "many_processes", "BlockingIOError")


def test_grader_environment_hidden(attacks: dict) -> None:
    assert_blocked(attacks, "snoop_env", "KeyError")


def test_other_processes_invisible(attacks: dict) -> None:
    assert_blocked(attacks, "snoop_processes", "PermissionError")


def stopped(outputs: list[list], at: int) -> str:
    """Assert grading stopped at cell ``at``: earlier cells ran, later ones did not."""
    assert outputs[0][0].text == "before\n"
    assert ENAME in errors(outputs[at])
    for later in outputs[at + 1:]:
        assert errors(later) == [ENAME] and "not run" in later[0].evalue
    return outputs[at][-1].evalue


def test_memory_hog_stops_the_notebook(tmp_path: Path) -> None:
    plain = run_plain("", snippet("memory_hog").replace("ones", "empty"), tmp_path)
    assert "ATTACK SUCCEEDED" in plain.stdout  # 8 GB of address space is fine unlimited
    outputs = run_notebook(["print('before')", snippet("memory_hog"), "print('after')"],
                           tmp_path, memory_bytes=2 << 30)
    assert "MemoryError" in errors(outputs[1])
    assert "memory limit" in stopped(outputs, 1)


def test_infinite_loop_stopped_by_cell_timeout(tmp_path: Path) -> None:
    start = time.monotonic()
    outputs = run_notebook(["print('before')", snippet("ignore_interrupt"), "1"], tmp_path,
                           timeout=2)
    assert "longer than 2 s" in stopped(outputs, 1)
    assert time.monotonic() - start < 15


def test_cpu_hog_stopped_by_rlimit_cpu(tmp_path: Path) -> None:
    outputs = run_notebook(["print('before')", snippet("cpu_hog"), "1"], tmp_path,
                           timeout=60, cpu_seconds=3)
    assert "CPU time limit (3 s)" in stopped(outputs, 1)


def test_output_flood_capped_in_bytes(tmp_path: Path) -> None:
    outputs = run_notebook(["print('before')", snippet("output_flood_lines"), "1"], tmp_path)
    assert "output limit" in stopped(outputs, 1)
    assert sum(len(text(o)) for o in outputs) < 11 << 20  # the 10 MB budget, not 100 MB


def test_single_500mb_output_never_reaches_the_grader(tmp_path: Path) -> None:
    outputs = run_notebook(["print('before')", snippet("output_flood_single"), "1"], tmp_path,
                           timeout=60, memory_bytes=8 << 30)
    stopped(outputs, 1)
    assert sum(len(text(o)) for o in outputs) < 1 << 20


def test_os_exit_ends_only_this_notebook(tmp_path: Path) -> None:
    outputs = run_notebook(["print('before')", snippet("kill_kernel"), "1"], tmp_path)
    assert "kernel died" in stopped(outputs, 1)
    again = run_notebook(["print('before')"], tmp_path)  # the next notebook runs normally
    assert again[0][0].text == "before\n"


def test_file_size_limit(tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    assert "ATTACK SUCCEEDED" in run_plain("", snippet("big_file"), tmp_path / "plain").stdout
    (tmp_path / "plain" / "big.bin").unlink()
    (tmp_path / "sandboxed").mkdir()
    outputs = run_notebook([snippet("big_file")], tmp_path / "sandboxed",
                           max_file_bytes=16 << 20)
    assert errors(outputs[0]) == ["OSError"] and "File too large" in text(outputs[0])
    assert not (tmp_path / "sandboxed" / "big.bin").exists()  # /scratch is a copy


def test_submission_too_large_for_scratch_is_explained(tmp_path: Path) -> None:
    (tmp_path / "huge.bin").write_bytes(b"\0" * (20 << 20))
    outputs = run_notebook(["print('before')"], tmp_path, disk_bytes=16 << 20)
    assert "sandbox could not start" in text(outputs[0])
