"""Float ONNX models the size users bring, built with onnx.helper and seeded random weights
(torch is not available in CI): a torchvision-style ResNet-18 and a torchaudio-style Wav2Letter.

Only the shapes matter for tool speed: layer structure, parameter count and MACs follow the
originals (ResNet-18: 11.7 M parameters; Wav2Letter on 13 MFCC features, 40 classes: 23.3 M).
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


class _Net:
    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)
        self.nodes: list = []
        self.inits: list = []
        self.n = 0

    def _name(self, base: str) -> str:
        self.n += 1
        return f"{base}_{self.n}"

    def const(self, arr: np.ndarray, base: str = "c") -> str:
        name = self._name(base)
        self.inits.append(numpy_helper.from_array(np.asarray(arr, np.float32), name))
        return name

    def node(self, op: str, inputs: list[str], **attrs) -> str:
        out = self._name(op.lower())
        self.nodes.append(helper.make_node(op, inputs, [out], name=self._name(op), **attrs))
        return out

    def conv(self, x: str, cin: int, cout: int, k, stride=1, pad=0, bn: bool = True, relu: bool = True) -> str:
        ks = list(k) if isinstance(k, (tuple, list)) else [k, k]
        nd = len(ks)
        st = [stride] * nd
        w = self.rng.normal(0, np.sqrt(2.0 / (cin * int(np.prod(ks)))), (cout, cin, *ks))
        ins = [x, self.const(w, "w")]
        if not bn:
            ins.append(self.const(self.rng.normal(0, 0.05, cout), "b"))
        y = self.node("Conv", ins, kernel_shape=ks, strides=st, pads=[pad] * (2 * nd))
        if bn:
            y = self.node("BatchNormalization", [y, self.const(self.rng.uniform(0.5, 1.0, cout), "g"), self.const(self.rng.normal(0, 0.1, cout), "be"),
                                                 self.const(self.rng.normal(0, 0.1, cout), "m"), self.const(self.rng.uniform(0.5, 1.5, cout), "v")])  # fmt: skip
        return self.node("Relu", [y]) if relu else y

    def model(self, name: str, in_shape, out: str, out_rank: int) -> onnx.ModelProto:
        g = helper.make_graph(self.nodes, name, [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, *in_shape])],
                              [helper.make_tensor_value_info(out, TensorProto.FLOAT, [f"d{k}" for k in range(out_rank)])], self.inits)  # fmt: skip
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 14)])
        m.ir_version = 8
        onnx.checker.check_model(m)
        return m


def resnet18(hw: int = 64, classes: int = 1000, seed: int = 0) -> tuple[onnx.ModelProto, tuple[int, ...]]:
    """torchvision resnet18: 7x7/2 stem, max pool, 4 stages of 2 basic blocks, GAP, FC."""
    n = _Net(seed)
    x = n.conv("input", 3, 64, 7, stride=2, pad=3)
    x = n.node("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    cin = 64
    for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
        for b in range(2):
            s = stride if b == 0 else 1
            y = n.conv(x, cin, cout, 3, stride=s, pad=1)
            y = n.conv(y, cout, cout, 3, pad=1, relu=False)
            short = n.conv(x, cin, cout, 1, stride=s, relu=False) if (s != 1 or cin != cout) else x
            x = n.node("Relu", [n.node("Add", [y, short])])
            cin = cout
    x = n.node("Flatten", [n.node("GlobalAveragePool", [x])])
    fc = n.rng.normal(0, 1 / np.sqrt(512), (classes, 512))
    x = n.node("Gemm", [x, n.const(fc, "fc"), n.const(n.rng.normal(0, 0.01, classes), "fcb")], transB=1)
    return n.model("resnet18", (3, hw, hw), x, 2), (3, hw, hw)


def wav2letter(features: int = 13, length: int = 100, classes: int = 40, seed: int = 0) -> tuple[onnx.ModelProto, tuple[int, ...]]:
    """torchaudio Wav2Letter (input_type mfcc): 1-D convolutions, 250 then 2000 channels."""
    n = _Net(seed)
    x = n.conv("input", features, 250, [48], stride=2, pad=23, bn=False)
    for _ in range(7):
        x = n.conv(x, 250, 250, [7], pad=3, bn=False)
    x = n.conv(x, 250, 2000, [32], pad=16, bn=False)
    x = n.conv(x, 2000, 2000, [1], bn=False)
    x = n.conv(x, 2000, classes, [1], bn=False)
    return n.model("wav2letter", (features, length), x, 3), (features, length)


def param_count(model: onnx.ModelProto) -> int:
    return int(sum(np.prod(t.dims) for t in model.graph.initializer if t.name.startswith(("w_", "fc_"))))


def calibration(in_shape, n: int = 16, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 1, (n, *in_shape)).astype(np.float32)
