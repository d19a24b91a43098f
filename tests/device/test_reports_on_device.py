"""Reports from an emulated board: the profile JSON validates against the schema, `check --html`
pictures the per-layer instruction counts, and progress reaches a log as plain phase lines."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tinyconv.report import schema

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "core"))

from test_reports import html_outline  # noqa: E402

EXAMPLE = Path(__file__).resolve().parent.parent.parent / "examples" / "digits"
jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is a test dependency (pip install tinyconv[test])")
pytestmark = pytest.mark.device


def tinyconv(*args, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tinyconv.cli", *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=600)


def test_profile_json_and_check_html_on_qemu_m4(tmp_path):
    for tool in ("arm-none-eabi-gcc", "qemu-system-arm"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    model, calib = EXAMPLE / "digits_cnn.onnx", EXAMPLE / "calib.npy"
    r = tinyconv("profile", model, "--calib", calib, "--device", "qemu-m4", "--json", "p.json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    prof = json.loads((tmp_path / "p.json").read_text())
    jsonschema.validate(prof, schema())
    assert prof["command"] == "profile" and prof["instructions_per_inference"] > 0
    assert all(lay["instructions"] is not None for lay in prof["layers"])

    r = tinyconv("check", model, "--calib", calib, "--device", "qemu-m4", "--html", "r.html", "--json", "c.json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    # stderr is a pipe here, as in CI: plain progress lines, in phases
    log = r.stderr.splitlines()
    for line in ("tinyconv: compiling", "tinyconv: building and starting qemu-m4", "tinyconv: running 128/128", "tinyconv: comparing every layer on qemu-m4"):
        assert line in log, r.stderr
    check = json.loads((tmp_path / "c.json").read_text())
    jsonschema.validate(check, schema())
    assert all(lay["mismatches"] == 0 for lay in check["layers"])
    o = html_outline(tmp_path / "r.html")
    assert "Per-layer instructions" in o.headings and o.svgs == 3
    assert "instructions per layer" in " ".join(o.svg_text)
