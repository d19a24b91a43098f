"""unary (LUT activations), prelu and conv_transpose2d: float references against onnxruntime,
int8 tables against quantize(f(dequantize)), and the generated C bit-exact with the reference
(gcc + ASan/UBSan, strict warnings under gcc, clang and arm-none-eabi-gcc)."""

from __future__ import annotations


import numpy as np
import pytest

from ir_graphs import GraphBuilder
from native_checks import STRICT_COMPILERS, assert_bit_exact_native, assert_compiles_cleanly, assert_layers_match, compile_calibrated, need_compiler
from tinyconv import reference
from tinyconv.errors import UnsupportedError
from tinyconv.fixedpoint import quantize
from tinyconv.ir import Graph, Node, QuantParams, Tensor
from tinyconv.ops import op_of
from tinyconv.ops.unary import UNARY_FNS, apply_unary
from tinyconv.pipeline import compile_model


# A hand-made table standing in for an importer's exact one (must be used as is).
GIVEN_LUT = ((np.arange(256) * 37 + 11) % 256 - 128).astype(np.int8)

UNARY_CASES = [
    ("relu", {}),
    ("sigmoid", {}),
    ("tanh", {}),
    ("hardsigmoid", {"alpha": 0.25, "beta": 0.4}),
    ("hardswish", {}),
    ("leakyrelu", {"alpha": 0.1}),
    ("clip", {"lo": -0.5, "hi": 1.0}),
    ("elu", {"alpha": 0.7}),
]


def more_ops_graph(seed: int = 0, given_lut: np.ndarray | None = GIVEN_LUT) -> Graph:
    rng = np.random.default_rng(seed)
    b = GraphBuilder("more_ops", (1, 6, 5, 3))
    g, node, const = b.g, b.node, b.const

    # stride 2, asymmetric pads, output_padding, bias
    ct1 = node("ct1", "conv_transpose2d", ["x", const("w1", rng.normal(size=(4, 3, 3, 3))), const("b1", rng.normal(size=4))],
               strides=(2, 2), pads=(1, 0, 0, 1), output_padding=(1, 1), dilations=(1, 1), groups=1, act=None)  # fmt: skip
    branches = [node(f"u_{fn}", "unary", [ct1], fn=fn, params=p) for fn, p in UNARY_CASES]
    branches.append(node("u_given", "unary", [ct1], fn="tanh", params={}, lut=given_lut))
    branches.append(node("prelu_shared", "prelu", [ct1, const("slope1", [0.3])]))
    cat = node("cat", "concat", branches, axis=3)
    c = g.tensors[cat].shape[-1]
    slope = rng.uniform(-1.5, 1.5, size=c)
    slope[:3] = [0.0, 1.0, 2.5]
    hs = node("hswish", "unary", [cat], fn="hardswish", params={})  # in place on concat's output
    pr = node("prelu", "prelu", [hs, const("slope", slope)])
    # stride (1, 2), dilation (2, 1), output_padding on w, no bias, fused clamp
    ct2 = node("ct2", "conv_transpose2d", [pr, const("w2", rng.normal(size=(5, 2, 3, c)) / 4)],
               strides=(1, 2), pads=(0, 1, 1, 0), output_padding=(0, 1), dilations=(2, 1), groups=1, act=(-1.0, 6.0))  # fmt: skip
    pr2 = node("prelu2", "prelu", [ct2, const("slope2", [0.2, -0.5, 1.0, 0.0, 3.0])])  # in place on ct2's output
    return b.finish(node("out", "unary", [pr2], fn="sigmoid", params={}))


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    return compile_calibrated(more_ops_graph(), (10, 6, 5, 3), tmp_path_factory.mktemp("lib"))


def test_more_ops_graph_uses_every_new_op(compiled):
    c, _ = compiled
    ops = {n.op for n in c.graph.nodes}
    assert {"unary", "prelu", "conv_transpose2d"} <= ops
    assert {n.attrs["fn"] for n in c.graph.nodes if n.op == "unary"} == set(UNARY_FNS)
    given = next(n for n in c.graph.nodes if n.name == "u_given")
    assert np.array_equal(given.qattrs["lut"], GIVEN_LUT)
    # In place: the inputs die at these element-wise layers, which reuse their bytes.
    assert c.plan.offsets["hswish_out"] == c.plan.offsets["cat_out"]
    assert c.plan.offsets["prelu2_out"] == c.plan.offsets["ct2_out"]


@pytest.mark.parametrize("cc", ["gcc", "clang"])
def test_more_ops_bit_exact_native(compiled, cc):
    c, xq = compiled
    need_compiler(cc)
    extra = np.random.default_rng(7).integers(-128, 128, size=(6, *xq.shape[1:])).astype(np.int8)
    expected = assert_bit_exact_native(c, np.concatenate([xq, extra]), cc)
    assert len(np.unique(expected)) > 8  # not a degenerate (all-clamped) output
    assert_layers_match(c, xq[0])


@pytest.mark.parametrize("cc,flags", STRICT_COMPILERS)
def test_more_ops_c_compiles_without_warnings(compiled, cc, flags):
    c, _ = compiled
    need_compiler(cc)
    srcs = assert_compiles_cleanly(c, cc, flags)
    assert any(s.endswith("tc_lut.c") for s in srcs) and any(s.endswith("tc_conv_transpose.c") for s in srcs)


def test_int8_close_to_float():
    """Without the arbitrary given table, the int8 graph tracks the float graph (a sanity bound)."""
    calib = np.random.default_rng(1).normal(size=(10, 6, 5, 3)).astype(np.float32)
    c = compile_model(more_ops_graph(given_lut=None), calib=calib)
    s_in, z_in = c.graph.tensors["x"].quant.scalar()
    xq = quantize(calib, s_in, z_in)
    for x in xq[:4]:
        xf = ((x.astype(np.float32) - z_in) * s_in)[None]
        fv = reference.run(c.float_graph, {"x": xf}, mode="float", keep=True)
        qv = reference.run(c.graph, {"x": x[None]}, keep=True)
        for node in c.graph.nodes:
            o = node.outputs[0]
            s, z = c.graph.tensors[o].quant.scalar()
            err = np.abs((qv[o].astype(np.float64) - z) * s - fv[o])
            rng = float(fv[o].max() - fv[o].min())
            assert err.max() <= 0.1 * rng + 2 * s, (node.name, err.max(), rng)


# -- float references against onnxruntime ------------------------------------------------------------

ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper  # noqa: E402


def _run_onnx(node, inputs: dict[str, np.ndarray], out_shape, initializers=(), opset=14) -> np.ndarray:
    graph = helper.make_graph(
        [node], "t",
        [helper.make_tensor_value_info(k, TensorProto.FLOAT, list(v.shape)) for k, v in inputs.items()],
        [helper.make_tensor_value_info(node.output[0], TensorProto.FLOAT, list(out_shape))],
        initializer=list(initializers),
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, inputs)[0]


ONNX_UNARY = {
    "relu": ("Relu", {}),
    "sigmoid": ("Sigmoid", {}),
    "tanh": ("Tanh", {}),
    "hardsigmoid": ("HardSigmoid", {"alpha": 0.25, "beta": 0.4}),
    "hardswish": ("HardSwish", {}),
    "leakyrelu": ("LeakyRelu", {"alpha": 0.1}),
    "elu": ("Elu", {"alpha": 0.7}),
}


@pytest.mark.parametrize("fn", sorted(ONNX_UNARY) + ["clip"])
def test_unary_float_ref_matches_onnxruntime(fn):
    x = np.concatenate([np.linspace(-9, 9, 361), np.random.default_rng(3).normal(scale=4, size=239)]).astype(np.float32).reshape(1, 600)
    if fn == "clip":
        lo, hi = np.float32(-0.5), np.float32(1.0)
        onnx_node = helper.make_node("Clip", ["x", "lo", "hi"], ["y"])
        want = _run_onnx(onnx_node, {"x": x}, x.shape, [helper.make_tensor("lo", TensorProto.FLOAT, [], [lo]), helper.make_tensor("hi", TensorProto.FLOAT, [], [hi])])
        params = {"lo": float(lo), "hi": float(hi)}
    else:
        op_type, params = ONNX_UNARY[fn]
        want = _run_onnx(helper.make_node(op_type, ["x"], ["y"], **params), {"x": x}, x.shape)
    node = Node("u", "unary", ["x"], ["y"], {"fn": fn, "params": params})
    got = op_of(node).float_ref(node, [x])[0]
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("slope_shape", [(4,), (1,)])
def test_prelu_float_ref_matches_onnxruntime(slope_shape):
    rng = np.random.default_rng(4)
    x = rng.normal(size=(1, 3, 5, 4)).astype(np.float32)  # NHWC
    slope = rng.uniform(-1, 2, size=slope_shape).astype(np.float32)
    x_nchw = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    onnx_slope = slope.reshape(-1, 1, 1)  # broadcasts over (C, H, W)
    want = _run_onnx(helper.make_node("PRelu", ["x", "slope"], ["y"]), {"x": x_nchw}, x_nchw.shape,
                     [helper.make_tensor("slope", TensorProto.FLOAT, list(onnx_slope.shape), onnx_slope.reshape(-1))])  # fmt: skip
    node = Node("p", "prelu", ["x", "s"], ["y"], {})
    got = op_of(node).float_ref(node, [x, slope])[0]
    np.testing.assert_allclose(got, want.transpose(0, 2, 3, 1), rtol=1e-6, atol=1e-6)


CT_CASES = [
    # (in N,C,H,W, cout, kernel, strides, pads (t, l, b, r), output_padding, dilations, bias)
    ((1, 3, 4, 5), 2, (3, 3), (2, 2), (0, 0, 0, 0), (0, 0), (1, 1), True),
    ((1, 3, 4, 5), 4, (3, 3), (2, 2), (1, 1, 1, 1), (1, 1), (1, 1), True),
    ((1, 2, 5, 3), 3, (2, 3), (2, 1), (1, 0, 0, 2), (1, 0), (1, 1), False),
    ((2, 4, 3, 3), 2, (4, 4), (3, 2), (2, 1, 3, 0), (2, 1), (1, 1), True),
    ((1, 2, 4, 4), 3, (3, 2), (2, 2), (1, 1, 0, 0), (1, 0), (2, 1), True),
    ((1, 1, 6, 2), 2, (1, 1), (1, 1), (0, 0, 0, 0), (0, 0), (1, 1), True),
]


@pytest.mark.parametrize("case", CT_CASES)
def test_conv_transpose_float_ref_matches_onnxruntime(case):
    (n, cin, h, w), cout, k, strides, pads, opad, dil, with_bias = case
    rng = np.random.default_rng(5)
    x = rng.normal(size=(n, cin, h, w)).astype(np.float32)
    w_onnx = rng.normal(size=(cin, cout, *k)).astype(np.float32)
    b = rng.normal(size=cout).astype(np.float32)
    t, l, bo, r = pads
    oh = strides[0] * (h - 1) + opad[0] + dil[0] * (k[0] - 1) + 1 - t - bo
    ow = strides[1] * (w - 1) + opad[1] + dil[1] * (k[1] - 1) + 1 - l - r
    inits = [helper.make_tensor("w", TensorProto.FLOAT, list(w_onnx.shape), w_onnx.reshape(-1))]
    names = ["x", "w"]
    if with_bias:
        inits.append(helper.make_tensor("b", TensorProto.FLOAT, [cout], b))
        names.append("b")
    onnx_node = helper.make_node("ConvTranspose", names, ["y"], strides=list(strides), pads=[t, l, bo, r],
                                 output_padding=list(opad), dilations=list(dil), kernel_shape=list(k))  # fmt: skip
    want = _run_onnx(onnx_node, {"x": x}, (n, cout, oh, ow), inits)
    # IR: NHWC activations, weights [Cout, KH, KW, Cin] (the frontend's transpose(1, 2, 3, 0)).
    g = Graph()
    g.add_tensor(Tensor("x", (n, h, w, cin)))
    ins = ["x", g.add_const("w", w_onnx.transpose(1, 2, 3, 0)).name] + ([g.add_const("b", b).name] if with_bias else [])
    node = Node("ct", "conv_transpose2d", ins, ["y"], {"strides": strides, "pads": pads, "output_padding": opad, "dilations": dil, "groups": 1, "act": None})
    op = op_of(node)
    assert op.infer_shapes(node, g) == [(n, oh, ow, cout)]
    got = op.float_ref(node, [x.transpose(0, 2, 3, 1)] + [g.tensors[i].data for i in ins[1:]])[0]
    np.testing.assert_allclose(got.transpose(0, 3, 1, 2), want, rtol=1e-4, atol=1e-4)
    # MAC count = the taps the scatter form performs that land inside the output.
    g.add_tensor(Tensor("y", (n, oh, ow, cout)))
    ones = np.ones((1, h, w, 1))
    from tinyconv.ops.conv_transpose import conv_transpose_accumulate

    hits = conv_transpose_accumulate(ones, np.ones((1, *k, 1)), strides, pads, opad, dil).sum()
    assert op.macs(node, g) == n * int(hits) * cin * cout


# -- int8: tables, prelu, errors ---------------------------------------------------------------------


def _single_op_graph(op, attrs, in_q, out_q, slope=None):
    g = Graph()
    g.add_tensor(Tensor("x", (1, 256, 1, 1) if slope is None else (1, 64, 1, len(slope)), "int8", quant=QuantParams.per_tensor(*in_q)))
    ins = ["x"]
    if slope is not None:
        from tinyconv.quantize import quantize_weights_per_channel

        q, qp = quantize_weights_per_channel(np.asarray(slope, np.float32))
        ins.append(g.add_const("slope", q, qp).name)
    g.add_tensor(Tensor("y", g.tensors["x"].shape, "int8", quant=QuantParams.per_tensor(*out_q)))
    node = Node("n", op, ins, ["y"], attrs)
    g.nodes, g.inputs, g.outputs = [node], ["x"], ["y"]
    node.qattrs = op_of(node).prepare(node, g)
    return g, node


QPARAMS = [((0.05, -3), (0.01, -128)), ((0.11, 20), (0.02, 5)), ((0.0312, 127), (0.047, -60))]


@pytest.mark.parametrize("fn,params", UNARY_CASES)
@pytest.mark.parametrize("in_q,out_q", QPARAMS)
def test_unary_lut_within_one_lsb(fn, params, in_q, out_q):
    g, node = _single_op_graph("unary", {"fn": fn, "params": params}, in_q, out_q)
    q = np.arange(-128, 128, dtype=np.int8).reshape(1, 256, 1, 1)
    got = op_of(node).int8_ref(node, [q])[0].astype(np.int64)
    # Independent float32 evaluation (as onnxruntime would compute it) of quantize(f(dequantize)).
    real = ((q.astype(np.float32) - np.float32(in_q[1])) * np.float32(in_q[0])).astype(np.float32)
    f32 = apply_unary(fn, params, real).astype(np.float32)
    want = np.clip(np.round(f32 / np.float32(out_q[0])) + out_q[1], -128, 127)
    assert np.abs(got - want).max() <= 1
    # Exactly the table it documents: float64, half away from zero.
    real64 = (q.astype(np.float64) - in_q[1]) * np.float64(np.float32(in_q[0]))
    assert np.array_equal(got, quantize(apply_unary(fn, params, real64), *out_q).astype(np.int64))


def test_unary_given_lut_used_as_is_and_checked():
    _, node = _single_op_graph("unary", {"fn": "sigmoid", "params": {}, "lut": GIVEN_LUT}, (0.05, 0), (1 / 256, -128))
    assert np.array_equal(node.qattrs["lut"], GIVEN_LUT)
    q = np.arange(-128, 128, dtype=np.int8)
    assert np.array_equal(op_of(node).int8_ref(node, [q])[0], GIVEN_LUT)
    from tinyconv.errors import ModelError

    with pytest.raises(ModelError, match="256"):
        _single_op_graph("unary", {"fn": "sigmoid", "params": {}, "lut": GIVEN_LUT[:100]}, (0.05, 0), (1 / 256, -128))
    with pytest.raises(UnsupportedError, match="gelu"):
        _single_op_graph("unary", {"fn": "gelu", "params": {}}, (0.05, 0), (1 / 256, -128))


@pytest.mark.parametrize("in_q,out_q", QPARAMS)
def test_prelu_int8_within_one_lsb(in_q, out_q):
    slope = np.array([0.0, 1.0, 2.5, -0.7, 0.013, 0.25, -1.9, 0.5], np.float32)
    g, node = _single_op_graph("prelu", {}, in_q, out_q, slope=slope)
    x = np.repeat(np.arange(-128, 128, dtype=np.int64), 2).reshape(1, 64, 1, 8).astype(np.int8)
    got = op_of(node).int8_ref(node, [x, g.tensors[node.inputs[1]].data])[0].astype(np.int64)
    real = (x.astype(np.float64) - in_q[1]) * np.float64(np.float32(in_q[0]))
    want = quantize(np.where(real >= 0, real, real * slope), *out_q).astype(np.int64)
    assert np.abs(got - want).max() <= 1


def test_conv_transpose_rejects_groups_and_bad_output_padding():
    from tinyconv.errors import ModelError

    g = Graph()
    g.add_tensor(Tensor("x", (1, 4, 4, 4)))
    w = g.add_const("w", np.zeros((4, 3, 3, 2), np.float32)).name
    node = Node("ct", "conv_transpose2d", ["x", w], ["y"], {"strides": (2, 2), "pads": (0, 0, 0, 0), "output_padding": (0, 0), "dilations": (1, 1), "groups": 2, "act": None})
    with pytest.raises(UnsupportedError, match="groups=2"):
        op_of(node).infer_shapes(node, g)
    node.attrs.update(groups=1, output_padding=(2, 0))
    with pytest.raises(ModelError):
        op_of(node).infer_shapes(node, g)
