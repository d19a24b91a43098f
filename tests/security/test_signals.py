"""`tinyconv check` stopped by a signal (a cancelled CI job, a closed terminal, Ctrl-C, the OOM
killer) leaves no process running and no temp file behind; catchable signals exit with 128 + signo."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

EXAMPLE = Path(__file__).resolve().parent.parent.parent / "examples" / "digits"
COMPILERS = {"arm-none-eabi-gcc", "cc1", "as", "ld", "collect2", "aarch64-linux-gnu-gcc", "gcc"}
TOOLS = {"qemu-m4": ["arm-none-eabi-gcc", "qemu-system-arm"], "qemu-aarch64": ["aarch64-linux-gnu-gcc", "qemu-aarch64"]}


def procs_in_session(sid: int) -> dict[int, str]:
    """Live (not zombie) processes of a session: pid -> command name."""
    found = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[3]) == sid and fields[0] != "Z":
            found[int(d.name)] = comm
    return found


def our_guardians(tmpdir: Path) -> list[int]:
    """tinyconv's guardian processes started for this run (told apart by their TMPDIR)."""
    pids = []
    for d in Path("/proc").iterdir():
        try:
            if d.name.isdigit() and b"tinyconv.procs" in (d / "cmdline").read_bytes() and f"TMPDIR={tmpdir}".encode() in (d / "environ").read_bytes():
                if (d / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                    pids.append(int(d.name))
        except OSError:
            continue
    return pids


def wait_for(pred, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.02)
    pytest.fail(f"timed out waiting for {what}")


@pytest.mark.device
@pytest.mark.slow
@pytest.mark.parametrize("device, phase, signo", [
    ("qemu-m4", "running", signal.SIGTERM), ("qemu-m4", "running", signal.SIGHUP), ("qemu-m4", "running", signal.SIGINT),
    ("qemu-m4", "running", signal.SIGKILL), ("qemu-m4", "compiling", signal.SIGTERM), ("qemu-m4", "compiling", signal.SIGKILL),
    ("qemu-aarch64", "running", signal.SIGKILL),
], ids=lambda v: getattr(v, "name", v))  # fmt: skip
def test_signal_leaves_no_child_and_no_temp_file(tmp_path, device, phase, signo):
    missing = [t for t in TOOLS[device] if shutil.which(t) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)}")
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    many = tmp_path / "many.npy"
    np.save(many, np.repeat(np.load(EXAMPLE / "test_x.npy"), 2, axis=0))  # 720 inferences: many seconds on the emulator
    env = {**os.environ, "TMPDIR": str(tmpdir), "TINYCONV_CACHE": str(tmp_path / "cache")}  # an empty build cache: the compilers do run
    p = subprocess.Popen([sys.executable, "-m", "tinyconv.cli", "check", str(EXAMPLE / "digits_cnn.onnx"), "--calib", str(EXAMPLE / "calib.npy"),
                          "--inputs", str(many), "--device", device], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         start_new_session=True)  # fmt: skip
    try:
        want = {"running": {"qemu-system-arm", "qemu-aarch64"}, "compiling": COMPILERS}[phase]
        seen = wait_for(lambda: {k: v for k, v in procs_in_session(p.pid).items() if v in want}, 240, f"a {phase} child")
        p.send_signal(signo)
        rc = p.wait(timeout=30)
        err = p.stderr.read().decode(errors="replace")
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    assert rc == (-signo if signo == signal.SIGKILL else 128 + signo), err[-2000:]
    assert "Traceback" not in err
    # Children die at once (parent-death signal, or the handler); the guardian mops up after SIGKILL.
    wait_for(lambda: not procs_in_session(p.pid) and not our_guardians(tmpdir), 15, f"children {procs_in_session(p.pid)} to exit")
    for pid in seen:
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    left = list(tmpdir.iterdir())
    assert not left, f"temp files left: {[x.name for x in left]}"


def test_normal_exit_reaps_the_guardian_quietly(tmp_path):
    """A normal exit ends the guardian too (EOF on its pipe) and reaps it, so Python's dev mode
    reports no child left running and no guardian outlives the run."""
    code = ("from tinyconv import procs\n"
            "assert procs.run(['true'], timeout=10).returncode == 0\n")  # fmt: skip
    env = dict(os.environ, TMPDIR=str(tmp_path))
    r = subprocess.run([sys.executable, "-X", "dev", "-W", "error::ResourceWarning", "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 0, r.stderr
    assert "ResourceWarning" not in r.stderr and "still running" not in r.stderr, r.stderr
    assert our_guardians(tmp_path) == []
