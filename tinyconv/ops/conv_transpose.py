"""Transposed convolution (ONNX ConvTranspose, TFLite TRANSPOSE_CONV), groups = 1.

Weights are OHWI [Cout, KH, KW, Cin] (the ONNX frontend converts from [Cin, Cout, KH, KW]; no
kernel flip). With pads (top, left, bottom, right), strides s, dilations d, output_padding op:
    out_h = s_h·(in_h - 1) + op_h + d_h·(KH - 1) + 1 - top - bottom        (likewise out_w)
    y[oy, ox, o] = b[o] + Σ x[iy, ix, c] · w[o, ky, kx, c]  over  oy + top = iy·s_h + ky·d_h,
                                                                  ox + left = ix·s_w + kx·d_w.
int8 as TFLite TRANSPOSE_CONV: an int32 accumulator per output element, acc = bias[o] +
Σ (x - x_zp) · w, requantized per output channel exactly like conv2d (same multipliers, same
int32 overflow check). The NumPy reference scatters (each input pixel adds its KH×KW patch); the
C kernel gathers (each output pixel sums the taps that land on it), so it needs no scratch
memory. Both give the same integers: addition in int32 without overflow is order-independent.
"""

from __future__ import annotations

import numpy as np

from tinyconv.errors import ModelError, UnsupportedError
from tinyconv.fixedpoint import requantize
from tinyconv.ops.base import Op, register
from tinyconv.ops.conv import _clamp_float, _prepare_weighted


def _attrs(node):
    a = node.attrs
    return (
        tuple(int(v) for v in a["strides"]),
        tuple(int(v) for v in a["pads"]),
        tuple(int(v) for v in (a.get("output_padding") or (0, 0))),
        tuple(int(v) for v in (a.get("dilations") or (1, 1))),
    )


def conv_transpose_out_hw(in_hw, k_hw, strides, pads, output_padding, dilations) -> tuple[int, int]:
    t, l, b, r = pads
    oh = strides[0] * (in_hw[0] - 1) + output_padding[0] + dilations[0] * (k_hw[0] - 1) + 1 - t - b
    ow = strides[1] * (in_hw[1] - 1) + output_padding[1] + dilations[1] * (k_hw[1] - 1) + 1 - l - r
    return oh, ow


def conv_transpose_accumulate(x: np.ndarray, w: np.ndarray, strides, pads, output_padding, dilations) -> np.ndarray:
    """Σ x · w in scatter form; x NHWC (already zero-centred), w [Cout, KH, KW, Cin]. float64 out.

    Exact for the int8 path: |products| ≤ 2^15 and the sums stay far below 2^53.
    """
    x = np.asarray(x, np.float64)
    w = np.asarray(w, np.float64)
    n, h, wd, _ = x.shape
    cout, kh, kw, _ = w.shape
    sh, sw = strides
    dh, dw = dilations
    t, l, b, r = pads
    full_h = sh * (h - 1) + dh * (kh - 1) + 1 + output_padding[0]
    full_w = sw * (wd - 1) + dw * (kw - 1) + 1 + output_padding[1]
    buf = np.zeros((n, full_h, full_w, cout), np.float64)
    rows = x.reshape(-1, x.shape[-1])  # every input pixel of the batch: one matrix product per tap
    for i in range(kh):
        for j in range(kw):
            r0, c0 = i * dh, j * dw
            buf[:, r0 : r0 + sh * (h - 1) + 1 : sh, c0 : c0 + sw * (wd - 1) + 1 : sw, :] += (rows @ w[:, i, j, :].T).reshape(n, h, wd, cout)
    return buf[:, t : full_h - b, l : full_w - r, :]


def _valid_taps_1d(in_size: int, out_size: int, k: int, stride: int, dil: int, pad_lo: int) -> int:
    """Number of (output position, tap) pairs that read an input element (for the MAC count)."""
    o = np.arange(out_size)[:, None] + pad_lo - np.arange(k)[None, :] * dil
    ok = (o >= 0) & (o % stride == 0) & (o // stride < in_size)
    return int(ok.sum())


@register
class ConvTranspose2D(Op):
    name = "conv_transpose2d"
    weight_inputs = {1: 0}
    bias_input = 2
    kernel_files = ("tc_conv_transpose",)

    def _check(self, node, graph):
        a = node.attrs
        if int(a.get("groups", 1)) != 1:
            raise UnsupportedError(f"{node.where()}: transposed convolution with groups={a['groups']} is not supported (groups must be 1)",
                                   hint="split the layer into one transposed convolution per group", node=node.name)  # fmt: skip
        strides, pads, opad, dil = _attrs(node)
        if min(strides) < 1 or min(dil) < 1:
            raise ModelError(f"{node.where()}: strides {list(strides)} and dilations {list(dil)} must be ≥ 1", node=node.name)
        if min(pads) < 0:
            raise UnsupportedError(f"{node.where()}: negative pads {list(pads)} are not supported", node=node.name)
        for ax in range(2):
            if opad[ax] < 0 or (opad[ax] >= strides[ax] and opad[ax] >= dil[ax]):
                raise ModelError(f"{node.where()}: output_padding {list(opad)} must be smaller than the stride or the dilation", node=node.name)
        return strides, pads, opad, dil

    def infer_shapes(self, node, graph):
        strides, pads, opad, dil = self._check(node, graph)
        xs = graph.tensors[node.inputs[0]].shape
        ws = graph.tensors[node.inputs[1]].shape
        if len(xs) != 4 or len(ws) != 4:
            raise ModelError(f"{node.where()}: needs a 4-D NHWC input and [Cout, KH, KW, Cin] weights (got {list(xs)}, {list(ws)})", node=node.name)
        n, h, w, cin = xs
        cout, kh, kw, wcin = ws
        if wcin != cin:
            raise ModelError(f"{node.where()}: weights [{cout},{kh},{kw},{wcin}] do not fit {cin} input channels", node=node.name)
        if len(node.inputs) > 2 and graph.tensors[node.inputs[2]].size != cout:
            raise ModelError(f"{node.where()}: the bias has {graph.tensors[node.inputs[2]].size} values for {cout} output channels", node=node.name)
        oh, ow = conv_transpose_out_hw((h, w), (kh, kw), strides, pads, opad, dil)
        if oh <= 0 or ow <= 0:
            raise ModelError(f"{node.where()}: output would be empty ({oh}x{ow})", node=node.name)
        return [(n, oh, ow, cout)]

    def float_ref(self, node, ins):
        strides, pads, opad, dil = _attrs(node)
        y = conv_transpose_accumulate(ins[0], ins[1], strides, pads, opad, dil)
        if len(ins) > 2:
            y = y + np.asarray(ins[2], np.float64).reshape(-1)
        return [_clamp_float(y, node.attrs.get("act")).astype(np.float32)]

    def prepare(self, node, graph):
        self._check(node, graph)
        return _prepare_weighted(node, graph, 2, 1, node.outputs[0])

    def int8_ref(self, node, ins):
        q = node.qattrs
        strides, pads, opad, dil = _attrs(node)
        x = ins[0].astype(np.int64) + q["input_offset"]
        acc = conv_transpose_accumulate(x, ins[1], strides, pads, opad, dil).astype(np.int64)
        if q["has_bias"]:
            acc += ins[2].astype(np.int64)
        return [requantize(acc, q["multiplier"], q["shift"], q["output_offset"], q["act_min"], q["act_max"])]

    def macs(self, node, graph):
        strides, pads, _, dil = _attrs(node)
        n, h, w, cin = graph.tensors[node.inputs[0]].shape
        cout, kh, kw, _ = graph.tensors[node.inputs[1]].shape
        _, oh, ow, _ = graph.tensors[node.outputs[0]].shape
        rows = _valid_taps_1d(h, oh, kh, strides[0], dil[0], pads[0])
        cols = _valid_taps_1d(w, ow, kw, strides[1], dil[1], pads[1])
        return n * rows * cols * cin * cout

    def template_context(self, node, graph):
        strides, pads, opad, dil = _attrs(node)
        return {"strides": strides, "pads": pads, "dilations": dil}

    def kernel_consts(self, node, graph):
        return {"multiplier": node.qattrs["multiplier"], "shift": node.qattrs["shift"]}
