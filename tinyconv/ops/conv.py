"""Convolution (any groups, so depthwise too) and fully connected layers.

int8: acc[c] = bias[c] + Σ (x - x_zp) · w over the valid taps (padding contributes nothing),
then requantize with the per-channel multiplier (QUANT.md). The sums are one float64 matrix
product per group over an im2col view (BLAS), which is exact here: |products| ≤ 255 · 128 < 2^15,
so any partial sum of fewer than 2^38 terms stays below 2^53 whatever order BLAS adds in.
The int8 path (integer operands) uses float32 products, twice as fast, over slices of the
reduction short enough that max|x| · max|w| · length < 2^24: every partial sum is then an integer
float32 holds exactly, and the slices are added in float64.
The whole batch goes through at once, in chunks of at most CHUNK_BYTES of im2col rows.
"""

from __future__ import annotations

import numpy as np

from tinyconv.errors import ModelError
from tinyconv.fixedpoint import activation_range, conv_multipliers, quantize_multipliers, requantize
from tinyconv.ops.base import Op, max_centred_int8, out_shape_1d, pad_nhwc, qparams, refuse_int32_overflow, register, windows
from tinyconv.ops.conv_layout import dsp_chunk, dsp_depthwise_int16, dsp_fc_quads, dsp_pairs_int16, dsp_row_run, pad_rows
from tinyconv.requant import KIND_RIGHT, accumulator_bound, accumulator_range, requant_records
from tinyconv.specialise import Variant

CHUNK_BYTES = 64 << 20  # bound on the im2col block materialised at a time


def exact_float32_span(x: np.ndarray, w: np.ndarray) -> int:
    """How many integer products x·w float32 can sum exactly in any order (|partial sums| < 2^24)."""
    bound = float(np.abs(x).max(initial=0)) * float(np.abs(w).max(initial=0))
    return 2**62 if bound == 0 else max(1, int((2**24 - 1) // bound))


def conv_accumulate(x: np.ndarray, w: np.ndarray, strides, dilations, pads, groups: int, *, integer: bool = False) -> np.ndarray:
    """Σ over taps and input channels of x · w; x NHWC (already zero-centred), w OHWI. float64 out.
    `integer`: x and w hold integers (the int8 path), so float32 products are exact in short spans."""
    dtype = np.float32 if integer else np.float64
    x = pad_nhwc(np.asarray(x, dtype), pads, 0.0)
    span = exact_float32_span(x, w) if integer else 2**62
    cout, kh, kw, cin_g = w.shape
    n, hp, wp, cin = x.shape
    oh = out_shape_1d(hp, kh, strides[0], dilations[0], 0, 0)
    ow = out_shape_1d(wp, kw, strides[1], dilations[1], 0, 0)
    cout_g = cout // groups
    wg = np.asarray(w, dtype).reshape(groups, cout_g, kh, kw, cin_g)
    if cin_g == 1:  # depthwise: a multiply-add per tap, vectorised over batch, pixels and channels
        acc = np.zeros((n, oh, ow, groups, cout_g), np.float64)
        for i, j, view in windows(x, (kh, kw), strides, dilations, (oh, ow)):
            acc += view[..., None] * wg[:, :, i, j, 0]
        return acc.reshape(n, oh, ow, cout)
    sn, sh, sw, sc = x.strides
    cols = np.lib.stride_tricks.as_strided(
        x, (n, oh, ow, kh, kw, cin), (sn, sh * strides[0], sw * strides[1], sh * dilations[0], sw * dilations[1], sc), writeable=False)
    k = kh * kw * cin_g
    acc = np.empty((n, oh, ow, groups, cout_g), np.float64)
    budget = max(1, CHUNK_BYTES // (x.itemsize * k))  # output positions per im2col block
    cw = min(ow, budget)
    ch = min(oh, max(1, budget // cw))
    cn = min(n, max(1, budget // (cw * ch)))
    for g in range(groups):
        wmat = wg[g].reshape(cout_g, k).T
        cg = cols[..., g * cin_g : (g + 1) * cin_g]
        for n0 in range(0, n, cn):
            for h0 in range(0, oh, ch):
                for w0 in range(0, ow, cw):
                    block = cg[n0 : n0 + cn, h0 : h0 + ch, w0 : w0 + cw]
                    rows = block.reshape(-1, k)
                    if span >= k:
                        y = rows @ wmat
                    else:  # exact float32 spans of the reduction, added in float64
                        y = np.zeros((len(rows), cout_g), np.float64)
                        for k0 in range(0, k, span):
                            y += rows[:, k0 : k0 + span] @ wmat[k0 : k0 + span]
                    acc[n0 : n0 + cn, h0 : h0 + ch, w0 : w0 + cw, g] = y.reshape(*block.shape[:3], cout_g)
    return acc.reshape(n, oh, ow, cout)


def _clamp_float(y: np.ndarray, act) -> np.ndarray:
    if act is None:
        return y
    lo, hi = act
    return np.clip(y, -np.inf if lo is None else lo, np.inf if hi is None else hi)


def _prepare_weighted(node, graph, bias_index: int, weight_index: int, out_name: str) -> dict:
    in_scale, in_zp = qparams(graph, node.inputs[0])
    out_scale, out_zp = qparams(graph, out_name)
    wq = graph.tensors[node.inputs[weight_index]].quant
    mult, shift = quantize_multipliers(conv_multipliers(in_scale, wq.scale, out_scale))
    cout = graph.tensors[node.inputs[weight_index]].shape[0]
    if mult.size == 1:
        mult, shift = np.repeat(mult, cout), np.repeat(shift, cout)
    act_min, act_max = activation_range(node.attrs.get("act"), out_scale, out_zp)
    has_bias = len(node.inputs) > bias_index
    # The kernels accumulate in int32: refuse a layer whose worst case could wrap.
    w = graph.tensors[node.inputs[weight_index]].data.reshape(cout, -1)
    wide = np.int16 if w.dtype == np.int8 else np.int64  # int16 holds |-128|, at a quarter of int64's traffic
    worst = np.abs(w.astype(wide)).sum(axis=1, dtype=np.int64) * max_centred_int8(in_zp)
    if has_bias:
        worst = worst + np.abs(graph.tensors[node.inputs[bias_index]].data.astype(np.int64))
    refuse_int32_overflow(node, int(worst.max()))
    return {
        "input_offset": -in_zp,
        "output_offset": out_zp,
        "multiplier": mult,
        "shift": shift,
        "act_min": act_min,
        "act_max": act_max,
        "has_bias": has_bias,
    }


# Rough code flash of one inlined layer kernel (measured: 0.5-3 KB on M4 at -O2).
INLINE_CODE_BYTES = 2000
# The speed depthwise kernel writes each border class out (kws's 3x3 layers: about 2.5 KB more).
DW_BORDER_CODE_BYTES = 2500


def dsp_variants(node, graph, target, template: str, header: str, packed: dict | None) -> list[Variant]:
    """DSP (M4/M7) per-layer variants: the kernel inlined into the layer's own function with literal
    parameters and fast requantization records (balanced: 16 bytes per output channel), and at
    speed also the weights laid out offline (`packed`: extra consts and template values)."""
    if target.backends[0] != "dsp":
        return []
    q = node.qattrs
    w = graph.tensors[node.inputs[1]].data
    bias = graph.tensors[node.inputs[2]].data if q["has_bias"] else None
    found = requant_records(q["multiplier"], q["shift"], accumulator_bound(w, bias, q["input_offset"]), q["output_offset"],
                            acc_range=accumulator_range(w, bias, q["input_offset"]))  # fmt: skip
    if found is None:
        return []
    rq_kind, recs = found
    suffix = "-right" if rq_kind == KIND_RIGHT else ""
    rq, kind = {"rq": recs.reshape(-1)}, {"rq_kind": rq_kind}
    common = dict(includes=(header,), defs_template=template, code_bytes=INLINE_CODE_BYTES)
    # rows copied by words need no new weight layout when they are whole words already
    unpadded = {"wpack_run": run} if (run := plain_row_run(node, graph)) else {}
    out = [Variant(f"dsp-inline-rq{suffix}", "balanced", consts=rq, values={**kind, **unpadded}, **common)]
    if packed is not None:
        consts, values = packed
        depthwise = node.op == "conv2d" and node.attrs["groups"] != 1
        code = dict(common, code_bytes=INLINE_CODE_BYTES + (DW_BORDER_CODE_BYTES if depthwise else 0))
        out.insert(0, Variant(f"dsp-inline-w16-rq{suffix}", "speed", consts={**rq, **consts}, values={**kind, **values}, **code))
    return out


def plain_row_run(node, graph) -> int:
    """The row length when a dense conv's kernel rows are whole words (no padding needed), else 0."""
    if node.op != "conv2d":
        return 0
    w = graph.tensors[node.inputs[1]].data
    run = dsp_row_run(w.shape, node.attrs)
    return run if run and run == w.shape[2] * w.shape[3] else 0


def conv_packing(node, graph) -> tuple[dict, dict] | None:
    """The offline int16 layout kernels/dsp reads for this conv, if it has one."""
    w = graph.tensors[node.inputs[1]].data
    cin = graph.tensors[node.inputs[0]].shape[-1]
    if node.attrs["groups"] == 1:
        run = dsp_row_run(w.shape, node.attrs)
        rows = pad_rows(w, run) if run else w
        return {"wpack": dsp_pairs_int16(rows, dsp_chunk(rows[0].size))}, {"wpack_run": run}
    if node.attrs["groups"] == cin == w.shape[0] and cin >= 4:  # depthwise, multiplier 1
        return {"wpack": dsp_depthwise_int16(w)}, {}
    return None


def fc_packing(node, graph) -> tuple[dict, dict] | None:
    w = graph.tensors[node.inputs[1]].data
    if w.shape[0] < 4:
        return None
    q = node.qattrs
    bias = graph.tensors[node.inputs[2]].data if q["has_bias"] else None
    words, folded = dsp_fc_quads(w, bias, q["input_offset"])
    return {"wpack": words, "wpack_bias": folded}, {}


@register
class Conv2D(Op):
    name = "conv2d"
    weight_inputs = {1: 0}
    bias_input = 2

    def infer_shapes(self, node, graph):
        n, h, w, cin = graph.tensors[node.inputs[0]].shape
        cout, kh, kw, cin_g = graph.tensors[node.inputs[1]].shape
        a = node.attrs
        groups = a["groups"]
        if cin_g * groups != cin or cout % groups:
            raise ModelError(
                f"{node.where()}: weights [{cout},{kh},{kw},{cin_g}] with group={groups} do not fit {cin} input channels",
                node=node.name,
            )
        t, l, b, r = a["pads"]
        oh = out_shape_1d(h, kh, a["strides"][0], a["dilations"][0], t, b)
        ow = out_shape_1d(w, kw, a["strides"][1], a["dilations"][1], l, r)
        if oh <= 0 or ow <= 0:
            raise ModelError(f"{node.where()}: output would be empty ({oh}x{ow})", node=node.name)
        return [(n, oh, ow, cout)]

    def float_ref(self, node, ins):
        a = node.attrs
        y = conv_accumulate(ins[0], ins[1], a["strides"], a["dilations"], a["pads"], a["groups"])
        if len(ins) > 2:
            y = y + ins[2]
        return [_clamp_float(y, a.get("act")).astype(np.float32)]

    def prepare(self, node, graph):
        return _prepare_weighted(node, graph, 2, 1, node.outputs[0])

    def int8_ref(self, node, ins):
        a, q = node.attrs, node.qattrs
        x = ins[0].astype(np.int64) + q["input_offset"]
        acc = conv_accumulate(x, ins[1], a["strides"], a["dilations"], a["pads"], a["groups"], integer=True)
        acc = acc.astype(np.int64)
        if q["has_bias"]:
            acc += ins[2].astype(np.int64)
        return [requantize(acc, q["multiplier"], q["shift"], q["output_offset"], q["act_min"], q["act_max"])]

    def macs(self, node, graph):
        cout, kh, kw, cin_g = graph.tensors[node.inputs[1]].shape
        n, oh, ow, _ = graph.tensors[node.outputs[0]].shape
        return n * oh * ow * cout * kh * kw * cin_g

    kernel_files = ("tc_conv",)

    def kernel_consts(self, node, graph):
        return {"multiplier": node.qattrs["multiplier"], "shift": node.qattrs["shift"]}

    def variants(self, node, graph, target):
        return dsp_variants(node, graph, target, "ops/conv2d_inline.c.j2", "tc_conv_dsp.h", conv_packing(node, graph))


@register
class FullyConnected(Op):
    name = "fully_connected"
    weight_inputs = {1: 0}
    bias_input = 2

    def infer_shapes(self, node, graph):
        xs = graph.tensors[node.inputs[0]].shape
        o, k = graph.tensors[node.inputs[1]].shape
        n = xs[0]
        if int(np.prod(xs[1:])) != k:
            raise ModelError(f"{node.where()}: input {list(xs)} has {int(np.prod(xs[1:]))} features, weights expect {k}", node=node.name)
        return [(n, o)]

    def float_ref(self, node, ins):
        x = ins[0].reshape(ins[0].shape[0], -1).astype(np.float64)
        y = x @ ins[1].astype(np.float64).T
        if len(ins) > 2:
            y = y + ins[2]
        return [_clamp_float(y, node.attrs.get("act")).astype(np.float32)]

    def prepare(self, node, graph):
        return _prepare_weighted(node, graph, 2, 1, node.outputs[0])

    def int8_ref(self, node, ins):
        q = node.qattrs
        x = ins[0].reshape(ins[0].shape[0], -1).astype(np.float64) + q["input_offset"]
        acc = (x @ ins[1].astype(np.float64).T).astype(np.int64)
        if q["has_bias"]:
            acc += ins[2].astype(np.int64)
        return [requantize(acc, q["multiplier"], q["shift"], q["output_offset"], q["act_min"], q["act_max"])]

    def macs(self, node, graph):
        o, k = graph.tensors[node.inputs[1]].shape
        return graph.tensors[node.inputs[0]].shape[0] * o * k

    kernel_files = ("tc_fully_connected",)

    def kernel_consts(self, node, graph):
        return {"multiplier": node.qattrs["multiplier"], "shift": node.qattrs["shift"]}

    def variants(self, node, graph, target):
        return dsp_variants(node, graph, target, "ops/fully_connected_inline.c.j2", "tc_fully_connected_dsp.h",
                            fc_packing(node, graph))  # fmt: skip
