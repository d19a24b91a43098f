"""A `serial` device flashed by a command of the user's choice (`[flash] method = "command"`), here
a shell line that boots QEMU with {elf} behind a TCP serial port, the way a script would program a
board that tinyconv cannot flash itself. Then the usual session over that port, bit-exact."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import need
from tinyconv import reference
from tinyconv.errors import DeviceError
from tinyconv.harness import api
from tinyconv.harness.devices import _parse
from tinyconv.harness.flash import free_port

pytestmark = pytest.mark.device

DEVICE = """
name = "scripted-m4"
cpu = "cortex-m4"
target = "cortex-m4"
kind = "serial"
[build]
cc = "arm-none-eabi-gcc"
cflags = ["-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard", "-O2"]
port = "cortexm"
linker_script = "mps2-an386.ld"
defines = {{ TCR_UART_BASE = "0x40004000u", TCR_CPU_HZ = "25000000u" }}
stack_bytes = 16384
[flash]
method = "command"
command = ["sh", "-c", "qemu-system-arm -machine mps2-an386 -cpu cortex-m4 -kernel \\"$0\\" -chardev socket,id=s0,host=127.0.0.1,port={port},server=on,wait=on -serial chardev:s0 -icount shift=0 -display none -monitor none -nodefaults >/dev/null 2>&1 & echo $! > {pidfile}", "{{elf}}"]
[connect]
url = "socket://127.0.0.1:{port}"
boot_seconds = 0.3
"""


def test_command_flash_then_serial_session_is_bit_exact(libs, tmp_path):
    need("qemu-m4")
    c = libs.get("cortex-m4")
    xq = libs.xq("cortex-m4")[:3]
    pidfile = tmp_path / "qemu.pid"
    toml = tmp_path / "scripted-m4.toml"
    toml.write_text(DEVICE.format(port=free_port(), pidfile=pidfile))
    dev = _parse(toml)
    assert dev.can_run, dev.why_not
    try:
        got = api.run_inputs(c.library.outdir, dev, xq).outputs
    finally:
        if pidfile.exists():
            try:
                os.kill(int(pidfile.read_text()), signal.SIGKILL)
            except ProcessLookupError:
                pass
    assert pidfile.exists(), "the flash command did not run"
    expected = reference.run_batch(c.graph, xq).reshape(len(xq), -1)
    assert np.array_equal(got, expected)


def test_bad_flash_command_is_a_clear_error(libs, tmp_path):
    need("qemu-m4")
    c = libs.get("cortex-m4")
    toml = tmp_path / "bad.toml"
    toml.write_text(DEVICE.format(port=free_port(), pidfile=tmp_path / "p").replace('method = "command"', 'method = "command"\ntimeout = 5')
                    .replace('command = ["sh", "-c"', 'command = ["sh", "-c", "echo no probe >&2; exit 4", "{elf}"]\nunused = ["sh", "-c"'))  # fmt: skip
    t0 = time.monotonic()
    with pytest.raises(DeviceError, match="no probe"):
        api.run_inputs(c.library.outdir, _parse(toml), libs.xq("cortex-m4")[:1])
    assert time.monotonic() - t0 < 30
    assert Path(c.library.outdir).exists()
