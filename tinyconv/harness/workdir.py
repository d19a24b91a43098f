"""Work folders for check / profile / flash: a temp folder, or one entry of a shared `--build-dir`.

A build dir holds one entry per build key (what determines the library: model and calibration
bytes, target, options), so builds for other targets or models never see each other's files.
An entry is locked (fcntl) while in use, and the least recently used unlocked entries beyond
KEEP are pruned. Within an entry, the library folder is regenerated from scratch each time while
the content-keyed firmware cache beside it is kept.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import time
from pathlib import Path

import numpy as np

from tinyconv import __version__, procs
from tinyconv.errors import TinyconvError

KEEP = 8
LOCK_TIMEOUT = 600.0
ENTRY_PREFIX = "k-"


def build_key(model, calib, target: str, options: tuple = ()) -> str:
    """What determines the generated library and its builds, hashed (the one place keys are made)."""
    h = hashlib.sha256(repr((__version__, target, options)).encode())
    for part in (model, calib):
        if isinstance(part, (str, Path)) and Path(part).is_file():
            h.update(Path(part).read_bytes())
        elif isinstance(part, np.ndarray):
            h.update(repr((part.dtype.str, part.shape)).encode() + np.ascontiguousarray(part).tobytes())
        else:  # an in-memory graph or nothing: the entry is still locked and regenerated, only reuse is lost
            h.update(repr(type(part)).encode() + str(getattr(part, "name", part)).encode())
    return h.hexdigest()[:16]


@contextlib.contextmanager
def locked_entry(root: Path, key: str, *, timeout: float = LOCK_TIMEOUT):
    """`root/k-<key>`, held under an exclusive lock for the duration of the block."""
    root = Path(root)
    entry = root / f"{ENTRY_PREFIX}{key}"
    try:
        entry.mkdir(parents=True, exist_ok=True)
        fd = os.open(entry / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise TinyconvError(f"cannot use build folder {root}: {e.strerror}", hint="give a writable --build-dir") from None
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TinyconvError(f"build folder {entry} stayed in use by another tinyconv for {timeout:.0f} s",
                                        hint="wait for it, or give another --build-dir") from None  # fmt: skip
                time.sleep(0.2)
        os.utime(entry)  # most recently used
        _prune(root, keep=KEEP, current=entry)
        yield entry
    finally:
        os.close(fd)  # releases the lock


def _prune(root: Path, *, keep: int, current: Path) -> None:
    """Remove the least recently used entries beyond `keep` that nobody holds; nothing else is touched."""
    entries = sorted((p for p in root.glob(f"{ENTRY_PREFIX}*") if (p / ".lock").is_file() and p != current),
                     key=lambda p: p.stat().st_mtime, reverse=True)  # fmt: skip
    for old in entries[max(0, keep - 1) :]:
        try:
            fd = os.open(old / ".lock", os.O_RDWR)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        try:
            shutil.rmtree(old, ignore_errors=True)
        finally:
            os.close(fd)


@contextlib.contextmanager
def work_folder(build_dir, model, calib, target: str, options: tuple = ()):
    """The folder a job compiles into (`<folder>/lib`) and builds in: a temp folder removed afterwards
    (and on any signal), or a locked, content-keyed entry of `build_dir`."""
    if build_dir is None:
        with procs.temp_dir("tinyconv-") as tmp:
            yield tmp
        return
    with locked_entry(Path(build_dir), build_key(model, calib, target, options)) as entry:
        lib = entry / "lib"
        if lib.is_dir():  # regenerate: no file of an earlier generation may be compiled in; keep the firmware cache
            for p in lib.iterdir():
                if p.name != ".build":
                    shutil.rmtree(p) if p.is_dir() else p.unlink()
        yield entry
