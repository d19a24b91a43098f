"""Helium (MVE, Cortex-M55) kernel variants: per-layer specialised kernels with offline layouts.

`variant(node, graph)` picks, at compile time, a specialised kernel for a layer the generic
kernels/mve code would run slower, and prepares what it reads: weights in the order its inner
loop consumes them, per-channel requantization records with the bias and `input_offset * sum(w)`
folded in, lookup tables. None means the layer keeps the generic kernel. Everything here is
exact integer re-arrangement of node.qattrs; the NumPy reference stays the definition.
"""

from __future__ import annotations

import numpy as np

from tinyconv.fixedpoint import multiply_by_quantized_multiplier
from tinyconv.specialise import Variant, backend_layer

SHIFT_RANGE = (-31, 31)  # what tcm_requant4's VQSHL / VRSHL sequence is exact for

# Code bytes one layer's inlined kernel adds (M55, -O2; fitted to the MLPerf models: the code with
# one family's kernels against without) and the shared function a layer calls without it, with its
# code once linked: --optimize size takes a family's kernels when they remove that function and
# cost less code (specialise._drop_shared_kernels). The add tables (2 KB each) never count as small.
LAYER_CODE = {"mve_conv": 480, "mve_depthwise": 950, "mve_fc": 240, "mve_avg_pool": 300, "mve_mean": 300, "mve_add_lut": 300}
POINTWISE_CODE = 280  # mve_conv for a 1x1 filter without padding (no patch, no border rows)
SHARED_CODE = {"tc_conv_s8": 3254, "tc_depthwise_conv_s8": 3798, "tc_fully_connected_s8": 1656, "tc_avg_pool_s8": 650,
               "tc_mean_hw_s8": 528}  # fmt: skip


def shared_kernel(node, graph) -> str | None:
    """The shared out-of-line function this layer's generic call uses (as ops/*.c.j2 call it)."""
    if node.op == "conv2d":
        groups, cin = node.attrs["groups"], graph.tensors[node.inputs[0]].shape[3]
        return "tc_depthwise_conv_s8" if groups == cin and groups > 1 else "tc_conv_s8"
    return {"fully_connected": "tc_fully_connected_s8", "avg_pool2d": "tc_avg_pool_s8", "mean": "tc_mean_hw_s8"}.get(node.op)


def variant(node, graph) -> Variant | None:
    v = _variant(node, graph)
    if v is not None:
        pointwise = v.name == "mve_conv" and graph.tensors[node.inputs[1]].shape[1:3] == (1, 1) and not any(node.attrs["pads"])
        v.code_bytes = POINTWISE_CODE if pointwise else LAYER_CODE[v.name]
        fn = shared_kernel(node, graph)
        v.replaces = (fn, SHARED_CODE[fn]) if fn in SHARED_CODE and v.name != "mve_add_lut" else None
    return v


def _variant(node, graph) -> Variant | None:
    if node.op == "conv2d":
        return _depthwise(node, graph) or _dense(node, graph)
    if node.op == "add":
        return _add_lut(node, graph)
    if node.op == "fully_connected":
        return _fully_connected(node, graph)
    if node.op == "avg_pool2d":
        return backend_layer("mve_avg_pool", "ops/mve/avg_pool2d.c.j2", ("tc_mve_pool",))
    if node.op == "mean" and SHIFT_RANGE[0] <= node.qattrs["shift"] <= SHIFT_RANGE[1]:
        # int32 sums: |x - zp| <= 255 per element
        if graph.tensors[node.inputs[0]].size // graph.tensors[node.inputs[0]].shape[3] * 255 < 2**31:
            return backend_layer("mve_mean", "ops/mve/mean.c.j2", ("tc_mve_pool",))
    return None


def _shifts_ok(shift: np.ndarray) -> bool:
    return bool(np.all((shift >= SHIFT_RANGE[0]) & (shift <= SHIFT_RANGE[1])))


def requant_records(acc_base: np.ndarray, mult: np.ndarray, shift: np.ndarray, lanes: int = 4) -> tuple[np.ndarray, bool]:
    """int32 [blocks][3 or 4][lanes]: per block of `lanes` channels the accumulator start value
    (bias + input_offset * sum(w)), the Q31 multiplier, the right shift as a non-positive VRSHL
    amount and, when any channel shifts left, the left shift. Channels past the end are padded
    with zero records (multiplier 0: they requantize to the output offset and are not stored)."""
    n = len(mult)
    pad = -n % lanes
    has_left = bool(np.any(shift > 0))
    rows = [acc_base, mult, np.minimum(shift, 0)] + ([np.maximum(shift, 0)] if has_left else [])
    rec = np.stack([np.pad(np.asarray(r, np.int64), (0, pad)) for r in rows])  # [k][n + pad]
    rec = rec.reshape(len(rows), -1, lanes).transpose(1, 0, 2)
    return rec.astype(np.int32), has_left


def _depthwise(node, graph) -> Variant | None:
    """Depthwise, channel multiplier 1: weights as [channel block][tap][4] (one VLDRB.S32 per tap,
    consecutive in flash), a requantization record per 4 channels, and a row of input zero points
    that padding taps read so border pixels run the interior code."""
    a, q = node.attrs, node.qattrs
    x = graph.tensors[node.inputs[0]]
    wt = graph.tensors[node.inputs[1]]
    cout, kh, kw, cin_g = wt.shape
    cin = x.shape[3]
    if not (a["groups"] == cin == cout and cin_g == 1 and cin > 1) or kh * kw > 25 or not _shifts_ok(q["shift"]):
        return None
    w = wt.data.astype(np.int64).reshape(cout, kh * kw)  # [c][tap]
    bias = graph.tensors[node.inputs[2]].data.astype(np.int64) if q["has_bias"] else np.zeros(cout, np.int64)
    base = bias + q["input_offset"] * w.sum(axis=1)
    if np.any(np.abs(base) >= 2**31):
        return None
    pad = -cout % 4
    wl = np.pad(w, ((0, pad), (0, 0))).reshape(-1, 4, kh * kw).transpose(0, 2, 1)  # [block][tap][4]
    rec, has_left = requant_records(base, q["multiplier"], q["shift"])
    zp_row = np.full(cout + pad, -q["input_offset"], np.int8)
    return backend_layer(
        "mve_depthwise", "ops/mve/depthwise.c.j2", ("tc_mve_dw",),
        {"dw_w": wl.astype(np.int8), "dw_rec": rec, "dw_zp": zp_row}, {"has_left": has_left},
    )  # fmt: skip


CONV_PATCH = 1024  # TCM_CONV_PATCH in kernels/mve/tc_mve_conv.h: the stack patch, bytes


def dense_weights(w: np.ndarray) -> np.ndarray:
    """[cout][K] int8 → [channel block of 4][16-value chunk][4][16], zero-padded in K and cout."""
    cout, k = w.shape
    w = np.pad(w, ((0, -cout % 4), (0, -k % 16)))
    return w.reshape(-1, 4, w.shape[1] // 16, 16).transpose(0, 2, 1, 3).astype(np.int8)


def _dense(node, graph) -> Variant | None:
    """groups == 1 with a filter of at most CONV_PATCH values."""
    a, q = node.attrs, node.qattrs
    wt = graph.tensors[node.inputs[1]]
    cout, kh, kw, cin_g = wt.shape
    k = kh * kw * cin_g
    if a["groups"] != 1 or -(-k // 16) * 16 > CONV_PATCH or not _shifts_ok(q["shift"]):
        return None
    w = wt.data.astype(np.int64).reshape(cout, k)
    bias = graph.tensors[node.inputs[2]].data.astype(np.int64) if q["has_bias"] else np.zeros(cout, np.int64)
    base = bias + q["input_offset"] * w.sum(axis=1)
    if np.any(np.abs(base) >= 2**31):
        return None
    rec, has_left = requant_records(base, q["multiplier"], q["shift"])
    return backend_layer("mve_conv", "ops/mve/conv.c.j2", ("tc_mve_conv",), {"cv_w": dense_weights(w), "cv_rec": rec},
                   {"has_left": has_left})  # fmt: skip


def add_tables(q: dict) -> tuple[np.ndarray, np.ndarray]:
    """Each input's rescaled contribution to TFLite's add, for every int8 value, indexed by the
    value's byte (uint8 view): the kernel adds two looked-up int32s and requantizes the sum once,
    so the result is the reference's by construction."""
    v = np.arange(256, dtype=np.int64).astype(np.uint8).view(np.int8).astype(np.int64)
    ta = multiply_by_quantized_multiplier((v + q["input1_offset"]) << q["left_shift"], q["input1_multiplier"], q["input1_shift"])
    tb = multiply_by_quantized_multiplier((v + q["input2_offset"]) << q["left_shift"], q["input2_multiplier"], q["input2_shift"])
    return ta.astype(np.int32), tb.astype(np.int32)


def _add_lut(node, graph) -> Variant | None:
    shapes = [graph.tensors[i].shape for i in (*node.inputs, node.outputs[0])]
    if len({tuple(s) for s in shapes}) != 1:  # broadcasting keeps the generic kernel
        return None
    q = node.qattrs
    ta, tb = add_tables(q)
    if np.abs(ta.astype(np.int64) + tb.astype(np.int64)).max() >= 2**31:
        return None
    n = graph.tensors[node.outputs[0]].size
    return backend_layer("mve_add_lut", "ops/mve/add.c.j2", ("tc_mve_add",), {"lut_a": ta, "lut_b": tb},
                   {"n": n, "vector_requant": SHIFT_RANGE[0] <= q["output_shift"] <= SHIFT_RANGE[1]})  # fmt: skip


def _fully_connected(node, graph) -> Variant | None:
    """Fully connected with bias + input_offset * sum(w) folded offline: the inner loop is one
    weight load and one VMLADAVA per 16 values and row."""
    q = node.qattrs
    wt = graph.tensors[node.inputs[1]]
    o, k = wt.shape
    if not _shifts_ok(q["shift"]):
        return None
    w = wt.data.astype(np.int64)
    bias = graph.tensors[node.inputs[2]].data.astype(np.int64) if q["has_bias"] else np.zeros(o, np.int64)
    base = bias + q["input_offset"] * w.sum(axis=1)
    if np.any(np.abs(base) >= 2**31):
        return None
    rec, has_left = requant_records(base, q["multiplier"], q["shift"])
    return backend_layer("mve_fc", "ops/mve/fully_connected.c.j2", ("tc_mve_fc",), {"fc_rec": rec}, {"has_left": has_left})
