"""Import an int8 .tflite model (TFLite full-integer quantization) as a prepared int8 IR graph.

The file is read with the dependency-free flatbuffer reader in `tflite_schema.py`. TFLite is
already NHWC with OHWI conv weights, so tensors map one to one; every activation keeps the
scale and zero point the file gives, weights and biases keep their integers. The result is what
`quantize_graph` produces for a float model: int8, prepared (`prepare_all`), validated.

The oracle is TensorFlow Lite Micro's reference kernels (the `tflite-micro` package); where a TFLM
kernel's integer parameters are formed differently from tinyconv's op for the same attrs, the
importer chooses the attrs / params that make them agree (each case is commented below):

* Conv / depthwise / transpose conv with a per-tensor weight scale: TFLM forms the multiplier
  per channel in double (`PopulateConvolutionQuantizationParams`), so the scale is broadcast to
  one per output channel. FULLY_CONNECTED keeps its per-tensor scale: TFLM forms that multiplier
  in double too (`GetQuantizedConvolutionMultipler`), as tinyconv's `conv_multipliers` does.
* Fused activations: TFLM rounds `f / scale` in float32 (`CalculateActivationRangeQuantized`);
  when tinyconv's double-precision rule would give another integer bound, the float clamp is
  moved onto the exact grid value so both give TFLM's bound.
* AVERAGE_POOL_2D with a fused activation: tinyconv's avg_pool2d has no clamp, a 1x1 max_pool2d
  carrying the activation follows it.
* Pools whose output params differ from the input's within TFLM's tolerance (scale within 1e-6,
  same zero point): TFLM copies the integers; an identity reshape re-labels them.
* LOGISTIC / TANH / HARD_SWISH: op "unary" with a 256-entry `lut` built by TFLM's own integer
  algorithm (tflite_lut.py); entry i is the output for input i - 128.
* QUANTIZE int8 → int8 inside the graph: a one-input concat (tinyconv's concat requantizes with
  TFLM's multiplier, in_scale / out_scale in double).

Model edges: an int8 input / output is used as is. A float32 input whose consumers are QUANTIZE
operators starts the graph at their int8 output (those params become the input's), and a float32
output made by DEQUANTIZE ends it at the int8 value; both are reported in `graph.notes`.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np

from tinyconv.errors import ModelError, TinyconvError, UnsupportedError
from tinyconv.fixedpoint import activation_range
from tinyconv.frontend import tflite_lut
from tinyconv.frontend.tflite_schema import PADDING_SAME, PADDING_VALID, TflModel, TflOperator, TflTensor, parse, tensor_array
from tinyconv.ir import Graph, IOLayout, Node, QuantParams, Tensor

SUPPORTED = (
    "CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "AVERAGE_POOL_2D", "MAX_POOL_2D", "ADD", "MUL",
    "RESHAPE", "SQUEEZE", "EXPAND_DIMS", "SOFTMAX", "CONCATENATION", "PAD", "PADV2", "MEAN", "LOGISTIC",
    "TANH", "HARD_SWISH", "TRANSPOSE_CONV", "QUANTIZE", "DEQUANTIZE", "LOG_SOFTMAX", "RELU", "RELU6", "LEAKY_RELU",
    "SHAPE", "STRIDED_SLICE", "PACK",
)  # fmt: skip
# The builtin_options table each operator reads (schema.fbs BuiltinOptions). Another table type
# would be read with this operator's field layout: refused, as TFLite's own parser does.
OPTIONS_TYPE = {
    "CONV_2D": 1, "DEPTHWISE_CONV_2D": 2, "AVERAGE_POOL_2D": 5, "MAX_POOL_2D": 5, "FULLY_CONNECTED": 8, "SOFTMAX": 9,
    "CONCATENATION": 10, "ADD": 11, "RESHAPE": 17, "MUL": 21, "PAD": 22, "MEAN": 27, "SQUEEZE": 30, "STRIDED_SLICE": 32,
    "PADV2": 43, "TRANSPOSE_CONV": 49, "EXPAND_DIMS": 52, "SHAPE": 55, "PACK": 59, "LEAKY_RELU": 75,
}  # fmt: skip
MAX_WINDOW = 1 << 16  # strides, dilations and window sizes beyond this are refused (no real model has them)

# TFLM PoolingPrepare: input and output scales may differ by this much (the integers are copied).
POOL_SCALE_TOLERANCE = 1.0e-6

_FUSED = {0: None, 1: (0.0, None), 2: (-1.0, 1.0), 3: (0.0, 6.0)}
_FUSED_NAMES = {4: "TANH", 5: "SIGN_BIT"}


def load_tflite(path) -> Graph:
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ModelError(f"cannot read model file '{path}': {e.strerror or e}") from None
    model = parse(data, path.name)
    return _Importer(model, path).run()


def _clean(name: str) -> str:
    """A readable IR name from a TFLite tensor name (first ';' part, C-string safe)."""
    head = name.split(";")[0].strip() or "t"
    head = re.sub(r"[^A-Za-z0-9_./:\-]", "_", head)
    return head[:80]


def _round_half_away_f32(x: np.float32) -> int:
    x = float(x)
    return int(math.floor(x + 0.5)) if x >= 0 else -int(math.floor(-x + 0.5))


def tflite_activation_range(act_code: int, scale: float, zero_point: int) -> tuple[int, int]:
    """TFLite CalculateActivationRangeQuantized for an int8 output: f / scale in float32, std::round."""
    lo, hi = -128, 127

    def q(f):
        return zero_point + _round_half_away_f32(np.float32(f) / np.float32(scale))

    if act_code == 1:
        lo = max(lo, q(0.0))
    elif act_code == 3:
        lo, hi = max(lo, q(0.0)), min(hi, q(6.0))
    elif act_code == 2:
        lo, hi = max(lo, q(-1.0)), min(hi, q(1.0))
    return lo, hi


def same_pads(in_size: int, k: int, stride: int, dilation: int) -> tuple[int, int, int]:
    """TFLite SAME: out = ceil(in / stride), total = max((out-1)·s + eff - in, 0), before = total // 2."""
    eff = (k - 1) * dilation + 1
    out = (in_size + stride - 1) // stride
    total = max((out - 1) * stride + eff - in_size, 0)
    return total // 2, total - total // 2, out


class _Importer:
    def __init__(self, model: TflModel, path: Path):
        self.m = model
        self.path = path
        self.g = Graph(name=_clean(path.stem))
        self.names: dict[int, str] = {}  # TFLite tensor index → IR tensor name
        self.skip: set[int] = set()  # edge QUANTIZE / DEQUANTIZE operators
        self.folded: dict[int, np.ndarray] = {}  # tensor index → value computed at import time (shape arithmetic)
        self.op: TflOperator | None = None

    # -- messages ------------------------------------------------------------------------------
    def where(self, op: TflOperator | None = None) -> str:
        op = op or self.op
        if op is None:
            return f"'{self.path.name}'"
        out = self.m.tensors[op.outputs[0]].name if op.outputs and op.outputs[0] >= 0 else ""
        return f"{op.name} (operator {op.index}{', ' + repr(_clean(out)) if out else ''})"

    def fail(self, msg: str, cls=ModelError, hint: str | None = None) -> TinyconvError:
        return cls(f"{self.where()}: {msg}", hint=hint, node=self.node_name())

    def node_name(self) -> str | None:
        return None if self.op is None else f"op{self.op.index}"

    # -- the whole model -----------------------------------------------------------------------
    def run(self) -> Graph:
        m = self.m
        unsupported = [op for op in m.operators if op.name not in SUPPORTED]
        if unsupported:
            kinds: dict[str, list[int]] = {}
            for op in unsupported:
                kinds.setdefault(op.name, []).append(op.index)
            listed = ", ".join(f"{name} (operator {ix[0]})" if len(ix) == 1 else
                               f"{name} x{len(ix)} (operators {', '.join(map(str, ix[:3]))}{', ...' if len(ix) > 3 else ''})"
                               for name, ix in kinds.items())  # fmt: skip
            raise UnsupportedError(
                f"'{self.path.name}' uses operators tinyconv does not support: {listed}",
                hint="supported: " + ", ".join(SUPPORTED),
                node=f"op{unsupported[0].index}",
            )
        if not m.inputs or not m.outputs:
            raise ModelError(f"'{self.path.name}': the model has no inputs or no outputs")
        self._edges()
        for op in m.operators:
            if op.index in self.skip:
                continue
            self.op = op
            want = OPTIONS_TYPE.get(op.name)
            if op.options_type and want is not None and op.options_type != want:
                raise self.fail(f"builtin_options_type {op.options_type} does not match the operator (expected {want})")
            try:
                getattr(self, "_" + op.name.lower())(op)
            except TinyconvError:
                raise
            except (ArithmeticError, IndexError, KeyError, TypeError, ValueError) as e:  # an input no check foresaw
                raise self.fail(f"cannot import this operator ({type(e).__name__}: {str(e).splitlines()[0][:160] if str(e) else ''})",
                                hint="if TFLite Micro runs the model, please report this") from None  # fmt: skip
        self.op = None
        g = self.g
        self._check_float_edges()
        for name in g.outputs:
            if name not in g.tensors:
                raise ModelError(f"'{self.path.name}': graph output '{name}' is never computed")
            if name in g.inputs:
                raise ModelError(f"'{self.path.name}': output '{name}' is the model's input; there is nothing to compile")
            if g.tensors[name].is_const:  # the generated code would never write it (fuzz case: an ADD's constant operand)
                raise ModelError(f"'{self.path.name}': output '{name}' is a constant; there is nothing to compile")
        self._finish()
        return g

    def _finish(self) -> None:
        from tinyconv.frontend import refuse_batched_images
        from tinyconv.ops import check_shapes
        from tinyconv.quantize import prepare_all

        g = self.g
        g.validate()
        check_shapes(g)
        refuse_batched_images(g)
        try:
            prepare_all(g)
        except TinyconvError:
            raise
        except (ValueError, ArithmeticError) as e:  # an op's prepare tripping over odd parameters
            raise ModelError(f"'{self.path.name}': cannot compute the int8 parameters of a layer ({type(e).__name__}: {e})") from None
        g.validate()

    def _edges(self) -> None:
        """Graph inputs/outputs; float edges with QUANTIZE / DEQUANTIZE become int8 edges."""
        m, g = self.m, self.g
        consumers: dict[int, list[TflOperator]] = {}
        producer: dict[int, TflOperator] = {}
        for op in m.operators:
            for i in op.inputs:
                if i >= 0:
                    consumers.setdefault(i, []).append(op)
            for o in op.outputs:
                producer[o] = op
        for idx in m.inputs:
            t = m.tensors[idx]
            if t.dtype == "int8":
                name = self.tensor(idx)
            elif t.dtype == "float32" and consumers.get(idx) and all(c.name == "QUANTIZE" and self.m.tensors[c.outputs[0]].dtype == "int8" for c in consumers[idx]):
                qs = consumers[idx]
                first = qs[0]
                params = {self._qkey(self.m.tensors[c.outputs[0]]) for c in qs}
                if len(params) > 1:
                    self.op = first
                    raise self.fail(f"float input '{t.name}' is quantized by several QUANTIZE operators with different parameters", UnsupportedError)
                name = self.tensor(first.outputs[0])
                for c in qs:
                    self.skip.add(c.index)
                    self.names[c.outputs[0]] = name
                s, z = g.tensors[name].quant.scalar()
                g.notes.append(f"input '{_clean(t.name)}' is float32 in the .tflite file and quantized by its QUANTIZE operator: "
                               f"tinyconv's input is that int8 tensor (scale {s:g}, zero point {z})")  # fmt: skip
            else:
                where = f"{consumers[idx][0].name} (operator {consumers[idx][0].index})" if consumers.get(idx) else "the model"
                raise UnsupportedError(
                    f"{where}: input '{_clean(t.name)}' is {t.dtype}: tinyconv imports fully int8-quantized .tflite models only",
                    hint="convert with full integer quantization (int8 inputs, activations and weights), or compile the float ONNX model with --calib",
                    node=f"op{consumers[idx][0].index}" if consumers.get(idx) else None,
                )
            shape = g.tensors[name].shape
            g.inputs.append(name)
            g.io_layout[name] = IOLayout(tuple(shape), tuple(range(len(shape))))
        outs = []
        for idx in m.outputs:
            t = m.tensors[idx]
            p = producer.get(idx)
            if t.dtype == "int8":
                outs.append((idx, idx))
            elif t.dtype == "float32" and p is not None and p.name == "DEQUANTIZE" and m.tensors[p.inputs[0]].dtype == "int8":
                self.skip.add(p.index)
                outs.append((idx, p.inputs[0]))
                q = m.tensors[p.inputs[0]].quant
                g.notes.append(f"output '{_clean(t.name)}' is float32 in the .tflite file, made by DEQUANTIZE: tinyconv's output is the int8 tensor before it"
                               + (f" (scale {float(q.scale[0]):g}, zero point {int(q.zero_point[0])})" if q is not None else ""))  # fmt: skip
            else:
                where = f"{p.name} (operator {p.index})" if p is not None else "the model"
                raise UnsupportedError(
                    f"{where}: output '{_clean(t.name)}' is {t.dtype}: tinyconv imports fully int8-quantized .tflite models only",
                    hint="convert with full integer quantization, or compile the float ONNX model with --calib",
                    node=f"op{p.index}" if p is not None else None,
                )
        self._outs = outs

    def _check_float_edges(self) -> None:
        g = self.g
        for _, inner in self._outs:
            if inner not in self.names:
                t = self.m.tensors[inner]
                if t.data is not None or inner in self.folded:
                    raise ModelError(f"'{self.path.name}': output '{_clean(t.name)}' is a constant")
                raise ModelError(f"'{self.path.name}': output '{_clean(t.name)}' is never computed")
            g.outputs.append(self.names[inner])
        for name in g.outputs:
            shape = g.tensors[name].shape
            g.io_layout[name] = IOLayout(tuple(shape), tuple(range(len(shape))))

    # -- tensors -------------------------------------------------------------------------------
    def _qkey(self, t: TflTensor):
        q = t.quant
        return None if q is None else (tuple(np.asarray(q.scale, np.float32).tolist()), tuple(q.zero_point.tolist()))

    def act_quant(self, t: TflTensor) -> QuantParams:
        q = t.quant
        if q is None or q.scale is None or q.scale.size == 0:
            raise self.fail(f"tensor '{_clean(t.name)}' has no quantization parameters")
        if q.scale.size != 1:
            raise self.fail(f"activation '{_clean(t.name)}' is quantized per channel, which tinyconv does not support", UnsupportedError)
        s, z = float(q.scale[0]), int(q.zero_point[0]) if q.zero_point.size else 0
        if not (math.isfinite(s) and s > 0):
            raise self.fail(f"tensor '{_clean(t.name)}' has scale {s}")
        if not -128 <= z <= 127:
            raise self.fail(f"tensor '{_clean(t.name)}' has zero point {z}, outside int8")
        return QuantParams.per_tensor(s, z)

    def tensor(self, idx: int) -> str:
        """The IR name of TFLite tensor `idx` as an int8 activation (or int8 constant operand)."""
        if idx in self.names:
            return self.names[idx]
        t = self.m.tensors[idx]
        if t.dtype != "int8":
            raise self.fail(
                f"tensor '{_clean(t.name)}' is {t.dtype}: tinyconv imports fully int8-quantized .tflite models only",
                UnsupportedError,
                hint="convert with full integer quantization (int8 activations and weights), or compile the float ONNX model with --calib",
            )
        qp = self.act_quant(t)
        if any(d <= 0 for d in t.shape) and t.shape:
            raise self.fail(f"tensor '{_clean(t.name)}' has shape {list(t.shape)} (dynamic or empty shapes are not supported)", UnsupportedError)
        name = self.g.unique_name(_clean(t.name))
        if t.data is not None:
            self.g.add_tensor(Tensor(name, tuple(t.shape), "int8", tensor_array(t), qp))
        else:
            self.g.add_tensor(Tensor(name, tuple(t.shape), "int8", None, qp))
        self.names[idx] = name
        return name

    def out(self, idx: int) -> str:
        if idx in self.names:
            raise self.fail(f"tensor '{_clean(self.m.tensors[idx].name)}' is written twice")
        if self.m.tensors[idx].data is not None:
            raise self.fail(f"output '{_clean(self.m.tensors[idx].name)}' is a constant")
        return self.tensor(idx)

    def const(self, idx: int, what: str) -> np.ndarray:
        if idx < 0:
            raise self.fail(f"{what} is missing")
        if idx in self.folded:
            return self.folded[idx]
        t = self.m.tensors[idx]
        if t.data is None:
            raise self.fail(f"{what} '{_clean(t.name)}' must be a constant", UnsupportedError)
        return tensor_array(t)

    def shape(self, name: str) -> tuple[int, ...]:
        return tuple(self.g.tensors[name].shape)

    def emit(self, op: str, inputs: list[str], outputs: list[str], attrs: dict, suffix: str = "") -> Node:
        node = Node(self._node_name(suffix), op, list(inputs), list(outputs), dict(attrs), origin=self.where())
        self.g.nodes.append(node)
        return node

    def _node_name(self, suffix: str) -> str:
        base = _clean(self.m.tensors[self.op.outputs[0]].name) if self.op.outputs else f"op{self.op.index}"
        name = base + suffix
        used = {n.name for n in self.g.nodes}
        k = 1
        while name in used:
            name = f"{base}{suffix}_{k}"
            k += 1
        return name

    def temp(self, base: str, shape, quant: QuantParams) -> str:
        name = self.g.unique_name(base)
        self.g.add_tensor(Tensor(name, tuple(shape), "int8", None, quant))
        return name

    def inputs(self, op: TflOperator, n_min: int, n_max: int | None = None) -> list[int]:
        n_max = n_min if n_max is None else n_max
        if not n_min <= len(op.inputs) <= n_max or len(op.outputs) != 1:
            raise self.fail(f"has {len(op.inputs)} inputs and {len(op.outputs)} outputs")
        return op.inputs

    # -- options -------------------------------------------------------------------------------
    def opt(self, fid: int, fmt: str, default):
        o = self.op.options
        return default if o is None else o.scalar(fid, fmt, default)

    def act_attr(self, code: int, out_name: str):
        """The float clamp whose int8 bounds (tinyconv's rule) equal TFLM's for this output."""
        if code in _FUSED_NAMES:
            raise self.fail(f"fused activation {_FUSED_NAMES[code]} is not supported", UnsupportedError)
        if code not in _FUSED:
            raise self.fail(f"unknown fused activation {code}")
        act = _FUSED[code]
        s, z = self.g.tensors[out_name].quant.scalar()
        want = tflite_activation_range(code, s, z)
        if activation_range(act, s, z) == want:
            return act
        lo = None if act[0] is None else float(np.float64(want[0] - z) * np.float64(np.float32(s)))
        hi = None if act[1] is None else float(np.float64(want[1] - z) * np.float64(np.float32(s)))
        exact = (lo, hi)
        if activation_range(exact, s, z) != want:
            raise self.fail(f"cannot express TFLite's activation bounds {want} as a clamp")
        return exact

    def pads2d(self, padding: int, in_hw, k_hw, strides, dilations, what="padding") -> tuple[int, int, int, int]:
        if padding == PADDING_VALID:
            return (0, 0, 0, 0)
        if padding != PADDING_SAME:
            raise self.fail(f"unknown {what} type {padding}")
        t, b, _ = same_pads(in_hw[0], k_hw[0], strides[0], dilations[0])
        l, r, _ = same_pads(in_hw[1], k_hw[1], strides[1], dilations[1])
        return (t, l, b, r)

    # -- weights -------------------------------------------------------------------------------
    def weights(self, idx: int, axis: int, cout: int, *, broadcast: bool, transform=None) -> str:
        """int8 weights with per-channel params on `axis` (moved to axis 0 by `transform`)."""
        t = self.m.tensors[idx]
        if t.dtype != "int8":
            raise self.fail(f"weights '{_clean(t.name)}' are {t.dtype}: tinyconv imports int8 weights only", UnsupportedError,
                            hint="convert with full integer quantization")  # fmt: skip
        w = self.const(idx, "the weights")
        q = t.quant
        if q is None or q.scale is None or q.scale.size == 0:
            raise self.fail(f"weights '{_clean(t.name)}' have no quantization parameters")
        if np.any(q.zero_point != 0):
            raise self.fail(f"weights '{_clean(t.name)}' have non-zero zero points (int8 weights are symmetric)", UnsupportedError)
        scale = np.asarray(q.scale, np.float32).reshape(-1)
        if not np.all(np.isfinite(scale)) or np.any(scale <= 0):
            bad = float(scale[~(np.isfinite(scale) & (scale > 0))][0])
            raise self.fail(f"weights '{_clean(t.name)}' have scale {bad:g}; scales must be positive and finite")
        if scale.size > 1:
            if q.axis != axis or scale.size != cout:
                raise self.fail(f"weights '{_clean(t.name)}' have {scale.size} scales on axis {q.axis}; expected {cout} on axis {axis}", UnsupportedError)
        elif broadcast:
            scale = np.repeat(scale, cout)  # TFLM forms conv multipliers per channel in double
        if transform is not None:
            w = transform(w)
        qp = QuantParams(scale.astype(np.float32), np.zeros(scale.shape, np.int32), 0 if scale.size > 1 or broadcast else None)
        if scale.size == 1 and not broadcast:
            qp = QuantParams(np.asarray(scale[0], np.float32), np.asarray(0, np.int32))
        return self.g.add_const(_clean(t.name), np.ascontiguousarray(w.astype(np.int8)), qp).name

    def bias(self, idx: int, cout: int, x_name: str, w_name: str) -> str | None:
        if idx < 0:
            return None
        t = self.m.tensors[idx]
        if t.dtype != "int32":
            raise self.fail(f"bias '{_clean(t.name)}' is {t.dtype}: tinyconv needs int32 biases", UnsupportedError)
        b = self.const(idx, "the bias").reshape(-1)
        if b.size != cout:
            raise self.fail(f"bias '{_clean(t.name)}' has {b.size} values for {cout} output channels")
        xs, _ = self.g.tensors[x_name].quant.scalar()
        ws = np.asarray(self.g.tensors[w_name].quant.scale, np.float64).reshape(-1)
        bs = (np.float64(np.float32(xs)) * ws).astype(np.float32)
        qp = QuantParams(bs, np.zeros(bs.shape, np.int32), 0 if bs.size > 1 else None)
        return self.g.add_const(_clean(t.name), b.astype(np.int32), qp).name

    # -- operators -----------------------------------------------------------------------------
    def _conv_2d(self, op):
        ins = self.inputs(op, 2, 3)
        x = self.tensor(ins[0])
        n, h, w_, cin = self._rank4(x)
        wt = self.m.tensors[ins[1]]
        if len(wt.shape) != 4:
            raise self.fail(f"weights have shape {list(wt.shape)}, expected [Cout, KH, KW, Cin]")
        cout, kh, kw, cin_g = wt.shape
        if cin_g <= 0 or cin % cin_g:
            raise self.fail(f"weights {list(wt.shape)} do not fit {cin} input channels")
        w = self.weights(ins[1], 0, cout, broadcast=True)
        b = self.bias(ins[2] if len(ins) > 2 else -1, cout, x, w)
        strides = (self.opt(2, "i", 1), self.opt(1, "i", 1))
        dil = (self.opt(5, "i", 1), self.opt(4, "i", 1))
        self._positive(strides + dil)
        pads = self.pads2d(self.opt(0, "b", 0), (h, w_), (kh, kw), strides, dil)
        y = self.out(op.outputs[0])
        attrs = {"strides": strides, "dilations": dil, "pads": pads, "groups": cin // cin_g, "act": self.act_attr(self.opt(3, "b", 0), y)}
        self.emit("conv2d", [x, w] + ([b] if b else []), [y], attrs)

    def _depthwise_conv_2d(self, op):
        ins = self.inputs(op, 2, 3)
        x = self.tensor(ins[0])
        n, h, w_, cin = self._rank4(x)
        wt = self.m.tensors[ins[1]]
        if len(wt.shape) != 4 or wt.shape[0] != 1:
            raise self.fail(f"depthwise weights have shape {list(wt.shape)}, expected [1, KH, KW, Cout]")
        _, kh, kw, cout = wt.shape
        if cout % cin:
            raise self.fail(f"{cout} output channels are not a multiple of the {cin} input channels")
        mult = self.opt(3, "i", 0)
        if mult != cout // cin:
            raise self.fail(f"depth_multiplier {mult} does not match {cout} outputs for {cin} inputs")
        # [1, KH, KW, Cout] → OHWI [Cout, KH, KW, 1], groups = Cin (output channel c reads input c // M).
        w = self.weights(ins[1], 3, cout, broadcast=True, transform=lambda a: a.transpose(3, 1, 2, 0))
        b = self.bias(ins[2] if len(ins) > 2 else -1, cout, x, w)
        strides = (self.opt(2, "i", 1), self.opt(1, "i", 1))
        dil = (self.opt(6, "i", 1), self.opt(5, "i", 1))
        self._positive(strides + dil)
        pads = self.pads2d(self.opt(0, "b", 0), (h, w_), (kh, kw), strides, dil)
        y = self.out(op.outputs[0])
        attrs = {"strides": strides, "dilations": dil, "pads": pads, "groups": cin, "act": self.act_attr(self.opt(4, "b", 0), y)}
        self.emit("conv2d", [x, w] + ([b] if b else []), [y], attrs)

    def _transpose_conv(self, op):
        ins = self.inputs(op, 3, 4)
        out_shape = [int(v) for v in self.const(ins[0], "the output shape").reshape(-1)]
        x = self.tensor(ins[2])
        n, h, w_, cin = self._rank4(x)
        wt = self.m.tensors[ins[1]]
        if len(wt.shape) != 4 or wt.shape[3] != cin:
            raise self.fail(f"weights have shape {list(wt.shape)}, expected [Cout, KH, KW, {cin}]")
        cout, kh, kw, _ = wt.shape
        w = self.weights(ins[1], 0, cout, broadcast=True)
        b = self.bias(ins[3] if len(ins) > 3 and ins[3] >= 0 else -1, cout, x, w)
        y = self.out(op.outputs[0])
        ys = self.shape(y)
        if len(out_shape) != 4 or tuple(out_shape) != ys:
            raise self.fail(f"output_shape {out_shape} differs from the output tensor's shape {list(ys)}")
        strides = (self.opt(2, "i", 1), self.opt(1, "i", 1))
        self._positive(strides)
        padding = self.opt(0, "b", 0)
        pads, outpad = [], []
        for in_size, k, s, o in ((h, kh, strides[0], ys[1]), (w_, kw, strides[1], ys[2])):
            # TFLM computes the padding as for a conv from the transpose conv's output (size o).
            before = 0 if padding == PADDING_VALID else same_pads(o, k, s, 1)[0]
            if padding not in (PADDING_SAME, PADDING_VALID):
                raise self.fail(f"unknown padding type {padding}")
            after = (in_size - 1) * s + k - before - o  # cropped at the end; negative: extra outputs
            pads.append((before, max(after, 0)))
            outpad.append(max(-after, 0))
        attrs = {
            "strides": strides, "pads": (pads[0][0], pads[1][0], pads[0][1], pads[1][1]), "output_padding": tuple(outpad),
            "dilations": (1, 1), "groups": 1, "act": self.act_attr(self.opt(3, "b", 0), y),
        }  # fmt: skip
        self.emit("conv_transpose2d", [x, w] + ([b] if b else []), [y], attrs)

    def _fully_connected(self, op):
        ins = self.inputs(op, 2, 3)
        if self.opt(1, "b", 0) != 0:
            raise self.fail("shuffled weights formats are not supported", UnsupportedError)
        x = self.tensor(ins[0])
        wt = self.m.tensors[ins[1]]
        if len(wt.shape) != 2:
            raise self.fail(f"weights have shape {list(wt.shape)}, expected [O, K]")
        o, k = wt.shape
        xs = self.shape(x)
        size = int(np.prod(xs))
        if k <= 0 or size % k:
            raise self.fail(f"input {list(xs)} cannot be flattened into rows of {k} features")
        if len(xs) != 2 or xs[1] != k:
            flat = self.temp(f"{x}_flat", (size // k, k), self.g.tensors[x].quant)
            self.emit("reshape", [x], [flat], {"shape": (size // k, k)}, suffix="_flatten")
            x = flat
        rows = size // k
        # Weights keep a per-tensor scale: TFLM's FULLY_CONNECTED forms that multiplier as
        # double(in_scale) · double(w_scale) / double(out_scale), as tinyconv's conv_multipliers does.
        w = self.weights(ins[1], 0, o, broadcast=False)
        b = self.bias(ins[2] if len(ins) > 2 else -1, o, x, w)
        y = self.out(op.outputs[0])
        ys = self.shape(y)
        act = self.act_attr(self.opt(0, "b", 0), y)
        if rows > 1:
            # Several rows (keep_num_dims, or a batch): the generated fully_connected C handles one
            # row, so run it as a 1x1 convolution over [1, rows, 1, K] (same integers, same multiplier).
            if int(np.prod(ys)) != rows * o:
                raise self.fail(f"output shape {list(ys)} does not hold {rows}x{o} values")
            wt4 = self.g.tensors[w]
            wt4.data = wt4.data.reshape(o, 1, 1, k)
            wt4.shape = (o, 1, 1, k)
            x4 = self.temp(f"{x}_rows", (1, rows, 1, k), self.g.tensors[x].quant)
            self.emit("reshape", [x], [x4], {"shape": (1, rows, 1, k)}, suffix="_rows")
            y4 = self.temp(f"{y}_rows", (1, rows, 1, o), self.g.tensors[y].quant)
            attrs = {"strides": (1, 1), "dilations": (1, 1), "pads": (0, 0, 0, 0), "groups": 1, "act": act}
            self.emit("conv2d", [x4, w] + ([b] if b else []), [y4], attrs)
            self.emit("reshape", [y4], [y], {"shape": ys}, suffix="_out")
            return
        if ys == (size // k, o):
            self.emit("fully_connected", [x, w] + ([b] if b else []), [y], {"act": act})
        else:
            if int(np.prod(ys)) != (size // k) * o:
                raise self.fail(f"output shape {list(ys)} does not hold {size // k}x{o} values")
            t = self.temp(f"{y}_2d", (size // k, o), self.g.tensors[y].quant)
            self.emit("fully_connected", [x, w] + ([b] if b else []), [t], {"act": act})
            self.emit("reshape", [t], [y], {"shape": ys}, suffix="_keepdims")

    def _pool(self, op, kind: str):
        ins = self.inputs(op, 1)
        x = self.tensor(ins[0])
        n, h, w_, c = self._rank4(x)
        strides = (self.opt(2, "i", 1), self.opt(1, "i", 1))
        kernel = (self.opt(4, "i", 1), self.opt(3, "i", 1))
        self._positive(strides + kernel)
        pads = self.pads2d(self.opt(0, "b", 0), (h, w_), kernel, strides, (1, 1))
        y = self.out(op.outputs[0])
        (si, zi), (so, zo) = self.g.tensors[x].quant.scalar(), self.g.tensors[y].quant.scalar()
        if zi != zo or abs(np.float32(si) - np.float32(so)) > POOL_SCALE_TOLERANCE:
            raise self.fail(f"input and output quantization differ ({si:g}, {zi} vs {so:g}, {zo}); TFLite requires them equal")
        target = y
        if (si, zi) != (so, zo):  # within TFLM's tolerance: TFLM copies the integers
            target = self.temp(f"{y}_inq", self.shape(y), self.g.tensors[x].quant)
        act = self.act_attr(self.opt(5, "b", 0), target)
        if kind == "max":
            self.emit("max_pool2d", [x], [target], {"kernel": kernel, "strides": strides, "pads": pads, "act": act})
        else:
            lo, hi = activation_range(act, si, zi)
            if (lo, hi) != (-128, 127):
                mid = self.temp(f"{target}_avg", self.shape(target), self.g.tensors[x].quant)
                self.emit("avg_pool2d", [x], [mid], {"kernel": kernel, "strides": strides, "pads": pads, "count_include_pad": False})
                self.emit("max_pool2d", [mid], [target], {"kernel": (1, 1), "strides": (1, 1), "pads": (0, 0, 0, 0), "act": act}, suffix="_act")
            else:
                self.emit("avg_pool2d", [x], [target], {"kernel": kernel, "strides": strides, "pads": pads, "count_include_pad": False})
        if target != y:
            self.emit("reshape", [target], [y], {"shape": self.shape(y)}, suffix="_requant")

    def _average_pool_2d(self, op):
        self._pool(op, "avg")

    def _max_pool_2d(self, op):
        self._pool(op, "max")

    def _binary(self, op, kind: str):
        ins = self.inputs(op, 2)
        a, b = self.tensor(ins[0]), self.tensor(ins[1])
        y = self.out(op.outputs[0])
        try:
            shape = tuple(np.broadcast_shapes(self.shape(a), self.shape(b)))
        except ValueError:
            raise self.fail(f"shapes {list(self.shape(a))} and {list(self.shape(b))} do not broadcast") from None
        if shape != self.shape(y):
            raise self.fail(f"output shape {list(self.shape(y))} is not the broadcast shape {list(shape)}")
        self.emit(kind, [a, b], [y], {"act": self.act_attr(self.opt(0, "b", 0), y)})

    def _add(self, op):
        self._binary(op, "add")

    def _mul(self, op):
        self._binary(op, "mul")

    def _reshape_like(self, op):
        if not op.inputs or len(op.outputs) != 1:
            raise self.fail(f"has {len(op.inputs)} inputs and {len(op.outputs)} outputs")
        x = self.tensor(op.inputs[0])
        y = self.out(op.outputs[0])
        if int(np.prod(self.shape(y))) != int(np.prod(self.shape(x))):
            raise self.fail(f"cannot reshape {list(self.shape(x))} to {list(self.shape(y))}")
        if op.name == "RESHAPE" and len(op.inputs) > 1 and op.inputs[1] >= 0 and (op.inputs[1] in self.folded or self.m.tensors[op.inputs[1]].data is not None):
            target = [int(d) for d in self._known(op.inputs[1], "the target shape").reshape(-1)]
            if target.count(-1) > 1 or any(d < -1 for d in target) or len(target) != len(self.shape(y)) or \
                    any(d not in (-1, have) for d, have in zip(target, self.shape(y))):
                raise self.fail(f"the target shape {target} does not give the output's shape {list(self.shape(y))}")
        # A reshape copies the integers (TFLM too), whatever the two tensors' params.
        self.emit("reshape", [x], [y], {"shape": self.shape(y)})

    _reshape = _squeeze = _expand_dims = _reshape_like

    def _softmax(self, op):
        ins = self.inputs(op, 1)
        x = self.tensor(ins[0])
        y = self.out(op.outputs[0])
        beta = self.opt(0, "f", 1.0)
        self.emit("softmax", [x], [y], {"axis": -1, "beta": float(np.float32(beta))})

    def _log_softmax(self, op):
        ins = self.inputs(op, 1)
        x = self.tensor(ins[0])
        y = self.out(op.outputs[0])
        if self.shape(x) != self.shape(y):
            raise self.fail(f"output shape {list(self.shape(y))} differs from the input's {list(self.shape(x))}")
        self.emit("log_softmax", [x], [y], {"axis": -1})

    def _concatenation(self, op):
        if not op.inputs or len(op.outputs) != 1:
            raise self.fail(f"has {len(op.inputs)} inputs and {len(op.outputs)} outputs")
        xs = [self.tensor(i) for i in op.inputs]
        y = self.out(op.outputs[0])
        rank = len(self.shape(y))
        axis = self.opt(0, "i", 0)
        if not -rank <= axis < rank:
            raise self.fail(f"axis {axis} is out of range for rank {rank}")
        if self.opt(1, "b", 0) != 0:
            raise self.fail("a fused activation on CONCATENATION is not supported", UnsupportedError)
        self.emit("concat", xs, [y], {"axis": axis % rank})

    def _pad(self, op):
        ins = self.inputs(op, 2, 3)
        x = self.tensor(ins[0])
        y = self.out(op.outputs[0])
        p = self.const(ins[1], "the paddings").astype(np.int64)
        r = len(self.shape(x))
        if p.shape != (r, 2):
            raise self.fail(f"paddings have shape {list(p.shape)}, expected [{r}, 2]")
        si, zi = self.g.tensors[x].quant.scalar()
        _, zo = self.g.tensors[y].quant.scalar()
        if len(ins) > 2 and ins[2] >= 0:
            cv = self.const(ins[2], "the constant value").reshape(-1)
            if cv.size != 1 or self.m.tensors[ins[2]].dtype != "int8":
                raise self.fail("the constant value must be one int8 number")
            pad_q = int(cv[0])
        else:
            pad_q = zo  # TFLM pads with the output zero point
        # tinyconv's pad writes quantize(value, input params); choose the value that gives pad_q.
        value = float(np.float64(pad_q - zi) * np.float64(np.float32(si)))
        self.emit("pad", [x], [y], {"pads": [int(v) for v in p[:, 0]] + [int(v) for v in p[:, 1]], "value": value})

    _padv2 = _pad

    def _mean(self, op):
        ins = self.inputs(op, 2)
        x = self.tensor(ins[0])
        y = self.out(op.outputs[0])
        axes = self.const(ins[1], "the axes").reshape(-1).astype(np.int64)
        r = len(self.shape(x))
        if any(not -r <= int(a) < r for a in axes):
            raise self.fail(f"axes {[int(a) for a in axes]} are out of range for rank {r}")
        axes = tuple(sorted({int(a) % r for a in axes}))
        keep = bool(self.opt(0, "b", 0))
        if r != 4 or axes != (1, 2):
            raise self.fail(f"int8 MEAN is supported over the spatial axes (1, 2) of a 4-D tensor only (got axes {list(axes)} of rank {r})", UnsupportedError)
        n, _, _, c = self.shape(x)
        want = (n, 1, 1, c) if keep else (n, c)
        if self.shape(y) == want:
            self.emit("mean", [x], [y], {"axes": (1, 2), "keepdims": keep})
        else:
            t = self.temp(f"{y}_mean", want, self.g.tensors[y].quant)
            self.emit("mean", [x], [t], {"axes": (1, 2), "keepdims": keep})
            self.emit("reshape", [t], [y], {"shape": self.shape(y)}, suffix="_reshape")

    def _unary(self, op, fn: str, lut, params: dict | None = None):
        ins = self.inputs(op, 1)
        x = self.tensor(ins[0])
        y = self.out(op.outputs[0])
        if self.shape(x) != self.shape(y):
            raise self.fail(f"output shape {list(self.shape(y))} differs from the input's {list(self.shape(x))}")
        si, zi = self.g.tensors[x].quant.scalar()
        so, zo = self.g.tensors[y].quant.scalar()
        try:
            table = lut(si, zi, so, zo)
        except ValueError as e:
            raise self.fail(str(e), UnsupportedError) from None
        self.emit("unary", [x], [y], {"fn": fn, "params": params or {}, "lut": table})

    def _logistic(self, op):
        def lut(si, zi, so, zo):
            if zo != -128:
                raise ValueError(f"int8 LOGISTIC needs output zero point -128 (got {zo}); TFLM refuses this model")
            return tflite_lut.logistic_lut(si, zi)

        self._unary(op, "sigmoid", lut)

    def _tanh(self, op):
        self._unary(op, "tanh", lambda si, zi, so, zo: tflite_lut.tanh_lut(si, zi))

    def _hard_swish(self, op):
        self._unary(op, "hardswish", tflite_lut.hard_swish_lut)

    def _relu(self, op):
        self._unary(op, "relu", tflite_lut.relu_lut)

    def _relu6(self, op):
        self._unary(op, "clip", lambda si, zi, so, zo: tflite_lut.relu6_lut(si, zi), {"lo": 0.0, "hi": 6.0})

    def _leaky_relu(self, op):
        alpha = float(self.opt(0, "f", 0.0))
        self._unary(op, "leakyrelu", lambda si, zi, so, zo: tflite_lut.leaky_relu_lut(si, zi, so, zo, alpha), {"alpha": alpha})

    # -- shape arithmetic, evaluated here ------------------------------------------------------
    # What the converter emits for a Keras Reshape (SHAPE → STRIDED_SLICE → PACK → RESHAPE): on a
    # static input every value is known, so SHAPE / STRIDED_SLICE / PACK are evaluated at import
    # time into `self.folded` and never generate code.
    def _fold(self, op, value: np.ndarray) -> None:
        if len(op.outputs) != 1 or op.outputs[0] < 0:
            raise self.fail(f"has {len(op.outputs)} outputs, expected 1")
        idx = op.outputs[0]
        t = self.m.tensors[idx]
        if idx in self.folded or idx in self.names or t.data is not None:
            raise self.fail(f"tensor '{_clean(t.name)}' is written twice")
        want = {"int32": np.int32, "int64": np.int64}.get(t.dtype)
        if want is None:
            raise self.fail(f"output '{_clean(t.name)}' is {t.dtype}; shape arithmetic is int32 or int64", UnsupportedError)
        value = np.asarray(value)
        if t.shape and tuple(value.shape) != tuple(t.shape) and not (-1 in t.shape and len(t.shape) == value.ndim):
            raise self.fail(f"computes shape {list(value.shape)} for '{_clean(t.name)}', which the file declares {list(t.shape)}")
        self.folded[idx] = value.astype(want)

    def _known(self, idx: int, what: str) -> np.ndarray:
        if idx < 0:
            raise self.fail(f"{what} is missing")
        if idx in self.folded or self.m.tensors[idx].data is not None:
            v = self.const(idx, what)
            if v.dtype.kind not in "iu":
                raise self.fail(f"{what} '{_clean(self.m.tensors[idx].name)}' is {v.dtype}; expected integers", UnsupportedError)
            return v.astype(np.int64)
        raise self.fail(f"{what} '{_clean(self.m.tensors[idx].name)}' is computed at run time; tinyconv evaluates shape arithmetic only on static shapes",
                        UnsupportedError)  # fmt: skip

    def _shape(self, op):
        ins = self.inputs(op, 1)
        idx = ins[0]
        shape = self.shape(self.names[idx]) if idx in self.names else self.m.tensors[idx].shape
        if any(d <= 0 for d in shape):
            raise self.fail(f"the input shape {list(shape)} is not static", UnsupportedError)
        self._fold(op, np.asarray(shape, np.int64))

    def _pack(self, op):
        if not op.inputs or len(op.inputs) > 64:
            raise self.fail(f"has {len(op.inputs)} inputs")
        values = [self._known(i, "the packed value") for i in op.inputs]
        if len({v.shape for v in values}) != 1:
            raise self.fail(f"packs values of different shapes {[list(v.shape) for v in values]}")
        count, axis = self.opt(0, "i", len(values)), self.opt(1, "i", 0)
        if count != len(values):
            raise self.fail(f"values_count {count} differs from its {len(values)} inputs")
        rank = values[0].ndim + 1
        if not -rank <= axis < rank:
            raise self.fail(f"axis {axis} is out of range for rank {rank}")
        self._fold(op, np.stack(values, axis=axis % rank))

    def _strided_slice(self, op):
        ins = self.inputs(op, 4)
        x = self._known(ins[0], "the sliced value")
        begin, end, strides = (self._known(i, w).reshape(-1) for i, w in zip(ins[1:], ("begin", "end", "strides")))
        n = len(begin)
        if not (len(end) == len(strides) == n <= x.ndim):
            raise self.fail(f"begin, end and strides have {n}, {len(end)} and {len(strides)} entries for a rank-{x.ndim} value")
        begin_mask, end_mask, ellipsis, new_axis, shrink = (self.opt(k, "i", 0) for k in range(5))
        offset = bool(self.opt(5, "b", 0))
        if ellipsis or new_axis:
            raise self.fail("ellipsis_mask and new_axis_mask are not supported", UnsupportedError)
        index = []
        for k in range(n):
            st, dim = int(strides[k]), x.shape[k]
            if st == 0:
                raise self.fail(f"stride 0 on axis {k}")
            b, e = int(begin[k]), int(end[k]) + (int(begin[k]) if offset else 0)
            if shrink >> k & 1:
                b = b + dim if b < 0 else b
                if not 0 <= b < dim:
                    raise self.fail(f"index {int(begin[k])} is out of range for axis {k} of size {dim}")
                index.append(b)
            else:
                index.append(slice(None if begin_mask >> k & 1 else b, None if end_mask >> k & 1 else e, st))
        self._fold(op, x[tuple(index)])

    def _quantize(self, op):
        ins = self.inputs(op, 1)
        src = self.m.tensors[ins[0]]
        if src.dtype != "int8":
            raise self.fail(f"QUANTIZE from {src.dtype} inside the graph is not supported (only float32 → int8 at the model input)", UnsupportedError)
        x = self.tensor(ins[0])
        y = self.out(op.outputs[0])
        # int8 → int8 requantization: a one-input concat (MBQM(q - zp_in, s_in / s_out) + zp_out).
        self.emit("concat", [x], [y], {"axis": len(self.shape(y)) - 1 if self.shape(y) else 0})

    def _dequantize(self, op):
        raise self.fail("DEQUANTIZE is supported only where it produces a model output", UnsupportedError)

    # -- checks --------------------------------------------------------------------------------
    def _rank4(self, name: str):
        s = self.shape(name)
        if len(s) != 4:
            raise self.fail(f"input has shape {list(s)}, expected NHWC (rank 4)")
        return s

    def _positive(self, values):
        if any(int(v) <= 0 for v in values):
            raise self.fail(f"strides, dilations and window sizes must be positive (got {list(values)})")
        if any(int(v) > MAX_WINDOW for v in values):
            raise self.fail(f"strides, dilations and window sizes above {MAX_WINDOW} are not supported (got {list(values)})", UnsupportedError)
