"""What the TFLite converter writes for Keras models by default, built here with TFLite's schema:
the Reshape of a Keras 3 model (SHAPE → STRIDED_SLICE → PACK → RESHAPE, constants on a static
input) and standalone RELU / RELU6 / LEAKY_RELU (left unfused, e.g. in NASNetMobile). tinyconv's
int8 reference equals TFLite Micro's interpreter on many random inputs; the host build equals both."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tflite_micro", reason="tflite-micro (the bit-exact oracle) is not installed")

from tflite_build import S, ModelBuilder, conv_options, depthwise_options, op_code, reducer_options, softmax_options, tflm_run  # noqa: E402

from tinyconv import native, reference  # noqa: E402
from tinyconv.frontend.tflite import load_tflite  # noqa: E402
from tinyconv.pipeline import compile_model  # noqa: E402

SAME, VALID, RELU6 = 0, 1, 3


def strided_slice_options(shrink_axis_mask=0, begin_mask=0, end_mask=0):
    o = S.StridedSliceOptionsT()
    o.shrinkAxisMask, o.beginMask, o.endMask = shrink_axis_mask, begin_mask, end_mask
    return S.BuiltinOptions.StridedSliceOptions, o


def pack_options(count, axis=0):
    o = S.PackOptionsT()
    o.valuesCount, o.axis = count, axis
    return S.BuiltinOptions.PackOptions, o


def leaky_relu_options(alpha):
    o = S.LeakyReluOptionsT()
    o.alpha = alpha
    return S.BuiltinOptions.LeakyReluOptions, o


def shape_options():
    o = S.ShapeOptionsT()
    o.outType = 2  # int32
    return S.BuiltinOptions.ShapeOptions, o


def keras_reshape(mb, x, y, tail: list[int]) -> None:
    """Keras 3 Reshape(tail) as converted: batch = Shape(x)[0]; Reshape(x, Pack([batch, *tail]))."""
    i32 = lambda name, v: mb.tensor(name, (len(v),), "int32", data=np.array(v, np.int32))  # noqa: E731
    shp = mb.tensor("reshape/Shape", (4,), "int32")
    mb.op(op_code("SHAPE"), [x], [shp], *shape_options())
    batch = mb.tensor("reshape/strided_slice", (), "int32")
    mb.op(op_code("STRIDED_SLICE"), [shp, i32("ss_begin", [0]), i32("ss_end", [1]), i32("ss_strides", [1])], [batch],
          *strided_slice_options(shrink_axis_mask=1))  # fmt: skip
    dims = [mb.tensor(f"reshape/dim{k}", (), "int32", data=np.array(d, np.int32)) for k, d in enumerate(tail)]
    target = mb.tensor("reshape/packed", (1 + len(tail),), "int32")
    mb.op(op_code("PACK"), [batch, *dims], [target], *pack_options(1 + len(tail)))
    mb.op(op_code("RESHAPE"), [x, target], [y])


def mobilenet_head_model() -> tuple[bytes, tuple]:
    """Keras MobileNet's pattern: conv (RELU6) → depthwise → standalone RELU6 → GAP (keepdims)
    → 1x1 conv classifier → Reshape((classes,)) as SHAPE/STRIDED_SLICE/PACK/RESHAPE → softmax."""
    r = np.random.default_rng(5)
    mb = ModelBuilder()
    xin = (1, 8, 8, 3)
    x = mb.act("input_1", xin, 0.02, -1)
    w1 = mb.tensor("conv1/w", (8, 3, 3, 3), "int8", r.uniform(0.005, 0.02, 8).astype(np.float32), np.zeros(8, np.int64),
                   r.integers(-127, 128, (8, 3, 3, 3)).astype(np.int8))  # fmt: skip
    b1 = mb.tensor("conv1/b", (8,), "int32", np.full(8, 0.0002, np.float32), None, r.integers(-500, 500, 8).astype(np.int32))
    c1 = mb.act("conv1_relu", (1, 4, 4, 8), 0.03, -128)
    mb.op(op_code("CONV_2D"), [x, w1, b1], [c1], *conv_options(SAME, (2, 2), RELU6))
    wd = mb.tensor("dw/w", (1, 3, 3, 8), "int8", r.uniform(0.005, 0.02, 8).astype(np.float32), np.zeros(8, np.int64),
                   r.integers(-127, 128, (1, 3, 3, 8)).astype(np.int8), axis=3)  # fmt: skip
    bd = mb.tensor("dw/b", (8,), "int32", np.full(8, 0.0003, np.float32), None, r.integers(-500, 500, 8).astype(np.int32))
    d1 = mb.act("dw_out", (1, 4, 4, 8), 0.05, 3)
    mb.op(op_code("DEPTHWISE_CONV_2D"), [c1, wd, bd], [d1], *depthwise_options(SAME))
    r6 = mb.act("dw_relu6", (1, 4, 4, 8), 0.05, 3)
    mb.op(op_code("RELU6"), [d1], [r6])
    axes = mb.tensor("gap/axes", (2,), "int32", data=np.array([1, 2], np.int32))
    gap = mb.act("gap", (1, 1, 1, 8), 0.04, -20)
    mb.op(op_code("MEAN"), [r6, axes], [gap], *reducer_options(True))
    wc = mb.tensor("preds/w", (5, 1, 1, 8), "int8", r.uniform(0.005, 0.02, 5).astype(np.float32), np.zeros(5, np.int64),
                   r.integers(-127, 128, (5, 1, 1, 8)).astype(np.int8))  # fmt: skip
    logits4 = mb.act("preds", (1, 1, 1, 5), 0.1, 4)
    mb.op(op_code("CONV_2D"), [gap, wc, -1], [logits4], *conv_options(VALID))
    logits = mb.act("reshape_2", (1, 5), 0.1, 4)
    keras_reshape(mb, logits4, logits, [5])
    y = mb.act("predictions", (1, 5), 1 / 256, -128)
    mb.op(op_code("SOFTMAX"), [logits], [y], *softmax_options(1.0))
    mb.inputs, mb.outputs = [x], [y]
    return mb.build(), xin


def assert_equals_tflm(tmp_path, model: bytes, in_shape, n: int = 300, build: bool = True):
    path = tmp_path / "m.tflite"
    path.write_bytes(model)
    g = load_tflite(path)
    (inp,), (out,) = g.inputs, g.outputs
    xs = np.random.default_rng(0).integers(-128, 128, (n, *in_shape[1:])).astype(np.int8)
    want = np.stack([tflm_run(model, x[None])[0] for x in xs])
    got = reference.run_batch(g, xs)
    np.testing.assert_array_equal(got.reshape(want.shape), want)
    if build:
        c = compile_model(path, outdir=tmp_path / "lib")
        dev = native.run_batch(native.build(tmp_path / "lib", sanitize=True, opt="-O1"), xs, c.library.manifest["output"]["bytes"])
        np.testing.assert_array_equal(dev, want.reshape(n, -1))
    return g


def test_keras_mobilenet_head_with_shape_arithmetic(tmp_path):
    """Before: refused with "uses operators tinyconv does not support: RELU6 ..., SHAPE ..., STRIDED_SLICE ..., PACK ..."."""
    model, xin = mobilenet_head_model()
    g = assert_equals_tflm(tmp_path, model, xin)
    assert not any(n.op in ("shape", "strided_slice", "pack") for n in g.nodes)  # folded, not generated


@pytest.mark.parametrize("op,scales", [
    ("RELU", (0.05, -3, 0.05, -3)), ("RELU", (0.05, -3, 0.02, -128)), ("RELU", (0.01, 10, 0.3, 0)),
    ("RELU6", (0.05, -3, 0.05, -3)), ("RELU6", (0.02, -128, 0.02, -128)),
    ("LEAKY_RELU", (0.05, -3, 0.05, -3)), ("LEAKY_RELU", (0.03, 7, 0.05, -20)),
])  # fmt: skip
def test_standalone_activations(tmp_path, op, scales):
    """Before: refused as unsupported operators."""
    si, zi, so, zo = scales
    mb = ModelBuilder()
    xin = (1, 4, 4, 16)
    x = mb.act("x", xin, si, zi)
    y = mb.act("y", xin, so, zo)
    mb.op(op_code(op), [x], [y], *(leaky_relu_options(0.2) if op == "LEAKY_RELU" else ()))
    mb.inputs, mb.outputs = [x], [y]
    assert_equals_tflm(tmp_path, mb.build(), xin, n=64, build=op == "LEAKY_RELU")


def test_shape_arithmetic_on_a_runtime_value_is_refused(tmp_path):
    """STRIDED_SLICE of an int8 activation is not shape arithmetic: one clear error, naming it."""
    from tinyconv.errors import UnsupportedError

    mb = ModelBuilder()
    x = mb.act("x", (1, 4), 0.1, 0)
    y = mb.act("y", (1, 2), 0.1, 0)
    i32 = lambda name, v: mb.tensor(name, (len(v),), "int32", data=np.array(v, np.int32))  # noqa: E731
    mb.op(op_code("STRIDED_SLICE"), [x, i32("b", [0, 0]), i32("e", [1, 2]), i32("s", [1, 1])], [y], *strided_slice_options())
    mb.inputs, mb.outputs = [x], [y]
    path = tmp_path / "m.tflite"
    path.write_bytes(mb.build())
    with pytest.raises(UnsupportedError, match=r"STRIDED_SLICE \(operator 0.*computed at run time"):
        load_tflite(path)
