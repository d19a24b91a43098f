"""One small int8 .tflite model per operator (built here with TFLite's schema): tinyconv's int8
reference, and the generated C on the host, equal TensorFlow Lite Micro's interpreter byte for byte."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tflite_micro", reason="tflite-micro (the bit-exact oracle) is not installed")

from tflite_build import (  # noqa: E402
    ModelBuilder,
    add_options,
    concat_options,
    conv_options,
    depthwise_options,
    fc_options,
    mul_options,
    op_code,
    pool_options,
    reducer_options,
    reshape_options,
    softmax_options,
    tflm_run,
    transpose_conv_options,
)

from tinyconv import native, reference  # noqa: E402
from tinyconv.fixedpoint import activation_range  # noqa: E402
from tinyconv.frontend import tflite_lut  # noqa: E402
from tinyconv.frontend.tflite import load_tflite, tflite_activation_range  # noqa: E402
from tinyconv.ops import OPS  # noqa: E402
from tinyconv.pipeline import compile_model  # noqa: E402

SAME, VALID = 0, 1
NONE, RELU, RELU_N1_TO_1, RELU6 = 0, 1, 2, 3


def rng(seed=0):
    return np.random.default_rng(seed)


def i8(r, shape, lo=-128, hi=128):
    return r.integers(lo, hi, size=shape).astype(np.int8)


def needs(*ops):
    missing = [o for o in ops if o not in OPS]
    if missing:
        pytest.skip(f"tinyconv op(s) {missing} not registered yet (tinyconv/ops/ is being extended by a colleague)")


def check(tmp_path, model: bytes, in_shape, *, n=4, seed=0, build=True, lo=-128, hi=128):
    """Reference == TFLM on n random inputs; the host build == both. Returns the graph."""
    path = tmp_path / "m.tflite"
    path.write_bytes(model)
    g = load_tflite(path)
    (inp,), (out,) = g.inputs, g.outputs
    xs = i8(rng(seed), (n, *in_shape[1:]), lo, hi)
    want = np.stack([tflm_run(model, x[None])[0] for x in xs])
    got = np.stack([reference.run(g, {inp: x[None]}, mode="int8")[out][0] for x in xs])
    np.testing.assert_array_equal(got.reshape(want.shape), want)
    if build:
        compiled = compile_model(path, target="host", outdir=tmp_path / "lib")
        c = native.run_batch(native.build(tmp_path / "lib"), xs, compiled.library.manifest["output"]["bytes"])
        np.testing.assert_array_equal(c, want.reshape(n, -1))
    return g


def weights(r, shape, per_channel_axis=0, n_scales=None):
    w = i8(r, shape, -127, 128)
    n = shape[per_channel_axis] if n_scales is None else n_scales
    return w, (r.uniform(0.002, 0.02, size=n).astype(np.float32) if n > 1 else np.float32(0.01))


def bias(r, n, scale):
    return r.integers(-2000, 2000, size=n).astype(np.int32), np.atleast_1d(scale)


# -- convolutions ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "padding,stride,dilation,act,per_tensor",
    [(SAME, (2, 2), (1, 1), RELU6, False), (VALID, (1, 1), (2, 2), NONE, True), (SAME, (1, 2), (1, 1), RELU, True), (SAME, (1, 1), (2, 1), RELU_N1_TO_1, False)],
)
def test_conv2d(tmp_path, padding, stride, dilation, act, per_tensor):
    r = rng(1)
    mb = ModelBuilder()
    xin = (1, 9, 8, 3)
    x = mb.act("x", xin, 0.05, 3)
    w, ws = weights(r, (6, 3, 3, 3), n_scales=1 if per_tensor else None)
    wi = mb.tensor("w", w.shape, "int8", ws, 0, w, axis=0)
    b, _ = bias(r, 6, 0)
    bi = mb.tensor("b", (6,), "int32", np.float32(0.05) * np.atleast_1d(ws).astype(np.float32), 0, b)
    oh = -(-9 // stride[0]) if padding == SAME else (9 - (3 - 1) * dilation[0] - 1) // stride[0] + 1
    ow = -(-8 // stride[1]) if padding == SAME else (8 - (3 - 1) * dilation[1] - 1) // stride[1] + 1
    y = mb.act("y", (1, oh, ow, 6), 0.04, -7)
    mb.inputs, mb.outputs = [x], [y]
    mb.op(op_code("CONV_2D"), [x, wi, bi], [y], *conv_options(padding, stride, act, dilation))
    check(tmp_path, mb.build(), xin)


def test_grouped_conv2d_without_bias(tmp_path):
    r = rng(2)
    mb = ModelBuilder()
    x = mb.act("x", (1, 6, 6, 8), 0.05, 0)
    w, ws = weights(r, (4, 3, 3, 4))
    wi = mb.tensor("w", w.shape, "int8", ws, 0, w)
    y = mb.act("y", (1, 6, 6, 4), 0.1, 5)
    mb.inputs, mb.outputs = [x], [y]
    mb.op(op_code("CONV_2D"), [x, wi, -1], [y], *conv_options(SAME))
    g = check(tmp_path, mb.build(), (1, 6, 6, 8))
    assert g.nodes[0].attrs["groups"] == 2


@pytest.mark.parametrize("multiplier,stride,act", [(1, (1, 1), RELU6), (2, (2, 2), RELU), (3, (1, 2), NONE)])
def test_depthwise_conv2d(tmp_path, multiplier, stride, act):
    r = rng(3)
    cin = 4
    cout = cin * multiplier
    mb = ModelBuilder()
    x = mb.act("x", (1, 7, 7, cin), 0.03, -10)
    w, ws = weights(r, (1, 3, 3, cout), per_channel_axis=3)
    wi = mb.tensor("w", w.shape, "int8", ws, 0, w, axis=3)
    b, _ = bias(r, cout, 0)
    bi = mb.tensor("b", (cout,), "int32", np.float32(0.03) * ws, 0, b)
    y = mb.act("y", (1, -(-7 // stride[0]), -(-7 // stride[1]), cout), 0.02, 4)
    mb.inputs, mb.outputs = [x], [y]
    mb.op(op_code("DEPTHWISE_CONV_2D"), [x, wi, bi], [y], *depthwise_options(SAME, stride, act, multiplier))
    g = check(tmp_path, mb.build(), (1, 7, 7, cin))
    node = g.nodes[0]
    assert node.op == "conv2d" and node.attrs["groups"] == cin
    assert g.tensors[node.inputs[1]].shape == (cout, 3, 3, 1)


def test_transpose_conv(tmp_path):
    needs("conv_transpose2d")
    r = rng(4)
    mb = ModelBuilder()
    x = mb.act("x", (1, 4, 5, 3), 0.05, 2)
    shape = mb.tensor("shape", (4,), "int32", data=np.array([1, 8, 10, 6], np.int32))
    w, ws = weights(r, (6, 3, 3, 3))
    wi = mb.tensor("w", w.shape, "int8", ws, 0, w)
    b, _ = bias(r, 6, 0)
    bi = mb.tensor("b", (6,), "int32", np.float32(0.05) * ws, 0, b)
    y = mb.act("y", (1, 8, 10, 6), 0.05, -3)
    mb.inputs, mb.outputs = [x], [y]
    mb.op(op_code("TRANSPOSE_CONV"), [shape, wi, x, bi], [y], *transpose_conv_options(SAME, (2, 2), RELU))
    check(tmp_path, mb.build(), (1, 4, 5, 3))


# -- fully connected ---------------------------------------------------------------------------------


@pytest.mark.parametrize("per_channel,keep_num_dims,act", [(False, False, RELU), (True, False, NONE), (False, True, RELU6)])
def test_fully_connected(tmp_path, per_channel, keep_num_dims, act):
    r = rng(5)
    mb = ModelBuilder()
    xin = (1, 2, 3, 8) if not keep_num_dims else (1, 3, 16)
    x = mb.act("x", xin, 0.1, -4)
    k = 48 if not keep_num_dims else 16
    w, ws = weights(r, (10, k), n_scales=None if per_channel else 1)
    wi = mb.tensor("w", w.shape, "int8", ws, 0, w)
    b, _ = bias(r, 10, 0)
    bi = mb.tensor("b", (10,), "int32", np.float32(0.1) * np.atleast_1d(ws).astype(np.float32), 0, b)
    y = mb.act("y", (1, 10) if not keep_num_dims else (1, 3, 10), 0.3, 9)
    mb.inputs, mb.outputs = [x], [y]
    mb.op(op_code("FULLY_CONNECTED"), [x, wi, bi], [y], *fc_options(act, keep_num_dims))
    check(tmp_path, mb.build(), xin)


# -- pooling -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["AVERAGE_POOL_2D", "MAX_POOL_2D"])
@pytest.mark.parametrize("padding,kernel,stride,act", [(SAME, (3, 3), (2, 2), RELU), (VALID, (2, 3), (2, 1), NONE), (SAME, (2, 2), (1, 1), RELU6)])
def test_pool(tmp_path, kind, padding, kernel, stride, act):
    mb = ModelBuilder()
    x = mb.act("x", (1, 7, 6, 5), 0.02, -20)
    if padding == SAME:
        oh, ow = -(-7 // stride[0]), -(-6 // stride[1])
    else:
        oh, ow = (7 - kernel[0]) // stride[0] + 1, (6 - kernel[1]) // stride[1] + 1
    y = mb.act("y", (1, oh, ow, 5), 0.02, -20)
    mb.inputs, mb.outputs = [x], [y]
    mb.op(op_code(kind), [x], [y], *pool_options(kernel, stride, padding, act))
    check(tmp_path, mb.build(), (1, 7, 6, 5))


def test_pool_output_scale_within_tflm_tolerance(tmp_path):
    """TFLM accepts scales differing by <= 1e-6 and copies the integers; so must the import."""
    mb = ModelBuilder()
    x = mb.act("x", (1, 4, 4, 3), 0.5, 1)
    y = mb.act("y", (1, 2, 2, 3), 0.5 + 5e-7, 1)
    mb.inputs, mb.outputs = [x], [y]
    mb.op(op_code("AVERAGE_POOL_2D"), [x], [y], *pool_options((2, 2), (2, 2), VALID, NONE))
    check(tmp_path, mb.build(), (1, 4, 4, 3))


# -- element-wise --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["ADD", "MUL"])
@pytest.mark.parametrize("b_shape,act", [((1, 5, 4, 6), NONE), ((1, 1, 1, 6), RELU), ((6,), RELU6)])
def test_add_mul(tmp_path, kind, b_shape, act):
    r = rng(6)
    mb = ModelBuilder()
    x = mb.act("x", (1, 5, 4, 6), 0.07, 12)
    c = i8(r, b_shape)
    ci = mb.tensor("c", b_shape, "int8", 0.03, -6, c)
    y = mb.act("y", (1, 5, 4, 6), 0.09 if kind == "ADD" else 0.01, -3)
    mb.inputs, mb.outputs = [x], [y]
    opts = add_options(act) if kind == "ADD" else mul_options(act)
    mb.op(op_code(kind), [x, ci], [y], *opts)
    check(tmp_path, mb.build(), (1, 5, 4, 6))


def test_add_of_two_activations(tmp_path):
    mb = ModelBuilder()
    x = mb.act("x", (1, 4, 4, 8), 0.05, 0)
    a = mb.act("a", (1, 4, 4, 8), 0.05, 0)
    y = mb.act("y", (1, 4, 4, 8), 0.11, -5)
    mb.inputs, mb.outputs = [x], [y]
    mb.op(op_code("MAX_POOL_2D"), [x], [a], *pool_options((3, 3), (1, 1), SAME, NONE))
    mb.op(op_code("ADD"), [x, a], [y], *add_options(RELU))
    check(tmp_path, mb.build(), (1, 4, 4, 8))


# -- data movement, softmax, mean ------------------------------------------------------------------


def test_reshape_softmax(tmp_path):
    needs("softmax")
    mb = ModelBuilder()
    x = mb.act("x", (1, 2, 2, 5), 0.1, 3)
    shp = mb.tensor("shape", (2,), "int32", data=np.array([1, 20], np.int32))
    f = mb.act("f", (1, 20), 0.1, 3)
    y = mb.act("y", (1, 20), 1.0 / 256, -128)
    mb.inputs, mb.outputs = [x], [y]
    mb.op(op_code("RESHAPE"), [x, shp], [f], *reshape_options([1, 20]))
    mb.op(op_code("SOFTMAX"), [f], [y], *softmax_options(1.0))
    check(tmp_path, mb.build(), (1, 2, 2, 5))


def test_concatenation(tmp_path):
    mb = ModelBuilder()
    x = mb.act("x", (1, 3, 3, 4), 0.05, 1)
    a = mb.act("a", (1, 3, 3, 4), 0.05, 1)
    y = mb.act("y", (1, 3, 3, 8), 0.05, 1)
    mb.inputs, mb.outputs = [x], [y]
    mb.op(op_code("MAX_POOL_2D"), [x], [a], *pool_options((2, 2), (1, 1), SAME, NONE))
    mb.op(op_code("CONCATENATION"), [a, x], [y], *concat_options(-1))
    check(tmp_path, mb.build(), (1, 3, 3, 4))


@pytest.mark.parametrize("kind", ["PAD", "PADV2"])
def test_pad(tmp_path, kind):
    mb = ModelBuilder()
    x = mb.act("x", (1, 3, 4, 2), 0.05, -9)
    p = mb.tensor("p", (4, 2), "int32", data=np.array([[0, 0], [1, 2], [2, 0], [0, 1]], np.int32))
    y = mb.act("y", (1, 6, 6, 3), 0.05, -9)
    ins = [x, p]
    if kind == "PADV2":
        ins.append(mb.tensor("v", (1,), "int8", 0.05, -9, np.array([17], np.int8)))
    mb.inputs, mb.outputs = [x], [y]
    mb.op(op_code(kind), ins, [y])
    check(tmp_path, mb.build(), (1, 3, 4, 2))


@pytest.mark.parametrize("keep_dims", [True, False])
@pytest.mark.parametrize("hw,out_scale", [((4, 4), 0.05), ((5, 3), 0.037), ((7, 7), 0.05)])
def test_mean(tmp_path, keep_dims, hw, out_scale):
    mb = ModelBuilder()
    x = mb.act("x", (1, *hw, 6), 0.05, -2)
    axes = mb.tensor("axes", (2,), "int32", data=np.array([1, 2], np.int32))
    y = mb.act("y", (1, 1, 1, 6) if keep_dims else (1, 6), out_scale, 4)
    mb.inputs, mb.outputs = [x], [y]
    mb.op(op_code("MEAN"), [x, axes], [y], *reducer_options(keep_dims))
    # tinyconv's mean folds 1/n into the in/out multiplier by integer division, as TFLM does
    # (forming in_scale / (out_scale · n) directly differs by 1 LSB on some sums).
    check(tmp_path, mb.build(), (1, *hw, 6), n=8)


def test_quantize_int8_to_int8_inside_the_graph(tmp_path):
    mb = ModelBuilder()
    x = mb.act("x", (1, 4, 4, 3), 0.05, 10)
    y = mb.act("y", (1, 4, 4, 3), 0.031, -40)
    mb.inputs, mb.outputs = [x], [y]
    mb.op(op_code("QUANTIZE"), [x], [y])
    check(tmp_path, mb.build(), (1, 4, 4, 3))


def test_float_edges_quantize_and_dequantize(tmp_path):
    """A float-edge model: QUANTIZE's params become the input's, DEQUANTIZE's input is the output."""
    r = rng(8)
    mb = ModelBuilder()
    xf = mb.tensor("xf", (1, 5, 5, 2), "float32")
    x = mb.act("x", (1, 5, 5, 2), 0.04, -3)
    w, ws = weights(r, (3, 3, 3, 2))
    wi = mb.tensor("w", w.shape, "int8", ws, 0, w)
    y = mb.act("y", (1, 5, 5, 3), 0.06, 2)
    yf = mb.tensor("yf", (1, 5, 5, 3), "float32")
    mb.inputs, mb.outputs = [xf], [yf]
    mb.op(op_code("QUANTIZE"), [xf], [x])
    mb.op(op_code("CONV_2D"), [x, wi, -1], [y], *conv_options(SAME, act=RELU))
    mb.op(op_code("DEQUANTIZE"), [y], [yf])
    model = mb.build()
    path = tmp_path / "f.tflite"
    path.write_bytes(model)
    g = load_tflite(path)
    assert g.is_quantized() and len(g.notes) == 2
    assert g.tensors[g.inputs[0]].quant.scalar() == (pytest.approx(0.04), -3)
    xq = i8(r, (1, 5, 5, 2))
    xf_val = ((xq.astype(np.float32) + 3) * np.float32(0.04)).astype(np.float32)
    want = tflm_run(model, xf_val)
    got = reference.run(g, {g.inputs[0]: xq})[g.outputs[0]]
    np.testing.assert_array_equal(got.astype(np.float32) - 2, np.round(want / np.float32(0.06)))


# -- activation bounds -----------------------------------------------------------------------------


def test_fused_relu6_bound_follows_tflite_float32_rounding(tmp_path):
    """6 / 2.4f is 2.4999999 in double but rounds to 2.5 in float32: TFLite's bound is one higher.
    tinyconv's activation_range divides in float32 like TFLite, so both give the same bound."""
    s = float(np.float32(2.4))
    assert activation_range((0.0, 6.0), s, -128) == tflite_activation_range(3, s, -128) == (-128, -125)
    mb = ModelBuilder()
    x = mb.act("x", (1, 2, 2, 4), 0.1, 0)
    c = mb.tensor("c", (1, 1, 1, 4), "int8", 0.1, 0, np.array([[[[127, 100, 90, 127]]]], np.int8))
    y = mb.act("y", (1, 2, 2, 4), s, -128)
    mb.inputs, mb.outputs = [x], [y]
    mb.op(op_code("ADD"), [x, c], [y], *add_options(RELU6))
    g = check(tmp_path, mb.build(), (1, 2, 2, 4), lo=100)
    assert g.nodes[0].qattrs["act_max"] == -125


# -- LOGISTIC / TANH / HARD_SWISH: lookup tables against TFLM ----------------------------------------

LUT_CASES = [(1 / 16, 0), (0.1, -5), (0.02, 3), (0.5, 127), (1e-3, -128), (0.25, 0), (2.0, 10)] + [
    (float(np.exp(v)), int(z)) for v, z in zip(rng(9).uniform(-8, 1, 30), rng(10).integers(-128, 128, 30))
]


def tflm_table(kind, s, z, so, zo):
    mb = ModelBuilder()
    x = mb.act("x", (1, 256), s, z)
    y = mb.act("y", (1, 256), so, zo)
    mb.inputs, mb.outputs = [x], [y]
    mb.op(op_code(kind), [x], [y])
    return tflm_run(mb.build(), np.arange(-128, 128, dtype=np.int8)[None]).reshape(-1)


@pytest.mark.parametrize("s,z", LUT_CASES)
def test_logistic_lut_matches_tflm(s, z):
    np.testing.assert_array_equal(tflite_lut.logistic_lut(s, z), tflm_table("LOGISTIC", s, z, 1 / 256, -128))


@pytest.mark.parametrize("s,z", LUT_CASES)
def test_tanh_lut_matches_tflm(s, z):
    np.testing.assert_array_equal(tflite_lut.tanh_lut(s, z), tflm_table("TANH", s, z, 1 / 128, 0))


@pytest.mark.parametrize("k", range(len(LUT_CASES)))
def test_hard_swish_lut_matches_tflm(k):
    s, z = LUT_CASES[k]
    r = rng(100 + k)
    so, zo = float(s * r.uniform(0.3, 1.5)), int(r.integers(-128, 0))
    np.testing.assert_array_equal(tflite_lut.hard_swish_lut(s, z, so, zo), tflm_table("HARD_SWISH", s, z, so, zo))


@pytest.mark.parametrize("kind,fn,out", [("LOGISTIC", "sigmoid", (1 / 256, -128)), ("TANH", "tanh", (1 / 128, 0)), ("HARD_SWISH", "hardswish", (0.03, -60))])
def test_unary_ops_import(tmp_path, kind, fn, out):
    mb = ModelBuilder()
    x = mb.act("x", (1, 4, 4, 16), 0.045, 7)
    y = mb.act("y", (1, 4, 4, 16), *out)
    mb.inputs, mb.outputs = [x], [y]
    mb.op(op_code(kind), [x], [y])
    model = mb.build()
    path = tmp_path / "u.tflite"
    path.write_bytes(model)
    if "unary" not in OPS:
        pytest.skip("tinyconv op 'unary' (tinyconv/ops/unary.py) not registered yet")
    g = load_tflite(path)
    node = g.nodes[0]
    assert node.op == "unary" and node.attrs["fn"] == fn and node.attrs["lut"].dtype == np.int8 and node.attrs["lut"].shape == (256,)
    xs = np.arange(-128, 128, dtype=np.int8).reshape(1, 4, 4, 16)
    np.testing.assert_array_equal(reference.run(g, {g.inputs[0]: xs})[g.outputs[0]], tflm_run(model, xs))
    check(tmp_path, model, (1, 4, 4, 16))
