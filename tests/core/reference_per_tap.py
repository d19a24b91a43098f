"""The reference's kernels as they were before the batched rewrite (one loop iteration per kernel
tap, one sample at a time), frozen here as the oracle the batched reference is compared with."""

from __future__ import annotations

import contextlib

import numpy as np

import tinyconv.ops.conv as conv_ops
import tinyconv.ops.conv_transpose as conv_transpose_ops
import tinyconv.ops.pool as pool_ops
from tinyconv import reference
from tinyconv.ops.base import out_shape_1d, pad_nhwc, windows


def conv_accumulate(x, w, strides, dilations, pads, groups, integer=False):  # float64 throughout
    x = pad_nhwc(np.asarray(x, np.float64), pads, 0.0)
    cout, kh, kw, cin_g = w.shape
    n, hp, wp, cin = x.shape
    oh = out_shape_1d(hp, kh, strides[0], dilations[0], 0, 0)
    ow = out_shape_1d(wp, kw, strides[1], dilations[1], 0, 0)
    wg = np.asarray(w, np.float64).reshape(groups, cout // groups, kh, kw, cin_g)
    acc = np.zeros((n, oh, ow, groups, cout // groups), np.float64)
    for i, j, view in windows(x, (kh, kw), strides, dilations, (oh, ow)):
        acc += np.einsum("nhwgc,goc->nhwgo", view.reshape(n, oh, ow, groups, cin_g), wg[:, :, i, j, :], optimize=True)
    return acc.reshape(n, oh, ow, cout)


def conv_transpose_accumulate(x, w, strides, pads, output_padding, dilations):
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
    for i in range(kh):
        for j in range(kw):
            r0, c0 = i * dh, j * dw
            buf[:, r0 : r0 + sh * (h - 1) + 1 : sh, c0 : c0 + sw * (wd - 1) + 1 : sw, :] += np.einsum("nhwc,oc->nhwo", x, w[:, i, j, :])
    return buf[:, t : full_h - b, l : full_w - r, :]


def _out_hw(shape, a):
    _, h, w, _ = shape
    t, l, b, r = a["pads"]
    return (out_shape_1d(h, a["kernel"][0], a["strides"][0], 1, t, b), out_shape_1d(w, a["kernel"][1], a["strides"][1], 1, l, r))


def window_reduce(x, node, reduce, fill):
    a = node.attrs
    xp = pad_nhwc(x, a["pads"], fill)
    out = None
    for _, _, view in windows(xp, a["kernel"], a["strides"], (1, 1), _out_hw(x.shape, a)):
        out = view.copy() if out is None else reduce(out, view)
    return out


def valid_counts(x_shape, a):
    xp = pad_nhwc(np.ones((1, *x_shape[1:3], 1), np.int64), a["pads"], 0)
    oh, ow = _out_hw(x_shape, a)
    n = np.zeros((1, oh, ow, 1), np.int64)
    for _, _, view in windows(xp, a["kernel"], a["strides"], (1, 1), (oh, ow)):
        n += view
    return n


@contextlib.contextmanager
def per_tap_kernels():
    """Within the block the ops' references use the frozen per-tap kernels."""
    saved = conv_ops.conv_accumulate, conv_transpose_ops.conv_transpose_accumulate, pool_ops._window_reduce, pool_ops._valid_counts
    conv_ops.conv_accumulate, conv_transpose_ops.conv_transpose_accumulate = conv_accumulate, conv_transpose_accumulate
    pool_ops._window_reduce, pool_ops._valid_counts = window_reduce, valid_counts
    try:
        yield
    finally:
        conv_ops.conv_accumulate, conv_transpose_ops.conv_transpose_accumulate, pool_ops._window_reduce, pool_ops._valid_counts = saved


def per_sample_per_tap(graph, batch, mode="int8"):
    """The reference exactly as before: one sample at a time through the per-tap kernels."""
    with per_tap_kernels():
        return reference.run_batch(graph, batch, mode=mode, per_sample=True)
