"""Flashing over the GDB remote protocol, end to end: QEMU waits halted (-S) with its gdbstub on a
TCP port and its UART on another; a `kind = "serial"` device with `[flash] method = "gdb"` loads
the firmware through gdb-multiarch, resets the board, and `tinyconv check` then talks to it over
the serial socket and compares every output byte with the reference."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from tinyconv.harness.devices import load_device

EXAMPLE = Path(__file__).resolve().parent.parent.parent / "examples" / "digits"
pytestmark = pytest.mark.device


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def toml_value(v) -> str:
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(x)}" for k, x in v.items()) + " }"
    return str(v)


def gdb_device_file(path: Path, gdb_port: int, serial_port: int) -> None:
    """The qemu-m4 build, loaded through QEMU's gdbstub as if it were OpenOCD in front of a board."""
    build = load_device("qemu-m4").build
    lines = ['name = "qemu-m4-gdb"', 'description = "Cortex-M4 on QEMU mps2-an386 loaded over GDB"', 'cpu = "cortex-m4"',
             'target = "cortex-m4"', 'kind = "serial"', "", "[build]", *(f"{k} = {toml_value(v)}" for k, v in build.items()), "",
             "[flash]", 'method = "gdb"', f'address = "127.0.0.1:{gdb_port}"', "before_load = []",
             'after_load = ["monitor system_reset"]', "", "[connect]", f'url = "socket://127.0.0.1:{serial_port}"', "boot_seconds = 0.2"]  # fmt: skip
    path.write_text("\n".join(lines) + "\n")


class HaltedQemu:
    """QEMU standing in for a board behind a GDB server: it waits halted (-S) until loaded. The runner
    ends each session with a semihosting exit, which ends QEMU; a watcher starts it again, halted,
    as a board comes back from reset and waits for its debugger. So every session loads it again."""

    def __init__(self, log: Path):
        self.gdb_port, self.serial_port = free_port(), free_port()
        self.log = open(log, "ab")
        self.stopping = threading.Event()
        self.proc = self._start()
        self.starts = 1
        self.watcher = threading.Thread(target=self._watch, daemon=True)
        self.watcher.start()

    def _start(self) -> subprocess.Popen:
        return subprocess.Popen(["qemu-system-arm", "-machine", "mps2-an386", "-cpu", "cortex-m4", "-S", "-gdb", f"tcp:127.0.0.1:{self.gdb_port}",
                                 "-chardev", f"socket,id=s0,host=127.0.0.1,port={self.serial_port},server=on,wait=off", "-serial", "chardev:s0",
                                 "-icount", "shift=0", "-semihosting-config", "enable=on,target=native", "-display", "none", "-monitor", "none"],
                                stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT)  # fmt: skip

    def _watch(self) -> None:
        while not self.stopping.wait(0.05):
            if self.proc.poll() is not None:
                self.proc = self._start()
                self.starts += 1

    def wait_listening(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.gdb_port), timeout=1).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("QEMU's gdbstub did not start listening")
                time.sleep(0.1)

    def stop(self) -> None:
        self.stopping.set()
        self.watcher.join(timeout=5)
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.log.close()


@pytest.fixture
def halted_qemu(tmp_path):
    for tool in ("arm-none-eabi-gcc", "qemu-system-arm", "gdb-multiarch"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (run scripts/setup)")
    q = HaltedQemu(tmp_path / "qemu.log")
    try:
        q.wait_listening()
        yield q
    finally:
        q.stop()


def test_check_on_a_board_loaded_over_gdb(halted_qemu, tmp_path):
    devices = tmp_path / "devices"
    devices.mkdir()
    gdb_device_file(devices / "qemu-m4-gdb.toml", halted_qemu.gdb_port, halted_qemu.serial_port)
    np.save(tmp_path / "x.npy", np.load(EXAMPLE / "test_x.npy")[:16])
    env = {**os.environ, "TINYCONV_DEVICES": str(devices)}
    r = subprocess.run([sys.executable, "-m", "tinyconv.cli", "check", str(EXAMPLE / "digits_cnn.onnx"), "--calib", str(EXAMPLE / "calib.npy"),
                        "--inputs", str(tmp_path / "x.npy"), "--device", "qemu-m4-gdb", "--json", str(tmp_path / "r.json")],
                       capture_output=True, text=True, timeout=600, env=env)  # fmt: skip
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["bit_exact"] and report["inputs"] == 16 and report["mismatches"] == 0 and report["device"] == "qemu-m4-gdb"
    assert all(lay["mismatches"] == 0 for lay in report["layers"])  # the layer dump: a second session, loaded again


def test_a_gdb_server_that_is_not_there_is_one_clear_error(tmp_path):
    if shutil.which("gdb-multiarch") is None:
        pytest.skip("gdb-multiarch is not installed (run scripts/setup)")
    devices = tmp_path / "devices"
    devices.mkdir()
    gdb_device_file(devices / "qemu-m4-gdb.toml", free_port(), free_port())
    env = {**os.environ, "TINYCONV_DEVICES": str(devices)}
    r = subprocess.run([sys.executable, "-m", "tinyconv.cli", "flash", str(EXAMPLE / "digits_cnn.onnx"), "--calib", str(EXAMPLE / "calib.npy"),
                        "--device", "qemu-m4-gdb", "--build-dir", str(tmp_path / "b")], capture_output=True, text=True, timeout=300, env=env)  # fmt: skip
    assert r.returncode == 3, r.stdout + r.stderr
    assert r.stderr.startswith("error: qemu-m4-gdb: loading firmware.elf over GDB") and "Traceback" not in r.stderr
