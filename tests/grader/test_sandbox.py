"""The answer sandbox, attacked from inside: what exists there, what it can reach, what
it can spend, and that nothing of it outlives the grader.

Each test runs an answer cell in a real sandboxed interpreter (bubblewrap at the
machine's isolation level; CI runs as root, so "full") and reads what the cell reports
back through the only channel it has: the value of a function it defines.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from backprop_course.checks.exercise import NUMPY, Sandbox
from backprop_course.grader.sandbox import DEFAULT_LIMITS, Limits, Session, build_kit, isolation

LEVEL = isolation()
pytestmark = pytest.mark.skipif(LEVEL != "full", reason="needs root and bubblewrap")
ENGINE_LOOP = Sandbox(engine=True, without=("backward",))
ONE = {"x": np.array([1.0]), "grad_out": np.array([1.0])}


def setup(source: str, answer: str = "f") -> dict:
    return {"preamble": "import numpy as np\n", "source": textwrap.dedent(source),
            "provides": {}, "answer": answer, "call": "vjp", "inputs": ["x"], "wrt": ["x"]}


def report(source: str, sandbox: Sandbox = NUMPY, limits: Limits = DEFAULT_LIMITS) -> str:
    """Define ``f`` with ``source`` (its body computes ``out``, a string) and return it:
    the message of the ValueError it raises carries ``out`` back."""
    body = textwrap.indent(textwrap.dedent(source), "    ")
    with Session(sandbox, LEVEL, limits) as session:
        assert session.start(setup(f"def f(x, g):\n{body}\n    raise ValueError(out)\n")) \
            == {"defined": True}
        outcome = session.call(ONE)
    assert outcome.get("error") == "ValueError", outcome
    return outcome["message"]


def run_cell(source: str, sandbox: Sandbox = NUMPY, limits: Limits = DEFAULT_LIMITS) -> dict:
    with Session(sandbox, LEVEL, limits) as session:
        return session.start(setup(source))


def test_only_numpy_exists_no_torch_no_course_package() -> None:
    for module in ("torch", "backprop_course", "nbgrader", "scipy", "sklearn", "IPython",
                   "matplotlib", "jax", "tensorflow"):
        outcome = run_cell(f"import {module}\n")
        assert outcome.get("error") == "ModuleNotFoundError", (module, outcome)
    assert run_cell("import numpy, json, math\n") == {"defined": True}


def test_no_installed_package_anywhere_in_the_file_system() -> None:
    """A fact of the file system, not of sys.path: walk everything that is there."""
    found = report("""
        import os
        hits = []
        for top, dirs, files in os.walk("/", onerror=lambda e: None):
            if top.startswith(("/proc", "/sys", "/dev")):
                dirs[:] = []
                continue
            for name in dirs + files:
                if name.split(".")[0] in ("torch", "backprop_course", "nbgrader", "sklearn",
                                          "scipy", "IPython", "jupyter_client", "dask"):
                    hits.append(os.path.join(top, name))
        out = repr(hits)
    """)
    assert found == "[]"


def test_the_engine_kit_has_tensors_but_not_the_loop_nor_the_op_being_written() -> None:
    assert run_cell("import backprop_course as bc\nbc.Tensor([1.0]) * 2\n",
                    ENGINE_LOOP) == {"defined": True}
    outcome = run_cell("import backprop_course as bc\n"
                       "t = bc.tensor([1.0], requires_grad=True)\n(t * t).backward()\n",
                       ENGINE_LOOP)
    assert outcome["error"] == "ModuleNotFoundError", outcome
    for attack in ("import backprop_course.gradcheck", "import backprop_course.functional",
                   "import backprop_course.checks", "import backprop_course.nn"):
        assert run_cell(attack, ENGINE_LOOP)["error"] == "ModuleNotFoundError", attack
    no_tanh = Sandbox(engine=True, without=("backward", "ops.Tanh"))
    outcome = run_cell("import backprop_course as bc\nbc.tensor([1.0]).tanh()\n", no_tanh)
    assert outcome["error"] == "AttributeError", outcome
    assert "class Tanh" not in (build_kit(("backward", "ops.Tanh")) / "backprop_course"
                                / "ops.py").read_text()


def test_no_network_not_even_loopback() -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    try:
        out = report(f"""
            import socket
            results = []
            for host in ("127.0.0.1", "8.8.8.8"):
                try:
                    socket.create_connection((host, {port}), timeout=2)
                    results.append("connected")
                except OSError as e:
                    results.append(type(e).__name__)
            try:
                socket.getaddrinfo("pypi.org", 443)
                results.append("resolved")
            except OSError as e:
                results.append(type(e).__name__)
            out = repr(results)
        """)
    finally:
        server.close()
    assert "connected" not in out and "resolved" not in out, out


def test_no_view_of_the_course_the_grader_or_its_environment(tmp_path: Path) -> None:
    secret = tmp_path / "gradebook.db"
    secret.write_text("hidden tests")
    os.environ["BP_TEST_SECRET"] = "grader-only"
    try:
        out = report(f"""
            import os
            out = repr((os.path.exists({str(secret)!r}), os.path.exists({os.getcwd()!r}),
                        os.path.exists("/root/.ssh"), sorted(os.environ),
                        os.getcwd(), sorted(os.listdir("/tmp"))))
        """)
    finally:
        del os.environ["BP_TEST_SECRET"]
    exists_secret, exists_cwd, exists_ssh, env, cwd, tmp = eval(out)  # noqa: S307 - our repr
    assert not exists_secret and not exists_cwd and not exists_ssh
    assert "BP_TEST_SECRET" not in env and not any(k.startswith("NBGRADER") for k in env)
    assert cwd == "/tmp" and tmp == []


def test_an_unprivileged_uid_without_capabilities_and_no_other_processes() -> None:
    out = report("""
        import os
        caps = [l for l in open("/proc/self/status") if l.startswith(("CapEff", "CapPrm"))]
        pids = [p for p in os.listdir("/proc") if p.isdigit()]
        try:
            os.setuid(0)
            root = "became root"
        except OSError:
            root = "no"
        out = repr((os.getuid(), caps, len(pids), root))
    """)
    uid, caps, processes, root = eval(out)  # noqa: S307 - our repr
    assert uid >= 1_500_000_000 and root == "no"
    assert all(line.split()[1] == "0000000000000000" for line in caps), caps
    assert processes <= 3  # bubblewrap's init, the interpreter (and setpriv's exec of it)


def test_writes_stay_in_a_small_private_tmp() -> None:
    out = report("""
        import os
        results = []
        for path in ("/usr/x", "/sandbox/site/x", "/x"):
            try:
                open(path, "w").write("x")
                results.append("wrote " + path)
            except OSError as e:
                results.append(type(e).__name__)
        try:
            with open("/tmp/big", "wb") as f:
                for _ in range(200):
                    f.write(b"x" * (1 << 20))
            results.append("wrote 200 MB")
        except OSError as e:
            results.append(type(e).__name__)
        out = repr(results)
    """)
    assert "wrote" not in out, out


def test_limits_end_only_that_answer() -> None:
    fast = Limits(cell_seconds=3, case_seconds=3, cpu_seconds=4, memory_bytes=1 << 30)
    assert run_cell("while True:\n    pass\n", limits=fast) == {"timeout": 3}
    outcome = run_cell("import numpy as np\nx = np.ones(1 << 31)\n", limits=fast)
    assert outcome.get("error") == "MemoryError", outcome
    outcome = run_cell("import os\nos._exit(0)\n", limits=fast)
    assert "exited with code 0" in outcome["crashed"], outcome
    outcome = run_cell("""
        import os
        n = 0
        try:
            while n < 500:
                if os.fork() == 0:
                    import time
                    time.sleep(30)
                    os._exit(0)
                n += 1
        except OSError:
            pass
        assert n < 100, n
    """, limits=fast)
    assert outcome == {"defined": True}, outcome
    outcome = run_cell("import sys\nfor _ in range(10**6): print('x' * 1000)\n"
                       "sys.stderr.write('y' * 10**7)\n", limits=fast)
    assert outcome == {"defined": True}  # output goes to /dev/null: nothing to fill


def test_a_case_past_its_budget_is_stopped_and_the_answer_restarts() -> None:
    with Session(NUMPY, LEVEL) as session:
        session.start(setup("import time\ndef f(x, g):\n    time.sleep(60)\n"))
        start = time.monotonic()
        assert session.call(ONE, budget=1) == {"timeout": 1, "large": True}
        assert time.monotonic() - start < 3
        assert "crashed" in session.call(ONE)


def test_the_sandbox_dies_with_its_grader(tmp_path: Path) -> None:
    """SIGKILL the grader process while the answer sleeps (and has forked a child that
    sleeps too): no process of the sandbox survives."""
    script = tmp_path / "grader.py"
    marker = "bp-sandbox-orphan-test"
    script.write_text(textwrap.dedent(f"""
        import sys, numpy as np
        from backprop_course.checks.exercise import NUMPY
        from backprop_course.grader.sandbox import Session
        session = Session(NUMPY, {LEVEL!r})
        session.start({{"preamble": "", "source": "import os, time\\n"
                        "if os.fork() == 0:\\n    os.execv('/bin/sleep', ['{marker}', '300'])\\n"
                        "def f(x, g):\\n    time.sleep(300)\\n",
                        "provides": {{}}, "answer": "f", "call": "vjp", "inputs": ["x"],
                        "wrt": ["x"]}})
        print("started", flush=True)
        session.call({{"x": np.ones(1), "grad_out": np.ones(1)}})
    """))
    grader = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    assert grader.stdout.readline().strip() == "started"
    time.sleep(0.5)
    assert _processes(marker), "the sandbox's child should be running now"
    os.kill(grader.pid, signal.SIGKILL)
    grader.wait()
    deadline = time.monotonic() + 10
    while _processes(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _processes(marker)


def _processes(marker: str) -> list[str]:
    found = []
    for pid in os.listdir("/proc"):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if marker in cmdline:
            found.append(f"{pid}: {cmdline}")
    return found
