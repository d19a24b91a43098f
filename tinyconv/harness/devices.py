"""Device descriptions: one TOML file per device in devices/ at the top of the repository (the
registry). A device file names the compiler and emulator to run, so `--device NAME` only ever
reads the registry; a user's own board file is given explicitly (`--device-file PATH`)."""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

from tinyconv.errors import DeviceError
from tinyconv.resources import data_dir

DEVICES_DIR = Path(os.environ.get("TINYCONV_DEVICES") or data_dir("devices"))
FIRMWARE_DIR = data_dir("firmware")
KINDS = ("qemu-system", "qemu-user", "native", "serial", "adb")
# Device names end up in file names (build folders) and messages: a short, plain charset.
NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,47}")


@dataclass
class Device:
    name: str
    cpu: str
    target: str
    description: str
    kind: str
    default: bool = False
    build: dict = field(default_factory=dict)
    memory: dict = field(default_factory=dict)
    run: dict = field(default_factory=dict)
    flash: dict = field(default_factory=dict)
    connect: dict = field(default_factory=dict)
    path: Path | None = None
    place: object | None = None  # a labgrid place this device is reached through (harness/labgrid.py)
    can_run: bool = False
    why_not: str = ""

    @property
    def ram_bytes(self) -> int | None:
        return self.memory.get("ram_bytes")

    @property
    def flash_bytes(self) -> int | None:
        return self.memory.get("flash_bytes")

    @property
    def emulated(self) -> bool:
        return self.kind in ("qemu-system", "qemu-user")


def _availability(d: Device) -> tuple[bool, str]:
    cc = d.build.get("cc")
    if cc and shutil.which(cc) is None:
        return False, f"compiler {cc} not installed"
    if d.kind in ("qemu-system", "qemu-user"):
        q = d.run.get("qemu")
        if not q or shutil.which(q) is None:
            return False, f"{q or 'qemu'} not installed"
        return True, ""
    if d.kind == "native":
        return True, ""
    if d.kind == "serial":
        method = d.flash.get("method", "")
        if method in ("pyocd", "stm32loader") and shutil.which(method) is None:
            return False, f"flasher '{method}' not installed"
        if method == "gdb" and shutil.which(d.flash.get("gdb", "gdb-multiarch")) is None:  # a GDB client loads the board
            return False, f"flasher '{d.flash.get('gdb', 'gdb-multiarch')}' not installed"
        url = d.connect.get("url", "")
        if url.startswith("/dev/") and not Path(url).exists():
            return False, f"no board at {url}"
        return True, ""
    if d.kind == "adb":
        if shutil.which("adb") is None:
            return False, "adb not installed"
        return True, ""
    return False, f"unknown kind '{d.kind}'"


def _parse(path: Path) -> Device:
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise DeviceError(f"cannot read device file {path}: {e}") from None
    missing = [k for k in ("name", "cpu", "target", "kind") if k not in data]
    if missing:
        raise DeviceError(f"device file {path} lacks {', '.join(missing)}")
    if not isinstance(data["name"], str) or not NAME.fullmatch(data["name"]):
        raise DeviceError(f"device file {path}: name {data['name']!r} is not a device name",
                          hint="use lower-case letters, digits, '.', '_' and '-', at most 48")  # fmt: skip
    if data["kind"] not in KINDS:
        raise DeviceError(f"device file {path}: kind '{data['kind']}' is not one of {', '.join(KINDS)}")
    d = Device(
        name=data["name"], cpu=data["cpu"], target=data["target"], description=data.get("description", ""), kind=data["kind"],
        default=bool(data.get("default", False)), build=data.get("build", {}), memory=data.get("memory", {}), run=data.get("run", {}),
        flash=data.get("flash", {}), connect=data.get("connect", {}), path=path,
    )  # fmt: skip
    d.can_run, d.why_not = _availability(d)
    return d


def list_devices() -> list[Device]:
    devs = [_parse(p) for p in sorted(DEVICES_DIR.glob("*.toml"))]
    return sorted(devs, key=lambda d: (not d.default, not d.emulated, d.name))


def load_device(name: str) -> Device:
    """A device of the registry by name; never a path."""
    p = DEVICES_DIR / f"{name}.toml"
    if not isinstance(name, str) or not NAME.fullmatch(name) or not p.is_file():
        from tinyconv.escape import for_terminal

        known = ", ".join(d.name for d in list_devices())
        raise DeviceError(f"unknown device '{for_terminal(str(name), max_chars=60)}'",
                          hint=f"known devices: {known}; give your own board's file with --device-file PATH")  # fmt: skip
    d = _parse(p)
    if d.name != name:
        raise DeviceError(f"device file {p} says its name is '{d.name}', not '{name}'")
    return d


def load_device_file(path) -> Device:
    """A user's own device file, given explicitly by path."""
    p = Path(path)
    if not p.is_file():
        raise DeviceError(f"device file '{path}' does not exist")
    return _parse(p)
