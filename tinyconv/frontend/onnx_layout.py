"""Layout bookkeeping for the ONNX importer.

Every ONNX value is held in the IR in some axis order: `ir = onnx.transpose(perm)`. Convolutions
and pools want NHWC (perm (0, 2, 3, 1) of an NCHW value); reshapes want the ONNX order. Instead of
inserting a transpose at every boundary, the importer records each value's perm and only moves
data where an op needs a different order. A Transpose node is then free: it just changes the
recorded perm, which is how the NHWC-input Keras exports lose their Transpose nodes entirely.
"""

from __future__ import annotations

import numpy as np


def identity(rank: int) -> tuple[int, ...]:
    return tuple(range(rank))


def nhwc(rank: int) -> tuple[int, ...]:
    """Channels-last order for an [N, C, spatial...] value."""
    return (0, *range(2, rank), 1)


def inverse(perm) -> tuple[int, ...]:
    return tuple(int(i) for i in np.argsort(perm))


def relative(have, want) -> tuple[int, ...]:
    """The IR transpose that turns a value held in `have` order into `want` order."""
    inv = inverse(have)
    return tuple(inv[k] for k in want)


def after_transpose(have, onnx_perm) -> tuple[int, ...]:
    """The order the same IR data is in, seen as the output of an ONNX Transpose(onnx_perm)."""
    inv = inverse(have)
    return inverse([inv[k] for k in onnx_perm])


def is_reshape(shape, perm) -> bool:
    """True when transposing `shape` by `perm` keeps the data order (only size-1 axes move)."""
    moved = [p for p in perm if shape[p] != 1]
    return moved == sorted(moved)


def ir_shape(onnx_shape, perm) -> tuple[int, ...]:
    return tuple(int(onnx_shape[p]) for p in perm)


def onnx_shape(ir_shape_, perm) -> tuple[int, ...]:
    inv = inverse(perm)
    return tuple(int(ir_shape_[i]) for i in inv)


def const_to_layout(c: np.ndarray, rank: int, perm) -> np.ndarray:
    """A constant that broadcasts against an ONNX value of `rank`, in that value's IR order."""
    c = np.asarray(c)
    c = c.reshape((1,) * (rank - c.ndim) + c.shape)
    return np.ascontiguousarray(c.transpose(perm))
