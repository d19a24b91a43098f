""".tflite models TFLite Micro refuses, or that made tinyconv generate C failing -Werror: each is
now one `error:` line through the real CLI, naming the operator and its index."""

from __future__ import annotations

import numpy as np
import pytest

import tflite_build as tb
from tinyconv.cli import main

if tb.S is None:  # pragma: no cover
    pytest.skip("tflite-micro (its schema bindings build the test models) is not installed", allow_module_level=True)


def cli_error(tmp_path, capsys, data: bytes, *needles) -> str:
    path = tmp_path / "m.tflite"
    path.write_bytes(data)
    rc = main(["compile", str(path), "-o", str(tmp_path / "out")])
    cap = capsys.readouterr()
    err = cap.err.strip()
    assert rc != 0, cap.out
    assert err.startswith("error:") and len(err.splitlines()) == 1 and "Traceback" not in err, err
    for n in needles:
        assert n in err, f"{n!r} not in {err!r}"
    return err


def conv(mb, x, y, *, w_scale=0.01, options=None, stride=(1, 1)):
    w = np.ones((2, 1, 1, 2), np.int8)
    wi = mb.tensor("w", w.shape, "int8", np.float32(w_scale), 0, w)
    mb.op(tb.op_code("CONV_2D"), [x, wi, -1], [y], *(options or tb.conv_options(stride=stride)))


def one_conv(**kw) -> bytes:
    mb = tb.ModelBuilder()
    x = mb.act("x", (1, 4, 4, 2), 0.1, 0)
    y = mb.act("y", (1, 4, 4, 2), 0.1, 0)
    mb.inputs, mb.outputs = [x], [y]
    conv(mb, x, y, **kw)
    return mb.build()


@pytest.mark.parametrize("scale", [0.0, -0.01, float("inf"), float("nan")])
def test_weight_scale_not_positive(tmp_path, capsys, scale):
    """Before: 0 and negative weight scales were accepted silently."""
    cli_error(tmp_path, capsys, one_conv(w_scale=scale), "CONV_2D (operator 0", "scale")


def test_options_type_not_matching_the_operator(tmp_path, capsys):
    """Before: a Pool2DOptions table was read with Conv2DOptions' field layout."""
    cli_error(tmp_path, capsys, one_conv(options=tb.pool_options((2, 2))), "CONV_2D (operator 0", "builtin_options_type 5")


def test_stride_2_pow_31_minus_1(tmp_path, capsys):
    """Before: compiled into C that fails -Werror (an int overflow in the index arithmetic)."""
    mb = tb.ModelBuilder()
    x = mb.act("x", (1, 4, 4, 2), 0.1, 0)
    y = mb.act("y", (1, 1, 1, 2), 0.1, 0)
    mb.inputs, mb.outputs = [x], [y]
    conv(mb, x, y, stride=(2**31 - 1, 2**31 - 1))
    cli_error(tmp_path, capsys, mb.build(), "CONV_2D (operator 0", "strides")


def test_depth_multiplier_zero(tmp_path, capsys):
    mb = tb.ModelBuilder()
    x = mb.act("x", (1, 4, 4, 2), 0.1, 0)
    y = mb.act("y", (1, 4, 4, 2), 0.1, 0)
    w = mb.tensor("w", (1, 3, 3, 2), "int8", np.float32(0.01), 0, np.ones((1, 3, 3, 2), np.int8))
    b = mb.tensor("b", (2,), "int32", np.float32(0.001), 0, np.zeros(2, np.int32))
    mb.op(tb.op_code("DEPTHWISE_CONV_2D"), [x, w, b], [y], *tb.depthwise_options(multiplier=0))
    mb.inputs, mb.outputs = [x], [y]
    cli_error(tmp_path, capsys, mb.build(), "DEPTHWISE_CONV_2D (operator 0", "depth_multiplier 0")


def test_output_is_the_input(tmp_path, capsys):
    """Before: generated C that did not compile (the output buffer was never written)."""
    mb = tb.ModelBuilder()
    x = mb.act("x", (1, 4, 4, 2), 0.1, 0)
    y = mb.act("y", (1, 4, 4, 2), 0.1, 0)
    conv(mb, x, y)
    mb.inputs, mb.outputs = [x], [x]
    cli_error(tmp_path, capsys, mb.build(), "the model's input")


def test_mean_axes_out_of_range(tmp_path, capsys):
    """Before: axis 5 of a rank-4 tensor wrapped around to axis 1 and the model compiled."""
    mb = tb.ModelBuilder()
    x = mb.act("x", (1, 4, 4, 2), 0.1, 0)
    y = mb.act("y", (1, 2), 0.1, 0)
    axes = mb.tensor("axes", (2,), "int32", data=np.array([5, 2], np.int32))
    mb.op(tb.op_code("MEAN"), [x, axes], [y], *tb.reducer_options(False))
    mb.inputs, mb.outputs = [x], [y]
    cli_error(tmp_path, capsys, mb.build(), "MEAN (operator 0", "out of range")


def test_output_is_a_constant_operand(tmp_path, capsys):
    """Found by the fuzz campaign (tflite case 2551): the graph output named an ADD's constant
    operand; the reference returned the constant, the generated C never wrote the output (a mismatch)."""
    mb = tb.ModelBuilder()
    x = mb.act("x", (1, 4, 4, 2), 0.1, 0)
    k = mb.tensor("k", (1, 1, 1, 2), "int8", np.float32(0.01), 0, np.array([1, 2], np.int8).reshape(1, 1, 1, 2))
    y = mb.act("y", (1, 4, 4, 2), 0.1, 0)
    mb.op(tb.op_code("ADD"), [x, k], [y], *tb.add_options())
    mb.inputs, mb.outputs = [x], [k]
    cli_error(tmp_path, capsys, mb.build(), "'k' is a constant")
