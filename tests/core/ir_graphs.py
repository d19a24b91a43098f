"""Small IR graphs built directly (no frontend) that use every op with a portable kernel."""

from __future__ import annotations

import numpy as np

from tinyconv import reference
from tinyconv.ir import Graph, Node, Tensor
from tinyconv.ops import check_shapes, op_of
from tinyconv.quantize import params_for_range


class GraphBuilder:
    """A float IR graph with one input 'x', built node by node (tests build graphs without ONNX)."""

    def __init__(self, name: str, input_shape: tuple[int, ...]):
        self.g = Graph(name=name)
        self.g.add_tensor(Tensor("x", tuple(input_shape)))
        self.g.inputs = ["x"]

    def node(self, name, op, inputs, out_shape=None, **attrs) -> str:
        """Add a one-output node; `out_shape` defaults to what the op's shape rule gives."""
        n = Node(name, op, list(inputs), [f"{name}_out"], attrs)
        if out_shape is None:
            (out_shape,) = op_of(n).infer_shapes(n, self.g)
        self.g.add_tensor(Tensor(f"{name}_out", tuple(out_shape)))
        self.g.nodes.append(n)
        return f"{name}_out"

    def const(self, name, arr) -> str:
        return self.g.add_const(name, np.asarray(arr, np.float32)).name

    def finish(self, output: str) -> Graph:
        self.g.outputs = [output]
        self.g.validate()
        check_shapes(self.g)
        return self.g


def every_op_graph(seed: int = 0) -> Graph:
    rng = np.random.default_rng(seed)
    b = GraphBuilder("every_op", (1, 9, 8, 4))
    g, node, const = b.g, b.node, b.const

    c1 = node("conv", "conv2d", ["x", const("w1", rng.normal(size=(8, 3, 3, 4))), const("b1", rng.normal(size=8))], (1, 9, 8, 8),
              strides=(1, 1), dilations=(1, 1), pads=(1, 1, 1, 1), groups=1, act=(0.0, 6.0))  # fmt: skip
    dw = node("dw", "conv2d", [c1, const("w2", rng.normal(size=(16, 3, 3, 1)))], (1, 4, 4, 16),
              strides=(2, 2), dilations=(1, 1), pads=(0, 0, 1, 1), groups=8, act=None)  # fmt: skip
    gc = node("grouped", "conv2d", [dw, const("w3", rng.normal(size=(8, 2, 2, 4)))], (1, 2, 4, 8),
              strides=(1, 1), dilations=(2, 1), pads=(0, 0, 0, 1), groups=4, act=None)  # fmt: skip
    mp = node("maxpool", "max_pool2d", [dw], (1, 4, 4, 16), kernel=(3, 3), strides=(1, 1), pads=(1, 1, 1, 1))
    ap = node("avgpool", "avg_pool2d", [mp], (1, 2, 2, 16), kernel=(3, 3), strides=(2, 2), pads=(1, 1, 1, 1), count_include_pad=False)
    ap1 = node("avgpool_incl", "avg_pool2d", [mp], (1, 2, 2, 16), kernel=(3, 3), strides=(2, 2), pads=(1, 1, 1, 1), count_include_pad=True)
    add = node("add", "add", [ap, ap1], (1, 2, 2, 16), act=(0.0, None))
    scale = const("se_scale", rng.uniform(0.2, 2.0, size=(1, 1, 1, 16)))
    mul = node("mul", "mul", [add, scale], (1, 2, 2, 16), act=None)
    up = node("resize", "resize_nearest", [mul], (1, 4, 4, 16), rows=[0, 0, 1, 1], cols=[0, 0, 1, 1])
    cat = node("concat", "concat", [up, dw], (1, 4, 4, 32), axis=3)
    pad = node("pad", "pad", [cat], (1, 5, 6, 32), pads=[0, 1, 0, 0, 0, 0, 2, 0], value=0.0)
    sl = node("slice", "slice", [pad], (1, 2, 6, 16), starts=[0, 1, 0, 0], ends=[1, 5, 6, 32], steps=[1, 2, 1, 2])
    g.add_tensor(Tensor("s_a", (1, 2, 6, 6)))
    g.add_tensor(Tensor("s_b", (1, 2, 6, 10)))
    g.nodes.append(Node("split", "split", [sl], ["s_a", "s_b"], {"axis": 3, "sizes": [6, 10]}))
    tr = node("transpose", "transpose", ["s_b"], (1, 10, 2, 6), perm=(0, 3, 1, 2))
    gm = node("gmax", "global_max_pool", ["s_a"], (1, 1, 1, 6))
    mean = node("mean", "mean", [gc], (1, 1, 1, 8), axes=(1, 2), keepdims=True)
    flat_t = node("flat_t", "reshape", [tr], (1, 120), shape=(1, 120))
    flat_m = node("flat_m", "reshape", [mean], (1, 8), shape=(1, 8))
    flat_g = node("flat_g", "reshape", [gm], (1, 6), shape=(1, 6))
    feats = node("features", "concat", [flat_t, flat_m, flat_g], (1, 134), axis=1)
    fc = node("fc", "fully_connected", [feats, const("wf", rng.normal(size=(10, 134)) / 10), const("bf", rng.normal(size=10))], (1, 10), act=None)
    return b.finish(fc)


def two_io_graph():
    """Two inputs, two outputs (output 0 also read by a later layer), quantized from float runs
    through given_quant (the calibration API takes one input). Returns (graph, one float (x, y))."""
    rng = np.random.default_rng(7)
    b = GraphBuilder("two_io", (1, 6, 6, 3))
    b.g.add_tensor(Tensor("y", (1, 6, 6, 3)))
    b.g.inputs = ["x", "y"]
    node, const = b.node, b.const
    conv = dict(strides=(1, 1), dilations=(1, 1), pads=(1, 1, 1, 1), groups=1)
    ca = node("conv_a", "conv2d", ["x", const("wa", rng.normal(size=(4, 3, 3, 3)) / 3), const("ba", rng.normal(size=4))], act=(0.0, None), **conv)
    cb = node("conv_b", "conv2d", ["y", const("wb", rng.normal(size=(4, 3, 3, 3)) / 3)], act=None, **conv)
    s = node("sum", "add", [ca, cb], act=None)
    m = node("mean", "mean", [s], (1, 1, 1, 4), axes=(1, 2), keepdims=True)
    f = node("flat", "reshape", [m], (1, 4), shape=(1, 4))
    logits = node("fc", "fully_connected", [f, const("wf", rng.normal(size=(3, 4))), const("bf", rng.normal(size=3))], (1, 3), act=None)
    g = b.finish(logits)
    g.outputs = [s, logits]
    xs = rng.normal(size=(16, 2, 1, 6, 6, 3)).astype(np.float32)
    runs = [reference.run(g, {"x": x, "y": y}, mode="float", keep=True) for x, y in xs]
    for name in runs[0]:
        v = np.stack([r[name] for r in runs])
        g.given_quant[name] = params_for_range(float(v.min()), float(v.max()))
    return g, xs[0]
