"""Weight quantization works a block of channels at a time (tinyconv/quantize.py); its integers and
scales must be those of the plain whole-array formula, on every axis, with `min_scale`, on exact
.5 ties and across block boundaries."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyconv.quantize import quantize_weights_per_channel


def by_formula(w, axis, min_scale):
    moved = np.moveaxis(np.asarray(w, np.float64), axis, 0)
    amax = np.abs(moved.reshape(moved.shape[0], -1)).max(axis=1)
    scale = np.where(amax > 0, amax / 127.0, 1.0)
    if min_scale is not None:
        scale = np.maximum(scale, min_scale)
    scale = scale.astype(np.float32)
    shape = (-1,) + (1,) * (moved.ndim - 1)
    q = np.clip(np.round(moved / scale.astype(np.float64).reshape(shape)), -127, 127).astype(np.int8)
    return np.moveaxis(q, 0, axis), scale


@settings(max_examples=80, deadline=None)
@given(shape=st.lists(st.integers(1, 6), min_size=1, max_size=4), data=st.data(), seed=st.integers(0, 2**16),
       with_min=st.booleans(), ties=st.booleans())  # fmt: skip
def test_blockwise_quantization_equals_the_formula(shape, data, seed, with_min, ties):
    rng = np.random.default_rng(seed)
    axis = data.draw(st.integers(0, len(shape) - 1))
    if ties:  # multiples of scale / 2: every value is a rounding tie or exact
        w = (rng.integers(-254, 255, shape) * np.float32(0.5)).astype(np.float32)
    else:
        w = (rng.normal(0, 1, shape) * 10.0 ** rng.integers(-6, 6, shape)).astype(np.float32)
    w[rng.random(shape) < 0.2] = 0
    min_scale = np.abs(rng.normal(0, 0.5, shape[axis])) if with_min else None
    q, qp = quantize_weights_per_channel(w, axis, min_scale)
    want_q, want_scale = by_formula(w, axis, min_scale)
    assert q.dtype == np.int8 and q.shape == w.shape and np.array_equal(q, want_q)
    assert qp.scale.dtype == np.float32 and np.array_equal(qp.scale, want_scale) and qp.axis == axis


def test_many_channels_span_several_blocks():
    w = np.random.default_rng(3).normal(0, 1, (3000, 5, 7)).astype(np.float32)
    w[17] = 0
    q, qp = quantize_weights_per_channel(w)
    want_q, want_scale = by_formula(w, 0, None)
    assert np.array_equal(q, want_q) and np.array_equal(qp.scale, want_scale)
