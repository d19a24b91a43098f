"""Point-wise activations: `unary` (one function, a 256-entry lookup table) and `prelu`.

unary (attrs `fn`, `params`, optional `lut`)
  float: the ONNX operator of the same name —
    relu         max(x, 0)
    sigmoid      1 / (1 + exp(-x))
    tanh         tanh(x)
    hardsigmoid  max(0, min(1, alpha·x + beta))          params alpha (0.2), beta (0.5)
    hardswish    x · max(0, min(1, x/6 + 1/2))            (ONNX HardSwish, opset 14)
    leakyrelu    x ≥ 0 ? x : alpha·x                      params alpha (0.01)
    clip         min(max(x, lo), hi)                      params lo, hi (None / ±inf = open)
    elu          x > 0 ? x : alpha·(exp(x) - 1)           params alpha (1.0)
  int8: out = lut[in + 128]. Without `lut`, prepare computes entry i (input q = i - 128) as
    quantize(f((q - in_zp) · in_scale), out_scale, out_zp)
  entirely in float64 (the scales are the float32 values widened exactly), rounding half away from
  zero and clamping to [-128, 127]: the rule of `tinyconv.fixedpoint.quantize`, the model-edge
  quantizer. The table is therefore the best int8 answer up to that rounding rule, and reference
  and C agree by construction. (float64 libm results could, in principle, differ between hosts
  in the last ulp; a table entry only changes if that ulp decides an exact rounding tie.)
  With attr `lut` (int8[256], entry i for input i - 128; e.g. a TFLite importer's TFLM-exact
  table) prepare takes it as is and `fn` only defines the float reference.

prelu (inputs x, slope; slope per channel = the last axis of x, or a single value)
  float: x ≥ 0 ? x : slope[c]·x (ONNX PRelu).
  int8: TFLite PRELU arithmetic with a per-channel alpha. The slope is a weight input, quantized
  like conv weights (symmetric int8 per channel, so alpha_q[c] = ±127 or 0 and each channel's
  slope is kept to float32 precision by its own scale). With d = x - in_zp:
    d ≥ 0: MBQM(d, M1, s1),               M1 = in_scale / out_scale
    d < 0: MBQM(d · (alpha_q[c] - alpha_zp), M2[c], s2[c]),  M2[c] = in_scale · alpha_scale[c] / out_scale
  then + out_zp, clamp to [-128, 127]. Multipliers are formed in double from the float32 scales
  (TFLite prelu.cc). An already quantized slope (TFLite: one int8 tensor with its own scale and
  zero point) goes through the same formula, so a TFLite PRELU is reproduced bit for bit.
  Why not a per-channel [C][256] table: it costs 256·C bytes of flash, and a float slope kept in
  the graph (float_const_inputs) cannot be emitted by the code generator, which writes every
  constant input of a layer as an int8/int32 array.
"""

from __future__ import annotations

import math

import numpy as np

from tinyconv.errors import ModelError, UnsupportedError
from tinyconv.fixedpoint import multiply_by_quantized_multiplier, quantize, quantize_multiplier
from tinyconv.ops.base import Op, qparams, register

UNARY_FNS = ("relu", "sigmoid", "tanh", "hardsigmoid", "hardswish", "leakyrelu", "clip", "elu")
_DEFAULTS = {"hardsigmoid": {"alpha": 0.2, "beta": 0.5}, "leakyrelu": {"alpha": 0.01}, "elu": {"alpha": 1.0}}


def _param(fn: str, params: dict, key: str) -> float:
    v = (params or {}).get(key)
    return float(_DEFAULTS[fn][key] if v is None else v)


def _bound(v, default: float) -> float:
    return default if v is None else float(v)


def apply_unary(fn: str, params: dict | None, x: np.ndarray) -> np.ndarray:
    """f(x) in float64 (the float reference and the table both use this)."""
    x = np.asarray(x, np.float64)
    params = params or {}
    if fn == "relu":
        return np.maximum(x, 0.0)
    if fn == "sigmoid":
        # Split by sign so exp never overflows.
        e = np.exp(-np.abs(x))
        return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
    if fn == "tanh":
        return np.tanh(x)
    if fn == "hardsigmoid":
        return np.clip(_param(fn, params, "alpha") * x + _param(fn, params, "beta"), 0.0, 1.0)
    if fn == "hardswish":
        return x * np.clip(x / 6.0 + 0.5, 0.0, 1.0)
    if fn == "leakyrelu":
        return np.where(x >= 0, x, _param(fn, params, "alpha") * x)
    if fn == "clip":
        return np.clip(x, _bound(params.get("lo"), -math.inf), _bound(params.get("hi"), math.inf))
    if fn == "elu":
        return np.where(x > 0, x, _param(fn, params, "alpha") * np.expm1(np.minimum(x, 0.0)))
    raise UnsupportedError(f"unary function '{fn}' is not supported (choose from {', '.join(UNARY_FNS)})")


def unary_lut(fn: str, params: dict | None, in_scale: float, in_zp: int, out_scale: float, out_zp: int) -> np.ndarray:
    """The 256-entry table: entry i = quantize(f(dequantize(i - 128))), float64, half away from zero."""
    q = np.arange(-128, 128, dtype=np.int64)
    real = (q - int(in_zp)).astype(np.float64) * np.float64(np.float32(in_scale))
    return quantize(apply_unary(fn, params, real), out_scale, int(out_zp))


def _check_fn(node) -> None:
    fn = node.attrs.get("fn")
    if fn not in UNARY_FNS:
        raise UnsupportedError(f"{node.where()}: unary function '{fn}' is not supported (choose from {', '.join(UNARY_FNS)})", node=node.name)
    lo, hi = (node.attrs.get("params") or {}).get("lo"), (node.attrs.get("params") or {}).get("hi")
    if fn == "clip" and lo is not None and hi is not None and float(lo) > float(hi):
        raise ModelError(f"{node.where()}: clip bounds lo={lo} > hi={hi}", node=node.name)


@register
class Unary(Op):
    name = "unary"
    kernel_files = ("tc_lut",)

    def infer_shapes(self, node, graph):
        _check_fn(node)
        return [tuple(graph.tensors[node.inputs[0]].shape)]

    def float_ref(self, node, ins):
        return [apply_unary(node.attrs["fn"], node.attrs.get("params"), ins[0]).astype(np.float32)]

    def prepare(self, node, graph):
        _check_fn(node)
        given = node.attrs.get("lut")
        if given is not None:
            lut = np.asarray(given)
            if lut.shape != (256,):
                raise ModelError(f"{node.where()}: the lookup table has shape {list(lut.shape)}, expected [256]", node=node.name)
            if lut.dtype != np.int8 and (not np.issubdtype(lut.dtype, np.integer) or lut.min() < -128 or lut.max() > 127):
                raise ModelError(f"{node.where()}: the lookup table must hold int8 values", node=node.name)
            return {"lut": lut.astype(np.int8)}
        in_s, in_z = qparams(graph, node.inputs[0])
        out_s, out_z = qparams(graph, node.outputs[0])
        return {"lut": unary_lut(node.attrs["fn"], node.attrs.get("params"), in_s, in_z, out_s, out_z)}

    def int8_ref(self, node, ins):
        return [node.qattrs["lut"][ins[0].astype(np.int64) + 128].astype(np.int8)]

    def kernel_consts(self, node, graph):
        return {"lut": node.qattrs["lut"]}

    def in_place_ok(self, node):
        return True


def _prelu_channels(node, graph) -> int:
    x = graph.tensors[node.inputs[0]].shape
    c = graph.tensors[node.inputs[1]].size
    if c != 1 and (len(x) == 0 or x[-1] != c):
        raise ModelError(f"{node.where()}: {c} slopes do not match the input {list(x)} (one per channel, the last axis, or one)", node=node.name)
    return c


@register
class PRelu(Op):
    name = "prelu"
    kernel_files = ("tc_lut",)
    weight_inputs = {1: 0}  # the slope: symmetric int8 per channel (see the module docstring)

    def infer_shapes(self, node, graph):
        if len(node.inputs) != 2:
            raise ModelError(f"{node.where()}: prelu takes two inputs (x, slope)", node=node.name)
        _prelu_channels(node, graph)
        return [tuple(graph.tensors[node.inputs[0]].shape)]

    def float_ref(self, node, ins):
        x = np.asarray(ins[0], np.float64)
        slope = np.asarray(ins[1], np.float64).reshape(-1)
        return [np.where(x >= 0, x, x * slope).astype(np.float32)]

    def prepare(self, node, graph):
        c = _prelu_channels(node, graph)
        t = graph.tensors[node.inputs[1]]
        if t.dtype != "int8" or t.quant is None:
            raise ModelError(f"{node.where()}: the int8 prelu needs an int8 slope with quantization parameters (got {t.dtype})", node=node.name)
        zp = np.broadcast_to(np.asarray(t.quant.zero_point, np.int64).reshape(-1), (c,))
        if np.any(zp != zp[0]):
            raise UnsupportedError(f"{node.where()}: per-channel slope zero points are not supported", node=node.name)
        a_scale = np.broadcast_to(np.asarray(t.quant.scale, np.float32).reshape(-1), (c,))
        in_s, in_z = qparams(graph, node.inputs[0])
        out_s, out_z = qparams(graph, node.outputs[0])
        in_d, out_d = float(np.float32(in_s)), float(np.float32(out_s))
        m1, s1 = quantize_multiplier(in_d / out_d)
        pairs = [quantize_multiplier(in_d * float(a) / out_d) for a in a_scale]
        return {
            "channels": c,
            "input_offset": -in_z,
            "output_offset": out_z,
            "identity_multiplier": m1,
            "identity_shift": s1,
            "alpha_offset": -int(zp[0]),
            "alpha_multiplier": np.array([p[0] for p in pairs], np.int32),
            "alpha_shift": np.array([p[1] for p in pairs], np.int32),
        }

    def int8_ref(self, node, ins):
        q = node.qattrs
        d = ins[0].astype(np.int64) + q["input_offset"]
        alpha = ins[1].astype(np.int64).reshape(-1) + q["alpha_offset"]
        pos = multiply_by_quantized_multiplier(d, q["identity_multiplier"], q["identity_shift"])
        neg = multiply_by_quantized_multiplier(d * alpha, q["alpha_multiplier"], q["alpha_shift"])
        y = np.where(d >= 0, pos, neg) + q["output_offset"]
        return [np.clip(y, -128, 127).astype(np.int8)]

    def template_context(self, node, graph):
        return {"outer": graph.tensors[node.inputs[0]].size // max(1, node.qattrs["channels"])}

    def kernel_consts(self, node, graph):
        return {"alpha_multiplier": node.qattrs["alpha_multiplier"], "alpha_shift": node.qattrs["alpha_shift"]}

    def in_place_ok(self, node):
        return True

    def macs(self, node, graph):
        return graph.tensors[node.inputs[0]].size
