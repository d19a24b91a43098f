"""tinyconv's int8 graph written back as a standard QDQ ONNX model (`tinyconv quantize`).

The point is an independent cross-check: onnxruntime runs the exported model with its own kernels,
and its int8 outputs must stay within 1 LSB of tinyconv's (rounding of requantization differs).

The model is emitted in tinyconv's own layout (NHWC): every activation tensor of the int8 IR
becomes an ONNX value followed by QuantizeLinear→DequantizeLinear with exactly tinyconv's scale and
zero point; weights are tinyconv's int8 (per channel) and int32 biases behind DequantizeLinear.
Convolutions and pools, which ONNX defines on NCHW, are wrapped in Transposes. The input and output
keep the original model's ONNX names, shapes and layout.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from tinyconv.errors import UnsupportedError
from tinyconv.ir import Graph, Node

NHWC_TO_NCHW, NCHW_TO_NHWC = [0, 3, 1, 2], [0, 2, 3, 1]
OPSET = 14  # HardSwish


class Writer:
    def __init__(self, g: Graph):
        self.g = g
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.n = 0
        self.float_of: dict[str, str] = {}  # IR tensor → ONNX value holding its fake-quantized float
        self.layer_inputs: dict[str, str] | None = None  # set for the layer-wise cross-check model

    def fresh(self, base: str) -> str:
        self.n += 1
        return f"{base}__{self.n}"

    def init(self, base: str, arr: np.ndarray) -> str:
        name = self.fresh(base)
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(arr), name))
        return name

    def node(self, op: str, inputs: list[str], base: str, **attrs) -> str:
        out = self.fresh(base)
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def qdq(self, value: str, tensor: str) -> str:
        """Fake-quantize `value` with the params of IR tensor `tensor`."""
        s, z = self.g.tensors[tensor].quant.scalar()
        sc, zp = self.init(f"{tensor}_scale", np.float32(s)), self.init(f"{tensor}_zp", np.int8(z))
        q = self.node("QuantizeLinear", [value, sc, zp], f"{tensor}_q")
        return self.node("DequantizeLinear", [q, sc, zp], f"{tensor}_dq")

    def const(self, tensor: str, transform=lambda a: a, axis_after: int = 0) -> str:
        """An int8/int32 IR constant behind DequantizeLinear (per-channel along `axis_after`)."""
        t = self.g.tensors[tensor]
        q = transform(t.data)
        scale = t.quant.scale.astype(np.float32)
        zp = t.quant.zero_point.astype(np.int32 if t.dtype == "int32" else np.int8)
        attrs = {"axis": axis_after} if scale.size > 1 else {}
        data = self.init(tensor, q.astype(np.int32 if t.dtype == "int32" else np.int8))
        return self.node("DequantizeLinear", [data, self.init(f"{tensor}_scale", scale.reshape(-1) if scale.size > 1 else scale.reshape(())),
                                              self.init(f"{tensor}_zp", zp.reshape(-1) if scale.size > 1 else zp.reshape(()))],
                         f"{tensor}_dq", **attrs)  # fmt: skip

    def value(self, tensor: str) -> str:
        if self.g.tensors[tensor].is_const:
            return self.const(tensor)
        if self.layer_inputs is not None:  # layer-wise model: every activation is fed from outside
            if tensor not in self.layer_inputs:
                self.layer_inputs[tensor] = f"{tensor}__in"
            return self.layer_inputs[tensor]
        return self.float_of[tensor]

    def nchw(self, v: str) -> str:
        return self.node("Transpose", [v], "to_nchw", perm=NHWC_TO_NCHW)

    def nhwc(self, v: str) -> str:
        return self.node("Transpose", [v], "to_nhwc", perm=NCHW_TO_NHWC)

    def clamp(self, v: str, node: Node) -> str:
        act = node.attrs.get("act")
        if act is None:
            return v
        lo = self.init("lo", np.float32(-np.inf if act[0] is None else act[0]))
        hi = self.init("hi", np.float32(np.inf if act[1] is None else act[1]))
        return self.node("Clip", [v, lo, hi], "act")


def _pads(p):
    t, l, b, r = p
    return [int(t), int(l), int(b), int(r)]


def _emit(w: Writer, node: Node) -> list[str]:
    a, ins = node.attrs, node.inputs
    op = node.op
    if op == "conv2d":
        x = w.nchw(w.value(ins[0]))
        wt = w.const(ins[1], lambda d: d.transpose(0, 3, 1, 2))
        args = [x, wt] + ([w.const(ins[2])] if len(ins) > 2 else [])
        y = w.node("Conv", args, node.name, strides=list(a["strides"]), dilations=list(a["dilations"]), pads=_pads(a["pads"]),
                   group=int(a["groups"]), kernel_shape=list(w.g.tensors[ins[1]].shape[1:3]))  # fmt: skip
        return [w.clamp(w.nhwc(y), node)]
    if op == "conv_transpose2d":
        x = w.nchw(w.value(ins[0]))
        wt = w.const(ins[1], lambda d: d.transpose(3, 0, 1, 2), axis_after=1)
        args = [x, wt] + ([w.const(ins[2])] if len(ins) > 2 else [])
        y = w.node("ConvTranspose", args, node.name, strides=list(a["strides"]), pads=_pads(a["pads"]),
                   output_padding=list(a.get("output_padding", (0, 0))), kernel_shape=list(w.g.tensors[ins[1]].shape[1:3]))  # fmt: skip
        return [w.clamp(w.nhwc(y), node)]
    if op == "fully_connected":
        x = w.value(ins[0])
        args = [x, w.const(ins[1])] + ([w.const(ins[2])] if len(ins) > 2 else [])
        return [w.clamp(w.node("Gemm", args, node.name, transB=1), node)]
    if op in ("max_pool2d", "avg_pool2d"):
        attrs = {"kernel_shape": list(a["kernel"]), "strides": list(a["strides"]), "pads": _pads(a["pads"])}
        if op == "avg_pool2d":
            attrs["count_include_pad"] = int(bool(a.get("count_include_pad")))
        y = w.node("MaxPool" if op == "max_pool2d" else "AveragePool", [w.nchw(w.value(ins[0]))], node.name, **attrs)
        return [w.clamp(w.nhwc(y), node)]
    if op == "mean":
        return [w.node("ReduceMean", [w.value(ins[0])], node.name, axes=list(a["axes"]), keepdims=int(a.get("keepdims", True)))]
    if op == "global_max_pool":
        return [w.node("ReduceMax", [w.value(ins[0])], node.name, axes=[1, 2], keepdims=int(a.get("keepdims", True)))]
    if op in ("add", "mul"):
        return [w.clamp(w.node(op.capitalize(), [w.value(i) for i in ins], node.name), node)]
    if op == "concat":
        return [w.node("Concat", [w.value(i) for i in ins], node.name, axis=int(a["axis"]))]
    if op == "split":
        outs = [w.fresh(f"{node.name}_{k}") for k in range(len(node.outputs))]
        sizes = w.init("split", np.asarray(a["sizes"], np.int64))
        w.nodes.append(helper.make_node("Split", [w.value(ins[0]), sizes], outs, name=w.fresh("split"), axis=int(a["axis"])))
        return outs
    if op == "slice":
        r = len(a["starts"])
        arrs = [np.asarray(v, np.int64) for v in (a["starts"], a["ends"], list(range(r)), a["steps"])]
        return [w.node("Slice", [w.value(ins[0])] + [w.init("slice", v) for v in arrs], node.name)]
    if op == "pad":
        pad_value = w.init("pad_value", np.float32(a.get("value", 0.0)))
        return [w.node("Pad", [w.value(ins[0]), w.init("pads", np.asarray(a["pads"], np.int64)), pad_value], node.name, mode="constant")]
    if op == "reshape":
        return [w.node("Reshape", [w.value(ins[0]), w.init("shape", np.asarray(a["shape"], np.int64))], node.name)]
    if op == "transpose":
        return [w.node("Transpose", [w.value(ins[0])], node.name, perm=list(a["perm"]))]
    if op == "resize_nearest":
        rows = w.node("Gather", [w.value(ins[0]), w.init("rows", np.asarray(a["rows"], np.int64))], node.name, axis=1)
        return [w.node("Gather", [rows, w.init("cols", np.asarray(a["cols"], np.int64))], node.name, axis=2)]
    if op == "softmax":
        return [w.node("Softmax", [w.value(ins[0])], node.name, axis=-1)]
    if op == "log_softmax":
        return [w.node("LogSoftmax", [w.value(ins[0])], node.name, axis=-1)]
    if op == "unary":
        fn, p = a["fn"], a.get("params", {})
        x = w.value(ins[0])
        simple = {"relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh", "hardswish": "HardSwish"}
        if fn in simple:
            return [w.node(simple[fn], [x], node.name)]
        if fn == "hardsigmoid":
            return [w.node("HardSigmoid", [x], node.name, alpha=float(p.get("alpha", 0.2)), beta=float(p.get("beta", 0.5)))]
        if fn == "leakyrelu":
            return [w.node("LeakyRelu", [x], node.name, alpha=float(p.get("alpha", 0.01)))]
        if fn == "clip":
            return [w.node("Clip", [x, w.init("lo", np.float32(p["lo"])), w.init("hi", np.float32(p["hi"]))], node.name)]
    if op == "prelu":
        slope = w.g.tensors[ins[1]]
        if slope.dtype == "float32":
            data = slope.data.astype(np.float32)
        else:  # per-channel int8 alpha: dequantize element-wise
            data = (slope.data.astype(np.float32) - slope.quant.zero_point.astype(np.float32)) * slope.quant.scale.astype(np.float32)
        return [w.node("PRelu", [w.value(ins[0]), w.init("slope", data.reshape(-1))], node.name)]
    raise UnsupportedError(f"{node.where()}: exporting op '{op}' to QDQ ONNX is not supported", node=node.name)


def export_qdq(source_model, g: Graph, path: Path) -> Path:
    """Write int8 graph `g` (compiled from `source_model`) as QDQ ONNX at `path`."""
    if len(g.inputs) != 1 or len(g.outputs) != 1:
        raise UnsupportedError("QDQ export handles single-input, single-output models")
    src = onnx.load(str(source_model)) if not isinstance(source_model, onnx.ModelProto) else source_model
    init_names = {i.name for i in src.graph.initializer}
    in_vi = next(i for i in src.graph.input if i.name not in init_names)
    out_vi = src.graph.output[0]
    w = Writer(g)
    (inp,), (out,) = g.inputs, g.outputs
    lay_in = g.io_layout.get(inp)
    x = in_vi.name
    if lay_in is not None:  # ONNX layout → IR layout: IR = onnx.reshape(permuted).transpose(inverse perm)
        ir_shape = g.tensors[inp].shape
        permuted = [ir_shape[p] for p in lay_in.perm]
        x = w.node("Reshape", [x, w.init("shape", np.asarray(permuted, np.int64))], "in_shape")
        x = w.node("Transpose", [x], "in_layout", perm=[int(v) for v in np.argsort(lay_in.perm)])
    w.float_of[inp] = w.qdq(x, inp)
    for node in g.nodes:
        for name, v in zip(node.outputs, _emit(w, node)):
            w.float_of[name] = w.qdq(v, name)
    y = w.float_of[out]
    lay_out = g.io_layout.get(out)
    if lay_out is not None:
        y = w.node("Transpose", [y], "out_layout", perm=list(lay_out.perm))
        y = w.node("Reshape", [y, w.init("shape", np.asarray(lay_out.onnx_shape, np.int64))], "out_shape")
    w.nodes.append(helper.make_node("Identity", [y], [out_vi.name], name="output"))
    fixed_in = helper.make_tensor_value_info(in_vi.name, TensorProto.FLOAT, [int(d) for d in (lay_in.onnx_shape if lay_in else g.tensors[inp].shape)])
    fixed_out = helper.make_tensor_value_info(out_vi.name, TensorProto.FLOAT, [int(d) for d in (lay_out.onnx_shape if lay_out else g.tensors[out].shape)])
    graph = helper.make_graph(w.nodes, f"{g.name}_tinyconv_qdq", [fixed_in], [fixed_out], w.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="tinyconv quantize")
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return Path(path)


def export_layerwise(g: Graph, path: Path) -> tuple[dict[str, str], dict[str, str]]:
    """A QDQ model in which every layer reads its inputs from graph inputs (IR layout, float).

    Feeding it tinyconv's own dequantized intermediate tensors makes each layer's onnxruntime output
    comparable with tinyconv's on identical inputs: a per-layer cross-check in which rounding
    differences cannot accumulate. Returns (IR tensor → input name, IR tensor → output name).
    """
    w = Writer(g)
    w.layer_inputs = {}
    outputs: dict[str, str] = {}
    for node in g.nodes:
        for name, v in zip(node.outputs, _emit(w, node)):
            dq = w.qdq(v, name)
            outputs[name] = f"{name}__out"
            w.nodes.append(helper.make_node("Identity", [dq], [outputs[name]], name=w.fresh("out")))
    ins = [helper.make_tensor_value_info(v, TensorProto.FLOAT, list(g.tensors[t].shape)) for t, v in w.layer_inputs.items()]
    outs = [helper.make_tensor_value_info(v, TensorProto.FLOAT, list(g.tensors[t].shape)) for t, v in outputs.items()]
    model = helper.make_model(helper.make_graph(w.nodes, f"{g.name}_layerwise", ins, outs, w.inits),
                              opset_imports=[helper.make_opsetid("", OPSET)], producer_name="tinyconv quantize --layerwise")  # fmt: skip
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return dict(w.layer_inputs), outputs
