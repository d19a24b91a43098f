"""A local labgrid farm end to end, through the real CLI: a coordinator, an exporter and emulated
qemu-m4 boards behind places. Two checks share the farm at once on different boards, a third
waits for a free one, a place held by another user is refused, and `farm down` leaves nothing."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import need

pytestmark = pytest.mark.device

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "digits"
BIN = Path(sys.executable).parent


def _labgrid_client() -> str:
    exe = shutil.which("labgrid-client") or str(BIN / "labgrid-client")
    if not Path(exe).is_file():
        pytest.skip("labgrid is not installed (pip install 'tinyconv[farm]')")
    return exe


def tinyconv(*args, env, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tinyconv.cli", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, text=True, **kw)  # fmt: skip


def finish(p: subprocess.Popen, timeout: float = 240) -> tuple[int, str, str]:
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        pytest.fail(f"tinyconv did not finish within {timeout} s: {err[-500:]}")
    return p.returncode, out, err


@pytest.fixture(scope="module")
def farm(tmp_path_factory):
    need("qemu-m4")
    lgc = _labgrid_client()
    d = tmp_path_factory.mktemp("farm")
    env = {**os.environ, "TINYCONV_FARM_DIR": str(d / "state"), "LG_USERNAME": "ci", "COLUMNS": "200"}
    env.pop("LG_COORDINATOR", None)
    rc, out, err = finish(tinyconv("farm", "up", "--boards", "qemu-m4:2", env=env), timeout=90)
    assert rc == 0, err
    address = re.search(r"export LG_COORDINATOR=(\S+)", out).group(1)
    state = json.loads((d / "state" / "state.json").read_text())
    inputs = d / "x.npy"
    np.save(inputs, np.load(EXAMPLE / "test_x.npy")[:3])
    try:
        yield {"env": env, "address": address, "state": state, "inputs": inputs, "lgc": lgc, "dir": d}
    finally:
        rc, out, err = finish(tinyconv("farm", "down", env=env), timeout=60)
        assert rc == 0, err
        for pid in state["pids"].values():
            assert not _running(pid), f"farm process {pid} survived 'farm down'"
        assert not (d / "state").exists()


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def check(farm, device: str, **kw) -> subprocess.Popen:
    return tinyconv("check", str(EXAMPLE / "digits_cnn.onnx"), "--calib", str(EXAMPLE / "calib.npy"), "--inputs", str(farm["inputs"]),
                    "--device", device, env={**farm["env"], **kw.pop("env", {})}, **kw)  # fmt: skip


def lg(farm, *args, user="alice") -> subprocess.CompletedProcess:
    env = {**farm["env"], "LG_USERNAME": user}
    return subprocess.run([farm["lgc"], "-x", farm["address"], *args], env=env, capture_output=True, text=True, timeout=30)


def acquired_place(err: str) -> str:
    m = re.search(r"acquired place (\S+)", err)
    assert m, err
    return m.group(1)


def test_two_checks_at_once_on_two_boards(farm):
    a, b = check(farm, "labgrid:tag=qemu-m4"), check(farm, "labgrid:tag=qemu-m4")
    (ra, oa, ea), (rb, ob, eb) = finish(a), finish(b)
    assert ra == 0 and rb == 0, ea + eb
    assert "PASS: bit-exact" in oa and "PASS: bit-exact" in ob
    assert {acquired_place(ea), acquired_place(eb)} == {"qemu-m4-1", "qemu-m4-2"}
    assert "released place" in ea and "released place" in eb


def test_held_place_is_refused_and_a_third_check_waits(farm):
    assert lg(farm, "-p", "qemu-m4-1", "acquire").returncode == 0
    try:
        rc, out, err = finish(check(farm, "labgrid:qemu-m4-1"))
        assert rc != 0 and "PASS" not in out
        assert "error:" in err and "qemu-m4-1" in err and "Traceback" not in err

        assert lg(farm, "-p", "qemu-m4-2", "acquire").returncode == 0
        waiter = check(farm, "labgrid:tag=qemu-m4")
        time.sleep(6)
        assert waiter.poll() is None, "the check did not wait for a free board"
        assert lg(farm, "-p", "qemu-m4-2", "release").returncode == 0
        rc, out, err = finish(waiter)
        assert rc == 0 and "PASS: bit-exact" in out, err
        assert "waiting for a free board" in err
        assert acquired_place(err) == "qemu-m4-2"
    finally:
        lg(farm, "-p", "qemu-m4-1", "release")
        lg(farm, "-p", "qemu-m4-2", "release")
    # the farm is free again: nobody holds a place after the checks
    who = lg(farm, "who").stdout
    assert "qemu-m4-1" not in who and "qemu-m4-2" not in who


def test_sigterm_releases_the_place(farm):
    p = check(farm, "labgrid:qemu-m4-1")
    deadline = time.monotonic() + 60
    seen = ""
    while "acquired place" not in seen and time.monotonic() < deadline and p.poll() is None:
        seen += os.read(p.stderr.fileno(), 4096).decode(errors="replace")
    p.terminate()
    rc, _, _ = finish(p, timeout=60)
    assert rc != 0
    assert "qemu-m4-1" not in lg(farm, "who").stdout, "SIGTERM left the place acquired"
    assert lg(farm, "-p", "qemu-m4-1", "acquire").returncode == 0
    lg(farm, "-p", "qemu-m4-1", "release")


def test_pytest_plugin_retargets_checks_to_the_farm(farm, tmp_path):
    test = tmp_path / "test_user_model.py"
    test.write_text(
        "def test_digits(tinyconv_check):\n"
        f"    r = tinyconv_check({str(EXAMPLE / 'digits_cnn.onnx')!r}, calib={str(EXAMPLE / 'calib.npy')!r}, inputs={str(farm['inputs'])!r})\n"
        "    assert r['labgrid_place'].startswith('qemu-m4-')\n"
    )
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist", str(test), "--tinyconv-device", "labgrid:tag=qemu-m4"],
                       env=farm["env"], cwd=tmp_path, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "1 passed" in r.stdout
