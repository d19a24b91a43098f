"""Exact instruction counts under qemu-aarch64: the TCG plugin firmware/linux/icount_plugin.c,
compiled on first use into a cache folder (keyed by its source hash), and the shared counter
file it writes and the runner reads (see port_linux.c)."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from tinyconv import procs
from tinyconv.errors import DeviceError
from tinyconv.harness.devices import FIRMWARE_DIR

PLUGIN_SOURCE = FIRMWARE_DIR / "linux" / "icount_plugin.c"
COUNTER_FILE_BYTES = 4096


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tinyconv"


def plugin_path() -> Path:
    """The compiled plugin, built with the host C compiler the first time it is needed."""
    src = PLUGIN_SOURCE.read_bytes()
    so = cache_dir() / f"icount_plugin-{hashlib.sha256(src).hexdigest()[:12]}.so"
    if so.exists():
        return so
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        raise DeviceError("no host C compiler (cc) to build the QEMU instruction-count plugin", hint="run scripts/setup")
    so.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="icount-", suffix=".so", dir=so.parent)
    os.close(fd)
    try:
        r = procs.run([cc, "-shared", "-fPIC", "-O2", str(PLUGIN_SOURCE), "-o", tmp], timeout=120)
        if r.returncode != 0:
            raise DeviceError(f"building the QEMU instruction-count plugin failed: {' '.join(r.stderr.split())[:400]}")
        os.replace(tmp, so)  # atomic: concurrent builders produce the same file
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return so


def counter_file() -> Path:
    """A fresh zeroed file for one run, tracked (tinyconv.procs) until the caller untracks it when
    the process has stopped."""
    path = procs.temp_file(prefix="tinyconv-icount-")
    path.write_bytes(bytes(COUNTER_FILE_BYTES))
    return path


def qemu_user_argv(qemu: str, cpu: str, elf: Path, counter: Path) -> list[str]:
    return [qemu, "-cpu", cpu, "-plugin", f"{plugin_path()},counter={counter}", str(elf)]
