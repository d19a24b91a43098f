"""The DSP offline weight layouts (tinyconv/ops/conv_layout.py) are vectorised; each must equal its
docstring's reading order, written here as the plain loop it describes. The kernels that read them
run on qemu-m4/m7 in tests/device/test_kernels_specialised.py."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyconv.ops.conv_layout import dsp_fc_quads, dsp_pairs_int16


def pairs_by_loop(w: np.ndarray, chunk: int) -> np.ndarray:
    rows = np.asarray(w, np.int16).reshape(w.shape[0], -1)
    cout, K = rows.shape
    out = []
    for oc in range(0, cout, 2):
        a = rows[oc]
        b = rows[oc + 1] if oc + 1 < cout else a
        for k_lo in range(0, K, chunk):
            kn = min(chunk, K - k_lo)
            k4 = kn & ~3
            for k in range(k_lo, k_lo + k4, 4):
                out += [a[k], a[k + 2], a[k + 1], a[k + 3], b[k], b[k + 2], b[k + 1], b[k + 3]]
            for k in range(k_lo + k4, k_lo + kn):
                out += [a[k], b[k]]
    return np.array(out, np.int16)


def fc_quads_by_loop(w: np.ndarray) -> np.ndarray:
    w16 = np.asarray(w, np.int16)
    out_f, n = w16.shape
    words = []
    for o in range(0, out_f // 4 * 4, 4):
        rows = w16[o : o + 4]
        for k in range(0, n & ~3, 4):
            for r in rows:
                words += [r[k], r[k + 2], r[k + 1], r[k + 3]]
        for k in range(n & ~3, n):
            words += [rows[0][k], rows[1][k], rows[2][k], rows[3][k]]
    return np.array(words, np.int16)


@settings(max_examples=60, deadline=None)
@given(cout=st.integers(1, 9), kh=st.integers(1, 3), kw=st.integers(1, 4), cin=st.integers(1, 70),
       chunk=st.sampled_from([4, 5, 7, 128, 288]), seed=st.integers(0, 2**16))  # fmt: skip
def test_conv_pairs_layout_equals_its_reading_order(cout, kh, kw, cin, chunk, seed):
    w = np.random.default_rng(seed).integers(-128, 128, (cout, kh, kw, cin), dtype=np.int8)
    got = dsp_pairs_int16(w, chunk)
    assert got.dtype == np.int16 and np.array_equal(got, pairs_by_loop(w, chunk))


@settings(max_examples=60, deadline=None)
@given(out_f=st.integers(1, 13), n=st.integers(1, 40), offset=st.integers(-128, 127), seed=st.integers(0, 2**16))
def test_fc_quads_layout_equals_its_reading_order(out_f, n, offset, seed):
    rng = np.random.default_rng(seed)
    w = rng.integers(-128, 128, (out_f, n), dtype=np.int8)
    bias = rng.integers(-(2**20), 2**20, out_f).astype(np.int32)
    words, folded = dsp_fc_quads(w, bias, offset)
    assert words.dtype == np.int16 and np.array_equal(words, fc_quads_by_loop(w))
    assert np.array_equal(folded, bias + offset * w.astype(np.int64).sum(axis=1))
