"""Start the firmware on a device and connect to it: QEMU (system or user mode), a native process,
a real board (flash with pyocd / stm32loader, then its serial port) or a phone (adb).
Every process started here is stopped by Target.close(), which callers run in `finally`; all of them
start through tinyconv.procs, so they die with tinyconv even when it is killed."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

from tinyconv import procs
from tinyconv.errors import DeviceError
from tinyconv.harness import icount
from tinyconv.harness.build import Firmware
from tinyconv.harness.gdbload import flash_gdb
from tinyconv.harness.link import PipeTransport, SerialTransport, Transport


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def qemu_system_cmd(fw: Firmware, port: int) -> list[str]:
    r = fw.device.run
    return [r.get("qemu", "qemu-system-arm"), "-machine", r["machine"], "-cpu", r.get("cpu", fw.device.cpu),
            "-kernel", str(fw.elf), "-chardev", f"socket,id=s0,host=127.0.0.1,port={port},server=on,wait=on,nodelay=on",
            "-serial", "chardev:s0", "-icount", "shift=0", "-semihosting-config", "enable=on,target=native",
            "-display", "none", "-monitor", "none", "-nodefaults"]  # fmt: skip


class Target:
    """A running firmware: a transport plus whatever process must be stopped afterwards."""

    def __init__(self, transport: Transport, proc: subprocess.Popen | None = None, log: Path | None = None, what: str = "",
                 scratch: tuple[Path, ...] = ()):
        self.transport = transport
        self.proc = proc
        self.log = log
        self.what = what
        self.scratch = scratch  # files deleted once the process has stopped

    def alive(self) -> bool:
        return self.proc is None or self.proc.poll() is None

    def exit_detail(self) -> str:
        if self.proc is None:
            return ""
        try:
            rc = self.proc.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            return "the process is still running"
        tail = ""
        if self.log and self.log.exists():
            tail = " ".join(self.log.read_text(errors="replace").split())[-300:]
        return f"{self.what} exited with code {rc}" + (f" ({tail})" if tail else "")

    def close(self) -> None:
        try:
            self.transport.close()
        finally:
            if self.proc is not None:
                if self.proc.poll() is None:
                    self.proc.terminate()
                    try:
                        self.proc.wait(timeout=3)
                    except subprocess.TimeoutExpired:
                        procs.kill(self.proc)
                procs.reap(self.proc)
            for p in (self.log, *self.scratch):
                if p is not None:
                    procs.untrack(p)


def _logfile() -> Path:
    return procs.temp_file(prefix="tinyconv-dev-", suffix=".log")


def start_qemu_system(fw: Firmware, *, connect_timeout: float = 10.0, port: int | None = None) -> Target:
    """QEMU with the firmware, its serial port on 127.0.0.1:`port` (a free one when not given)."""
    fixed = port
    last = ""
    for _ in range(1 if fixed else 3):
        port = fixed or free_port()
        log = _logfile()
        with open(log, "wb") as lf:
            proc = procs.popen(qemu_system_cmd(fw, port), stdin=subprocess.DEVNULL, stdout=lf, stderr=subprocess.STDOUT)
        try:
            tr = SerialTransport(f"socket://127.0.0.1:{port}", connect_timeout=connect_timeout, alive=lambda p=proc: p.poll() is None)
        except BaseException as e:
            if not isinstance(e, DeviceError):  # Ctrl-C and the like: never leave QEMU behind
                Target(_NullTransport(), proc, log, "QEMU").close()
                raise
            t = Target(_NullTransport(), proc, None, "QEMU")
            detail = log.read_text(errors="replace").strip()
            t.close()
            procs.untrack(log)
            if "in use" in detail and not fixed:  # someone took the port between our probe and QEMU's bind
                last = detail
                continue
            raise DeviceError(f"{fw.device.name}: {e}" + (f"; QEMU said: {detail[-300:]}" if detail else "")) from None
        return Target(tr, proc, log, "QEMU")
    raise DeviceError(f"{fw.device.name}: QEMU could not open a socket: {last[-200:]}")


class _NullTransport(Transport):
    def close(self) -> None:
        pass


def start_process(fw: Firmware, argv: list[str], what: str, env: dict | None = None, scratch: tuple[Path, ...] = ()) -> Target:
    log = _logfile()
    with open(log, "wb") as lf:
        try:
            proc = procs.popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=lf,
                               env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **(env or {})})
        except OSError as e:
            for p in (log, *scratch):
                procs.untrack(p)
            raise DeviceError(f"{fw.device.name}: cannot start {argv[0]}: {e}") from None
    return Target(PipeTransport(proc), proc, log, what, scratch)


def start_qemu_user(fw: Firmware) -> Target:
    r = fw.device.run
    qemu, cpu = r.get("qemu", "qemu-aarch64"), r.get("cpu", fw.device.cpu)
    if not r.get("icount", False):
        return start_process(fw, [qemu, "-cpu", cpu, str(fw.elf)], qemu)
    counter = icount.counter_file()
    try:
        argv = icount.qemu_user_argv(qemu, cpu, fw.elf, counter)
    except BaseException:
        procs.untrack(counter)
        raise
    return start_process(fw, argv, qemu, env={"TINYCONV_ICOUNT_FILE": str(counter)}, scratch=(counter,))


def flash_pyocd(fw: Firmware, timeout: float = 120.0) -> str:
    tgt = fw.device.flash.get("target")
    if shutil.which("pyocd") is None:
        raise DeviceError(f"{fw.device.name}: pyocd is not installed (pip install pyocd)")
    cmd = ["pyocd", "flash", *(["-t", tgt] if tgt else []), str(fw.elf)]
    return _run_flasher(fw, cmd, timeout)


def flash_stm32loader(fw: Firmware, timeout: float = 180.0) -> str:
    if shutil.which("stm32loader") is None:
        raise DeviceError(f"{fw.device.name}: stm32loader is not installed (pip install stm32loader)")
    binfile = fw.elf.with_suffix(".bin")
    r = procs.run(["arm-none-eabi-objcopy", "-O", "binary", str(fw.elf), str(binfile)], timeout=60)
    if r.returncode != 0:
        raise DeviceError(f"{fw.device.name}: objcopy failed: {' '.join(r.stderr.split())[-300:]}")
    port = fw.device.flash.get("port", fw.device.connect.get("url", "/dev/ttyUSB0"))
    return _run_flasher(fw, ["stm32loader", "-p", port, "-e", "-w", "-v", str(binfile)], timeout)


def _run_flasher(fw: Firmware, cmd: list[str], timeout: float) -> str:
    try:
        r = procs.run(cmd, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise DeviceError(f"{fw.device.name}: {cmd[0]} did not finish within {timeout:.0f} s") from None
    if r.returncode != 0:
        msg = " ".join((r.stderr or r.stdout).split())[-300:]
        raise DeviceError(f"{fw.device.name}: {cmd[0]} failed: {msg}")
    return f"flashed {fw.elf.name} with {cmd[0]}"


def adb_push(fw: Firmware, timeout: float = 120.0) -> str:
    if shutil.which("adb") is None:
        raise DeviceError(f"{fw.device.name}: adb is not installed")
    remote = f"{fw.device.flash.get('remote_dir', '/data/local/tmp')}/tinyconv-runner-{fw.build_id:08x}"
    for cmd in (["adb", "push", str(fw.elf), remote], ["adb", "shell", "chmod", "755", remote]):
        _run_flasher(fw, cmd, timeout)
    return remote


def flash_command(fw: Firmware) -> str:
    """`method = "command"`: the device file's argv, with {elf}, {bin}, {url} and {place} filled in."""
    dev = fw.device
    argv = dev.flash.get("command")
    if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
        raise DeviceError(f"{dev.name}: flash method 'command' needs command = [\"program\", \"arg\", ...] (with {{elf}} where the ELF goes)")
    place = getattr(dev, "place", None)
    fill = {"{elf}": str(fw.elf), "{bin}": str(fw.elf.with_suffix(".bin")), "{url}": place.url if place else str(dev.connect.get("url", "")),
            "{place}": place.name if place else ""}  # fmt: skip
    if any("{bin}" in a for a in argv):
        objcopy = dev.build.get("cc", "arm-none-eabi-gcc").replace("gcc", "objcopy")
        r = procs.run([objcopy, "-O", "binary", str(fw.elf), fill["{bin}"]], timeout=60)
        if r.returncode != 0:
            raise DeviceError(f"{dev.name}: {objcopy} failed: {' '.join(r.stderr.split())[-300:]}")
    cmd = []
    for a in argv:
        for k, v in fill.items():
            a = a.replace(k, v)
        cmd.append(a)
    return _run_flasher(fw, cmd, float(dev.flash.get("timeout", 120)))


def flash_labgrid(fw: Firmware) -> str:
    """`method = "labgrid"`: the place's own bootstrap driver (e.g. OpenOCD) loads the ELF."""
    from tinyconv.harness.labgrid import LabgridClient

    place = getattr(fw.device, "place", None)
    if place is None:
        raise DeviceError(f"{fw.device.name}: flash method 'labgrid' works only through a labgrid place (--device labgrid:...)")
    client = LabgridClient()
    return _run_flasher(fw, client.argv("bootstrap", str(fw.elf), place=place.name), float(fw.device.flash.get("timeout", 180)))


FLASH_METHODS = {"pyocd": flash_pyocd, "stm32loader": flash_stm32loader, "command": flash_command, "labgrid": flash_labgrid, "gdb": flash_gdb}


def flash_only(fw: Firmware) -> str:
    """Put the firmware on the device without starting a session."""
    dev = fw.device
    if dev.kind == "serial":
        method = dev.flash.get("method", "pyocd")
        if method not in FLASH_METHODS:
            raise DeviceError(f"{dev.name}: unknown flash method '{method}'", hint=f"one of {', '.join(FLASH_METHODS)}")
        return FLASH_METHODS[method](fw)
    if dev.kind == "adb":
        return f"pushed to {adb_push(fw)}"
    return f"built {fw.elf} (an emulated device loads it at each run)"


def start(fw: Firmware) -> Target:
    dev = fw.device
    if not dev.can_run:
        raise DeviceError(f"{dev.name} cannot run here: {dev.why_not}")
    if getattr(dev, "place", None) is not None:
        from tinyconv.harness.labgrid import start_on_place

        return start_on_place(fw)
    if dev.kind == "qemu-system":
        return start_qemu_system(fw)
    if dev.kind == "qemu-user":
        return start_qemu_user(fw)
    if dev.kind == "native":
        return start_process(fw, [str(fw.elf)], "the runner")
    if dev.kind == "serial":
        flash_only(fw)
        time.sleep(float(dev.connect.get("boot_seconds", 0.5)))
        url = dev.connect.get("url", "/dev/ttyACM0")
        return Target(SerialTransport(url, baudrate=int(dev.connect.get("baudrate", 115200))), None, None, url)
    if dev.kind == "adb":
        remote = adb_push(fw)
        return start_process(fw, ["adb", "shell", "-T", remote], "adb")
    raise DeviceError(f"{dev.name}: cannot start devices of kind '{dev.kind}'")
