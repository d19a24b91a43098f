"""Load firmware over the GDB remote protocol: the one OpenOCD, pyOCD's gdbserver, SEGGER's J-Link
GDB server, probe-rs and QEMU's gdbstub all speak. GDB (gdb-multiarch or arm-none-eabi-gdb) runs in
batch mode: connect, the device's commands before the load (e.g. `monitor reset halt`), `load`, the
commands after it (e.g. `monitor reset run`), detach; the board then runs and is talked to over
serial as usual.

Device file:
    [flash]
    method = "gdb"
    address = "localhost:3333"              # the GDB server
    gdb = "gdb-multiarch"                   # optional
    before_load = ["monitor reset halt"]    # optional, these are the defaults (OpenOCD)
    after_load = ["monitor reset run"]
"""

from __future__ import annotations

import shutil
import subprocess

from tinyconv.errors import DeviceError

DEFAULT_GDB = "gdb-multiarch"
CONNECT_TIMEOUT_S = 10


def gdb_program(flash: dict) -> str:
    return flash.get("gdb", DEFAULT_GDB)


def load_command(elf: str, flash: dict) -> list[str]:
    """The gdb command line that loads `elf` through the server at flash['address']."""
    ex = ["set confirm off", "set pagination off", f"set tcp connect-timeout {CONNECT_TIMEOUT_S}",
          f"target extended-remote {flash['address']}", *flash.get("before_load", ["monitor reset halt"]), "load",
          *flash.get("after_load", ["monitor reset run"]), "detach"]  # fmt: skip
    cmd = [gdb_program(flash), "-nx", "-batch"]
    for e in ex:
        cmd += ["-ex", e]
    return [*cmd, elf]


def flash_gdb(fw, timeout: float = 180.0) -> str:
    dev = fw.device
    f = dev.flash
    if not f.get("address"):
        raise DeviceError(f"{dev.name}: flash method 'gdb' needs an address (host:port of the GDB server) in [flash]", hint=f"edit {dev.path}")
    gdb = gdb_program(f)
    if shutil.which(gdb) is None:
        raise DeviceError(f"{dev.name}: {gdb} is not installed", hint="apt-get install gdb-multiarch (or set [flash] gdb = \"arm-none-eabi-gdb\")")
    try:
        r = subprocess.run(load_command(str(fw.elf), f), capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise DeviceError(f"{dev.name}: loading over GDB at {f['address']} did not finish within {timeout:.0f} s") from None
    out = (r.stdout + r.stderr).strip()
    # gdb -batch exits 0 even when a command fails: read its messages too.
    failed = r.returncode != 0 or "Transfer rate" not in out or any(
        s in out for s in ("Connection refused", "Connection timed out", "Remote communication error", "Remote connection closed", "Load failed")
    )  # fmt: skip
    if failed:
        last = " ".join(out.split())[-300:]
        raise DeviceError(f"{dev.name}: loading {fw.elf.name} over GDB at {f['address']} failed: {last}", hint="is the GDB server running at that address?")
    return f"loaded {fw.elf.name} over GDB at {f['address']}"
