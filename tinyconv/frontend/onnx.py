"""ONNX → float IR (and the fake-quantization of QDQ models).

`load_onnx` reads and checks the file (frontend/onnx_model.py), lowers each node to canonical IR
ops in NHWC with layouts tracked per value (frontend/onnx_layout.py), then runs the graph passes
(BN folding, activation fusion, bias fusion, no-op removal). Every user-facing failure names the
ONNX node, its op type and what to do.

QDQ models: QuantizeLinear→DequantizeLinear pairs on activations become recorded quantization
parameters of the IR tensor (`Graph.given_quant`), DequantizeLinear on constant weights keeps the
integer data (`Tensor.given`); quantize.py then uses those instead of calibration.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import onnx

from tinyconv.errors import ModelError, TinyconvError, UnsupportedError
from tinyconv.frontend import onnx_layout as L
from tinyconv.frontend.onnx_attrs import check_axis, check_perm
from tinyconv.frontend.onnx_model import OnnxModel, _first_line, read, where
from tinyconv.ir import Graph, IOLayout, Node, QuantParams, Tensor
from tinyconv.ops import check_shapes, op_of

CONVERTERS: dict[str, callable] = {}
SAME_SHAPE_OPS = {"batch_norm", "unary", "prelu", "softmax", "log_softmax"}  # element- or row-wise: output shape = input shape
CLIP_NO_BOUND = 1e30  # |Clip bound| at or beyond this is treated as no bound


def converter(*op_types):
    def deco(fn):
        for t in op_types:
            CONVERTERS[t] = fn
        return fn

    return deco


def load_onnx(source) -> Graph:
    """`source`: an .onnx path or an onnx.ModelProto."""
    from tinyconv.frontend import refuse_batched_images
    from tinyconv.passes import run_passes

    m = read(source if isinstance(source, onnx.ModelProto) else Path(source), supported=frozenset(CONVERTERS) | {"Constant", "Shape"})
    g = Importer(m).run()
    run_passes(g)
    check_shapes(g)
    refuse_batched_images(g)
    g.validate()
    return g


class Importer:
    def __init__(self, m: OnnxModel):
        self.m = m
        self.g = Graph(name=m.path.stem, notes=list(m.notes))
        self.vals: dict[str, tuple[str, tuple[int, ...]]] = {}  # onnx name → (IR tensor, perm)
        self.moved: dict[tuple[str, tuple[int, ...]], str] = {}  # cached layout changes
        self.qdq: dict[str, QuantParams] = {}  # QuantizeLinear output → its params
        self.given_weights: dict[str, tuple[np.ndarray, QuantParams]] = {}  # DequantizeLinear(const) output
        self.node: onnx.NodeProto | None = None
        self.trust_declared_shapes = True

    # -- driver ------------------------------------------------------------------------------
    def run(self) -> Graph:
        m = self.m
        for node in m.dequantized:
            self.node = node
            q, qp = m.consts[node.input[0]], _qparams(self, node)
            if q.dtype == np.uint8:
                q = q.astype(np.int32) - 128
            self.given_weights[node.output[0]] = (q, qp)
        if len(m.inputs) != 1 or len(m.outputs) != 1:
            raise UnsupportedError(f"the model has {len(m.inputs)} inputs and {len(m.outputs)} outputs; tinyconv compiles single-input, single-output models")
        self._add_input(m.inputs[0])
        for node in m.nodes:
            self.node = node
            try:
                CONVERTERS[node.op_type](self, node)
            except TinyconvError:
                raise
            except (ArithmeticError, IndexError, KeyError, TypeError, ValueError) as e:  # an input no check above foresaw
                self.fail(f"cannot convert this node ({type(e).__name__}: {_first_line(e)})",
                          hint="if onnxruntime runs the model, please report this", cls=ModelError)  # fmt: skip
        self.node = None
        for name in m.outputs:
            if name in m.consts or name not in self.vals:
                raise UnsupportedError(f"graph output '{name}' is a constant or a graph input; there is nothing to compile")
            t, perm = self.vals[name]
            if t in self.g.inputs:
                t = self.emit("reshape", [t], {"shape": self.shape(t)}, name=f"{name}_copy")
            self.g.outputs.append(t)
            self.g.io_layout[t] = IOLayout(L.onnx_shape(self.shape(t), perm), L.inverse(perm))
        return self.g

    def _add_input(self, name: str) -> None:
        shape = self.m.shapes[name]
        if self.m.dtypes.get(name) not in (onnx.TensorProto.FLOAT, None):
            raise UnsupportedError(f"graph input '{name}' is {onnx.TensorProto.DataType.Name(self.m.dtypes[name])}; tinyconv takes float inputs",
                                   hint="int8 models enter through .tflite or QDQ ONNX with a float input")  # fmt: skip
        spatial = {"Conv", "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "BatchNormalization", "ConvTranspose", "Resize"}
        wants_nhwc = len(shape) in (3, 4) and bool(spatial & self._consumer_ops(name))
        perm = L.nhwc(len(shape)) if wants_nhwc else L.identity(len(shape))
        t = self.g.add_tensor(Tensor(name, L.ir_shape(shape, perm)))
        self.g.inputs.append(t.name)
        self.g.io_layout[t.name] = IOLayout(tuple(shape), L.inverse(perm))
        self.vals[name] = (t.name, perm)

    def _consumer_ops(self, name: str) -> set[str]:
        """Op types reading value `name`, looking through QDQ pairs (QuantizeLinear → DequantizeLinear)."""
        ops: set[str] = set()
        for n in self.m.nodes:
            if name in n.input:
                if n.op_type in ("QuantizeLinear", "DequantizeLinear"):
                    ops |= self._consumer_ops(n.output[0])
                else:
                    ops.add(n.op_type)
        return ops

    # -- helpers used by the converters ---------------------------------------------------------
    def fail(self, what: str, hint: str | None = None, cls=UnsupportedError):
        n = self.node
        raise cls(f"{where(n)}: {what}", hint=hint, node=n.name if n else None)

    def attrs(self, node) -> dict:
        return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}

    def const(self, name: str, what: str = "this input") -> np.ndarray:
        if name not in self.m.consts:
            self.fail(f"{what} ('{name}') must be a constant", hint="tinyconv needs weights and shape arguments known at compile time")
        return self.m.consts[name]

    def opt_const(self, node, k: int):
        return self.const(node.input[k]) if len(node.input) > k and node.input[k] else None

    def is_const(self, name: str) -> bool:
        return name in self.m.consts

    def shape(self, ir_name: str) -> tuple[int, ...]:
        return self.g.tensors[ir_name].shape

    def value(self, name: str, perm=None) -> str:
        """The IR tensor holding ONNX value `name`, in `perm` order (moving data only if needed)."""
        if name in self.m.consts:
            self.fail(f"input '{name}' is a constant here; tinyconv expects a computed tensor")
        if name not in self.vals:
            self.fail(f"input '{name}' comes from an op tinyconv could not map")
        t, have = self.vals[name]
        if perm is None or tuple(perm) == tuple(have):
            return t
        key = (t, tuple(perm))
        if key not in self.moved:
            rel = L.relative(have, perm)
            shape = self.shape(t)
            if L.is_reshape(shape, rel):
                new_shape = tuple(shape[k] for k in rel)
                self.moved[key] = self.emit("reshape", [t], {"shape": new_shape}, name=f"{t}_as_{'_'.join(map(str, perm))}")
            else:
                self.moved[key] = self.emit("transpose", [t], {"perm": rel}, name=f"{t}_to_{'_'.join(map(str, perm))}")
        return self.moved[key]

    def perm_of(self, name: str) -> tuple[int, ...]:
        return self.vals[name][1]

    def onnx_shape(self, name: str) -> tuple[int, ...]:
        if name in self.m.consts:
            return tuple(self.m.consts[name].shape)
        t, perm = self.vals[name]
        return L.onnx_shape(self.shape(t), perm)

    def add_const(self, base: str, data: np.ndarray) -> str:
        return self.g.add_const(base, np.asarray(data)).name

    def weight(self, name: str, transform=lambda a: a, suffix: str = "", what: str = "the weight", scale: float = 1.0) -> str:
        """An IR constant made from ONNX constant `name`; a QDQ model's integers travel along."""
        c = self.const(name, what)
        if not np.isfinite(c if c.dtype.kind in "fiub" else c.astype(np.float64)).all():  # (no float64 copy of float32 weights)
            self.fail(f"{what} '{name}' holds NaN or infinite values", cls=ModelError)
        data = np.array(transform(c.astype(np.float32, copy=False)), order="C")  # one copy, the IR's own
        t = self.g.add_const(name + suffix, data * np.float32(scale) if scale != 1.0 else data)
        if name in self.given_weights and scale == 1.0:
            q, qp = self.given_weights[name]
            t.qdata = np.ascontiguousarray(transform(q))
            t.quant = QuantParams(qp.scale, qp.zero_point, 0 if qp.axis is not None else None)  # OHWI / [O, K]: channel axis 0
        return t.name

    def emit(self, op: str, inputs: list[str], attrs: dict, *, name: str, n_out: int = 1, out_names=None) -> str | list[str]:
        """Add an IR node; its output shapes come from the op's own shape rule."""
        origin = where(self.node) if self.node is not None else f"{op} '{name}'"
        node_name = self.g.unique_name(name)
        outs = [self.g.unique_name(o) for o in (out_names or [node_name if n_out == 1 else f"{node_name}_{k}" for k in range(n_out)])]
        node = Node(node_name, op, list(inputs), outs, dict(attrs), origin=origin)
        if op not in SAME_SHAPE_OPS:
            try:
                shapes = op_of(node).infer_shapes(node, self.g)
            except ModelError:
                raise
            except Exception as e:  # a shape rule tripping over an unexpected combination
                raise ModelError(f"{origin}: cannot infer the output shape ({type(e).__name__}: {e})", node=self.node.name if self.node else None) from None
        else:
            shapes = [self.shape(inputs[0])]
        for o, s in zip(outs, shapes):
            if any(d <= 0 for d in s):
                raise ModelError(f"{origin}: output shape {list(s)} is empty", node=node_name)
            self.g.add_tensor(Tensor(o, tuple(int(d) for d in s)))
        self.g.nodes.append(node)
        return outs[0] if n_out == 1 else outs

    def bind(self, onnx_name: str, ir_name: str, perm) -> None:
        self.vals[onnx_name] = (ir_name, tuple(perm))
        want = self.m.shapes.get(onnx_name)
        got = L.onnx_shape(self.shape(ir_name), perm)
        if want is not None and -1 not in want and tuple(want) != tuple(got) and self.trust_declared_shapes:
            ceil_pool = self.node is not None and any(a.name == "ceil_mode" and a.i for a in self.node.attribute)
            if ceil_pool:  # ONNX shape inference ignores the "last window starts inside" rule onnxruntime applies
                self.g.notes.append(f"{where(self.node)}: output '{onnx_name}' is {list(got)} (onnxruntime's ceil_mode rule), the model declares {list(want)}")
                self.trust_declared_shapes = False  # every declared shape downstream inherits the difference
                return
            self.fail(f"tinyconv computes shape {list(got)} for '{onnx_name}' but the model says {list(want)}", cls=ModelError)


# -- padding helpers ---------------------------------------------------------------------------------


def spatial_pads(a: dict, in_sizes, kernel, strides, dilations, ceil_mode: bool = False) -> list[tuple[int, int]]:
    """Per spatial axis (begin, end) padding from ONNX pads / auto_pad (and ceil_mode as extra end pad)."""
    r = len(in_sizes)
    auto = a.get("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else auto
    out = []
    for k in range(r):
        eff = (kernel[k] - 1) * dilations[k] + 1
        if auto in ("SAME_UPPER", "SAME_LOWER"):
            o = -(-in_sizes[k] // strides[k])
            total = max((o - 1) * strides[k] + eff - in_sizes[k], 0)
            lo = total // 2 if auto == "SAME_UPPER" else total - total // 2
            out.append((lo, total - lo))
        elif auto == "VALID":
            out.append((0, 0))
        else:
            p = a.get("pads", [0] * (2 * r))
            if len(p) != 2 * r:
                raise ValueError(f"'pads' has {len(p)} entries for {r} spatial axes (expected {2 * r})")
            out.append((int(p[k]), int(p[k + r])))
    if ceil_mode:
        res = []
        for k, (lo, hi) in enumerate(out):
            eff = (kernel[k] - 1) * dilations[k] + 1
            span = in_sizes[k] + lo + hi - eff
            o = -(-span // strides[k]) + 1
            if (o - 1) * strides[k] >= in_sizes[k] + lo:  # the last window must start inside (PyTorch/ORT rule)
                o -= 1
            res.append((lo, hi + max(0, (o - 1) * strides[k] + eff - (in_sizes[k] + lo + hi))))
        out = res
    return out


def _nd(node_importer: Importer, name: str):
    """(IR tensor in NHWC with H=1 for 1-D, rank) for a conv/pool input."""
    rank = len(node_importer.onnx_shape(name))
    if rank not in (3, 4):
        node_importer.fail(f"input rank {rank} is not supported (1-D or 2-D spatial data only)")
    x = node_importer.value(name, L.nhwc(rank))
    if rank == 3:
        n, w, c = node_importer.shape(x)
        x = node_importer.emit("reshape", [x], {"shape": (n, 1, w, c)}, name=f"{x}_2d")
    return x, rank


def _finish_nd(imp: Importer, y: str, rank: int, onnx_out: str) -> None:
    if rank == 3:
        n, _, w, c = imp.shape(y)
        y = imp.emit("reshape", [y], {"shape": (n, w, c)}, name=f"{onnx_out}_1d")
    imp.bind(onnx_out, y, L.nhwc(rank))


def _hw(values, rank, default, imp: Importer | None = None, name: str = "attribute"):
    """ONNX per-spatial-axis attribute → (h, w), with H = 1 for 1-D."""
    v = list(values) if values is not None else [default] * (rank - 2)
    if len(v) != rank - 2:
        msg = f"'{name}' has {len(v)} entries for {rank - 2} spatial axes"
        if imp is not None:
            imp.fail(msg, cls=ModelError)
        raise ModelError(msg)
    return (1, int(v[0])) if rank == 3 else (int(v[0]), int(v[1]))


def _check_kernel(imp: Importer, a: dict, kernel) -> None:
    if "kernel_shape" in a and [int(k) for k in a["kernel_shape"]] != [int(k) for k in kernel]:
        imp.fail(f"kernel_shape {list(a['kernel_shape'])} differs from the weights' spatial shape {list(kernel)}", cls=ModelError)


def _check_bias(imp: Importer, node, k: int, channels: int) -> None:
    if len(node.input) > k and node.input[k]:
        b = imp.const(node.input[k], "the bias")
        if b.ndim != 1 or b.size != channels:
            imp.fail(f"bias '{node.input[k]}' has shape {list(b.shape)}, expected [{channels}] (one per output channel)", cls=ModelError)


# -- converters --------------------------------------------------------------------------------------


@converter("Conv")
def conv(imp: Importer, node):
    a = imp.attrs(node)
    w = imp.const(node.input[1], "the weight")
    x, rank = _nd(imp, node.input[0])
    if w.ndim != rank:
        imp.fail(f"weights of rank {w.ndim} do not match input rank {rank}", cls=ModelError)
    to_ohwi = (lambda a: a[:, :, None, :].transpose(0, 2, 3, 1)) if rank == 3 else (lambda a: a.transpose(0, 2, 3, 1))
    k = (1, w.shape[2]) if rank == 3 else w.shape[2:]
    strides, dil = _hw(a.get("strides"), rank, 1, imp, "strides"), _hw(a.get("dilations"), rank, 1, imp, "dilations")
    _check_kernel(imp, a, w.shape[2:])
    group = int(a.get("group", 1))
    cin = imp.onnx_shape(node.input[0])[1]
    if w.shape[1] * group != cin or w.shape[0] % group:
        imp.fail(f"weights {list(w.shape)} with group={group} do not fit {cin} input channels", cls=ModelError)
    _check_bias(imp, node, 2, w.shape[0])
    in_hw = imp.shape(x)[1:3]
    pads_raw = spatial_pads(a, in_hw[2 - (rank - 2):], k[2 - (rank - 2):], strides[2 - (rank - 2):], dil[2 - (rank - 2):])
    (t, b), (l, r) = ([(0, 0)] + pads_raw) if rank == 3 else pads_raw
    inputs = [x, imp.weight(node.input[1], to_ohwi, "_ohwi")]
    if len(node.input) > 2 and node.input[2]:
        inputs.append(imp.weight(node.input[2], what="the bias"))
    y = imp.emit("conv2d", inputs, {"strides": strides, "dilations": dil, "pads": (t, l, b, r), "groups": int(a.get("group", 1)), "act": None},
                 name=node.output[0])  # fmt: skip
    _finish_nd(imp, y, rank, node.output[0])


@converter("ConvTranspose")
def conv_transpose(imp: Importer, node):
    a = imp.attrs(node)
    w = imp.const(node.input[1], "the weight")
    if int(a.get("group", 1)) != 1:
        imp.fail(f"group={a['group']} is not supported for ConvTranspose", hint="use group=1")
    x, rank = _nd(imp, node.input[0])
    to_ohwi = (lambda a: a[:, :, None, :].transpose(1, 2, 3, 0)) if rank == 3 else (lambda a: a.transpose(1, 2, 3, 0))
    k = (1, w.shape[2]) if rank == 3 else w.shape[2:]
    strides, dil = _hw(a.get("strides"), rank, 1, imp, "strides"), _hw(a.get("dilations"), rank, 1, imp, "dilations")
    opad = _hw(a.get("output_padding"), rank, 0, imp, "output_padding")
    _check_kernel(imp, a, w.shape[2:])
    if w.shape[0] != imp.onnx_shape(node.input[0])[1]:
        imp.fail(f"weights {list(w.shape)} do not fit {imp.onnx_shape(node.input[0])[1]} input channels", cls=ModelError)
    _check_bias(imp, node, 2, w.shape[1])
    in_hw = imp.shape(x)[1:3]
    auto = a.get("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else auto
    pads = []
    for ax in range(2):
        full = strides[ax] * (in_hw[ax] - 1) + opad[ax] + (k[ax] - 1) * dil[ax] + 1
        if "output_shape" in a or auto in ("SAME_UPPER", "SAME_LOWER"):
            want = _hw(a["output_shape"][-(rank - 2):], rank, 1)[ax] if "output_shape" in a else in_hw[ax] * strides[ax]
            total = full - want
            lo = total // 2 if auto == "SAME_UPPER" else total - total // 2
            pads.append((lo, total - lo))
        else:
            p = list(a.get("pads", [0] * (2 * (rank - 2))))
            pads.append((0, 0) if (rank == 3 and ax == 0) else (int(p[ax - (4 - rank)]), int(p[ax - (4 - rank) + rank - 2])))
    (t, b), (l, r) = pads
    inputs = [x, imp.weight(node.input[1], to_ohwi, "_ohwi")]
    if len(node.input) > 2 and node.input[2]:
        inputs.append(imp.weight(node.input[2], what="the bias"))
    y = imp.emit("conv_transpose2d", inputs, {"strides": strides, "dilations": dil, "pads": (t, l, b, r), "output_padding": opad,
                                              "groups": 1, "act": None}, name=node.output[0])  # fmt: skip
    _finish_nd(imp, y, rank, node.output[0])


def _fully_connected(imp: Importer, node, x_name: str, w: str, bias: str | None):
    shape = imp.onnx_shape(x_name)
    if len(shape) != 2:
        imp.fail(f"a {len(shape)}-D input is not supported here (tinyconv lowers 2-D [N, K] × constant to a fully connected layer)",
                 hint="flatten the input first")  # fmt: skip
    x = imp.value(x_name, L.identity(2))
    inputs = [x, w] + ([bias] if bias is not None else [])
    y = imp.emit("fully_connected", inputs, {"act": None}, name=node.output[0])
    imp.bind(node.output[0], y, L.identity(2))


@converter("Gemm")
def gemm(imp: Importer, node):
    a = imp.attrs(node)
    if a.get("transA", 0):
        imp.fail("transA=1 is not supported", hint="transpose the activation before Gemm")
    if imp.is_const(node.input[0]):
        imp.fail("a constant first operand is not supported (tinyconv maps Gemm to a fully connected layer: activation × constant)")
    b = imp.const(node.input[1], "B (the weight)")
    if b.ndim != 2:
        imp.fail(f"B of rank {b.ndim} is not supported", cls=ModelError)
    to_ok = (lambda m: m) if a.get("transB", 0) else (lambda m: m.T)
    w = imp.weight(node.input[1], to_ok, "_ok", scale=float(a.get("alpha", 1.0)))
    bias = None
    if len(node.input) > 2 and node.input[2]:
        c = imp.const(node.input[2], "C (the bias)")
        out = b.shape[0] if a.get("transB", 0) else b.shape[1]
        if c.size not in (1, out) or (c.ndim == 2 and c.shape[0] != 1):
            imp.fail(f"bias C of shape {list(c.shape)} is not a per-output vector")
        bias = imp.weight(node.input[2], lambda v: np.broadcast_to(v.reshape(-1), (out,)), "_bias", scale=float(a.get("beta", 1.0)))
    _fully_connected(imp, node, node.input[0], w, bias)


@converter("MatMul")
def matmul(imp: Importer, node):
    if imp.is_const(node.input[0]) or not imp.is_const(node.input[1]):
        imp.fail("only activation × constant is supported (a fully connected layer)", hint="tinyconv has no activation × activation MatMul")
    b = imp.const(node.input[1], "the weight")
    if b.ndim != 2:
        imp.fail(f"a {b.ndim}-D constant operand is not supported")
    _fully_connected(imp, node, node.input[0], imp.weight(node.input[1], lambda m: m.T, "_ok"), None)


@converter("BatchNormalization")
def batchnorm(imp: Importer, node):
    a = imp.attrs(node)
    if a.get("training_mode", 0):
        imp.fail("training_mode=1 is not supported", hint="export the model in eval mode")
    if len(node.input) < 5:
        imp.fail(f"has {len(node.input)} inputs, expected 5 (X, scale, B, mean, var)", cls=ModelError)
    scale, bias, mean, var = (imp.const(node.input[k]).astype(np.float64) for k in range(1, 5))
    channels = imp.onnx_shape(node.input[0])[1] if len(imp.onnx_shape(node.input[0])) > 1 else 1
    for label, p in (("scale", scale), ("B", bias), ("mean", mean), ("var", var)):
        if p.shape != (channels,):
            imp.fail(f"{label} has shape {list(p.shape)}, expected [{channels}] (one per channel)", cls=ModelError)
    if np.any(var + float(a.get("epsilon", 1e-5)) <= 0) or not np.all(np.isfinite(np.concatenate([scale, bias, mean, var]))):
        imp.fail("var + epsilon must be positive and all parameters finite", cls=ModelError)
    mult = scale / np.sqrt(var + float(a.get("epsilon", 1e-5)))
    add = bias - mean * mult
    name = node.input[0]
    rank = len(imp.onnx_shape(name))
    perm = imp.perm_of(name)
    x = imp.value(name)
    shape_c = [1] * rank
    shape_c[1] = -1
    m = L.const_to_layout(mult.reshape(shape_c), rank, perm).astype(np.float32)
    s = L.const_to_layout(add.reshape(shape_c), rank, perm).astype(np.float32)
    y = imp.emit("batch_norm", [x, imp.add_const(f"{node.output[0]}_mult", m), imp.add_const(f"{node.output[0]}_add", s)],
                 {"channel_axis": perm.index(1)}, name=node.output[0])  # fmt: skip
    imp.bind(node.output[0], y, perm)


def _unary(imp: Importer, node, fn: str, params: dict):
    name = node.input[0]
    perm = imp.perm_of(name)
    y = imp.emit("unary", [imp.value(name)], {"fn": fn, "params": params}, name=node.output[0])
    imp.bind(node.output[0], y, perm)


PLAIN_UNARY = {"Relu": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh", "HardSwish": "hardswish"}  # ONNX op -> fn, no attributes


@converter(*PLAIN_UNARY)
def plain_unary(imp, node):
    _unary(imp, node, PLAIN_UNARY[node.op_type], {})


@converter("Clip")
def clip(imp, node):
    a = imp.attrs(node)
    bounds = []
    for k, attr, default in ((1, "min", -math.inf), (2, "max", math.inf)):
        v = imp.opt_const(node, k)
        if v is not None and v.size != 1:
            imp.fail(f"the {attr} bound has shape {list(v.shape)}; Clip takes a scalar", cls=ModelError)
        v = float(v.reshape(-1)[0]) if v is not None else float(a.get(attr, default))
        if math.isnan(v):
            imp.fail(f"the {attr} bound is NaN", cls=ModelError)
        # A bound this far out clamps nothing an int8 model can represent (and v / scale would
        # overflow float32 when the int8 bounds are formed): it is no bound (fuzz case 451: 1e38).
        bounds.append(v if abs(v) < CLIP_NO_BOUND else math.copysign(math.inf, v))
    lo, hi = bounds
    if lo > hi:
        imp.fail(f"min {lo:g} is greater than max {hi:g}", cls=ModelError)
    _unary(imp, node, "clip", {"lo": lo, "hi": hi})


@converter("HardSigmoid")
def hardsigmoid(imp, node):
    a = imp.attrs(node)
    _unary(imp, node, "hardsigmoid", {"alpha": float(a.get("alpha", 0.2)), "beta": float(a.get("beta", 0.5))})


@converter("LeakyRelu")
def leakyrelu(imp, node):
    _unary(imp, node, "leakyrelu", {"alpha": float(imp.attrs(node).get("alpha", 0.01))})


@converter("PRelu")
def prelu(imp: Importer, node):
    name = node.input[0]
    slope = imp.const(node.input[1], "the slope").astype(np.float32)
    rank = len(imp.onnx_shape(name))
    perm = imp.perm_of(name)
    channels = imp.onnx_shape(name)[1] if rank > 1 else 1
    try:
        full = np.broadcast_to(slope.reshape((1,) * (rank - slope.ndim) + slope.shape), imp.onnx_shape(name))
    except ValueError:
        imp.fail(f"slope of shape {list(slope.shape)} does not broadcast to the input {list(imp.onnx_shape(name))}", cls=ModelError)
    per_c = np.moveaxis(full, 1, 0).reshape(channels, -1) if rank > 1 else full.reshape(1, -1)
    if not np.all(per_c == per_c[:, :1]):
        imp.fail("the slope varies along more than the channel axis", hint="tinyconv supports a per-channel or shared slope")
    x = imp.value(name, L.nhwc(rank) if rank > 2 else L.identity(rank))
    y = imp.emit("prelu", [x, imp.add_const(f"{node.input[1]}_c", per_c[:, 0].copy())], {}, name=node.output[0])
    imp.bind(node.output[0], y, L.nhwc(rank) if rank > 2 else L.identity(rank))


def _pool(imp: Importer, node, op: str):
    a = imp.attrs(node)
    if any(d != 1 for d in a.get("dilations", [])):
        imp.fail(f"dilations={list(a['dilations'])} are not supported for pooling")
    if a.get("storage_order", 0):
        imp.fail("storage_order=1 is not supported")
    x, rank = _nd(imp, node.input[0])
    kernel = _hw(a["kernel_shape"], rank, 1, imp, "kernel_shape")
    strides = _hw(a.get("strides"), rank, 1, imp, "strides")
    in_hw = imp.shape(x)[1:3]
    r = rank - 2
    pads = spatial_pads(a, in_hw[2 - r:], kernel[2 - r:], strides[2 - r:], [1] * r, bool(a.get("ceil_mode", 0)))
    if rank == 3:
        pads = [(0, 0)] + pads
    plain = spatial_pads(a, in_hw[2 - r:], kernel[2 - r:], strides[2 - r:], [1] * r)
    (t, b), (l, rr) = pads
    attrs = {"kernel": kernel, "strides": strides, "pads": (t, l, b, rr)}
    if op == "avg_pool2d":
        attrs["count_include_pad"] = bool(a.get("count_include_pad", 0))
        if attrs["count_include_pad"] and ([(0, 0)] * (rank == 3) + plain) != pads:
            imp.fail("ceil_mode=1 together with count_include_pad=1 is not supported", hint="use one or the other")
    else:
        attrs["act"] = None
    y = imp.emit(op, [x], attrs, name=node.output[0])
    _finish_nd(imp, y, rank, node.output[0])


@converter("MaxPool")
def maxpool(imp, node):
    if len(node.output) > 1 and node.output[1]:
        imp.fail("the Indices output is not supported")
    _pool(imp, node, "max_pool2d")


@converter("AveragePool")
def avgpool(imp, node):
    _pool(imp, node, "avg_pool2d")


@converter("GlobalAveragePool", "GlobalMaxPool")
def global_pool(imp: Importer, node):
    x, rank = _nd(imp, node.input[0])
    if node.op_type == "GlobalAveragePool":
        y = imp.emit("mean", [x], {"axes": (1, 2), "keepdims": True}, name=node.output[0])
    else:
        y = imp.emit("global_max_pool", [x], {"keepdims": True}, name=node.output[0])
    _finish_nd(imp, y, rank, node.output[0])


@converter("ReduceMean")
def reduce_mean(imp: Importer, node):
    a = imp.attrs(node)
    axes = a.get("axes")
    if axes is None and len(node.input) > 1 and node.input[1]:
        axes = imp.const(node.input[1]).tolist()
    name = node.input[0]
    rank = len(imp.onnx_shape(name))
    axes = sorted(check_axis(node, int(x), rank, 'axes entry') for x in (axes if axes is not None else range(rank)))
    if rank != 4 or axes != [2, 3]:
        imp.fail(f"ReduceMean over axes {axes} of a rank-{rank} tensor is not supported", hint="tinyconv averages over the spatial axes (2, 3) of NCHW data")
    keep = bool(a.get("keepdims", 1))
    x = imp.value(name, L.nhwc(4))
    y = imp.emit("mean", [x], {"axes": (1, 2), "keepdims": keep}, name=node.output[0])
    imp.bind(node.output[0], y, L.nhwc(4) if keep else L.identity(2))


@converter("Add", "Sub", "Mul", "Div")
def binary(imp: Importer, node):
    a_name, b_name = node.input[0], node.input[1]
    ca, cb = imp.is_const(a_name), imp.is_const(b_name)
    kind = node.op_type
    if ca and kind in ("Sub", "Div"):
        imp.fail(f"a constant first operand of {kind} is not supported")
    if not ca and not cb and kind in ("Sub", "Div"):
        imp.fail(f"{kind} of two computed tensors is not supported", hint="tinyconv has Add and Mul of tensors")
    if ca:
        a_name, b_name, ca, cb = b_name, a_name, cb, ca
    rank_a = len(imp.onnx_shape(a_name))
    if cb:
        c = imp.const(b_name).astype(np.float64)
        if kind == "Div" and np.any(c == 0):
            imp.fail("division by a constant that holds 0", cls=ModelError)
        if not np.all(np.isfinite(c)):
            imp.fail("the constant operand holds NaN or infinite values", cls=ModelError)
        c = -c if kind == "Sub" else (1.0 / c if kind == "Div" else c)
        if c.ndim > rank_a:
            imp.fail("a constant operand of higher rank than the tensor is not supported")
        perm = imp.perm_of(a_name)
        cc = L.const_to_layout(c.astype(np.float32), rank_a, perm)
        inputs = [imp.value(a_name), imp.add_const(f"{node.output[0]}_const", cc)]
    else:
        rank_b = len(imp.onnx_shape(b_name))
        if rank_a < rank_b:
            a_name, b_name, rank_a, rank_b = b_name, a_name, rank_b, rank_a
        perm = imp.perm_of(a_name)
        if rank_b < rank_a:  # ONNX broadcasting aligns the right: prepend size-1 axes to b first
            yb = imp.value(b_name, L.identity(rank_b))
            lifted = imp.emit("reshape", [yb], {"shape": (1,) * (rank_a - rank_b) + imp.shape(yb)}, name=f"{yb}_r{rank_a}")
            b_name = f"{b_name}__rank{rank_a}"
            imp.vals[b_name] = (lifted, L.identity(rank_a))
        inputs = [imp.value(a_name), imp.value(b_name, perm)]
    op = "add" if kind in ("Add", "Sub") else "mul"
    y = imp.emit(op, inputs, {"act": None}, name=node.output[0])
    imp.bind(node.output[0], y, perm)


@converter("Concat")
def concat(imp: Importer, node):
    axis = imp.attrs(node).get("axis")
    names = [n for n in node.input if n]
    computed = [n for n in names if not imp.is_const(n)]
    if not computed:
        imp.fail("Concat of constants only should have been folded", cls=ModelError)
    rank = len(imp.onnx_shape(computed[0]))
    axis = check_axis(node, axis, rank)
    perm = imp.perm_of(computed[0])
    xs = [imp.add_const(f"{node.output[0]}_const{k}", L.const_to_layout(imp.const(n).astype(np.float32), rank, perm)) if imp.is_const(n)
          else imp.value(n, perm) for k, n in enumerate(names)]  # fmt: skip
    y = imp.emit("concat", xs, {"axis": perm.index(axis % rank)}, name=node.output[0])
    imp.bind(node.output[0], y, perm)


@converter("Split")
def split(imp: Importer, node):
    a = imp.attrs(node)
    name = node.input[0]
    shape = imp.onnx_shape(name)
    axis = check_axis(node, a.get("axis", 0), len(shape))
    sizes = a.get("split")
    if sizes is None and len(node.input) > 1 and node.input[1]:
        sizes = imp.const(node.input[1]).tolist()
    n = len(node.output)
    if sizes is None:
        per = -(-shape[axis] // n)
        sizes = [min(per, shape[axis] - k * per) for k in range(n)]
    perm = imp.perm_of(name)
    ys = imp.emit("split", [imp.value(name)], {"axis": perm.index(axis), "sizes": [int(s) for s in sizes]}, name=node.output[0],
                  n_out=n, out_names=list(node.output))  # fmt: skip
    for o, y in zip(node.output, ys if n > 1 else [ys]):
        imp.bind(o, y, perm)


@converter("Slice")
def slice_(imp: Importer, node):
    name = node.input[0]
    shape = imp.onnx_shape(name)
    r = len(shape)
    starts, ends = imp.const(node.input[1]).tolist(), imp.const(node.input[2]).tolist()
    axes = imp.opt_const(node, 3)
    steps = imp.opt_const(node, 4)
    axes = [check_axis(node, int(x), r, 'axes entry') for x in (axes.tolist() if axes is not None else range(len(starts)))]
    steps = steps.tolist() if steps is not None else [1] * len(starts)
    if not len(starts) == len(ends) == len(axes) == len(steps) or len(set(axes)) != len(axes):
        imp.fail(f"starts, ends, axes and steps have {len(starts)}, {len(ends)}, {len(axes)} and {len(steps)} entries (must be equal, axes distinct)",
                 cls=ModelError)  # fmt: skip
    s_all, e_all, st_all = [0] * r, list(shape), [1] * r
    for ax, s, e, st in zip(axes, starts, ends, steps):
        if st <= 0:
            imp.fail("negative or zero slice steps are not supported")
        dim = shape[ax]
        s = max(0, min(dim, s + dim if s < 0 else s))
        e = max(0, min(dim, e + dim if e < 0 else e))
        s_all[ax], e_all[ax], st_all[ax] = int(s), int(e), int(st)
    perm = imp.perm_of(name)
    y = imp.emit("slice", [imp.value(name)], {"starts": [s_all[p] for p in perm], "ends": [e_all[p] for p in perm], "steps": [st_all[p] for p in perm]},
                 name=node.output[0])  # fmt: skip
    imp.bind(node.output[0], y, perm)


@converter("Pad")
def pad(imp: Importer, node):
    a = imp.attrs(node)
    mode = a.get("mode", b"constant")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    if mode != "constant":
        imp.fail(f"mode '{mode}' is not supported", hint="tinyconv pads with a constant")
    name = node.input[0]
    r = len(imp.onnx_shape(name))
    pads = imp.const(node.input[1]).astype(np.int64).reshape(-1).tolist() if len(node.input) > 1 else list(a.get("pads") or [])
    value = imp.opt_const(node, 2)
    value = float(value.reshape(-1)[0]) if value is not None and value.size else float(a.get("value", 0.0))
    if not math.isfinite(value):
        imp.fail(f"the padding value {value} is not finite", cls=ModelError)
    axes = imp.opt_const(node, 3)
    axes = [check_axis(node, int(x), r, 'axes entry') for x in axes.tolist()] if axes is not None else list(range(r))
    if len(pads) != 2 * len(axes) or len(set(axes)) != len(axes):
        imp.fail(f"pads has {len(pads)} entries for {len(axes)} axes (expected {2 * len(axes)})", cls=ModelError)
    begin, end = [0] * r, [0] * r
    for k, ax in enumerate(axes):
        begin[ax], end[ax] = pads[k], pads[k + len(axes)]
    if min(begin + end) < 0:
        imp.fail("negative pads (cropping) are not supported", hint="use Slice")
    perm = imp.perm_of(name)
    y = imp.emit("pad", [imp.value(name)], {"pads": [begin[p] for p in perm] + [end[p] for p in perm], "value": value}, name=node.output[0])
    imp.bind(node.output[0], y, perm)


def _reshape_to(imp: Importer, node, name: str, new_shape) -> None:
    old = imp.onnx_shape(name)
    if int(np.prod(old)) != int(np.prod(new_shape)):
        imp.fail(f"cannot reshape {list(old)} to {list(new_shape)}", cls=ModelError)
    x = imp.value(name, L.identity(len(old)))
    y = imp.emit("reshape", [x], {"shape": tuple(int(d) for d in new_shape)}, name=node.output[0])
    imp.bind(node.output[0], y, L.identity(len(new_shape)))


@converter("Reshape")
def reshape(imp: Importer, node):
    old = imp.onnx_shape(node.input[0])
    target_c = imp.const(node.input[1], "the target shape")
    if target_c.ndim != 1 or target_c.dtype.kind not in "iu" or np.any(target_c < -1):
        imp.fail(f"the target shape must be a 1-D integer tensor of sizes ≥ -1 (got {target_c.dtype} {list(target_c.shape)})", cls=ModelError)
    target = [int(d) for d in target_c.tolist()]
    allowzero = imp.attrs(node).get("allowzero", 0)
    shape = [old[k] if (d == 0 and not allowzero and k < len(old)) else d for k, d in enumerate(target)]
    if shape.count(-1) > 1:
        imp.fail("more than one -1 in the target shape", cls=ModelError)
    if -1 in shape:
        known = int(np.prod([d for d in shape if d != -1]))
        shape[shape.index(-1)] = int(np.prod(old)) // max(known, 1)
    _reshape_to(imp, node, node.input[0], shape)


@converter("Flatten")
def flatten(imp: Importer, node):
    old = imp.onnx_shape(node.input[0])
    axis = imp.attrs(node).get("axis", 1)
    if not isinstance(axis, int) or not -len(old) <= axis <= len(old):
        imp.fail(f"axis {axis} is out of range for a rank-{len(old)} input (valid: {-len(old)} to {len(old)})", cls=ModelError)
    axis = axis + len(old) if axis < 0 else axis
    _reshape_to(imp, node, node.input[0], (int(np.prod(old[:axis])), int(np.prod(old[axis:]))))


@converter("Squeeze", "Unsqueeze")
def squeeze(imp: Importer, node):
    old = list(imp.onnx_shape(node.input[0]))
    axes = imp.attrs(node).get("axes")
    if axes is None and len(node.input) > 1 and node.input[1]:
        axes = imp.const(node.input[1]).tolist()
    if node.op_type == "Squeeze":
        axes = [check_axis(node, int(a), len(old), 'axes entry') for a in axes] if axes is not None else [k for k, d in enumerate(old) if d == 1]
        if any(old[a] != 1 for a in axes):
            imp.fail(f"cannot squeeze non-unit axes {axes} of {old}", cls=ModelError)
        new = [d for k, d in enumerate(old) if k not in axes]
    else:
        r = len(old) + len(axes)
        axes = sorted(check_axis(node, int(a), r, 'axes entry') for a in axes)
        if len(set(axes)) != len(axes):
            imp.fail(f"axes {axes} repeat an axis", cls=ModelError)
        new, it = [], iter(old)
        for k in range(r):
            new.append(1 if k in axes else next(it))
    _reshape_to(imp, node, node.input[0], new)


@converter("Transpose")
def transpose(imp: Importer, node):
    name = node.input[0]
    r = len(imp.onnx_shape(name))
    perm = check_perm(node, imp.attrs(node).get("perm", list(range(r))[::-1]), r)
    t, have = imp.vals[name]
    imp.bind(node.output[0], t, L.after_transpose(have, perm))


@converter("Identity", "Dropout")
def identity(imp: Importer, node):
    if node.op_type == "Dropout" and len(node.output) > 1 and node.output[1]:
        imp.fail("the mask output of Dropout is not supported")
    t, perm = imp.vals[node.input[0]]
    imp.bind(node.output[0], t, perm)


@converter("Cast")
def cast(imp: Importer, node):
    if imp.attrs(node).get("to") not in (onnx.TensorProto.FLOAT,):
        imp.fail("only casts to float are supported on computed tensors")
    identity(imp, node)


@converter("Softmax")
def softmax(imp: Importer, node):
    _softmax_like(imp, node, "softmax", {"beta": 1.0})


@converter("LogSoftmax")
def log_softmax(imp: Importer, node):
    _softmax_like(imp, node, "log_softmax", {})


def _softmax_like(imp: Importer, node, op: str, extra: dict):
    """Softmax / LogSoftmax: moved so that the reduced axis is last (the kernels' row layout)."""
    name = node.input[0]
    r = len(imp.onnx_shape(name))
    axis = check_axis(node, imp.attrs(node).get("axis", -1 if imp.m.opset >= 13 else 1), r)
    if imp.m.opset < 13 and axis != r - 1:
        if any(d != 1 for d in imp.onnx_shape(name)[axis + 1:]):
            imp.fail(f"opset-{imp.m.opset} {node.op_type} over the flattened axes {axis}.. is not supported")
        axis = r - 1
    perm = imp.perm_of(name)
    if perm[-1] != axis:
        perm = tuple(k for k in perm if k != axis) + (axis,)
    y = imp.emit(op, [imp.value(name, perm)], {"axis": -1, **extra}, name=node.output[0])
    imp.bind(node.output[0], y, perm)


def _nearest_index(out: int, size: int, scale: float, ctm: str, mode: str) -> list[int]:
    idx = []
    for o in range(out):
        if ctm == "half_pixel":
            x = (o + 0.5) / scale - 0.5
        elif ctm == "pytorch_half_pixel":
            x = (o + 0.5) / scale - 0.5 if out > 1 else 0.0
        elif ctm == "align_corners":
            x = o * (size - 1) / (out - 1) if out > 1 else 0.0
        elif ctm == "asymmetric":
            x = o / scale
        elif ctm == "tf_half_pixel_for_nn":
            x = (o + 0.5) / scale
        else:
            raise ValueError(ctm)
        frac = x - math.floor(x)
        if mode == "floor":
            i = math.floor(x)
        elif mode == "ceil":
            i = math.ceil(x)
        elif mode == "round_prefer_ceil":
            i = math.floor(x) + 1 if frac >= 0.5 else math.floor(x)
        else:  # round_prefer_floor
            i = math.floor(x) + 1 if frac > 0.5 else math.floor(x)
        idx.append(min(max(int(i), 0), size - 1))
    return idx


@converter("Resize", "Upsample")
def resize(imp: Importer, node):
    a = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in imp.attrs(node).items()}
    if a.get("mode", "nearest") != "nearest":
        imp.fail(f"mode '{a.get('mode')}' is not supported", hint="tinyconv resizes with mode='nearest'")
    name = node.input[0]
    shape = imp.onnx_shape(name)
    if len(shape) != 4:
        imp.fail("only 4-D (NCHW) Resize is supported")
    scales = sizes = None
    if node.op_type == "Upsample":
        scales = imp.const(node.input[1]).astype(np.float64)
    else:
        if len(node.input) > 2 and node.input[2] and imp.const(node.input[2]).size:
            scales = imp.const(node.input[2]).astype(np.float64)
        if len(node.input) > 3 and node.input[3]:
            sizes = imp.const(node.input[3]).astype(np.int64)
    if "axes" in a:
        imp.fail("the axes attribute is not supported")
    if sizes is not None:
        out = [int(s) for s in sizes]
        scales = [o / i for o, i in zip(out, shape)]
    elif scales is not None:
        if len(scales) != len(shape) or not np.all(np.isfinite(scales)) or np.any(np.asarray(scales) <= 0):
            imp.fail(f"scales {list(map(float, scales))} must be {len(shape)} positive finite numbers", cls=ModelError)
        out = [int(math.floor(i * s)) for i, s in zip(shape, scales)]
    else:
        imp.fail("neither scales nor sizes is given", cls=ModelError)
    if out[0] != shape[0] or out[1] != shape[1]:
        imp.fail("resizing the batch or channel axis is not supported")
    ctm = a.get("coordinate_transformation_mode", "half_pixel" if node.op_type == "Resize" else "asymmetric")
    mode = a.get("nearest_mode", "round_prefer_floor")
    if ctm not in ("half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric", "tf_half_pixel_for_nn"):
        imp.fail(f"coordinate_transformation_mode '{ctm}' is not supported")
    rows = _nearest_index(out[2], shape[2], float(scales[2]), ctm, mode)
    cols = _nearest_index(out[3], shape[3], float(scales[3]), ctm, mode)
    y = imp.emit("resize_nearest", [imp.value(name, L.nhwc(4))], {"rows": rows, "cols": cols}, name=node.output[0])
    imp.bind(node.output[0], y, L.nhwc(4))


# -- QDQ -----------------------------------------------------------------------------------------------


def _check_scale(imp: Importer, scale: np.ndarray, name: str) -> None:
    """Quantization scales must be positive, finite float32 numbers (5e-324 is 0 in float32)."""
    if scale.size == 0 or not np.all(np.isfinite(scale)) or np.any(scale <= 0):
        bad = scale[~(np.isfinite(scale) & (scale > 0))].reshape(-1)
        imp.fail(f"scale '{name}' is {float(bad[0]) if bad.size else 'empty'}; scales must be positive and finite in float32", cls=ModelError)


def _qparams(imp: Importer, node) -> QuantParams:
    scale = imp.const(node.input[1], "the scale").astype(np.float32)
    _check_scale(imp, scale, node.input[1])
    zp = imp.opt_const(node, 2)
    zp_dtype = zp.dtype if zp is not None else np.dtype(np.uint8)
    zp = zp.astype(np.int32) if zp is not None else np.zeros(scale.shape, np.int32)
    if zp_dtype == np.uint8:
        zp = zp - 128  # uint8 q maps to int8 q - 128 with the same real values
    elif zp_dtype not in (np.int8, np.int32):
        imp.fail(f"zero points of type {zp_dtype} are not supported (int8 or uint8 only)")
    axis = imp.attrs(node).get("axis", 1) if scale.size > 1 else None
    return QuantParams(scale.reshape(-1) if scale.size > 1 else scale.reshape(()), zp.reshape(-1) if scale.size > 1 else zp.reshape(()), axis)


@converter("QuantizeLinear")
def quantize_linear(imp: Importer, node):
    qp = _qparams(imp, node)
    if not qp.is_per_tensor:
        imp.fail("per-channel quantization of an activation is not supported")
    if imp.is_const(node.input[0]):
        imp.fail("QuantizeLinear of a constant should have been folded", cls=ModelError)
    imp.qdq[node.output[0]] = qp
    t, perm = imp.vals[node.input[0]]
    imp.vals[node.output[0]] = (t, perm)


@converter("DequantizeLinear")
def dequantize_linear(imp: Importer, node):
    src = node.input[0]
    if src not in imp.qdq:
        imp.fail("DequantizeLinear of a computed tensor must follow a QuantizeLinear", hint="tinyconv reads QDQ pairs as written by onnxruntime.quantization")
    t, perm = imp.vals[src]
    qp = imp.qdq[src]
    given = imp.g.given_quant
    prev = given.get(t)
    if prev is not None and prev.scalar() != qp.scalar():
        imp.fail(f"tensor '{t}' is quantized twice with different parameters")
    given[t] = qp
    _saturate_producer(imp, t, qp)
    imp.vals[node.output[0]] = (t, perm)


def _saturate_producer(imp: Importer, t: str, qp: QuantParams) -> None:
    """A Q/DQ pair saturates to the int8 range: make the float graph do the same, so a QDQ model
    whose Relus the quantizer removed (zero point -128 clamps at 0) keeps its float meaning.
    For the int8 graph this clamp is the full int8 range: a no-op."""
    p = imp.g.producer(t)
    if p is not None and p.op in ("conv2d", "fully_connected", "conv_transpose2d", "add", "mul") and p.attrs.get("act") is None:
        sc, zp = qp.scalar()
        p.attrs["act"] = (sc * (-128 - zp), sc * (127 - zp))
        p.attrs["act_from_qdq"] = True  # only fake-quant saturation: BN folding may drop it


# -- QOperator (QLinearConv / QLinearMatMul) ----------------------------------------------------------


def _qlinear_params(imp: Importer, scale: str, zp: str, axis: int | None = None) -> QuantParams:
    s = imp.const(scale, "the scale").astype(np.float32)
    _check_scale(imp, s, scale)
    z = imp.const(zp, "the zero point") if zp else np.zeros(s.shape, np.uint8)
    shift = 128 if z.dtype == np.uint8 else 0
    z = z.astype(np.int32) - shift
    if s.size > 1:
        return QuantParams(s.reshape(-1), np.broadcast_to(z.reshape(-1), (s.size,)).copy(), axis)
    return QuantParams(s.reshape(()), z.reshape(()))


def _qlinear_weight(imp: Importer, q_name: str, scale: str, zp: str, axis: int) -> str:
    """Register a dequantized float copy of a QOperator weight, with its integers, as a constant."""
    q = imp.const(q_name, "the weight")
    qp = _qlinear_params(imp, scale, zp, axis)
    if q.dtype == np.uint8:
        q = q.astype(np.int32) - 128
    zp_b = qp.zero_point.reshape([-1 if k == axis else 1 for k in range(q.ndim)]) if qp.axis is not None else qp.zero_point
    sc_b = qp.scale.reshape([-1 if k == axis else 1 for k in range(q.ndim)]) if qp.axis is not None else qp.scale
    name = f"{q_name}__dequantized"
    imp.m.consts[name] = ((q.astype(np.int64) - zp_b).astype(np.float32) * sc_b).astype(np.float32)
    imp.given_weights[name] = (q, qp)
    return name


def _qlinear_bias(imp: Importer, bias: str, x_scale: str, w_scale: str) -> str:
    """An int32 QOperator bias (scale x_scale · w_scale[c]) as a float constant with its integers."""
    b = imp.const(bias, "the bias").astype(np.int32)
    xs = float(imp.const(x_scale))
    ws = imp.const(w_scale).astype(np.float64).reshape(-1)
    name = f"{bias}__dequantized"
    imp.m.consts[name] = (b.astype(np.float64) * xs * np.broadcast_to(ws, b.shape)).astype(np.float32)
    imp.given_weights[name] = (b, QuantParams((xs * ws).astype(np.float32), np.zeros(ws.shape, np.int32), 0 if ws.size > 1 else None))
    return name


def _qlinear_input(imp: Importer, x: str, scale: str, zp: str) -> str:
    """The quantized input of a QOperator node: record its params on the IR tensor."""
    t, _ = imp.vals[x]
    imp.g.given_quant.setdefault(t, _qlinear_params(imp, scale, zp))
    return x


def _qlinear_output(imp: Importer, node, scale: str, zp: str) -> None:
    t, perm = imp.vals[node.output[0]]
    qp = _qlinear_params(imp, scale, zp)
    imp.g.given_quant[t] = qp
    imp.qdq[node.output[0]] = qp  # a following DequantizeLinear reads these
    _saturate_producer(imp, t, qp)


@converter("QLinearConv")
def qlinear_conv(imp: Importer, node):
    i = list(node.input) + [""] * (9 - len(node.input))
    x = _qlinear_input(imp, i[0], i[1], i[2])
    w = _qlinear_weight(imp, i[3], i[4], i[5], axis=0)
    ins = [x, w]
    if i[8]:
        ins.append(_qlinear_bias(imp, i[8], i[1], i[4]))
    conv(imp, onnx.helper.make_node("Conv", ins, list(node.output), name=node.name, **imp.attrs(node)))
    _qlinear_output(imp, node, i[6], i[7])


@converter("QLinearMatMul")
def qlinear_matmul(imp: Importer, node):
    a, a_s, a_z, b, b_s, b_z, y_s, y_z = node.input
    x = _qlinear_input(imp, a, a_s, a_z)
    w = _qlinear_weight(imp, b, b_s, b_z, axis=1)
    matmul(imp, onnx.helper.make_node("MatMul", [x, w], list(node.output), name=node.name))
    _qlinear_output(imp, node, y_s, y_z)


# onnxruntime's contrib QOperator ops (domain com.microsoft), as quantize_static(QOperator) writes them.
MS_OPS = {"QGemm", "QLinearAdd", "QLinearMul", "QLinearAveragePool", "QLinearGlobalAveragePool", "QLinearSoftmax", "QLinearConcat", "QLinearSigmoid",
          "QLinearLeakyRelu"}  # fmt: skip


def _as_float_node(imp: Importer, node, op_type: str, inputs: list[str], **attrs) -> onnx.NodeProto:
    return onnx.helper.make_node(op_type, inputs, list(node.output), name=node.name, **attrs)


@converter("QLinearAdd", "QLinearMul")
def qlinear_binary(imp: Importer, node):
    a, a_s, a_z, b, b_s, b_z, y_s, y_z = (list(node.input) + [""] * 8)[:8]
    for v, sc, zp in ((a, a_s, a_z), (b, b_s, b_z)):
        if not imp.is_const(v):
            _qlinear_input(imp, v, sc, zp)
        else:
            q, qp = imp.const(v), _qlinear_params(imp, sc, zp)
            if q.dtype == np.uint8:
                q = q.astype(np.int32) - 128
            s_, z_ = qp.scalar()
            imp.m.consts[v] = ((q.astype(np.int64) - z_) * np.float32(s_)).astype(np.float32)
    binary(imp, _as_float_node(imp, node, node.op_type[len("QLinear"):], [a, b]))
    _qlinear_output(imp, node, y_s, y_z)


@converter("QLinearAveragePool", "QLinearGlobalAveragePool", "QLinearSigmoid", "QLinearLeakyRelu")
def qlinear_unary_like(imp: Importer, node):
    x, x_s, x_z, y_s, y_z = (list(node.input) + [""] * 5)[:5]
    attrs = imp.attrs(node)
    if attrs.pop("channels_last", 0):
        imp.fail("channels_last=1 is not supported")
    _qlinear_input(imp, x, x_s, x_z)
    CONVERTERS[node.op_type[len("QLinear"):]](imp, _as_float_node(imp, node, node.op_type[len("QLinear"):], [x], **attrs))
    _qlinear_output(imp, node, y_s, y_z)


@converter("QLinearSoftmax")
def qlinear_softmax(imp: Importer, node):
    x, x_s, x_z, y_s, y_z = node.input
    attrs = imp.attrs(node)
    attrs.pop("opset", None)
    _qlinear_input(imp, x, x_s, x_z)
    softmax(imp, _as_float_node(imp, node, "Softmax", [x], **attrs))
    _qlinear_output(imp, node, y_s, y_z)


@converter("QLinearConcat")
def qlinear_concat(imp: Importer, node):
    y_s, y_z, *rest = node.input
    xs = rest[0::3]
    for x, sc, zp in zip(rest[0::3], rest[1::3], rest[2::3]):
        if not imp.is_const(x):
            _qlinear_input(imp, x, sc, zp)
    concat(imp, _as_float_node(imp, node, "Concat", xs, axis=imp.attrs(node)["axis"]))
    _qlinear_output(imp, node, y_s, y_z)


@converter("QGemm")
def qgemm(imp: Importer, node):
    i = list(node.input) + [""] * (9 - len(node.input))
    a = imp.attrs(node)
    x = _qlinear_input(imp, i[0], i[1], i[2])
    w = _qlinear_weight(imp, i[3], i[4], i[5], axis=0 if a.get("transB", 0) else 1)
    ins = [x, w]
    if i[6]:
        ins.append(_qlinear_bias(imp, i[6], i[1], i[4]))
    if not i[7]:
        imp.fail("QGemm with a float output is not supported")
    gemm(imp, _as_float_node(imp, node, "Gemm", ins, **{k: v for k, v in a.items() if k in ("transA", "transB", "alpha")}))
    _qlinear_output(imp, node, i[7], i[8])
