"""The NEON GEMM drivers and assembler tiles (kernels/neon/tc_neon_gemm.h, neon-i8mm/tc_neon_mmla.h)
on both emulated phone cores, byte for byte against the NumPy reference. Each case is a chain
conv -> 1x1 conv -> fully connected whose shapes send the layers down every path: row tiles read
from the input or from a zero-point-padded copy (strides, dilations, uneven pads, rows not a
multiple of 4 so the last tile overlaps), the im2col fallback (rows under 4 pixels, a padded copy
over TCN_PAD_MAX), 1x1 layers in place (in_c a multiple of 16 or not) and strided, one-pixel layers (the 1 x 16 tile), walks
unrolled whole and walks that loop (rows, dilated segments, 4-step blocks and their remainder),
16-channel blocks and 4/8/12-channel remainders, left shifts and clamps."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from conftest import need
from test_neon_layers import PHONES, _check, _out
from tinyconv import reference
from tinyconv.fixedpoint import quantize
from tinyconv.harness import api
from tinyconv.ir import QuantParams
from tinyconv.pipeline import compile_model

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "core"))
from ir_graphs import GraphBuilder  # noqa: E402

TCN_PAD_MAX = 96 * 1024  # the same constants as kernels/neon/tc_neon_gemm.h
TCN_UNROLL = 18


def _conv_path(h, w, cin, kh, kw, s, d, pads):
    """Which driver tcn_conv_gemm_s8 takes, and the walk's step count (mirrors the C conditions)."""
    oh, ow = _out(h, kh, s[0], d[0], pads[0], pads[2]), _out(w, kw, s[1], d[1], pads[1], pads[3])
    if oh * ow == 1:
        return "one-pixel"
    if kh == kw == 1 and s == (1, 1) and not any(pads):  # read in place; the last pixels copied if cin % 16
        return "direct" if cin % 16 == 0 else "direct-tail"
    if cin % 16 or ow < 4:
        return "im2col"
    src_h, src_w = (oh - 1) * s[0] + (kh - 1) * d[0] + 1, (ow - 1) * s[1] + (kw - 1) * d[1] + 1
    if not (pads[0] or pads[1] or src_h > h or src_w > w):
        return "rows"
    return "rows-padded" if src_h * src_w * cin <= TCN_PAD_MAX else "im2col"


def _steps(kh, kw, cin):
    return kh * kw * cin // 16  # 16-byte steps per tile walk (taps x channel blocks)


CASE = st.fixed_dictionaries(
    {
        "h": st.integers(1, 12), "w": st.integers(1, 14), "cin": st.sampled_from([16, 32, 48, 20]),
        "k": st.sampled_from([(3, 3), (1, 1), (2, 3), (3, 1)]), "s": st.sampled_from([(1, 1), (2, 2), (1, 2)]),
        "d": st.sampled_from([(1, 1), (1, 1), (2, 2), (1, 2)]), "pads": st.sampled_from([(0, 0, 0, 0), (1, 1, 1, 1), (0, 0, 1, 1), (2, 1, 0, 2)]),
        "c1": st.sampled_from([16, 32, 48, 19, 24, 12]), "s2": st.sampled_from([1, 2]), "c2": st.sampled_from([16, 40, 8]),
        "act": st.sampled_from([None, (0.0, None), (0.0, 6.0)]), "left": st.booleans(), "zp": st.sampled_from([0, 1, -1]),
        "seed": st.integers(0, 2**16),
    }
)  # fmt: skip


def _graph(c):
    """conv (drawn shape) -> 1x1 conv (stride 1 or 2) -> flatten -> fully connected."""
    rng = np.random.default_rng(c["seed"])
    h, w, cin, (kh, kw), s, d, pads = c["h"], c["w"], c["cin"], c["k"], c["s"], c["d"], c["pads"]
    oh, ow = _out(h, kh, s[0], d[0], pads[0], pads[2]), _out(w, kw, s[1], d[1], pads[1], pads[3])
    if oh <= 0 or ow <= 0:
        return None
    b = GraphBuilder("neon_gemm", (1, h, w, cin))

    def const(name, shape, scale=1.0):
        return b.const(name, rng.normal(size=shape) * scale)

    y = b.node("conv", "conv2d", ["x", const("w1", (c["c1"], kh, kw, cin), 1 / np.sqrt(kh * kw * cin)), const("b1", c["c1"], 0.1)],
               (1, oh, ow, c["c1"]), strides=s, dilations=d, pads=pads, groups=1, act=c["act"])  # fmt: skip
    s2 = c["s2"]
    oh2, ow2 = (oh - 1) // s2 + 1, (ow - 1) // s2 + 1
    y = b.node("pw", "conv2d", [y, const("w2", (c["c2"], 1, 1, c["c1"]), 1 / np.sqrt(c["c1"])), const("b2", c["c2"], 0.1)],
               (1, oh2, ow2, c["c2"]), strides=(s2, s2), dilations=(1, 1), pads=(0, 0, 0, 0), groups=1, act=None)  # fmt: skip
    k = oh2 * ow2 * c["c2"]
    y = b.node("flat", "reshape", [y], (1, k), shape=(1, k))
    y = b.node("fc", "fully_connected", [y, const("wf", (21, k), 1 / np.sqrt(k)), const("bf", 21, 0.1)], (1, 21), act=None)
    g = b.finish(y)
    calib = rng.normal(size=(3, h, w, cin)).astype(np.float32)
    if c["zp"]:
        calib = c["zp"] * (np.abs(calib) + 0.05)
    if c["left"]:  # a tiny conv output scale: multipliers above 1 (left shifts), heavy saturation
        g.given_quant["conv_out"] = QuantParams.per_tensor(1e-4, 0)
    return g, calib


def _case(**kw):
    base = dict(h=8, w=9, cin=16, k=(3, 3), s=(1, 1), d=(1, 1), pads=(1, 1, 1, 1), c1=16, s2=1, c2=16, act=(0.0, None),
                left=False, zp=0, seed=1)  # fmt: skip
    base.update(kw)
    return base


# Explicit cases: every driver and walk form on both cores, whatever the generated ones draw.
EXPLICIT = [
    _case(),  # padded rows (out_w 9: overlapping last tile), 9-step walk unrolled whole, 1x1 in place
    _case(h=7, w=10, cin=48, pads=(0, 0, 0, 0), c1=32, s2=2, c2=40, left=True, zp=1),  # rows from the input, 27 steps looping; 1x1 strided by rows
    _case(h=11, w=13, cin=64, s=(2, 2), d=(2, 2), pads=(2, 1, 0, 2), c1=19, act=(0.0, 6.0), zp=-1),  # dilated: 3 segments per row, looping
    _case(h=6, w=9, cin=16, d=(1, 2), pads=(1, 2, 1, 2), c1=32, s2=2),  # dilated, 9 steps unrolled whole
    _case(h=6, w=3, cin=32, c1=24, c2=8),  # rows under 4 pixels: by taps inside, im2col at the border
    _case(h=40, w=40, cin=64, k=(3, 3), c1=16, s2=2, c2=16, act=None),  # padded copy over TCN_PAD_MAX: im2col
    _case(h=3, w=3, cin=16, pads=(0, 0, 0, 0), c1=48, c2=16),  # one output pixel: the 1 x 16 tile
    _case(h=5, w=12, cin=20, k=(2, 3), s=(1, 2), c1=12, c2=40),  # in_c not a multiple of 16: im2col; 4/8/12 remainders
    _case(h=5, w=7, cin=20, k=(1, 1), pads=(0, 0, 0, 0), c1=24, c2=8, zp=-1),  # 1x1 in place over 32 bytes, tails copied
]


def test_explicit_cases_reach_every_gemm_path():
    """The explicit device cases below cover every driver and walk form (no device needed)."""
    paths, walks = set(), set()
    for c in EXPLICIT:
        oh = _out(c["h"], c["k"][0], c["s"][0], c["d"][0], c["pads"][0], c["pads"][2])
        ow = _out(c["w"], c["k"][1], c["s"][1], c["d"][1], c["pads"][1], c["pads"][3])
        convs = [(c["h"], c["w"], c["cin"], *c["k"], c["s"], c["d"], c["pads"]), (oh, ow, c["c1"], 1, 1, (c["s2"],) * 2, (1, 1), (0,) * 4)]
        for h, w, cin, kh, kw, s, d, pads in convs:
            path = _conv_path(h, w, cin, kh, kw, s, d, pads)
            paths.add(path)
            if path.startswith("rows"):
                dilated = d[1] > 1 and kw > 1  # one segment per tap
                walks.add(("unrolled" if _steps(kh, kw, cin) <= TCN_UNROLL else "loop", dilated))
    assert paths == {"rows", "rows-padded", "direct", "direct-tail", "im2col", "one-pixel"}
    assert walks == {("unrolled", False), ("unrolled", True), ("loop", False), ("loop", True)}


@pytest.mark.device
@pytest.mark.slow
@pytest.mark.parametrize("device", list(PHONES))
@pytest.mark.parametrize("case", EXPLICIT, ids=[f"case{i}" for i in range(len(EXPLICIT))])
def test_gemm_paths_bit_exact(device, case, tmp_path):
    need(device)
    g, calib = _graph(case)
    _check(g, calib, device, tmp_path)


@pytest.mark.device
@pytest.mark.slow
@pytest.mark.parametrize("device", list(PHONES))
# no shrinking: each example builds and runs firmware; the failure message names the layer instead
@settings(max_examples=3, deadline=None, derandomize=True, phases=[Phase.explicit, Phase.generate],
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(case=CASE)
def test_gemm_drawn_layers_bit_exact(device, case, tmp_path_factory):
    need(device)
    built = _graph(case)
    if built is None:
        return  # the drawn window does not fit the input
    _check(*built, device, tmp_path_factory.mktemp("gemm"))


@pytest.mark.device
@pytest.mark.slow
@pytest.mark.parametrize("device", list(PHONES))
@pytest.mark.parametrize("opt", ["-O0", "-Os"])
def test_gemm_tiles_at_other_optimisation_levels(device, opt, tmp_path):
    """The assembler tiles take their walk sizes as constants folded from the layer's parameters;
    at -O0 those are not constants and the tiles fall back to intrinsics, at -Os some inlining
    differs: both build and stay bit-exact (a user's own build may use any level)."""
    need(device)
    g, calib = _graph(EXPLICIT[1])  # rows by a looping walk, 1x1 strided, one-pixel FC
    target = PHONES[device]
    c = compile_model(g, calib=calib, target=target, outdir=tmp_path / target)
    s, z = c.graph.tensors["x"].quant.scalar()
    xq = quantize(calib, s, z)
    expected = reference.run_batch(c.graph, xq).reshape(len(xq), -1)
    got = api.run_inputs(c.library.outdir, device, xq.reshape(len(xq), -1), extra_cflags=(opt,)).outputs
    assert np.array_equal(np.asarray(got).reshape(expected.shape), expected)
