"""Extreme scales in a .tflite file (a weight scale of 1e30, an output scale of 1e-45) give
requantization shifts of 87-138 that int32 kernels cannot apply: `tinyconv compile` refuses the
layer with one error line naming it, instead of generating C with undefined behaviour."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import tflite_build as tb

pytestmark = pytest.mark.skipif(tb.S is None, reason="tflite-micro (its schema bindings build the test models) is not installed")


def fc_model(w_scale: float, out_scale: float) -> bytes:
    mb = tb.ModelBuilder()
    x = mb.act("x", (1, 8), 0.05, 0)
    w = mb.tensor("w", (4, 8), "int8", np.float32(w_scale), 0, np.ones((4, 8), np.int8))
    y = mb.act("y", (1, 4), out_scale, 0)
    mb.inputs, mb.outputs = [x], [y]
    mb.op(tb.op_code("FULLY_CONNECTED"), [x, w, -1], [y], *tb.fc_options())
    return mb.build()


def add_model(out_scale: float) -> bytes:
    mb = tb.ModelBuilder()
    a = mb.act("a", (1, 4), 0.05, 0)
    b = mb.act("b", (1, 4), 0.07, 3)
    y = mb.act("y", (1, 4), out_scale, 0)
    mb.inputs, mb.outputs = [a, b], [y]
    mb.op(tb.op_code("ADD"), [a, b], [y], *tb.add_options())
    return mb.build()


@pytest.mark.parametrize(("name", "model", "op"), [
    ("weight_scale_1e30", lambda: fc_model(1e30, 0.1), "FULLY_CONNECTED"),
    ("output_scale_1e-45", lambda: fc_model(0.01, 1e-45), "FULLY_CONNECTED"),
    ("add_output_scale_1e-45", lambda: add_model(1e-45), "ADD"),
])  # fmt: skip
def test_cli_refuses_extreme_scales_naming_the_layer(tmp_path, name, model, op):
    path = tmp_path / f"{name}.tflite"
    path.write_bytes(model())
    r = subprocess.run([sys.executable, "-m", "tinyconv.cli", "compile", str(path), "-o", str(tmp_path / "out")],
                       capture_output=True, text=True, timeout=120)  # fmt: skip
    out = r.stdout + r.stderr
    assert r.returncode == 2, out
    assert "Traceback" not in out
    errors = [line for line in out.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and f"{op} (operator 0" in errors[0] and "requantization multiplier" in errors[0], out
    assert not (tmp_path / "out" / "tc_model.c").exists()
