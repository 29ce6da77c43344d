"""Start a command (an IPython kernel) inside a sandbox.

Usage::

    python -m backprop_course.sandbox.launch --state-dir DIR [--workdir DIR] [limits] -- ARGV...

Linux only. On a root machine the command runs in new network, mount, PID, IPC and
UTS namespaces, as a fresh unprivileged uid, with rlimits, inside a new root that
holds only the Python installation and system libraries (read-only), a private
``/tmp`` and ``/scratch`` (a size-capped tmpfs; ``/scratch`` starts as a copy of
``--workdir``) and ``--state-dir`` (read-write; the kernel's connection file and ZMQ
``ipc`` sockets live there). Without root it uses a user namespace for the same
filesystem and network isolation, runs under the caller's uid, and says so. Without
namespaces at all it applies only the rlimits and prints which protections are missing.

This file uses the standard library only, so it can run as a script (``python -I
launch.py``) without importing the course package, numpy or torch.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import os
import platform
import resource
import shutil
import signal
import sys
import traceback
from pathlib import Path

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
MNT_DETACH = 2
PR_SET_PDEATHSIG, PR_SET_NO_NEW_PRIVS = 1, 38
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "riscv64": 41, "ppc64le": 203, "s390x": 217}
# statvfs f_flag bits that a bind remount must keep (the kernel refuses to drop locked ones)
_ST_KEEP = {1: MS_RDONLY, 2: MS_NOSUID, 4: MS_NODEV, 8: MS_NOEXEC, 1024: 1024, 2048: 2048,
            4096: 1 << 21}

#: First uid of the range given to sandboxed kernels (uid = base + pid of the launcher).
UID_BASE = 1_500_000_000
#: Files of the host's /etc a Python kernel needs; everything else in /etc stays hidden.
ETC_ALLOW = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "alternatives", "localtime",
             "fonts", "ssl", "mime.types", "nsswitch.conf")
#: Environment variables passed through; everything else (NBGRADER_*, secrets) is dropped.
#: BACKPROP_COURSE_GRADER tells the course's check() to publish data only (it grants nothing).
ENV_ALLOW = ("PATH", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "TERM", "PYTHONPATH",
             "BACKPROP_COURSE_GRADER")
SCRATCH, HOME = "/scratch", "/home/student"
EXIT_SETUP_FAILED = 70

_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _enc(s: str | None) -> bytes | None:
    return None if s is None else s.encode()


def _mount(src: str | None, dst: str, fstype: str | None, flags: int, data: str = "") -> None:
    _check(_libc.mount(_enc(src), dst.encode(), _enc(fstype), ctypes.c_ulong(flags),
                       _enc(data or None)), f"mount {src} on {dst}")


def _write(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """Split ``argv`` at ``--`` into launcher options and the command to run."""
    if "--" not in argv:
        raise SystemExit("usage: launch.py [options] -- COMMAND...")
    cut = argv.index("--")
    p = argparse.ArgumentParser(prog="backprop_course.sandbox.launch")
    p.add_argument("--state-dir", required=True, help="per-kernel dir, bound read-write")
    p.add_argument("--workdir", help="copied into /scratch, the kernel's cwd")
    p.add_argument("--ro", action="append", default=[], help="extra path to expose read-only")
    p.add_argument("--hide", action="append", default=[],
                   help="path that must stay invisible: no exposed path may contain it")
    p.add_argument("--cpu", type=int, default=60, help="CPU seconds for the whole run")
    p.add_argument("--memory", type=int, default=4 << 30, help="address space, bytes")
    p.add_argument("--nproc", type=int, default=64, help="processes/threads of the uid")
    p.add_argument("--fsize", type=int, default=64 << 20, help="largest file written, bytes")
    p.add_argument("--nofile", type=int, default=256, help="open file descriptors")
    p.add_argument("--disk", type=int, default=256 << 20, help="size of /tmp + /scratch, bytes")
    p.add_argument("--require", choices=("full", "namespaces", "none"), default="none",
                   help="refuse to start unless this level of isolation is available")
    return p.parse_args(argv[:cut]), argv[cut + 1:]


def isolation_level() -> str:
    """Return the isolation this process can set up: "full", "namespaces" or "none".

    "full" is root (namespaces and a separate uid); "namespaces" is an unprivileged
    user namespace (filesystem, network and PID isolation, same uid); "none" is
    rlimits only.
    """
    if sys.platform != "linux" or platform.machine() not in SYS_PIVOT_ROOT:
        return "none"
    if os.geteuid() == 0:
        return "full"
    pid = os.fork()
    if pid == 0:  # probe in a child so the caller's namespaces stay as they are
        os._exit(0 if _libc.unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWNET) == 0 else 1)
    return "namespaces" if os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0 else "none"


MISSING = {
    "full": [],
    "namespaces": ["separate uid (the kernel runs under your own uid inside a user namespace)"],
    "none": ["network isolation", "filesystem isolation", "PID isolation", "separate uid"],
}


def exposed_paths(extra: list[str], hidden: list[str]) -> list[str]:
    """Directories to bind read-only: system dirs, the Python installation, extras.

    A candidate that equals or contains a hidden path (course root, state dir...) is
    dropped, so a venv in ``/work`` never exposes ``/work``.
    """
    import site  # noqa: PLC0415 - only needed here

    candidates = ["/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin", "/opt/conda",
                  "/sys/devices/system/cpu", sys.prefix, sys.base_prefix, sys.exec_prefix,
                  *site.getsitepackages(), *os.environ.get("PYTHONPATH", "").split(os.pathsep),
                  *extra]
    hidden_real = [os.path.realpath(h) for h in hidden]
    out: list[str] = []
    for c in candidates:
        if not c or not os.path.exists(c):
            continue
        real = os.path.realpath(c)
        if real == "/" or any(h == real or h.startswith(real.rstrip("/") + "/")
                              for h in hidden_real):
            continue
        if real not in out:
            out.append(real)
    # Merged-/usr systems: /bin -> usr/bin is a symlink; keep it one (see _build_root).
    return sorted(set(out) | {c for c in ("/bin", "/sbin", "/lib", "/lib64", "/lib32")
                              if os.path.islink(c)})


def _bind(src: str, dst: str, readonly: bool, recursive: bool = True) -> None:
    if os.path.isdir(src):
        os.makedirs(dst, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        Path(dst).touch()
    _mount(src, dst, None, MS_BIND | (MS_REC if recursive else 0))
    if readonly:
        keep = 0
        for bit, flag in _ST_KEEP.items():
            if os.statvfs(src).f_flag & bit:
                keep |= flag
        _mount(None, dst, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | keep)


def _build_root(opts: argparse.Namespace, uid: int, gid: int, chown: bool) -> str:
    """Assemble the new root on a tmpfs and return its path (still in the old tree).

    ``chown``: give /scratch and the home to ``uid`` (root mode). In a user namespace
    we already own them, and ``uid`` is mapped onto us only later.
    """
    root = os.path.join(opts.state_dir, "root")
    os.makedirs(root, exist_ok=True)
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    _mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, f"size={opts.disk},mode=0755")
    for path in exposed_paths(opts.ro, [opts.state_dir, *opts.hide]):
        if os.path.islink(path):
            os.symlink(os.readlink(path), root + path)
        else:
            _bind(path, root + path, readonly=True)
    os.makedirs(root + "/etc")
    for name in ETC_ALLOW:
        if os.path.exists("/etc/" + name):
            _bind("/etc/" + name, f"{root}/etc/{name}", readonly=True)
    _write(root + "/etc/passwd",
           f"root:x:0:0::/root:/bin/false\nstudent:x:{uid}:{gid}::{HOME}:/bin/false\n")
    _write(root + "/etc/group", f"root:x:0:\nstudent:x:{gid}:\n")
    _write(root + "/etc/hosts", "127.0.0.1 localhost\n")
    for dev in ("null", "zero", "full", "random", "urandom"):
        _bind("/dev/" + dev, f"{root}/dev/{dev}", readonly=False)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                         ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")):
        os.symlink(target, f"{root}/dev/{name}")
    for d in ("/tmp", "/dev/shm"):
        os.makedirs(root + d, exist_ok=True)  # exists if the venv or checkout lives in /tmp
        os.chmod(root + d, 0o1777)
    os.makedirs(root + "/proc")
    _mount("proc", root + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    if opts.workdir:
        shutil.copytree(opts.workdir, root + SCRATCH, symlinks=True)
    os.makedirs(root + SCRATCH, exist_ok=True)
    os.makedirs(root + HOME)
    for d in (SCRATCH, HOME) if chown else ():
        for dirpath, dirnames, filenames in os.walk(root + d):
            for name in [dirpath, *(os.path.join(dirpath, n) for n in dirnames + filenames)]:
                os.chown(name, uid, gid, follow_symlinks=False)
    # not recursive: the new root is mounted inside the state dir
    _bind(opts.state_dir, root + opts.state_dir, readonly=False, recursive=False)
    return root


def _pivot(root: str) -> None:
    os.chdir(root)
    nr = SYS_PIVOT_ROOT[platform.machine()]
    _check(_libc.syscall(ctypes.c_long(nr), b".", b"."), "pivot_root")
    _check(_libc.umount2(b".", MNT_DETACH), "umount old root")
    os.chdir("/")


def set_limits(opts: argparse.Namespace) -> None:
    """Apply the rlimits (soft = hard, except CPU: SIGXCPU first, SIGKILL 1 s later)."""
    limits = [(resource.RLIMIT_CPU, opts.cpu, opts.cpu + 1),
              (resource.RLIMIT_AS, opts.memory, opts.memory),
              (resource.RLIMIT_NPROC, opts.nproc, opts.nproc),
              (resource.RLIMIT_FSIZE, opts.fsize, opts.fsize),
              (resource.RLIMIT_NOFILE, opts.nofile, opts.nofile),
              (resource.RLIMIT_CORE, 0, 0)]
    for which, soft, hard in limits:
        resource.setrlimit(which, (soft, hard))


def _drop_privileges(level: str, uid: int, gid: int) -> None:
    if level == "full":
        os.setgroups([])
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)
    else:  # a nested user namespace where we are uid 1000: execve then drops all capabilities
        _check(_libc.unshare(CLONE_NEWUSER), "unshare user")
        _write("/proc/self/setgroups", "deny")
        _write("/proc/self/uid_map", f"{uid} 0 1\n")
        _write("/proc/self/gid_map", f"{gid} 0 1\n")
    _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
    # credential changes clear the parent-death signal: set it again
    _check(_libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "pdeathsig")


def kernel_env(uid_home: str = HOME) -> dict[str, str]:
    """The environment the sandboxed command sees: an allow-list plus our settings."""
    env = {k: v for k, v in os.environ.items() if k in ENV_ALLOW or k.startswith("LC_")}
    env.update(HOME=uid_home, TMPDIR="/tmp", MPLCONFIGDIR="/tmp/matplotlib",
               MPLBACKEND="agg", PYTHONDONTWRITEBYTECODE="1", OMP_NUM_THREADS="1",
               OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1", BACKPROP_SANDBOX="1",
               JPY_PARENT_PID="1")  # ipykernel: no parent poller (PDEATHSIG does that job)
    return env


def _inside(opts: argparse.Namespace, argv: list[str], level: str, uid: int, gid: int) -> None:
    """PID 1 of the new namespaces: build the root, limit, drop privileges, run the kernel."""
    _check(_libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "pdeathsig")
    if level == "full":  # the kernel reads its connection file and binds its sockets here
        for entry in [opts.state_dir, *Path(opts.state_dir).glob("*.json")]:
            os.chown(entry, uid, gid)
    root = _build_root(opts, uid, gid, chown=level == "full")
    _pivot(root)
    _check(_libc.sethostname(b"sandbox", 7), "sethostname")
    set_limits(opts)
    _drop_privileges(level, uid, gid)
    os.chdir(SCRATCH)
    kernel = os.fork()
    if kernel == 0:
        os.execve(argv[0], argv, kernel_env())
    _init(kernel)


def _init(kernel: int) -> None:
    """Be PID 1: reap orphans, exit with the kernel's status (which kills the rest).

    The kernel must not be PID 1 itself: PID 1 ignores signals it has no handler for,
    SIGXCPU from RLIMIT_CPU included.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        pid, status = os.wait()
        if pid == kernel:
            if os.WIFSIGNALED(status):
                os._exit(128 + os.WTERMSIG(status))
            os._exit(os.waitstatus_to_exitcode(status))


def main(argv: list[str] | None = None) -> int:
    """Run the command in the strongest sandbox available; return its exit code."""
    opts, command = parse_args(sys.argv[1:] if argv is None else argv)
    level = isolation_level()
    order = ["none", "namespaces", "full"]
    if order.index(level) < order.index(opts.require):
        print(f"sandbox: isolation {level!r} < required {opts.require!r}", file=sys.stderr)
        return EXIT_SETUP_FAILED
    if MISSING[level]:
        print("sandbox: WARNING, missing protections: " + "; ".join(MISSING[level]),
              file=sys.stderr)
    if level == "none":
        set_limits(opts)
        if opts.workdir:
            os.chdir(opts.workdir)
        os.execvp(command[0], command)
    uid, gid = (UID_BASE + os.getpid(),) * 2 if level == "full" else (1000, 1000)
    host_uid, host_gid = os.getuid(), os.getgid()
    flags = CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS
    _check(_libc.unshare(flags | (CLONE_NEWUSER if level == "namespaces" else 0)), "unshare")
    if level == "namespaces":
        _write("/proc/self/setgroups", "deny")
        _write("/proc/self/uid_map", f"0 {host_uid} 1\n")
        _write("/proc/self/gid_map", f"0 {host_gid} 1\n")
    pid = os.fork()
    if pid == 0:
        try:
            _inside(opts, command, level, uid, gid)
        except BaseException:  # noqa: BLE001 - report any setup failure, then die
            print("sandbox: setup failed:\n" + traceback.format_exc(), file=sys.stderr)
        os._exit(EXIT_SETUP_FAILED)
    # SIGINT (interrupt) reaches the kernel through the process group: survive it. Any
    # signal that kills us kills the kernel too (parent-death signal).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) % 256 if os.WIFEXITED(status) else \
        128 + os.WTERMSIG(status)


if __name__ == "__main__":
    sys.exit(main())
