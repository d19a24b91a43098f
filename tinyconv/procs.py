"""Child processes and temp folders that never outlive tinyconv, whatever signal ends it.

* Every child (compiler, QEMU, native runner, flasher) starts in its own process group with
  PR_SET_PDEATHSIG = SIGKILL: the kernel kills it when tinyconv dies, even by SIGKILL.
* A guardian process (this module run as a program, in its own session) is told every child
  group and temp folder over a pipe. When the pipe reaches EOF (tinyconv is gone, however), it
  kills those groups (a compiler's own children included) and removes those folders.
* The CLI installs handlers for SIGTERM, SIGHUP and SIGINT that do the same at once and then exit
  with 128 + signo (SIGINT as KeyboardInterrupt, exit 130).
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

PR_SET_PDEATHSIG = 1
_lock = threading.Lock()
_groups: set[int] = set()
_paths: set[str] = set()  # temp folders and files
_guardian: dict = {}  # {"proc": Popen, "fd": write end} once started

try:
    _prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up before any fork
except (OSError, AttributeError):  # not Linux: no parent-death signal, the guardian still cleans up
    _prctl = None


def _child_setup(parent: int):
    def setup() -> None:  # runs in the child between fork and exec: no locks, no imports
        os.setpgid(0, 0)
        if _prctl is not None:
            _prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return setup


def _tell(line: str) -> None:
    """One line to the guardian (started on first use); a dead guardian is not an error."""
    with _lock:
        if "fd" not in _guardian:
            r, w = os.pipe()
            try:
                _guardian["proc"] = subprocess.Popen([sys.executable, "-m", "tinyconv.procs"], stdin=r, stdout=subprocess.DEVNULL,
                                                     stderr=subprocess.DEVNULL, start_new_session=True, close_fds=True)  # fmt: skip
            finally:
                os.close(r)
            _guardian["fd"] = w
            atexit.register(_release_guardian)
        try:
            os.write(_guardian["fd"], (line + "\n").encode("utf-8", "surrogateescape"))
        except OSError:
            pass


def _release_guardian() -> None:
    """At a normal exit: EOF tells the guardian to finish (what is left to clean is already gone by
    then), and reaping it keeps Python from warning that a child was still running."""
    with contextlib.suppress(OSError):
        os.close(_guardian.pop("fd"))
    with contextlib.suppress(subprocess.TimeoutExpired):
        _guardian["proc"].wait(timeout=5)


def _children_tmpdir() -> str:
    """TMPDIR for every child: a compiler killed mid-way leaves its own temp files in here, and
    this folder goes with the rest (at exit, on a signal, or by the guardian)."""
    with _lock:
        path = _guardian.get("tmpdir")
    if path is None:
        path = tempfile.mkdtemp(prefix="tinyconv-children-")
        track(path)
        with _lock:
            _guardian["tmpdir"] = path
        atexit.register(untrack, path)
    return path


def popen(argv: list[str], **kw) -> subprocess.Popen:
    """subprocess.Popen, the child in its own group, killed with tinyconv (see the module note)."""
    kw.setdefault("close_fds", True)
    kw["env"] = {**(kw.get("env") or os.environ), "TMPDIR": _children_tmpdir()}
    proc = subprocess.Popen(argv, preexec_fn=_child_setup(os.getpid()), **kw)
    with _lock:
        _groups.add(proc.pid)
    _tell(f"+pg {proc.pid}")
    return proc


def reap(proc: subprocess.Popen) -> None:
    """Forget a child that has exited (its group id may be reused afterwards)."""
    if proc.poll() is None:
        kill(proc)
    with _lock:
        _groups.discard(proc.pid)
    _tell(f"-pg {proc.pid}")


def kill(proc: subprocess.Popen) -> None:
    """SIGKILL the child's whole group (a compiler driver's cc1/as/ld too) and wait for it."""
    with contextlib.suppress(OSError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(OSError):
        proc.kill()  # a process someone else started outside popen() leads no group
    with contextlib.suppress(OSError, subprocess.TimeoutExpired):
        proc.wait(timeout=5)


def run(argv: list[str], *, timeout: float, input: bytes | str | None = None, text: bool = True, **kw) -> subprocess.CompletedProcess:
    """subprocess.run(capture_output=True) through popen(); on timeout the whole group is killed."""
    proc = popen(argv, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL, stdout=subprocess.PIPE,
                 stderr=subprocess.PIPE, text=text, **kw)  # fmt: skip
    try:
        out, err = proc.communicate(input, timeout=timeout)
    except BaseException:  # timeout, Ctrl-C, a signal: the child goes first
        kill(proc)
        raise
    finally:
        reap(proc)
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            os.unlink(path)


def track(path) -> None:
    """Remove this temp folder or file if tinyconv is stopped before `untrack` (signal or guardian)."""
    path = os.path.abspath(path)
    with _lock:
        _paths.add(path)
    _tell(f"+path {path}")


def untrack(path, *, remove: bool = True) -> None:
    path = os.path.abspath(path)
    if remove:
        _remove(path)
    with _lock:
        _paths.discard(path)
    _tell(f"-path {path}")


@contextlib.contextmanager
def temp_dir(prefix: str = "tinyconv-"):
    """A temp folder removed on leaving the block, on a signal, or by the guardian."""
    path = tempfile.mkdtemp(prefix=prefix)
    track(path)
    try:
        yield Path(path)
    finally:
        untrack(path)


def temp_file(prefix: str = "tinyconv-", suffix: str = "") -> Path:
    """An empty temp file, tracked until `untrack(path)`."""
    fd, name = tempfile.mkstemp(prefix=prefix, suffix=suffix)
    os.close(fd)
    track(name)
    return Path(name)


def cleanup_now() -> None:
    """Kill every live child group and remove every temp folder (signal handlers call this)."""
    for pg in list(_groups):
        with contextlib.suppress(OSError):
            os.killpg(pg, signal.SIGKILL)
    for p in list(_paths):
        _remove(p)


def _on_signal(signo, frame) -> None:
    for s in HANDLED:  # a second signal must not cut the cleanup short
        signal.signal(s, signal.SIG_IGN)
    cleanup_now()
    if signo == signal.SIGINT:
        raise KeyboardInterrupt
    raise SystemExit(128 + signo)


HANDLED = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)


def exit_cleanly_on_signals() -> dict:
    """For the CLI (a library does not take over its host's signals); returns the previous handlers."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {s: signal.signal(s, _on_signal) for s in HANDLED}


def restore_signals(previous: dict) -> None:
    for s, h in previous.items():
        signal.signal(s, h)


def _guard() -> None:
    """The guardian: follow the registrations on stdin; at EOF (tinyconv ended), clean up what is left."""
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, signal.SIG_IGN)  # outlive tinyconv's group being signalled, only EOF ends this
    groups: set[int] = set()
    paths: set[str] = set()
    for raw in sys.stdin.buffer:
        kind, _, arg = raw.rstrip(b"\n").decode("utf-8", "surrogateescape").partition(" ")
        if kind in ("+pg", "-pg") and arg.isdigit():
            (groups.add if kind == "+pg" else groups.discard)(int(arg))
        elif kind in ("+path", "-path") and arg:
            (paths.add if kind == "+path" else paths.discard)(arg)
    for pg in groups:
        with contextlib.suppress(OSError):
            os.killpg(pg, signal.SIGKILL)
    for p in paths:
        _remove(p)


if __name__ == "__main__":
    _guard()
