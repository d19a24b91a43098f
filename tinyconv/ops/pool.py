"""Pooling: max, average (TFLite rounding), spatial mean, global max.

Max pooling never requantizes (output params are the input's); padding never wins.
Average pooling follows TFLite: acc = Σ valid elements, n = their count (or the full window with
count_include_pad, padded elements then being the zero point), avg rounded half away from zero;
if the output params differ from the input's (pre-quantized models), the average is requantized.
"""

from __future__ import annotations

import math

import numpy as np

from tinyconv.errors import ModelError
from tinyconv.fixedpoint import activation_range, quantize_multiplier, requantize
from tinyconv.ops.base import SAME_AS_INPUT, Op, max_centred_int8, out_shape_1d, pad_nhwc, qparams, refuse_int32_overflow, register
from tinyconv.specialise import Variant


def _pool_out_shape(node, graph):
    n, h, w, c = graph.tensors[node.inputs[0]].shape
    a = node.attrs
    kh, kw = a["kernel"]
    t, l, b, r = a["pads"]
    oh = out_shape_1d(h, kh, a["strides"][0], 1, t, b)
    ow = out_shape_1d(w, kw, a["strides"][1], 1, l, r)
    if oh <= 0 or ow <= 0:
        raise ModelError(f"{node.where()}: pooling window larger than the padded input", node=node.name)
    if max(t, b) >= kh or max(l, r) >= kw:
        raise ModelError(f"{node.where()}: padding {a['pads']} is not smaller than the window {a['kernel']}", node=node.name)
    return [(n, oh, ow, c)]


def _window_reduce(x, node, reduce, fill):
    """reduce (np.maximum or np.add) over every pooling window, the whole batch at once.

    Rectangular windows are separable: reduce along H, then along W; each step reduces a
    sliding-window view in C, so time is O(kh + kw) per output and memory the output's size.
    Sums of int64 are exact in any order; max is order-free."""
    a = node.attrs
    xp = pad_nhwc(x, a["pads"], fill)
    oh, ow = _pool_out_shape_from(x.shape, a)
    ufunc = np.maximum if reduce is np.maximum else np.add
    for axis, k, stride, size in ((1, a["kernel"][0], a["strides"][0], oh), (2, a["kernel"][1], a["strides"][1], ow)):
        win = np.lib.stride_tricks.sliding_window_view(xp, k, axis=axis)
        idx = [slice(None)] * 4
        idx[axis] = slice(0, stride * (size - 1) + 1, stride)
        xp = ufunc.reduce(win[tuple(idx)], axis=-1)
    return xp


def _pool_out_shape_from(shape, a):
    _, h, w, _ = shape
    t, l, b, r = a["pads"]
    return (out_shape_1d(h, a["kernel"][0], a["strides"][0], 1, t, b), out_shape_1d(w, a["kernel"][1], a["strides"][1], 1, l, r))


def _valid_counts(x_shape, a) -> np.ndarray:
    """Per output position, how many window elements are inside the input (not padding)."""
    t, l, b, r = a["pads"]
    oh, ow = _pool_out_shape_from(x_shape, a)

    def per_axis(size, k, stride, lo, out):
        start = np.arange(out) * stride - lo
        return np.minimum(start + k, size) - np.maximum(start, 0)

    rows = per_axis(x_shape[1], a["kernel"][0], a["strides"][0], t, oh)
    cols = per_axis(x_shape[2], a["kernel"][1], a["strides"][1], l, ow)
    return (rows[:, None] * cols[None, :]).astype(np.int64).reshape(1, oh, ow, 1)


def _requant_params(graph, node, in_name, out_name, divisor: float = 1.0) -> dict:
    in_scale, in_zp = qparams(graph, in_name)
    out_scale, out_zp = qparams(graph, out_name)
    mult, shift = quantize_multiplier(float(np.float32(in_scale)) / (float(np.float32(out_scale)) * divisor))
    return {"input_zp": in_zp, "output_zp": out_zp, "multiplier": mult, "shift": shift}


@register
class MaxPool2D(Op):
    name = "max_pool2d"
    output_policy = SAME_AS_INPUT
    kernel_files = ("tc_pool",)

    def infer_shapes(self, node, graph):
        return _pool_out_shape(node, graph)

    def float_ref(self, node, ins):
        y = _window_reduce(ins[0].astype(np.float32), node, np.maximum, -np.inf)
        act = node.attrs.get("act")
        if act is not None:
            y = np.clip(y, -np.inf if act[0] is None else act[0], np.inf if act[1] is None else act[1])
        return [y.astype(np.float32)]

    def prepare(self, node, graph):
        if graph.tensors[node.inputs[0]].quant.scalar() != graph.tensors[node.outputs[0]].quant.scalar():
            raise ModelError(f"{node.where()}: int8 max pooling needs equal input and output quantization", node=node.name)
        scale, zp = qparams(graph, node.outputs[0])
        act_min, act_max = activation_range(node.attrs.get("act"), scale, zp)
        return {"act_min": act_min, "act_max": act_max}

    def int8_ref(self, node, ins):
        y = _window_reduce(ins[0].astype(np.int16), node, np.maximum, -129)  # padding never wins
        return [np.clip(y, node.qattrs["act_min"], node.qattrs["act_max"]).astype(np.int8)]


@register
class AvgPool2D(Op):
    name = "avg_pool2d"
    output_policy = SAME_AS_INPUT
    kernel_files = ("tc_pool",)

    def infer_shapes(self, node, graph):
        return _pool_out_shape(node, graph)

    def float_ref(self, node, ins):
        a = node.attrs
        s = _window_reduce(ins[0].astype(np.float64), node, np.add, 0.0)
        if a.get("count_include_pad"):
            n = a["kernel"][0] * a["kernel"][1]
        else:
            n = _valid_counts(ins[0].shape, a)
        return [(s / n).astype(np.float32)]

    def prepare(self, node, graph):
        # tc_pool.c sums raw int8 values (and zero points for padding) over the window, then adds n/2.
        n = node.attrs["kernel"][0] * node.attrs["kernel"][1]
        refuse_int32_overflow(node, 128 * n + n // 2, "window")
        p = _requant_params(graph, node, node.inputs[0], node.outputs[0])
        p["requantize"] = qparams(graph, node.inputs[0]) != qparams(graph, node.outputs[0])
        return p

    def variants(self, node, graph, target):
        """kernels/dsp global average: the window is the whole input (no padding), channels in
        groups of 4, and the int16 lane sums cannot wrap (pixels * 128 < 2^15)."""
        n, h, w, c = graph.tensors[node.inputs[0]].shape
        a = node.attrs
        whole = tuple(a["kernel"]) == (h, w) and not any(a["pads"]) and graph.tensors[node.outputs[0]].shape[1:3] == (1, 1)
        if target.backends[0] != "dsp" or not whole or c % 4 or h * w * 128 >= 1 << 15:
            return []
        return [Variant("dsp-global-avg", "balanced", includes=("tc_pool_dsp.h",), values={"hw": h * w, "channels": c})]

    def int8_ref(self, node, ins):
        a, q = node.attrs, node.qattrs
        x = ins[0].astype(np.int64)
        if a.get("count_include_pad"):
            acc = _window_reduce(x, node, np.add, q["input_zp"])
            n = np.int64(a["kernel"][0] * a["kernel"][1])
        else:
            acc = _window_reduce(x, node, np.add, 0)
            n = _valid_counts(x.shape, a)
        # C division truncates toward zero: round half away from zero.
        avg = np.where(acc > 0, (acc + n // 2) // n, -((-acc + n // 2) // n))
        if q["requantize"]:
            from tinyconv.fixedpoint import multiply_by_quantized_multiplier

            avg = multiply_by_quantized_multiplier(avg - q["input_zp"], q["multiplier"], q["shift"]) + q["output_zp"]
        return [np.clip(avg, -128, 127).astype(np.int8)]


@register
class Mean(Op):
    """Mean over the spatial axes (1, 2) of NHWC: GlobalAveragePool and ReduceMean."""

    name = "mean"
    kernel_files = ("tc_pool",)

    def infer_shapes(self, node, graph):
        shape = graph.tensors[node.inputs[0]].shape
        axes = tuple(node.attrs["axes"])
        if axes != (1, 2) or len(shape) != 4:
            raise ModelError(f"{node.where()}: int8 mean is supported over the spatial axes only (got axes {axes})", node=node.name)
        n, _, _, c = shape
        return [(n, 1, 1, c) if node.attrs.get("keepdims", True) else (n, c)]

    def float_ref(self, node, ins):
        y = ins[0].astype(np.float64).mean(axis=(1, 2), keepdims=True)
        return [y.reshape(self._oshape(node, ins[0].shape)).astype(np.float32)]

    @staticmethod
    def _oshape(node, in_shape):
        n, _, _, c = in_shape
        return (n, 1, 1, c) if node.attrs.get("keepdims", True) else (n, c)

    def prepare(self, node, graph):
        """TFLite's MEAN: the multiplier of in_scale / out_scale with 1/n folded into it as
        (m << s) / n, s = min(floor(log2 n), 31 + shift) — not quantize_multiplier(in / (out · n)),
        which differs in the last bit for about 6 % of sums."""
        _, h, w, _ = graph.tensors[node.inputs[0]].shape
        n = h * w
        # tc_mean_hw_s8 (and TFLM) sum q - input_zp over the h·w positions in int32.
        refuse_int32_overflow(node, n * max_centred_int8(qparams(graph, node.inputs[0])[1]), "spatial")
        p = _requant_params(graph, node, node.inputs[0], node.outputs[0])
        s = min(int(math.floor(math.log2(n))), 32, 31 + int(p["shift"]))
        p["multiplier"] = int((int(p["multiplier"]) << s) // n)
        p["shift"] = int(p["shift"]) - s
        p["count"] = n
        return p

    def int8_ref(self, node, ins):
        q = node.qattrs
        acc = (ins[0].astype(np.int64) - q["input_zp"]).sum(axis=(1, 2), keepdims=True)
        y = requantize(acc, q["multiplier"], q["shift"], q["output_zp"], -128, 127)
        return [y.reshape(self._oshape(node, ins[0].shape))]

    def macs(self, node, graph):
        return graph.tensors[node.inputs[0]].size


@register
class GlobalMaxPool(Op):
    name = "global_max_pool"
    output_policy = SAME_AS_INPUT
    kernel_files = ("tc_pool",)

    def infer_shapes(self, node, graph):
        n, _, _, c = graph.tensors[node.inputs[0]].shape
        return [(n, 1, 1, c)]

    def float_ref(self, node, ins):
        return [ins[0].max(axis=(1, 2), keepdims=True).astype(np.float32)]

    def int8_ref(self, node, ins):
        return [ins[0].max(axis=(1, 2), keepdims=True).astype(np.int8)]
