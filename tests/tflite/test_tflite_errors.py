"""Malformed and unsupported .tflite files give a clear ModelError / UnsupportedError that names
the operator and its index — never a traceback (CLI) or a stray Python exception (API)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from tinyconv.errors import ModelError, TinyconvError, UnsupportedError
from tinyconv.frontend import load
from tinyconv.frontend.tflite import load_tflite

FLOAT_MODELS = {
    "kws": ("kws_ref_model_float32.tflite", "CONV_2D (operator 0)"),
    "vww": ("vww_96_float.tflite", "CONV_2D (operator 0)"),
    "ic": ("pretrainedResnet.tflite", "CONV_2D (operator 0)"),
    "ad": ("ad01_fp32.tflite", "FULLY_CONNECTED (operator 0)"),
}


def write(tmp_path, data: bytes, name="m.tflite"):
    p = tmp_path / name
    p.write_bytes(data)
    return p


def kws_bytes(mlperf_dir) -> bytes:
    return (mlperf_dir / "kws" / "kws_ref_model.tflite").read_bytes()


def test_missing_file(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        load(tmp_path / "nope.tflite")


@pytest.mark.parametrize("data", [b"", b"\x00" * 3, b"TFL3", b"\x10\x00\x00\x00TFL3"])
def test_tiny_files(tmp_path, data):
    with pytest.raises(ModelError, match="not a valid TFLite flatbuffer"):
        load_tflite(write(tmp_path, data))


def test_not_a_flatbuffer(tmp_path):
    rng = np.random.default_rng(0)
    with pytest.raises(ModelError, match="file identifier"):
        load_tflite(write(tmp_path, rng.integers(0, 256, 4096, dtype=np.uint8).tobytes()))
    with pytest.raises(ModelError, match="not a valid TFLite flatbuffer"):
        load_tflite(write(tmp_path, b"\x08\x00\x00\x00ONNX" + b"\x00" * 64))


def test_onnx_file_renamed(tmp_path, mlperf_dir):
    with pytest.raises(ModelError, match="not a valid TFLite flatbuffer"):
        load_tflite(write(tmp_path, (mlperf_dir / "ad" / "ad_qdq.onnx").read_bytes()))


@pytest.mark.parametrize("fraction", [0.001, 0.01, 0.25, 0.5, 0.9])
def test_truncated_file(tmp_path, mlperf_dir, fraction):
    data = kws_bytes(mlperf_dir)
    with pytest.raises(ModelError, match="truncated|runs past the end|not a valid"):
        load_tflite(write(tmp_path, data[: int(len(data) * fraction)]))


def test_corrupted_files_never_escape_as_python_errors(tmp_path, mlperf_dir):
    """Random byte corruption: a graph or a TinyconvError, nothing else."""
    data = kws_bytes(mlperf_dir)
    rng = np.random.default_rng(1234)
    outcomes = {"graph": 0, "error": 0}
    for _ in range(150):
        b = bytearray(data)
        for _ in range(int(rng.integers(1, 4))):
            region = int(rng.integers(0, 3))
            pos = int(rng.integers(0, 4096)) if region == 0 else int(rng.integers(len(b) - 6000, len(b))) if region == 1 else int(rng.integers(0, len(b)))
            b[pos] = int(rng.integers(0, 256))
        if rng.random() < 0.2:
            b = b[: int(rng.integers(0, len(b)))]
        try:
            load_tflite(write(tmp_path, bytes(b)))
            outcomes["graph"] += 1
        except TinyconvError:
            outcomes["error"] += 1
    assert outcomes["error"] > 0


@pytest.mark.parametrize("task", sorted(FLOAT_MODELS))
def test_float_model_is_refused_naming_the_operator(mlperf_dir, task):
    name, where = FLOAT_MODELS[task]
    with pytest.raises(UnsupportedError) as e:
        load_tflite(mlperf_dir / task / name)
    msg = str(e.value)
    assert msg.startswith(where), msg
    assert "float32" in msg and "int8" in msg
    assert e.value.node == "op0"


# -- built models -------------------------------------------------------------------------------------

import tflite_build as tb  # noqa: E402


@pytest.fixture(autouse=False)
def schema():
    if tb.S is None:
        pytest.skip("tflite-micro (its schema bindings build the test models) is not installed")


def conv_model(mb, x, y, *, w_zp=0, act=0, act_axis_scales=None):
    w = np.ones((2, 1, 1, 2), np.int8)
    wi = mb.tensor("w", w.shape, "int8", np.float32(0.01), w_zp, w)
    mb.op(tb.op_code("CONV_2D"), [x, wi, -1], [y], *tb.conv_options(act=act))


def one_conv(tmp_path, *, y_shape=(1, 4, 4, 2), y_quantized=True, **conv_kw):
    """A .tflite of one 1x1 CONV_2D, x [1, 4, 4, 2] -> y (conv_model's keywords)."""
    mb = tb.ModelBuilder()
    x = mb.act("x", (1, 4, 4, 2), 0.1, 0)
    y = mb.act("y", y_shape, 0.1, 0) if y_quantized else mb.tensor("y", y_shape, "int8")
    mb.inputs, mb.outputs = [x], [y]
    conv_model(mb, x, y, **conv_kw)
    return write(tmp_path, mb.build())


def test_unsupported_operator_is_named_with_its_index(tmp_path, schema):
    mb = tb.ModelBuilder()
    x = mb.act("x", (1, 4, 4, 2), 0.1, 0)
    a = mb.act("a", (1, 4, 4, 2), 0.1, 0)
    y = mb.act("y", (1, 4, 4, 2), 0.1, 0)
    z = mb.act("z", (1, 4, 4, 2), 0.1, 0)
    mb.inputs, mb.outputs = [x], [z]
    conv_model(mb, x, a)
    mb.op(tb.op_code("SUB"), [a, x], [y])
    mb.op(tb.op_code("SQUARE"), [y], [z])
    with pytest.raises(UnsupportedError) as e:
        load_tflite(write(tmp_path, mb.build()))
    msg = str(e.value)
    assert "SUB (operator 1)" in msg and "SQUARE (operator 2)" in msg, msg
    assert e.value.node == "op1"


def test_unsupported_operators_listed_once_per_type_with_a_count(tmp_path, schema):
    """Before: every operator listed one by one (12 of them, then "and N more")."""
    mb = tb.ModelBuilder()
    x = mb.act("x", (1, 4, 4, 2), 0.1, 0)
    prev = x
    for k in range(14):
        nxt = mb.act(f"t{k}", (1, 4, 4, 2), 0.1, 0)
        mb.op(tb.op_code("SUB" if k % 2 else "SQUARE"), [prev, x] if k % 2 else [prev], [nxt])
        prev = nxt
    mb.inputs, mb.outputs = [x], [prev]
    with pytest.raises(UnsupportedError) as e:
        load_tflite(write(tmp_path, mb.build()))
    msg = str(e.value)
    assert "SQUARE x7 (operators 0, 2, 4, ...)" in msg and "SUB x7 (operators 1, 3, 5, ...)" in msg, msg
    assert msg.count("SQUARE") == 1 and msg.count("SUB") == 1


def test_weights_with_zero_points_are_refused(tmp_path, schema):
    with pytest.raises(UnsupportedError, match=r"^CONV_2D \(operator 0, 'y'\): .*non-zero zero points"):
        load_tflite(one_conv(tmp_path, w_zp=3))


def test_fused_tanh_is_refused(tmp_path, schema):
    with pytest.raises(UnsupportedError, match=r"CONV_2D \(operator 0.*fused activation TANH"):
        load_tflite(one_conv(tmp_path, act=4))


def test_missing_quantization_is_a_model_error(tmp_path, schema):
    with pytest.raises(ModelError, match=r"CONV_2D \(operator 0.*no quantization parameters"):
        load_tflite(one_conv(tmp_path, y_quantized=False))  # int8 without scale / zero point


def test_shape_mismatch_is_a_model_error(tmp_path, schema):
    with pytest.raises(ModelError, match="operator 0"):
        load_tflite(one_conv(tmp_path, y_shape=(1, 5, 4, 2)))  # a 1x1 conv cannot make 5 rows from 4


def test_cli_reports_without_traceback(tmp_path, mlperf_dir):
    bad = write(tmp_path, kws_bytes(mlperf_dir)[:5000])
    for model in (bad, mlperf_dir / "ad" / "ad01_fp32.tflite"):
        r = subprocess.run([sys.executable, "-m", "tinyconv.cli", "compile", str(model), "-o", str(tmp_path / "out")], capture_output=True, text=True)
        assert r.returncode == 2, r.stderr
        assert "Traceback" not in r.stderr and "Traceback" not in r.stdout
        assert "error:" in (r.stderr + r.stdout)
