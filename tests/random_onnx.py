"""Hypothesis strategies for random CNN graphs, written as real ONNX models (NCHW, float).

Every graph mixes the ops tinyconv lowers with random shapes, strides, paddings, dilations,
groups and (through random weights and calibration data) scales.
"""

from __future__ import annotations

import numpy as np
import onnx
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper


class Builder:
    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.nodes, self.inits, self.n = [], [], 0

    def name(self, base: str) -> str:
        self.n += 1
        return f"{base}_{self.n}"

    def const(self, base: str, arr: np.ndarray) -> str:
        name = self.name(base)
        self.inits.append(numpy_helper.from_array(np.asarray(arr, np.float32), name))
        return name

    def node(self, op: str, inputs: list[str], **attrs) -> str:
        out = self.name(op.lower())
        self.nodes.append(helper.make_node(op, inputs, [out], name=self.name(op), **attrs))
        return out


def _out(size, k, s, d, p0, p1):
    return (size + p0 + p1 - d * (k - 1) - 1) // s + 1


@st.composite
def conv_block(draw, b: Builder, x: str, shape):
    c, h, w = shape
    k_h = draw(st.integers(1, min(3, h + 2)))
    k_w = draw(st.integers(1, min(3, w + 2)))
    kind = draw(st.sampled_from(["dense", "depthwise", "grouped"]))
    if kind == "depthwise":
        group, cout = c, c * draw(st.integers(1, 2))
    elif kind == "grouped" and c % 2 == 0 and c > 2:
        group, cout = 2, 2 * draw(st.integers(1, 4))
    else:
        group, cout = 1, draw(st.integers(1, 10))
    s = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    d = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    pads = [draw(st.integers(0, k - 1)) for k in (k_h, k_w)] + [draw(st.integers(0, k - 1)) for k in (k_h, k_w)]
    oh = _out(h, k_h, s[0], d[0], pads[0], pads[2])
    ow = _out(w, k_w, s[1], d[1], pads[1], pads[3])
    if oh < 1 or ow < 1:
        s, d, pads = (1, 1), (1, 1), [k_h // 2, k_w // 2, k_h // 2, k_w // 2]
        oh, ow = _out(h, k_h, 1, 1, pads[0], pads[2]), _out(w, k_w, 1, 1, pads[1], pads[3])
    wt = b.rng.normal(0, 1.0 / np.sqrt(k_h * k_w * c / group), size=(cout, c // group, k_h, k_w))
    ins = [x, b.const("w", wt)]
    if draw(st.booleans()):
        ins.append(b.const("b", b.rng.normal(0, 0.3, size=cout)))
    y = b.node("Conv", ins, kernel_shape=[k_h, k_w], strides=list(s), dilations=list(d), pads=pads, group=group)
    if draw(st.booleans()):
        y = b.node("BatchNormalization", [y, b.const("g", b.rng.uniform(0.5, 1.5, cout)), b.const("be", b.rng.normal(0, 0.2, cout)),
                                          b.const("m", b.rng.normal(0, 0.2, cout)), b.const("v", b.rng.uniform(0.5, 1.5, cout))])  # fmt: skip
    act = draw(st.sampled_from(["none", "relu", "relu6"]))
    if act == "relu":
        y = b.node("Relu", [y])
    elif act == "relu6":
        y = b.node("Clip", [y, b.const("lo", np.array(0.0)), b.const("hi", np.array(6.0))])
    return y, (cout, oh, ow)


@st.composite
def pool_block(draw, b: Builder, x: str, shape):
    c, h, w = shape
    k = (draw(st.integers(1, min(3, h))), draw(st.integers(1, min(3, w))))
    s = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    pads = [draw(st.integers(0, kk - 1)) for kk in k] * 2
    op = draw(st.sampled_from(["MaxPool", "AveragePool"]))
    attrs = {}
    if op == "AveragePool" and draw(st.booleans()):
        attrs["count_include_pad"] = 1
    oh, ow = _out(h, k[0], s[0], 1, pads[0], pads[2]), _out(w, k[1], s[1], 1, pads[1], pads[3])
    ch = -(-(h + pads[0] + pads[2] - k[0]) // s[0]) + 1
    cw = -(-(w + pads[1] + pads[3] - k[1]) // s[1]) + 1
    # ceil_mode, but not where the last window would start in the padding: there onnxruntime's
    # kernel drops it while ONNX shape inference (which onnxruntime also runs) keeps it, and the
    # model does not load. tinyconv follows the kernel (tested by the ONNX conformance case).
    if op == "MaxPool" and (ch - 1) * s[0] < h + pads[0] and (cw - 1) * s[1] < w + pads[1] and draw(st.booleans()):
        attrs["ceil_mode"] = 1
        oh, ow = ch, cw
    y = b.node(op, [x], kernel_shape=list(k), strides=list(s), pads=pads, **attrs)
    return y, (c, oh, ow)


@st.composite
def activation_block(draw, b: Builder, x: str, shape):
    """A standalone activation (lookup table in int8)."""
    op = draw(st.sampled_from(["Sigmoid", "Tanh", "HardSigmoid", "HardSwish", "LeakyRelu", "PRelu"]))
    if op == "PRelu":
        return b.node("PRelu", [x, b.const("slope", b.rng.uniform(-0.5, 0.5, (shape[0], 1, 1)))]), shape
    if op == "LeakyRelu":
        return b.node(op, [x], alpha=float(draw(st.sampled_from([0.01, 0.1, 0.3])))), shape
    return b.node(op, [x]), shape


@st.composite
def squeeze_excite_block(draw, b: Builder, x: str, shape):
    """GAP → 1×1 conv → Relu → 1×1 conv → HardSigmoid → Mul with broadcasting (MobileNetV3)."""
    c = shape[0]
    mid = max(1, c // draw(st.sampled_from([1, 2, 4])))
    z = b.node("GlobalAveragePool", [x])
    z = b.node("Relu", [b.node("Conv", [z, b.const("w", b.rng.normal(0, 0.5, (mid, c, 1, 1)))], kernel_shape=[1, 1])])
    z = b.node("Conv", [z, b.const("w", b.rng.normal(0, 0.5, (c, mid, 1, 1))), b.const("b", b.rng.normal(0, 0.5, c))], kernel_shape=[1, 1])
    return b.node("Mul", [x, b.node("HardSigmoid", [z], alpha=1 / 6, beta=0.5)]), shape


@st.composite
def reshape_block(draw, b: Builder, x: str, shape):
    """Pad, Slice/Split on channels, Transpose there and back, Squeeze/Unsqueeze round trips."""
    c, h, w = shape
    kind = draw(st.sampled_from(["pad", "split", "slice", "transpose", "unsqueeze", "gmax"]))
    if kind == "pad":
        p = [0, 0, draw(st.integers(0, 2)), draw(st.integers(0, 2)), 0, 0, draw(st.integers(0, 2)), draw(st.integers(0, 2))]
        pads = b.inits.append(numpy_helper.from_array(np.asarray(p, np.int64), b.name("pads"))) or b.inits[-1].name
        return b.node("Pad", [x, pads], mode="constant"), (c, h + p[2] + p[6], w + p[3] + p[7])
    if kind == "split" and c >= 2:
        k = draw(st.integers(1, c - 1))
        sizes = b.inits.append(numpy_helper.from_array(np.asarray([k, c - k], np.int64), b.name("split"))) or b.inits[-1].name
        out_a, out_b = b.name("split_a"), b.name("split_b")
        b.nodes.append(helper.make_node("Split", [x, sizes], [out_a, out_b], name=b.name("Split"), axis=1))
        return b.node("Concat", [out_b, out_a], axis=1), shape
    if kind == "slice" and c >= 2:
        start = draw(st.integers(0, c - 2))
        args = [numpy_helper.from_array(np.asarray(v, np.int64), b.name(nm)) for nm, v in (("st", [start]), ("en", [c]), ("ax", [1]))]
        b.inits.extend(args)
        return b.node("Slice", [x] + [a.name for a in args]), (c - start, h, w)
    if kind == "transpose":
        y = b.node("Transpose", [x], perm=[0, 2, 3, 1])
        y = b.node("Relu", [y])
        return b.node("Transpose", [y], perm=[0, 3, 1, 2]), shape
    if kind == "unsqueeze":
        ax = b.inits.append(numpy_helper.from_array(np.asarray([0], np.int64), b.name("axes"))) or b.inits[-1].name
        y = b.node("Squeeze", [x, ax])
        return b.node("Unsqueeze", [y, ax]), shape
    if kind == "gmax":
        y = b.node("GlobalMaxPool", [x])
        return b.node("Add", [x, y]), shape
    return x, shape


@st.composite
def upsample_block(draw, b: Builder, x: str, shape):
    c, h, w = shape
    if draw(st.booleans()):
        scales = b.const("scales", np.array([1, 1, 2, 2], np.float32))
        mode = draw(st.sampled_from(["asymmetric", "half_pixel", "align_corners"]))
        return b.node("Resize", [x, "", scales], mode="nearest", coordinate_transformation_mode=mode, nearest_mode="floor"), (c, 2 * h, 2 * w)
    cout, k, s = draw(st.integers(1, 6)), draw(st.integers(1, 3)), draw(st.integers(1, 2))
    p = draw(st.integers(0, k - 1))
    op_ = draw(st.integers(0, s - 1))
    wt = b.rng.normal(0, 1.0 / np.sqrt(k * k * c), (c, cout, k, k))
    size = lambda n: s * (n - 1) + op_ + k - 2 * p  # noqa: E731
    if size(h) < 1 or size(w) < 1:  # no empty output: such a model is invalid, and refused as such
        return x, shape
    y = b.node("ConvTranspose", [x, b.const("w", wt), b.const("b", b.rng.normal(0, 0.2, cout))], kernel_shape=[k, k], strides=[s, s],
               pads=[p, p, p, p], output_padding=[op_, op_])  # fmt: skip
    return y, (cout, size(h), size(w))


@st.composite
def residual_block(draw, b: Builder, x: str, shape):
    """x + conv1x1(x) (different scales on the two inputs), optionally ReLU after the add."""
    c, h, w = shape
    y = b.node("Conv", [x, b.const("w", b.rng.normal(0, 0.5, (c, c, 1, 1)))], kernel_shape=[1, 1])
    z = b.node("Add", [x, y])
    if draw(st.booleans()):
        z = b.node("Relu", [z])
    return z, shape


@st.composite
def concat_block(draw, b: Builder, x: str, shape):
    c, h, w = shape
    extra = draw(st.integers(1, 6))
    y = b.node("Conv", [x, b.const("w", b.rng.normal(0, 2.0, (extra, c, 3, 3)))], kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    return b.node("Concat", [x, y], axis=1), (c + extra, h, w)


@st.composite
def random_cnn(draw, max_blocks: int = 5):
    """(onnx.ModelProto, input shape without batch)."""
    seed = draw(st.integers(0, 2**31 - 1))
    b = Builder(np.random.default_rng(seed))
    in_shape = (draw(st.integers(1, 6)), draw(st.integers(3, 12)), draw(st.integers(3, 12)))
    shape, cur = in_shape, "input"
    for _ in range(draw(st.integers(1, max_blocks))):
        block = draw(st.sampled_from([conv_block, conv_block, pool_block, residual_block, concat_block, activation_block,
                                      squeeze_excite_block, reshape_block, upsample_block]))  # fmt: skip
        cur, shape = draw(block(b, cur, shape))
    if cur == "input":  # every block fell back to the identity: a graph needs one node
        cur = b.node("Relu", [cur])
    tail = draw(st.sampled_from(["none", "gap_fc", "flatten_fc", "gap_fc_softmax"]))
    if tail != "none":
        c, h, w = shape
        if tail.startswith("gap"):
            cur, feats = b.node("GlobalAveragePool", [cur]), c
        else:
            feats = c * h * w
        cur = b.node("Flatten", [cur])
        n_out = draw(st.integers(2, 10))
        wt, bias = b.rng.normal(0, 1 / np.sqrt(feats), (n_out, feats)), b.rng.normal(0, 0.1, n_out)
        cur = b.node("Gemm", [cur, b.const("fc", wt), b.const("fcb", bias)], transB=1)
        if tail.endswith("softmax"):
            cur = b.node("Softmax", [cur], axis=-1)
    graph = helper.make_graph(
        b.nodes,
        "random_cnn",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, *in_shape])],
        [helper.make_tensor_value_info(cur, TensorProto.FLOAT, ["d0", "d1"])],
        b.inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    model.ir_version = 8
    # Declare the output with symbolic dims of the right rank (ONNX's own inference gets ceil-mode
    # pooling wrong, and the checker requires a shape).
    rank = 2 if tail != "none" else 4
    model.graph.output[0].CopyFrom(helper.make_tensor_value_info(cur, TensorProto.FLOAT, [f"d{k}" for k in range(rank)]))
    onnx.checker.check_model(model)
    return model, in_shape


@st.composite
def random_cnn1d(draw, max_blocks: int = 4):
    """A 1-D temporal CNN on [C, L]: dilated (optionally causal) Conv1d, pooling, GAP + Gemm."""
    seed = draw(st.integers(0, 2**31 - 1))
    b = Builder(np.random.default_rng(seed))
    c, length = draw(st.integers(1, 6)), draw(st.integers(8, 40))
    in_shape, cur = (c, length), "input"
    for _ in range(draw(st.integers(1, max_blocks))):
        k, d, s = draw(st.integers(1, 3)), draw(st.integers(1, 4)), draw(st.integers(1, 2))
        causal = draw(st.booleans())
        pads = [(k - 1) * d, 0] if causal else [draw(st.integers(0, k - 1)), draw(st.integers(0, k - 1))]
        out_len = _out(length, k, s, d, pads[0], pads[1])
        if out_len < 1:
            continue
        cout = draw(st.integers(1, 8))
        wt = b.rng.normal(0, 1.0 / np.sqrt(k * c), (cout, c, k))
        cur = b.node("Conv", [cur, b.const("w", wt), b.const("b", b.rng.normal(0, 0.2, cout))], kernel_shape=[k], strides=[s], dilations=[d], pads=pads)
        if draw(st.booleans()):
            cur = b.node("Relu", [cur])
        c, length = cout, out_len
        if draw(st.booleans()) and length >= 2:
            cur = b.node(draw(st.sampled_from(["MaxPool", "AveragePool"])), [cur], kernel_shape=[2], strides=[2])
            length = _out(length, 2, 2, 1, 0, 0)
    cur = b.node("Flatten", [b.node("GlobalAveragePool", [cur])])
    n_out = draw(st.integers(2, 6))
    cur = b.node("Gemm", [cur, b.const("fc", b.rng.normal(0, 1 / np.sqrt(c), (n_out, c))), b.const("fcb", b.rng.normal(0, 0.1, n_out))], transB=1)
    graph = helper.make_graph(b.nodes, "random_cnn1d", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, *in_shape])],
                              [helper.make_tensor_value_info(cur, TensorProto.FLOAT, [1, n_out])], b.inits)  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model, in_shape
