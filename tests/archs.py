"""Small-width, small-input versions of the architectures users run, written as real ONNX files
with onnx.helper (random weights, BatchNorm kept as its own node so folding is exercised).

Each builder returns (onnx.ModelProto, input shape without batch).
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


class Net:
    def __init__(self, name: str, in_shape: tuple[int, ...], seed: int = 0):
        self.name, self.in_shape = name, in_shape
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.k = 0

    def _n(self, base: str) -> str:
        self.k += 1
        return f"{base}{self.k}"

    def const(self, arr, base="c") -> str:
        name = self._n(base)
        self.inits.append(numpy_helper.from_array(np.asarray(arr, np.float32) if np.asarray(arr).dtype != np.int64 else np.asarray(arr), name))
        return name

    def op(self, op_type: str, inputs: list[str], n_out: int = 1, **attrs):
        outs = [self._n(op_type.lower()) for _ in range(n_out)]
        self.nodes.append(helper.make_node(op_type, inputs, outs, name=self._n(op_type), **attrs))
        return outs[0] if n_out == 1 else outs

    def conv(self, x, cin, cout, k=3, s=1, g=1, d=1, pad=None, bn=True, act="relu", conv1d=False):
        kshape = [k] if conv1d else [k, k]
        w = self.rng.normal(0, np.sqrt(2.0 / (k ** len(kshape) * cin / g)), (cout, cin // g, *kshape))
        p = (k // 2) * d if pad is None else pad
        pads = p if isinstance(p, list) else [p] * (2 * len(kshape))
        ins = [x, self.const(w, "w")] + ([] if bn else [self.const(self.rng.normal(0, 0.1, cout), "b")])
        y = self.op("Conv", ins, kernel_shape=kshape, strides=[s] * len(kshape), group=g, dilations=[d] * len(kshape), pads=pads)
        if bn:
            y = self.op("BatchNormalization", [y, self.const(self.rng.uniform(0.5, 1.5, cout)), self.const(self.rng.normal(0, 0.1, cout)),
                                               self.const(self.rng.normal(0, 0.1, cout)), self.const(self.rng.uniform(0.5, 1.5, cout))])  # fmt: skip
        return self.act(y, act)

    def act(self, y, act):
        if act == "relu":
            return self.op("Relu", [y])
        if act == "relu6":
            return self.op("Clip", [y, self.const(0.0), self.const(6.0)])
        if act == "hardswish":
            return self.op("HardSwish", [y])
        if act == "leakyrelu":
            return self.op("LeakyRelu", [y], alpha=0.1)
        return y

    def head(self, x, c, classes=10):
        y = self.op("GlobalAveragePool", [x])
        y = self.op("Flatten", [y])
        w = self.rng.normal(0, 1 / np.sqrt(c), (c, classes))
        y = self.op("MatMul", [y, self.const(w)])
        y = self.op("Add", [y, self.const(self.rng.normal(0, 0.1, classes))])
        return self.op("Softmax", [y], axis=-1)

    def model(self, out) -> tuple[onnx.ModelProto, tuple[int, ...]]:
        g = helper.make_graph(self.nodes, self.name, [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, *self.in_shape])],
                              [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)], self.inits)  # fmt: skip
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 14)])
        m.ir_version = 8
        inferred = onnx.shape_inference.infer_shapes(m)
        vi = next((v for v in list(inferred.graph.value_info) + list(inferred.graph.output) if v.name == out and v.type.tensor_type.HasField("shape")), None)
        if vi is not None:
            m.graph.output[0].CopyFrom(vi)
        return m, self.in_shape


def mobilenet_v2():
    n = Net("mobilenet_v2", (3, 32, 32))
    x = n.conv("input", 3, 8, s=2, act="relu6")
    c = 8
    for t, cout, s in [(1, 8, 1), (4, 12, 2), (4, 12, 1), (4, 16, 2)]:
        h = n.conv(x, c, c * t, k=1, act="relu6") if t != 1 else x
        h = n.conv(h, c * t, c * t, s=s, g=c * t, act="relu6")
        h = n.conv(h, c * t, cout, k=1, act=None)
        x = n.op("Add", [x, h]) if s == 1 and cout == c else h
        c = cout
    return n.model(n.head(n.conv(x, c, 32, k=1, act="relu6"), 32))


def mobilenet_v3_small():
    n = Net("mobilenet_v3_small", (3, 32, 32), seed=1)
    x = n.conv("input", 3, 8, s=2, act="hardswish")
    c = 8
    for exp, cout, s, se, act in [(16, 8, 2, True, "relu"), (24, 12, 2, False, "relu"), (32, 12, 1, True, "hardswish")]:
        h = n.conv(x, c, exp, k=1, act=act)
        h = n.conv(h, exp, exp, s=s, g=exp, act=act)
        if se:  # squeeze-excite: GAP → 1×1 conv → relu → 1×1 conv → hardsigmoid → Mul (broadcast)
            z = n.op("GlobalAveragePool", [h])
            z = n.conv(z, exp, exp // 4, k=1, bn=False, act="relu")
            z = n.conv(z, exp // 4, exp, k=1, bn=False, act=None)
            z = n.op("HardSigmoid", [z], alpha=1 / 6, beta=0.5)
            h = n.op("Mul", [h, z])
        h = n.conv(h, exp, cout, k=1, act=None)
        x = n.op("Add", [x, h]) if s == 1 and cout == c else h
        c = cout
    return n.model(n.head(n.conv(x, c, 24, k=1, act="hardswish"), 24))


def resnet18():
    n = Net("resnet18", (3, 32, 32), seed=2)
    x = n.conv("input", 3, 8, k=3)
    x = n.op("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    c = 8
    for cout, s in [(8, 1), (8, 1), (16, 2), (16, 1), (24, 2), (24, 1), (32, 2), (32, 1)]:
        h = n.conv(x, c, cout, s=s)
        h = n.conv(h, cout, cout, act=None)
        sc = x if s == 1 and c == cout else n.conv(x, c, cout, k=1, s=s, pad=0, act=None)
        x = n.op("Relu", [n.op("Add", [h, sc])])
        c = cout
    return n.model(n.head(x, c))


def squeezenet():
    n = Net("squeezenet", (3, 32, 32), seed=3)
    x = n.conv("input", 3, 16, s=2, bn=False)
    x = n.op("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)
    c = 16
    for sq, ex in [(4, 8), (4, 8), (8, 16)]:
        s = n.conv(x, c, sq, k=1, bn=False)
        e1 = n.conv(s, sq, ex, k=1, bn=False)
        e3 = n.conv(s, sq, ex, k=3, bn=False)
        x = n.op("Concat", [e1, e3], axis=1)
        c = 2 * ex
    x = n.conv(x, c, 10, k=1, bn=False)
    x = n.op("AveragePool", [x], kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1], count_include_pad=1)
    x = n.op("GlobalAveragePool", [x])
    return n.model(n.op("Softmax", [n.op("Flatten", [x])], axis=-1))


def shufflenet():
    n = Net("shufflenet", (3, 32, 32), seed=4)
    x = n.conv("input", 3, 16, s=2)
    c, groups = 16, 2
    for _ in range(2):
        a, b = n.op("Split", [x, n.const(np.array([c // 2, c // 2], np.int64))], n_out=2, axis=1)
        b = n.conv(b, c // 2, c // 2, k=1)
        b = n.conv(b, c // 2, c // 2, g=c // 2, act=None)
        b = n.conv(b, c // 2, c // 2, k=1)
        x = n.op("Concat", [a, b], axis=1)
        # channel shuffle: reshape [1, g, c/g, h, w] → transpose → reshape back
        h = w = 16
        x = n.op("Reshape", [x, n.const(np.array([1, groups, c // groups, h, w], np.int64))])
        x = n.op("Transpose", [x], perm=[0, 2, 1, 3, 4])
        x = n.op("Reshape", [x, n.const(np.array([1, c, h, w], np.int64))])
    return n.model(n.head(x, c))


def tiny_unet():
    n = Net("tiny_unet", (1, 16, 16), seed=5)
    e1 = n.conv("input", 1, 8)
    d1 = n.op("MaxPool", [e1], kernel_shape=[2, 2], strides=[2, 2])
    e2 = n.conv(d1, 8, 16)
    w = n.rng.normal(0, 0.3, (16, 8, 2, 2))
    up = n.op("ConvTranspose", [e2, n.const(w), n.const(n.rng.normal(0, 0.1, 8))], kernel_shape=[2, 2], strides=[2, 2])
    cat = n.op("Concat", [up, e1], axis=1)
    y = n.conv(cat, 16, 8)
    up2 = n.op("Resize", [y, "", n.const(np.array([1, 1, 2, 2], np.float32))], mode="nearest")
    y = n.conv(up2, 8, 2, k=1, bn=False, act=None)
    return n.model(n.op("Sigmoid", [y]))


def tcn_1d():
    """Dilated causal 1-D convolutions on a 3-channel sensor window (left padding only)."""
    n = Net("tcn_1d", (3, 64), seed=6)
    x, c = "input", 3
    for d, cout in [(1, 8), (2, 8), (4, 12), (8, 12)]:
        h = n.conv(x, c, cout, k=3, d=d, pad=[2 * d, 0], act="relu", conv1d=True)
        h = n.conv(h, cout, cout, k=3, d=d, pad=[2 * d, 0], act=None, conv1d=True)
        sc = x if c == cout else n.conv(x, c, cout, k=1, pad=[0, 0], bn=False, act=None, conv1d=True)
        x = n.op("Relu", [n.op("Add", [h, sc])])
        c = cout
    y = n.op("ReduceMean", [n.op("Unsqueeze", [x, n.const(np.array([2], np.int64))])], axes=[2, 3], keepdims=0)
    y = n.op("Gemm", [y, n.const(n.rng.normal(0, 0.3, (4, c))), n.const(n.rng.normal(0, 0.1, 4))], transB=1)
    return n.model(n.op("Softmax", [y], axis=-1))


ARCHITECTURES = {f.__name__: f for f in (mobilenet_v2, mobilenet_v3_small, resnet18, squeezenet, shufflenet, tiny_unet, tcn_1d)}
