"""`tinyconv farm up / down / status`: a local labgrid farm of emulated boards, for trying the farm
workflow, demos and CI. Real farms run their own coordinator and exporters (README, "Board farms").

`up` starts a labgrid coordinator on a free loopback port and one exporter publishing one
`NetworkSerialPort` (protocol raw, on a free loopback port) per board, then makes one place per board,
tagged `tinyconv=<device>`. An emulated board is powered on by the client that holds its place
(harness/labgrid.py), so an idle farm costs no CPU. Process ids and addresses go to a state folder
(TINYCONV_FARM_DIR, default $TMPDIR/tinyconv-farm-<uid>); `down` stops exactly those processes.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tinyconv.errors import DeviceError, TinyconvError

EXPORTER_NAME = "tinyconv-farm"
MAX_BOARDS = 16


class FarmError(TinyconvError):
    """The local farm could not be started or stopped."""


def state_dir() -> Path:
    return Path(os.environ.get("TINYCONV_FARM_DIR") or Path(tempfile.gettempdir()) / f"tinyconv-farm-{os.getuid()}")


def _state_file(d: Path) -> Path:
    return d / "state.json"


def read_state(d: Path | None = None) -> dict | None:
    try:
        return json.loads(_state_file(d or state_dir()).read_text())
    except (OSError, ValueError):
        return None


def _ours(pid: int) -> bool:
    """The pid still runs a labgrid program (and was not reused by something else)."""
    try:
        return b"labgrid" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def local_farm_address() -> str | None:
    st = read_state()
    if st and _ours(st["pids"]["coordinator"]):
        return st["address"]
    return None


def parse_boards(spec: str) -> list[tuple[str, int]]:
    from tinyconv.harness.devices import load_device

    out = []
    for part in spec.split(","):
        name, _, count = part.strip().partition(":")
        if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,31}", name) or not (count or "1").isdigit():
            raise FarmError(f"--boards: '{part}' is not DEVICE[:COUNT], e.g. qemu-m4:2")
        n = int(count or 1)
        if not 1 <= n <= MAX_BOARDS:
            raise FarmError(f"--boards: {name} count must be 1 to {MAX_BOARDS}")
        dev = load_device(name)
        if dev.kind != "qemu-system":
            raise FarmError(f"--boards: {name} is a {dev.kind} device; a local farm emulates qemu-system boards only")
        if not dev.can_run:
            raise FarmError(f"--boards: {name} cannot run here: {dev.why_not}")
        out.append((name, n))
    return out


def _tool(name: str) -> str:
    exe = shutil.which(name) or str(Path(sys.executable).parent / name)
    if not Path(exe).is_file():
        raise FarmError(f"{name} is not installed", hint="pip install 'tinyconv[farm]'")
    return exe


def _spawn(argv: list[str], log: Path, cwd: Path) -> int:
    with open(log, "ab") as lf:
        # a session of its own: the farm outlives `farm up`, and `down` stops it as a group
        return subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=lf, stderr=subprocess.STDOUT, start_new_session=True).pid


def _until(what: str, ok, timeout: float, logs: list[Path]) -> None:
    deadline = time.monotonic() + timeout
    while not ok():
        if time.monotonic() > deadline:
            tail = " | ".join(" ".join(p.read_text(errors="replace").split())[-200:] for p in logs if p.exists())
            raise FarmError(f"{what} within {timeout:.0f} s" + (f": {tail}" if tail else ""))
        time.sleep(0.2)


def up(boards: list[tuple[str, int]], *, say=print, timeout: float = 30.0) -> dict:
    from tinyconv.harness.flash import free_port
    from tinyconv.harness.labgrid import LabgridClient

    d = state_dir()
    if local_farm_address():
        raise FarmError(f"a local farm is already up at {read_state()['address']}", hint="tinyconv farm down")
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    coordinator, exporter = _tool("labgrid-coordinator"), _tool("labgrid-exporter")
    address = f"127.0.0.1:{free_port()}"
    logs = [d / "coordinator.log", d / "exporter.log"]
    state = {"address": address, "pids": {}, "boards": [], "started": time.time()}
    try:
        state["pids"]["coordinator"] = _spawn([coordinator, "--listen", address], logs[0], d)
        _write(d, state)
        client = LabgridClient(address, timeout=10)
        _until("the labgrid coordinator did not answer", lambda: _answers(client, "places"), timeout, logs)
        say(f"coordinator at {address}")
        groups = []
        for name, n in boards:
            for k in range(1, n + 1):
                groups.append({"place": f"{name}-{k}", "device": name, "port": free_port()})
        # labgrid reads this file as a Jinja2 template: nothing here may contain '{', '#' or '%'
        config = "".join(f"{g['place']}:\n  NetworkSerialPort:\n    host: 127.0.0.1\n    port: {g['port']}\n    protocol: raw\n" for g in groups)
        (d / "exporter.yaml").write_text(config)
        state["pids"]["exporter"] = _spawn([exporter, "--coordinator", address, "--hostname", "127.0.0.1", "--name", EXPORTER_NAME, str(d / "exporter.yaml")], logs[1], d)
        _write(d, state)
        _until("the exporter did not publish its boards", lambda: all(g["place"] in _output(client, "resources") for g in groups), timeout, logs)
        for g in groups:
            client.run("create", place=g["place"])
            client.run("add-match", f"{EXPORTER_NAME}/{g['place']}/NetworkSerialPort", place=g["place"])
            client.run("set-tags", f"tinyconv={g['device']}", place=g["place"])
            state["boards"].append(g)
            say(f"place {g['place']}: {g['device']} on serial port {g['port']} (tag tinyconv={g['device']})")
        _write(d, state)
    except BaseException:
        down(say=lambda _m: None)
        raise
    return state


def _answers(client, *args) -> bool:
    try:
        client.run(*args, timeout=5)
        return True
    except DeviceError:
        return False


def _output(client, *args) -> str:
    try:
        return client.run(*args, timeout=5)
    except DeviceError:
        return ""


def _write(d: Path, state: dict) -> None:
    tmp = _state_file(d).with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=1))
    tmp.replace(_state_file(d))


def down(*, say=print, timeout: float = 10.0) -> int:
    """Stop the farm's processes (exporter first); the number stopped."""
    d = state_dir()
    st = read_state(d)
    if st is None:
        say("no local farm is up")
        return 0
    stopped = 0
    for role in ("exporter", "coordinator"):
        pid = st["pids"].get(role)
        if pid and _ours(pid):
            _stop_group(pid, timeout)
            stopped += 1
            say(f"stopped the {role} (pid {pid})")
    shutil.rmtree(d, ignore_errors=True)
    return stopped


def _stop_group(pid: int, timeout: float) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)  # reap when we are the parent (tests)
            except ChildProcessError:
                done = 0 if _alive(pid) else pid
            if done == pid or not _alive(pid):
                return
            time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
