"""Boards shared through a labgrid farm.

`--device labgrid:PLACE` acquires that place; `--device labgrid:tag=KIND` reserves any free place
whose `tinyconv` tag is KIND (waiting, with progress, until one is free); `labgrid:k=v,k2=v2` passes
the filters to labgrid as they are. The place is released at the end, also on errors and signals.

A place describes a board to tinyconv through:
  * its tag `tinyconv=<device>`: the device file (devices/<device>.toml) that builds for the board;
  * its `NetworkSerialPort` resource: the serial URL (`socket://` for protocol raw, `rfc2217://`);
  * flashing: a real board (device kind `serial`) is flashed by its device file's flash method
    (pyocd, stm32loader, `command` with {elf}, or `labgrid`, which runs `labgrid-client bootstrap`);
    an emulated board (device kind `qemu-system`, as in `tinyconv farm up`) is a serial port slot:
    tinyconv powers it on with the ELF (QEMU listening on the published port) for the session
    and off afterwards, so idle boards cost no CPU. Such slots must be on this machine.

We drive the `labgrid-client` command rather than labgrid's Python API: it is labgrid's stable
interface, and it keeps gRPC and asyncio out of tinyconv's process. labgrid is an optional extra
(`pip install tinyconv[farm]`).
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from tinyconv import procs
from tinyconv.errors import DeviceError

PREFIX = "labgrid:"
BOARD_TAG = "tinyconv"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_TAG_KEY = re.compile(r"^[a-z][a-z0-9_]+$")
_TAG_VALUE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


def is_labgrid(device) -> bool:
    return isinstance(device, str) and device.startswith(PREFIX)


@dataclass(frozen=True)
class Spec:
    place: str | None  # an explicit place name
    filters: dict[str, str]  # or tag filters for a reservation

    def describe(self) -> str:
        return f"place {self.place}" if self.place else "a free place with " + ", ".join(f"{k}={v}" for k, v in self.filters.items())


def parse_spec(device: str) -> Spec:
    body = device[len(PREFIX):]
    if not body:
        raise DeviceError(f"'{device}' names no place", hint="use labgrid:PLACE or labgrid:tag=DEVICE, e.g. labgrid:tag=qemu-m4")
    if "=" not in body:
        if not _NAME.match(body):
            raise DeviceError(f"'{device}': a labgrid place name is letters, digits, '_', '.', '-' (at most 64)")
        return Spec(body, {})
    filters: dict[str, str] = {}
    for part in body.split(","):
        key, _, value = part.partition("=")
        key = BOARD_TAG if key == "tag" else key  # labgrid:tag=qemu-m4 is short for tinyconv=qemu-m4
        if not _TAG_KEY.match(key) or not _TAG_VALUE.match(value):
            raise DeviceError(f"'{device}': filter '{part}' is not KEY=VALUE (key: [a-z][a-z0-9_]+, value: [A-Za-z0-9_.-]+)")
        filters[key] = value
    return Spec(None, filters)


@dataclass
class Place:
    name: str
    tags: dict[str, str]
    host: str
    port: int
    protocol: str
    token: str | None = None

    @property
    def url(self) -> str:
        scheme = {"raw": "socket", "rfc2217": "rfc2217"}.get(self.protocol)
        if scheme is None:
            raise DeviceError(f"labgrid place {self.name}: serial protocol '{self.protocol}' is not supported (raw or rfc2217)")
        return f"{scheme}://{self.host}:{self.port}"


def coordinator_address() -> str:
    """LG_COORDINATOR (labgrid's own variable), else a local `tinyconv farm up`, else labgrid's default."""
    env = os.environ.get("LG_COORDINATOR")
    if env:
        return env
    from tinyconv.farm import local_farm_address

    return local_farm_address() or "127.0.0.1:20408"


class LabgridClient:
    def __init__(self, address: str | None = None, *, timeout: float = 30.0):
        self.exe = shutil.which("labgrid-client") or _beside_python("labgrid-client")
        if self.exe is None:
            raise DeviceError("labgrid devices need labgrid", hint="pip install 'tinyconv[farm]'")
        self.address = address or coordinator_address()
        self.timeout = timeout

    def argv(self, *args: str, place: str | None = None) -> list[str]:
        return [self.exe, "-x", self.address, *(["-p", place] if place else []), *args]

    def run(self, *args: str, place: str | None = None, timeout: float | None = None) -> str:
        cmd = self.argv(*args, place=place)
        try:
            r = procs.run(cmd, timeout=timeout or self.timeout)  # dies with tinyconv, whatever ends it
        except subprocess.TimeoutExpired:
            raise DeviceError(f"labgrid coordinator {self.address} did not answer '{' '.join(args)}' within {timeout or self.timeout:.0f} s") from None
        if r.returncode != 0:
            msg = " ".join((r.stderr or r.stdout).split())[-400:]
            raise DeviceError(f"labgrid-client {' '.join(args)}{f' (place {place})' if place else ''} failed: {msg or f'exit code {r.returncode}'}")
        return r.stdout

    def reserve(self, filters: dict[str, str]) -> str:
        out = self.run("reserve", "--shell", *(f"{k}={v}" for k, v in filters.items()))
        m = re.search(r"LG_TOKEN=(\w+)", out)
        if not m:
            raise DeviceError(f"labgrid reserve gave no token: {out.strip()[:200]}")
        return m.group(1)

    def wait(self, token: str, timeout: float, progress) -> None:
        """Wait for the reservation to be allocated; `labgrid-client wait` keeps it alive meanwhile."""
        proc = procs.popen(self.argv("wait", token), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
        t0 = time.monotonic()
        next_note = 1.0  # say nothing when a board is free at once
        try:
            while proc.poll() is None:
                waited = time.monotonic() - t0
                if waited > timeout:
                    raise DeviceError(f"no labgrid place became free within {timeout:.0f} s", hint="raise TINYCONV_LABGRID_TIMEOUT or free a place")
                if waited >= next_note:
                    progress(f"waiting for a free board (reservation {token}, {waited:.0f} s)")
                    next_note = waited + 5.0
                time.sleep(0.1)
            if proc.returncode != 0:
                raise DeviceError(f"labgrid reservation {token} failed: {' '.join((proc.stderr.read() or '').split())[-300:]}")
        finally:
            procs.reap(proc)  # kills it if still waiting

    def show(self, place: str) -> Place:
        return parse_show(self.run("show", place=place), place)


def _beside_python(name: str) -> str | None:
    exe = Path(sys.executable).parent / name  # a venv's scripts when it is not activated
    return str(exe) if exe.is_file() else None


_RESOURCE = re.compile(r"^(?:Acquired|Matching) resource '[^']*' \(([^)]*)\):$")


def parse_show(text: str, place: str) -> Place:
    """The tags and the NetworkSerialPort of `labgrid-client show` output."""
    lines = text.splitlines()
    m = re.match(r"^Place '([^']+)':$", lines[0]) if lines else None
    if m:
        place = m.group(1)  # the real name when asked for by reservation (+TOKEN)
    tags: dict[str, str] = {}
    serial: dict | None = None
    for i, line in enumerate(lines):
        if line.startswith("  tags: "):
            for kv in line[len("  tags: "):].split(", "):
                k, _, v = kv.partition("=")
                tags[k] = v
        m = _RESOURCE.match(line)
        if m and m.group(1).split("/")[2:3] == ["NetworkSerialPort"]:
            block = []
            for nxt in lines[i + 1:]:
                if not nxt.startswith("  "):
                    break
                block.append(nxt[2:])
            try:
                serial = ast.literal_eval("\n".join(block)).get("params", {})
            except (ValueError, SyntaxError):
                raise DeviceError(f"labgrid place {place}: cannot read its NetworkSerialPort") from None
    if serial is None:
        raise DeviceError(f"labgrid place {place} has no NetworkSerialPort resource", hint="tinyconv talks to boards over a serial port")
    try:
        return Place(place, tags, str(serial["host"]), int(serial["port"]), str(serial.get("protocol", "rfc2217")))
    except (KeyError, TypeError, ValueError):
        raise DeviceError(f"labgrid place {place}: its NetworkSerialPort lacks host or port") from None


def device_for_place(place: Place):
    """The device file named by the place's `tinyconv` tag, bound to the place."""
    from tinyconv.harness.devices import load_device

    kind = place.tags.get(BOARD_TAG)
    if not kind:
        raise DeviceError(f"labgrid place {place.name} has no '{BOARD_TAG}' tag", hint=f"labgrid-client -p {place.name} set-tags {BOARD_TAG}=qemu-m4 (the device file that builds for it)")
    dev = load_device(kind)
    if dev.kind not in ("qemu-system", "serial"):
        raise DeviceError(f"labgrid place {place.name}: device '{kind}' (kind {dev.kind}) cannot sit behind a serial port")
    from tinyconv.harness.devices import _availability

    bound = replace(dev, place=place, connect={**dev.connect, "url": place.url}, description=f"{dev.description} via labgrid place {place.name}")
    bound.can_run, bound.why_not = _availability(bound)
    return bound


def _say(msg: str) -> None:
    print(f"labgrid: {msg}", file=sys.stderr, flush=True)


@contextmanager
def _released_on_signals():
    """SIGTERM / SIGHUP end the run through Python's unwinding, so the place is released."""

    def stop(signo, _frame):
        raise SystemExit(128 + signo)

    old = {}
    for s in (signal.SIGTERM, signal.SIGHUP):
        try:
            if signal.getsignal(s) in (signal.SIG_DFL, None):
                old[s] = signal.signal(s, stop)
        except ValueError:  # not the main thread: the caller owns signals
            pass
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


@contextmanager
def hold(device: str, *, timeout: float | None = None, progress=_say):
    """Acquire the place `device` names; yield a Device bound to it; release it whatever happens."""
    spec = parse_spec(device)
    client = LabgridClient()
    timeout = float(os.environ.get("TINYCONV_LABGRID_TIMEOUT", 600)) if timeout is None else timeout
    token = None
    name = spec.place
    acquired = False
    with _released_on_signals():
        try:
            if name is None:
                progress(f"reserving {spec.describe()} at {client.address}")
                token = client.reserve(spec.filters)
                client.wait(token, timeout, progress)
                client.run("acquire", place=f"+{token}")
                acquired = True
                name = client.show(f"+{token}").name
            else:
                client.run("acquire", place=name)
                acquired = True
            place = client.show(name)
            place.token = token
            progress(f"acquired place {name} ({place.tags.get(BOARD_TAG, '?')} at {place.url})")
            yield device_for_place(place)
        finally:
            if acquired and name:
                try:
                    client.run("release", place=name)
                    progress(f"released place {name}")
                except DeviceError as e:
                    progress(f"could not release place {name}: {e}")
            if token:
                try:
                    client.run("cancel-reservation", token)
                except DeviceError:
                    pass  # already gone once the place is released


def start_on_place(fw):
    """Power on / flash the board behind the place and connect to its serial port."""
    from tinyconv.harness.flash import Target, flash_only, start_qemu_system
    from tinyconv.harness.link import SerialTransport

    dev = fw.device
    place: Place = dev.place
    if dev.kind == "qemu-system":
        if place.host not in LOCAL_HOSTS or place.protocol != "raw":
            raise DeviceError(f"labgrid place {place.name}: an emulated board's slot must be a raw TCP port on this machine (it is {place.url})")
        return start_qemu_system(fw, port=place.port)
    flash_only(fw)
    time.sleep(float(dev.connect.get("boot_seconds", 0.5)))
    return Target(SerialTransport(place.url, baudrate=int(dev.connect.get("baudrate", 115200))), None, None, place.url)
