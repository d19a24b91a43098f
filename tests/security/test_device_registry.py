"""`--device` reads only the device registry (a device file names the programs to run); a user's own
board file is given explicitly with --device-file. The pytest plugin follows the same rule and
keeps its work folders inside tmp_path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tinyconv.harness.devices import DEVICES_DIR

EXAMPLE = Path(__file__).resolve().parent.parent.parent / "examples" / "digits"


def cli(*args, cwd: Path, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tinyconv.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=300, env=env)


@pytest.fixture
def evil(tmp_path):
    """A device file whose 'compiler' is a script leaving a marker file behind."""
    d = tmp_path / "evil"
    d.mkdir()
    marker = d / "PWNED"
    script = d / "cc.sh"
    script.write_text(f"#!/bin/sh\ntouch {marker}\nexit 1\n")
    script.chmod(0o755)
    (d / "evil.toml").write_text(f'name = "evil"\ncpu = "x"\ntarget = "host"\nkind = "native"\n[build]\ncc = "{script}"\nport = "linux"\n')
    return d / "evil", marker


def test_device_name_cannot_be_a_path(evil, tmp_path):
    stem, marker = evil
    for name in (os.path.relpath(stem, DEVICES_DIR), str(stem), "qemu-m4/../qemu-m4"):
        r = cli("check", str(EXAMPLE / "digits_cnn.onnx"), "--calib", str(EXAMPLE / "calib.npy"), "--device", name, cwd=tmp_path)
        err = r.stderr.strip()
        assert r.returncode != 0
        assert err.startswith("error: unknown device") and "--device-file" in err and len(err.splitlines()) == 1, err
        assert not marker.exists(), "a device file outside the registry was used"


@pytest.mark.slow
def test_own_board_file_is_given_explicitly(tmp_path):
    """A copy of the host board under another name, through the harness (firmware + protocol)."""
    own = tmp_path / "my-board.toml"
    own.write_text((DEVICES_DIR / "host.toml").read_text().replace('name = "host"', 'name = "my-board"'))
    r = cli("check", str(EXAMPLE / "digits_cnn.onnx"), "--calib", str(EXAMPLE / "calib.npy"), "--device-file", str(own),
            "--json", "r.json", cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["device"] == "my-board" and rep["bit_exact"] and rep["elements"] == 128 * 10


def test_device_file_name_is_validated(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text((DEVICES_DIR / "host.toml").read_text().replace('name = "host"', 'name = "../../escape"'))
    r = cli("check", str(EXAMPLE / "digits_cnn.onnx"), "--calib", str(EXAMPLE / "calib.npy"), "--device-file", str(bad), cwd=tmp_path)
    assert r.returncode != 0 and "is not a device name" in r.stderr and "Traceback" not in r.stderr


PLUGIN_TEST = f"""
from pathlib import Path

def test_uses_device(tinyconv_check, tmp_path):
    report = tinyconv_check({str(EXAMPLE / "digits_cnn.onnx")!r}, calib={str(EXAMPLE / "calib.npy")!r})
    assert report["bit_exact"]
    made = [p for p in tmp_path.rglob("manifest.json")]
    assert made, "the check's library is not inside tmp_path"
"""


def run_plugin(tmp_path, env_extra: dict) -> subprocess.CompletedProcess:
    (tmp_path / "test_user.py").write_text(PLUGIN_TEST)
    env = {**os.environ, **env_extra}
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:xdist", "-q", "test_user.py",
                           f"--basetemp={tmp_path / 'base'}"], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)  # fmt: skip


@pytest.mark.slow
def test_plugin_device_from_environment_is_a_registry_name(evil, tmp_path):
    stem, marker = evil
    r = run_plugin(tmp_path, {"TINYCONV_DEVICE": os.path.relpath(stem, DEVICES_DIR)})
    assert r.returncode == 1, r.stdout
    assert "unknown device" in r.stdout
    assert not marker.exists()


@pytest.mark.slow
def test_plugin_runs_inside_tmp_path(tmp_path):
    r = run_plugin(tmp_path, {"TINYCONV_DEVICE": "host"})
    assert r.returncode == 0, r.stdout + r.stderr
