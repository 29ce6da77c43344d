"""Run one answer cell in an interpreter of the grader's own, where only what the
exercise allows exists.

The interpreter is the Python that runs the grader, started isolated (``python -I -S``)
inside Debian's bubblewrap (``bwrap``): a new root that holds the system's ``/usr``, the
Python installation with every ``site-packages`` and ``dist-packages`` folder hidden
under an empty tmpfs, numpy, :mod:`.runner`, :mod:`backprop_course.checks.harness` and,
for the engine exercises, a copy of the engine's tensor files without the parts the
exercise is about (:func:`build_kit`). torch, the rest of the course package (its
references, checks and gradient checkers) and every other library are not importable:
they are not in that file system. Nor are the course folder, the gradebook, other
students' files or the network.

Isolation levels (:func:`isolation`):

``full``        root: bubblewrap's namespaces (mount, PID, network, IPC, UTS), and the
                answer runs as a fresh unprivileged uid with no capabilities
                (util-linux's ``setpriv``), so the process limit counts its processes only
``namespaces``  bubblewrap without root (user namespaces): the same file system and
                network isolation, under the grader's own uid
``none``        no bubblewrap: a plain isolated interpreter whose ``sys.path`` holds only
                numpy and the harness (an answer could still walk the file system); the
                grader warns

Every level applies rlimits (util-linux's ``prlimit``: address space, CPU seconds, file
size, open files, processes) and wall-clock limits measured by the grader. The sandbox
dies with the grader: bubblewrap's ``--die-with-parent`` kills its PID namespace when
the grader's process goes.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import glob
import itertools
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..checks import harness
from ..checks.exercise import Sandbox
from . import runner

PACKAGE = Path(__file__).resolve().parents[1]
#: The engine modules a kit may hold (``Sandbox.without`` leaves some out).
ENGINE_MODULES = ("autograd", "function", "ops", "numerics", "backward")
#: First uid given to sandboxed answers at isolation "full" (one per session).
UID_BASE = 1_500_000_000
_uids = itertools.count()
MAX_FRAME = 32 << 20  # the largest answer (1,000,000 float64 numbers) is 11 MB as JSON


class GraderFaultError(RuntimeError):
    """The sandbox failed before the answer ran: the grader's fault, never a grade."""


@dataclass(frozen=True)
class Limits:
    """Limits of one answer's interpreter (seconds are wall clock, measured outside)."""

    start_seconds: float = 60.0
    cell_seconds: float = 10.0
    case_seconds: float = 10.0
    cpu_seconds: int = 120
    memory_bytes: int = 1 << 30
    processes: int = 32
    file_bytes: int = 16 << 20
    tmp_bytes: int = 64 << 20
    open_files: int = 64


DEFAULT_LIMITS = Limits()


@functools.cache
def isolation() -> str:
    """The strongest isolation this machine gives: "full", "namespaces" or "none"
    (bubblewrap is tried once: a container may forbid the namespaces it needs)."""
    if sys.platform != "linux" or shutil.which("bwrap") is None:
        return "none"
    probe = subprocess.run(["bwrap", "--ro-bind", "/", "/", "--unshare-net", "--unshare-pid",
                            "true"], capture_output=True, timeout=30, check=False)
    if probe.returncode != 0:
        return "none"
    return "full" if os.geteuid() == 0 and shutil.which("setpriv") else "namespaces"


MISSING = {"full": "", "namespaces": "a separate uid (answers run as the grader's own user)",
           "none": "file system, network and process isolation (install bubblewrap)"}


# ------------------------------------------------------------------- the kit
_kits: dict[tuple[str, ...], Path] = {}


def build_kit(without: tuple[str, ...]) -> Path:
    """A folder holding ``backprop_course/`` with the engine's tensor files minus
    ``without`` (module names, or ``"module.Class"`` for one class of a module), made
    once per process. Its ``__init__`` exposes ``Tensor``, ``tensor``, ``no_grad``,
    ``Context``, ``Function`` and ``ops``."""
    key = tuple(sorted(without))
    if key in _kits and _kits[key].exists():
        return _kits[key]
    root = Path(tempfile.mkdtemp(prefix="bp-kit-"))
    root.chmod(0o755)  # the answer's uid reads it
    package = root / "backprop_course"
    package.mkdir()
    dropped = {name.split(".", 1)[0]: set() for name in key if "." in name}
    for name in key:
        if "." in name:
            module, cls = name.split(".", 1)
            dropped[module].add(cls)
    for module in ENGINE_MODULES:
        if module in key:
            continue
        source = (PACKAGE / f"{module}.py").read_text(encoding="utf-8")
        if module in dropped:
            tree = ast.parse(source)
            tree.body = [node for node in tree.body if not (
                isinstance(node, ast.ClassDef) and node.name in dropped[module])]
            source = ast.unparse(tree) + "\n"
        (package / f"{module}.py").write_text(source, encoding="utf-8")
    (package / "__init__.py").write_text(
        f'"""The course engine as this exercise has it (left out: {", ".join(key) or "none"})."""'
        "\n\nfrom . import ops\nfrom .autograd import Tensor, no_grad, tensor\n"
        "from .function import Context, Function\n", encoding="utf-8")
    _kits[key] = root
    return root


# ------------------------------------------------------------- the command line
def _numpy_dirs() -> list[Path]:
    import numpy

    folder = Path(numpy.__file__).resolve().parent
    return [folder] + [p for p in [folder.with_name("numpy.libs")] if p.is_dir()]


def _hidden_python_dirs() -> list[str]:
    """Every folder where Python packages are installed: emptied in the sandbox."""
    import site

    stdlib = os.path.realpath(os.path.dirname(os.__file__))
    candidates = [*site.getsitepackages(), site.getusersitepackages(),
                  *glob.glob("/usr/lib/python3*"), *glob.glob("/usr/local/lib/python3*"),
                  *glob.glob(os.path.join(sys.base_prefix, "lib", "python3*", "site-packages"))]
    hidden = []
    for path in candidates:
        real = os.path.realpath(path)
        if os.path.isdir(real) and not stdlib.startswith(real + os.sep) and real != stdlib \
                and real not in hidden:
            hidden.append(real)
    return hidden


def _interpreter() -> str:
    """The base interpreter (not a venv's launcher: the sandbox has no venv)."""
    name = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for folder in (Path(sys.base_prefix) / "bin", Path(sys.executable).resolve().parent):
        if (folder / name).exists():
            return str((folder / name).resolve())
    return os.path.realpath(sys.executable)


def _limits(limits: Limits, processes: int | None) -> list[str]:
    out = ["prlimit", f"--as={limits.memory_bytes}", f"--cpu={limits.cpu_seconds}",
           f"--fsize={limits.file_bytes}", f"--nofile={limits.open_files}", "--core=0"]
    if processes is not None:
        out.append(f"--nproc={processes}")
    return [*out, "--"] if shutil.which("prlimit") else []


def _bwrap(level: str, sandbox: Sandbox, limits: Limits) -> tuple[list[str], list[str]]:
    """The bubblewrap command and the ``sys.path`` the runner gets inside."""
    cmd = ["bwrap", "--die-with-parent", "--new-session", "--unshare-ipc", "--unshare-pid",
           "--unshare-net", "--unshare-uts", "--unshare-cgroup-try", "--hostname", "sandbox",
           "--clearenv", "--setenv", "PATH", "/usr/bin:/bin", "--setenv", "HOME", "/tmp",
           "--setenv", "LANG", "C.UTF-8", "--setenv", "PYTHONDONTWRITEBYTECODE", "1"]
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        cmd += ["--setenv", var, "1"]
    if level == "full":
        cmd += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--cap-add",
                "CAP_SETPCAP"]
    cmd += ["--ro-bind", "/usr", "/usr"]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(top):
            cmd += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            cmd += ["--ro-bind", top, top]
    prefix = os.path.realpath(sys.base_prefix)
    bound = ["/usr"]
    if not prefix.startswith("/usr/"):
        for parent in reversed(Path(prefix).parents[:-1]):  # traversable by the answer's uid
            cmd += ["--perms", "0755", "--dir", str(parent)]
        cmd += ["--ro-bind", prefix, prefix]
        bound.append(prefix)
    for hidden in _hidden_python_dirs():
        if any(hidden.startswith(top + os.sep) for top in bound):
            cmd += ["--tmpfs", hidden]
    for folder in ("/sandbox", "/sandbox/site", "/sandbox/runner"):
        cmd += ["--perms", "0755", "--dir", folder]
    for folder in _numpy_dirs():
        cmd += ["--ro-bind", str(folder), f"/sandbox/site/{folder.name}"]
    cmd += ["--ro-bind", runner.__file__, "/sandbox/runner/run.py",
            "--ro-bind", harness.__file__, "/sandbox/runner/harness.py"]
    path = ["/sandbox/runner", "/sandbox/site"]
    if sandbox.engine:
        cmd += ["--ro-bind", str(build_kit(sandbox.without)), "/sandbox/kit"]
        path.insert(0, "/sandbox/kit")
    cmd += ["--proc", "/proc", "--dev", "/dev", "--size", str(limits.tmp_bytes),
            "--perms", "1777", "--tmpfs", "/tmp", "--chdir", "/tmp", "--"]
    if level == "full":
        uid = str(UID_BASE + (os.getpid() << 8 | next(_uids) & 0xFF) % 2_000_000_000)
        cmd += ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
                "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs",
                "--pdeathsig=SIGKILL", "--"]
    return cmd + [_interpreter(), "-I", "-S", "/sandbox/runner/run.py"], path


def _plain(sandbox: Sandbox, scratch: Path) -> tuple[list[str], list[str]]:
    """Without bubblewrap: a folder of links to what the answer may import."""
    site = scratch / "site"
    site.mkdir()
    for folder in _numpy_dirs():
        (site / folder.name).symlink_to(folder)
    (site / "harness.py").symlink_to(harness.__file__)
    path = [str(site)]
    if sandbox.engine:
        path.insert(0, str(build_kit(sandbox.without)))
    return [_interpreter(), "-I", "-S", runner.__file__], path


# ---------------------------------------------------------------------- a session
class Session:
    """One answer cell in one sandboxed interpreter; call it on cases one at a time.

    Use as a context manager; :meth:`start` raises :class:`GraderFaultError` if the
    interpreter does not come up (nothing of the student's has run then).
    """

    def __init__(self, sandbox: Sandbox, level: str, limits: Limits = DEFAULT_LIMITS) -> None:
        self.sandbox, self.level, self.limits = sandbox, level, limits
        self._scratch = Path(tempfile.mkdtemp(prefix="bp-answer-"))
        self._process: subprocess.Popen | None = None
        self._buffer = b""
        self.dead: str | None = None

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self, setup: dict) -> dict:
        """Start the interpreter, run the answer cell; the runner's report of the cell
        (``{"defined": True}``, or the error it raised, or why it never finished)."""
        processes = None
        if self.level == "full":
            processes = self.limits.processes
        elif self.level == "namespaces":
            processes = self.limits.processes + _process_count()
        if self.level == "none":
            cmd, path = _plain(self.sandbox, self._scratch)
            env = {"PATH": "/usr/bin:/bin", "HOME": str(self._scratch), "LANG": "C.UTF-8",
                   "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
                   "MKL_NUM_THREADS": "1"}
        else:
            cmd, path = _bwrap(self.level, self.sandbox, self.limits)
            env = None
        try:
            self._process = subprocess.Popen(
                _limits(self.limits, processes) + cmd, stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=self._scratch, env=env,
                start_new_session=True)
        except OSError as error:  # bwrap, prlimit or the interpreter is missing
            raise GraderFaultError(f"the answer's interpreter did not start: {error}") \
                from error
        os.set_blocking(self._process.stdout.fileno(), False)
        try:
            self._send({**setup, "path": path, "engine": self.sandbox.engine},
                       self.limits.start_seconds)
            ready = self._receive(self.limits.start_seconds)
        except (TimeoutError, BrokenPipeError, EOFError, ValueError) as error:
            raise GraderFaultError(f"the answer's interpreter did not start ({error}): "
                              f"{self._stderr()}") from error
        if ready != {"ready": True}:
            raise GraderFaultError(f"the answer's interpreter did not start: {self._stderr()}")
        return self._exchange(None, self.limits.cell_seconds)

    def call(self, case: dict[str, Any], budget: float | None = None,
             route: dict | None = None) -> dict:
        """The answer on one case: ``{"returned": [...]}``, ``{"error": ...}``,
        ``{"timeout": s}`` (``"large": True`` for a case with a budget) or
        ``{"crashed": why}``. ``route`` calls another name the cell defined, by another
        convention (``answer``, ``call``, ``inputs``, ``wrt``; see :mod:`.runner`)."""
        outcome = self._exchange({"case": harness.encode_case(case), **(route or {})},
                                 budget or self.limits.case_seconds)
        if "timeout" in outcome and budget is not None:
            outcome["large"] = True
        return outcome

    def values(self, names: list[str]) -> dict:
        """The values the answer cell left under ``names``."""
        return self._exchange({"values": names}, self.limits.case_seconds)

    # ------------------------------------------------------------------ plumbing
    def _exchange(self, message: dict | None, seconds: float) -> dict:
        if self.dead is not None:
            return {"crashed": self.dead}
        try:
            if message is not None:
                self._send(message, seconds)
            reply = self._receive(seconds)
        except TimeoutError:
            self.close()
            self.dead = f"it ran longer than {seconds:g} s"
            return {"timeout": seconds}
        except (BrokenPipeError, EOFError, ValueError) as error:
            self.dead = self._death(error)
            self.close()
            return {"crashed": self.dead}
        return reply

    def _send(self, message: dict, seconds: float) -> None:
        import json

        data = json.dumps(message).encode()
        pending = memoryview(runner.HEADER.pack(len(data)) + data)
        fd = self._process.stdin.fileno()
        os.set_blocking(fd, False)
        deadline = time.monotonic() + seconds
        while pending:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([], [fd], [], left)[1]:
                raise TimeoutError
            try:
                pending = pending[os.write(fd, pending):]
            except BlockingIOError:
                continue

    def _receive(self, seconds: float) -> dict:
        import json

        deadline = time.monotonic() + seconds
        fd = self._process.stdout.fileno()
        while True:
            if len(self._buffer) >= runner.HEADER.size:
                (size,) = runner.HEADER.unpack(self._buffer[:runner.HEADER.size])
                if size > MAX_FRAME:
                    raise ValueError(f"a message of {size >> 20} MB")
                end = runner.HEADER.size + size
                if len(self._buffer) >= end:
                    data, self._buffer = self._buffer[runner.HEADER.size:end], \
                        self._buffer[end:]
                    reply = json.loads(data)
                    if not isinstance(reply, dict):
                        raise ValueError("a message that is not an object")
                    return reply
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise TimeoutError
            try:
                chunk = os.read(fd, 1 << 20)
            except BlockingIOError:
                continue
            if not chunk:
                raise EOFError
            self._buffer += chunk

    def _death(self, error: BaseException) -> str:
        if isinstance(error, ValueError):
            return f"it sent something that is not a result ({error})"
        process = self._process
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=5)  # the channel closed: the process is on its way out
        code = process.poll()
        if code is None:
            return "it closed its channel to the grader"
        if code < 0 or code > 128:
            number = -code if code < 0 else code - 128
            name = signal.Signals(number).name if number in signal.valid_signals() else number
            hint = {"SIGKILL": " (memory or process limit?)",
                    "SIGXCPU": f" (more than {self.limits.cpu_seconds} s of CPU time)"}
            return f"killed by {name}{hint.get(str(name), '')}"
        return f"it exited with code {code} (os._exit or sys.exit at the top level?)"

    def _stderr(self) -> str:
        if self._process is None:
            return ""
        self.close()
        data = self._process.stderr.read(64 << 10) if self._process.stderr else b""
        return data.decode(errors="replace").strip()[-2000:] or "no message"

    def close(self) -> None:
        """Kill the interpreter (and, through bubblewrap, everything it started)."""
        process = self._process
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        for stream in (process.stdin, process.stdout) if process else ():
            with contextlib.suppress(OSError):
                stream.close()
        shutil.rmtree(self._scratch, ignore_errors=True)


def _process_count() -> int:
    """Processes of this uid now (the process limit is per uid)."""
    uid = os.getuid()
    return sum(1 for p in Path("/proc").iterdir() if p.name.isdigit()
               and _owner(p) == uid)


def _owner(path: Path) -> int | None:
    try:
        return path.stat().st_uid
    except OSError:
        return None
