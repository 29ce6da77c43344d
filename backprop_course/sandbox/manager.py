"""A jupyter_client kernel manager whose kernels run in the sandbox of ``launch.py``.

The kernel lives in its own network namespace, so it cannot use TCP on the grader's
loopback: the manager switches ZMQ to the ``ipc`` transport and keeps the connection
file and the Unix sockets in a private per-kernel state directory that the sandbox
binds in. Once the kernel has bound its sockets, the directory is locked again, so
the student's code cannot write there.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
import typing as t
from pathlib import Path

import zmq.asyncio
from jupyter_client.manager import AsyncKernelManager
from traitlets import Enum, Integer, List, Unicode, default

from . import launch

#: The course package: the kernel must import it, and it is public anyway.
PACKAGE_DIR = str(Path(__file__).resolve().parents[1])


class SandboxKernelManager(AsyncKernelManager):
    """Start kernels through :mod:`backprop_course.sandbox.launch`.

    Every limit is a configurable trait, e.g. ``c.SandboxKernelManager.cpu_seconds = 60``.
    """

    cpu_seconds = Integer(120, help="CPU seconds for the kernel's whole life").tag(config=True)
    memory_bytes = Integer(4 << 30, help="address space of each process").tag(config=True)
    max_processes = Integer(64, help="processes and threads of the kernel").tag(config=True)
    max_file_bytes = Integer(64 << 20, help="largest file the kernel may write").tag(config=True)
    max_open_files = Integer(256, help="open file descriptors").tag(config=True)
    disk_bytes = Integer(256 << 20, help="size of the kernel's /tmp and /scratch").tag(
        config=True)
    hidden_paths = List(Unicode(), help="paths the sandbox must never expose "
                        "(the course root); no exposed directory may contain one").tag(config=True)
    readonly_paths = List(Unicode(), help="extra paths to expose read-only").tag(config=True)
    require_isolation = Enum(["full", "namespaces", "none"], "none",
                             help="refuse to start a kernel with weaker isolation").tag(config=True)
    max_message_bytes = Integer(64 << 20, help="larger messages from the kernel are dropped "
                                "(ZMQ_MAXMSGSIZE), so one huge output cannot fill the "
                                "grader's memory").tag(config=True)
    socket_wait = Integer(60, help="seconds to wait for the kernel to bind its sockets").tag(
        config=True)

    @default("transport")
    def _transport_default(self) -> str:
        return "ipc"

    _state_dir: str | None = None
    _workdir: str | None = None
    _last_exit_code: int | None = None

    async def _async_pre_start_kernel(self, **kw: t.Any) -> tuple[list[str], dict[str, t.Any]]:
        if self._state_dir is None:
            self._state_dir = tempfile.mkdtemp(prefix="bpsbx-")
            self.connection_file = os.path.join(self._state_dir, "kernel.json")
            self.ip = os.path.join(self._state_dir, "k")
        self._workdir = kw.get("cwd")
        kw["cwd"] = self._state_dir
        return await super()._async_pre_start_kernel(**kw)

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        """Wrap the kernelspec's command in the sandbox launcher."""
        cmd = super().format_kernel_cmd(extra_arguments)
        cmd[0] = shutil.which(cmd[0]) or cmd[0]
        assert self._state_dir is not None
        opts = ["--state-dir", self._state_dir, "--cpu", str(self.cpu_seconds),
                "--memory", str(self.memory_bytes), "--nproc", str(self.max_processes),
                "--fsize", str(self.max_file_bytes), "--nofile", str(self.max_open_files),
                "--disk", str(self.disk_bytes), "--require", self.require_isolation,
                "--ro", PACKAGE_DIR]
        for path in self.readonly_paths:
            opts += ["--ro", path]
        for path in self.hidden_paths:
            opts += ["--hide", path]
        if self._workdir:
            opts += ["--workdir", self._workdir]
        return [sys.executable, "-I", launch.__file__, *opts, "--", *cmd]

    async def _async_post_start_kernel(self, **kw: t.Any) -> None:
        await super()._async_post_start_kernel(**kw)
        await self._lock_state_dir()

    async def _lock_state_dir(self) -> None:
        """Wait until the kernel has bound its sockets, then make the dir read-only to it."""
        assert self._state_dir is not None
        ports = [self.shell_port, self.iopub_port, self.stdin_port, self.hb_port,
                 self.control_port]
        sockets = [Path(f"{self.ip}-{port}") for port in ports]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.socket_wait
        while not all(s.exists() for s in sockets) and loop.time() < deadline:
            if not await self.is_alive():
                return
            await asyncio.sleep(0.02)
        if os.geteuid() == 0:
            os.chown(self._state_dir, 0, 0)
        os.chmod(self._state_dir, 0o755 if os.geteuid() == 0 else 0o500)

    async def _async_cleanup_resources(self, restart: bool = False) -> None:
        self._last_exit_code = self.exit_code
        if self._state_dir is not None:
            os.chmod(self._state_dir, 0o700)
        await super()._async_cleanup_resources(restart)
        if not restart and self._state_dir is not None:
            shutil.rmtree(self._state_dir, ignore_errors=True)
            self._state_dir = None

    cleanup_resources = _async_cleanup_resources  # type: ignore[assignment]

    def client(self, **kwargs: t.Any) -> t.Any:
        """A client whose sockets drop any message above ``max_message_bytes``."""
        context = zmq.asyncio.Context()
        context.setsockopt(zmq.MAXMSGSIZE, self.max_message_bytes)
        kc = super().client(context=context, **kwargs)
        kc._created_context = True  # the client destroys it in stop_channels
        return kc

    @property
    def exit_code(self) -> int | None:
        """The launcher's exit code once the kernel has died (128 + n: killed by signal n)."""
        process = getattr(self.provisioner, "process", None)
        return self._last_exit_code if process is None else process.poll()
