"""The Helium (MVE) per-layer variants' offline data (tinyconv/ops/helium.py) and the arithmetic
identities the kernels rely on, checked on the host against tinyconv/fixedpoint.py. The kernels
themselves run on qemu-m55 in tests/device/test_mve_variants.py."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyconv.fixedpoint import INT32_MAX, INT32_MIN, multiply_by_quantized_multiplier
from tinyconv.ops import op_of
from tinyconv.ops.helium import add_tables, dense_weights, requant_records

I64 = np.int64


def _sat32(x):
    return np.clip(x, INT32_MIN, INT32_MAX)


def mve_requant(acc, m, shift):
    """tcm_requant_lr instruction by instruction (kernels/mve/tc_mve.h), in int64:
    VQSHL by max(shift, 0), VQRDMULH, VAND + VSHR #31 + VQADD (-1 for negative values when shifting
    right), VRSHL by min(shift, 0) (rounds half up, computed without intermediate overflow)."""
    acc, m, shift = (np.asarray(v, I64) for v in (acc, m, shift))
    left, right = np.maximum(shift, 0), np.minimum(shift, 0)
    x = _sat32(acc << left)  # VQSHL
    x = _sat32((2 * x * m + (1 << 31)) >> 32)  # VQRDMULH
    fix = ((x & right) < 0) * -1  # VAND with the (negative) shift, VSHR #31: -1 when both signs set
    x = _sat32(x + fix)  # VQADD
    n = -right
    return np.where(n > 0, (x + (I64(1) << np.maximum(n - 1, 0))) >> n, x)  # VRSHL


def test_mve_requant_sequence_equals_reference_on_boundaries():
    """Every shift the Helium variants accept ([-31, 31]), multipliers at the ends of their range,
    accumulators at and beside every rounding boundary and at the int32 extremes."""
    mults = np.array([0, 1, 1 << 30, (1 << 30) + 1, INT32_MAX - 1, INT32_MAX, 1518500250], I64)
    for shift in range(-31, 32):
        n = max(-shift, 1)
        base = np.arange(-3, 4, dtype=I64)[:, None] * (I64(1) << min(n, 29)) + np.array([-1, 0, 1], I64)
        half = (I64(1) << (n - 1)) if n > 0 else I64(0)
        accs = np.concatenate([base.ravel(), base.ravel() + half, [INT32_MIN, INT32_MIN + 1, INT32_MAX, INT32_MAX - 1, 0]])
        accs = _sat32(accs)
        for m in mults:
            want = multiply_by_quantized_multiplier(accs, m, shift)
            assert np.array_equal(mve_requant(accs, m, shift), want), (shift, m)


@settings(max_examples=300, deadline=None)
@given(acc=st.integers(INT32_MIN, INT32_MAX), m=st.integers(0, INT32_MAX), shift=st.integers(-31, 31))
def test_mve_requant_sequence_equals_reference_random(acc, m, shift):
    assert int(mve_requant(acc, m, shift)) == int(multiply_by_quantized_multiplier(np.int64(acc), m, shift))


@settings(max_examples=20, deadline=None)
@given(
    z1=st.sampled_from([-128, 127, -1, 0, 5]),
    z2=st.sampled_from([-128, 127, 0, 33]),
    zo=st.integers(-128, 127),
    s=st.tuples(*[st.floats(1e-3, 1.0) for _ in range(3)]),
    clamp=st.sampled_from([(-128, 127), (-20, 90), (0, 127)]),
)
def test_add_tables_give_the_reference_add_for_every_pair(z1, z2, zo, s, clamp):
    """ta[a] + tb[b], requantized once, equals Add.int8_ref for all 65,536 input pairs."""
    from tinyconv.ir import Graph, Node, QuantParams, Tensor

    g = Graph()
    for name, sc, zp in (("a", s[0], z1), ("b", s[1], z2), ("y", s[2], zo)):
        g.add_tensor(Tensor(name, (1, 256, 256), dtype="int8", quant=QuantParams.per_tensor(sc, zp)))
    node = Node("add", "add", ["a", "b"], ["y"], {})
    q = op_of(node).prepare(node, g)
    q["act_min"], q["act_max"] = clamp
    node.qattrs = q
    a = np.broadcast_to(np.arange(-128, 128, dtype=np.int8)[:, None], (256, 256))
    b = a.T
    want = op_of(node).int8_ref(node, [a, b])[0]
    ta, tb = add_tables(q)
    sums = ta.astype(I64)[a.view(np.uint8)] + tb.astype(I64)[b.view(np.uint8)]
    got = np.clip(multiply_by_quantized_multiplier(sums, q["output_multiplier"], q["output_shift"]) + zo, *clamp)
    assert np.array_equal(got, want)


def test_dense_weights_block_layout():
    """[cout][K] → [block of 4 channels][16-value chunk][channel][16], zero padded."""
    w = np.arange(5 * 20).reshape(5, 20) % 127
    lay = dense_weights(w)
    assert lay.shape == (2, 2, 4, 16) and lay.dtype == np.int8
    for c in range(8):
        for k in range(32):
            v = w[c, k] if c < 5 and k < 20 else 0
            assert lay[c // 4, k // 16, c % 4, k % 16] == v


def test_requant_records_split_shifts_and_pad():
    base, mult, shift = np.array([7, -8, 9, 10, 11]), np.array([1 << 30] * 5), np.array([-3, 0, 2, -31, 1])
    rec, has_left = requant_records(base, mult, shift)
    assert has_left and rec.shape == (2, 4, 4) and rec.dtype == np.int32
    assert rec[0, 0].tolist() == [7, -8, 9, 10] and rec[1, 0].tolist() == [11, 0, 0, 0]
    assert rec[0, 2].tolist() == [-3, 0, 0, -31] and rec[0, 3].tolist() == [0, 0, 2, 0]
    rec, has_left = requant_records(base, mult, np.minimum(shift, 0))
    assert not has_left and rec.shape == (2, 3, 4)


def test_variants_picked_for_m55_only(tmp_path):
    """cortex-m55 layers get the Helium variants (recorded in the manifest); layers a variant does
    not cover (channel multiplier 2, grouped conv, broadcasting add) and every other target keep
    the generic kernels. Their bit-exactness on qemu-m55 is tests/device/test_mve_variants.py and
    test_kernels_optimized.py."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from ir_graphs import GraphBuilder

    from tinyconv.pipeline import compile_model

    rng = np.random.default_rng(0)
    b = GraphBuilder("pick", (1, 6, 6, 4))
    dw = b.node("dw", "conv2d", ["x", b.const("w1", rng.normal(size=(4, 3, 3, 1)))], strides=(1, 1), dilations=(1, 1),
                pads=(1, 1, 1, 1), groups=4, act=None)  # fmt: skip
    dw2 = b.node("dw_mult2", "conv2d", [dw, b.const("w2", rng.normal(size=(8, 3, 3, 1)))], strides=(1, 1), dilations=(1, 1),
                 pads=(1, 1, 1, 1), groups=4, act=None)  # fmt: skip
    gc = b.node("grouped", "conv2d", [dw2, b.const("w3", rng.normal(size=(8, 1, 1, 4)))], strides=(1, 1), dilations=(1, 1),
                pads=(0, 0, 0, 0), groups=2, act=None)  # fmt: skip
    cv = b.node("conv", "conv2d", [gc, b.const("w4", rng.normal(size=(8, 3, 3, 8)))], strides=(1, 1), dilations=(1, 1),
                pads=(1, 1, 1, 1), groups=1, act=None)  # fmt: skip
    add = b.node("add", "add", [cv, gc])
    badd = b.node("badd", "add", [add, b.const("row", rng.normal(size=(1, 1, 1, 8)))])
    g = b.finish(b.node("pool", "avg_pool2d", [badd], kernel=(2, 2), strides=(2, 2), pads=(0, 0, 0, 0)))
    calib = rng.normal(size=(3, 6, 6, 4)).astype(np.float32)
    m55 = compile_model(g, calib=calib, target="cortex-m55", outdir=tmp_path / "m55").library.manifest
    kernels = {lay["name"]: lay["kernel"] for lay in m55["layers"]}
    assert kernels == {"dw": "mve_depthwise", "dw_mult2": "generic", "grouped": "generic", "conv": "mve_conv",
                       "add": "mve_add_lut", "badd": "generic", "pool": "mve_avg_pool"}  # fmt: skip
    assert "tc_mve_dw.h" in m55["kernels"] and "tc_conv.c" in m55["kernels"]
    m4 = compile_model(g, calib=calib, target="cortex-m4", outdir=tmp_path / "m4").library.manifest
    assert not any(lay["kernel"].startswith("mve") for lay in m4["layers"])  # M4 has its own (DSP) variants
    assert not any(k.startswith("tc_mve") for k in m4["kernels"])
