"""The compile-time specialised NEON layers (tinyconv/neon_layers.py, kernels/neon/tc_neon_gemm.h,
vector Add and pooling) on both emulated phone cores, byte for byte against the NumPy reference,
on hypothesis-generated layers that reach every kernel variant: GEMM tiles of 16 channels and the
4/8/12-channel remainders, channel counts not a multiple of 4, pixel counts not a multiple of the
tile, 1x1 layers read in place and through im2col (stride, padding, dilation, 1 input channel,
reductions not a multiple of 16), depthwise over 16 / 8 / single channels (interior windows and
padded borders, stride 2, dilation, 5x5), fully connected, flat Add, average / max pooling and
mean; input zero points at both extremes, and requantization that shifts left (an output scale
far below input x weight scale) or saturates."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from conftest import assert_runs_bit_exact, need
from tinyconv import neon_layers
from tinyconv.fixedpoint import quantize
from tinyconv.ir import QuantParams
from tinyconv.pipeline import compile_model
from tinyconv.targets import get_target

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "core"))
from ir_graphs import GraphBuilder  # noqa: E402

pytestmark = [pytest.mark.device, pytest.mark.slow]

PHONES = {"qemu-aarch64": "aarch64", "qemu-aarch64-i8mm": "aarch64-i8mm"}


def _out(n: int, k: int, s: int, d: int, p0: int, p1: int) -> int:
    return (n + p0 + p1 - d * (k - 1) - 1) // s + 1


@st.composite
def layer_graphs(draw):
    """conv (groups 1) -> depthwise -> [add with a 1x1 branch] -> pooling -> fc, shapes drawn."""
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    h, w = draw(st.integers(1, 9)), draw(st.integers(1, 11))
    cin = draw(st.sampled_from([1, 3, 4, 8, 16, 20, 32]))
    b = GraphBuilder("neon_layers", (1, h, w, cin))

    def const(name, shape, scale=1.0):
        return b.const(name, rng.normal(size=shape) * scale)

    # dense conv: kernel, stride, dilation, padding drawn; out channels over every remainder
    kh, kw = draw(st.sampled_from([(1, 1), (1, 1), (3, 3), (2, 3), (5, 4)]))
    sh, sw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    dh, dw = draw(st.sampled_from([(1, 1), (1, 1), (2, 1)]))
    pads = tuple(draw(st.integers(0, 2)) for _ in range(4)) if draw(st.booleans()) else (0, 0, 0, 0)
    oh, ow = _out(h, kh, sh, dh, pads[0], pads[2]), _out(w, kw, sw, dw, pads[1], pads[3])
    if oh <= 0 or ow <= 0:
        kh = kw = sh = sw = dh = dw = 1
        pads = (0, 0, 0, 0)
        oh, ow = h, w
    c1 = draw(st.sampled_from([3, 4, 8, 12, 16, 19, 24, 32, 40]))
    act = draw(st.sampled_from([None, (0.0, None), (0.0, 6.0)]))
    y = b.node("conv", "conv2d", ["x", const("w1", (c1, kh, kw, cin), 1 / np.sqrt(kh * kw * cin)), const("b1", c1, 0.1)],
               (1, oh, ow, c1), strides=(sh, sw), dilations=(dh, dw), pads=pads, groups=1, act=act)  # fmt: skip

    # depthwise, multiplier 1: kernel 3x3 or 5x5, stride 1/2, dilation, padding
    k = draw(st.sampled_from([3, 3, 5]))
    s = draw(st.integers(1, 2))
    dl = draw(st.sampled_from([1, 1, 2]))
    p = draw(st.integers(0, (k - 1) * dl))
    dh2, dw2 = _out(oh, k, s, dl, p, p), _out(ow, k, s, dl, p, p)
    if dh2 > 0 and dw2 > 0:
        y = b.node("dw", "conv2d", [y, const("w2", (c1, k, k, 1), 1 / k)], (1, dh2, dw2, c1),
                   strides=(s, s), dilations=(dl, dl), pads=(p, p, p, p), groups=c1, act=(0.0, None))  # fmt: skip
        oh, ow = dh2, dw2

    if draw(st.booleans()):  # residual add with a pointwise branch (the flat vector Add)
        br = b.node("pw", "conv2d", [y, const("w3", (c1, 1, 1, c1), 1 / np.sqrt(c1))], (1, oh, ow, c1),
                    strides=(1, 1), dilations=(1, 1), pads=(0, 0, 0, 0), groups=1, act=None)  # fmt: skip
        y = b.node("add", "add", [y, br], (1, oh, ow, c1), act=draw(st.sampled_from([None, (0.0, None)])))

    pool = draw(st.sampled_from(["mean", "avg", "max"]))
    if pool == "mean":
        y = b.node("mean", "mean", [y], (1, 1, 1, c1), axes=(1, 2), keepdims=True)
    else:
        op = "avg_pool2d" if pool == "avg" else "max_pool2d"
        attrs = dict(kernel=(oh, ow), strides=(1, 1), pads=(0, 0, 0, 0))
        if pool == "avg":
            attrs["count_include_pad"] = False
        y = b.node("pool", op, [y], (1, 1, 1, c1), **attrs)
    y = b.node("flat", "reshape", [y], (1, c1), shape=(1, c1))
    nout = draw(st.sampled_from([2, 5, 16, 21]))
    y = b.node("fc", "fully_connected", [y, const("wf", (nout, c1), 1 / np.sqrt(c1)), const("bf", nout, 0.1)], (1, nout), act=None)
    g = b.finish(y)

    sign = draw(st.sampled_from([0, 1, -1]))  # input zero point free, -128 or +127
    calib = rng.normal(size=(4, h, w, cin)).astype(np.float32)
    if sign:
        calib = sign * (np.abs(calib) + 0.05)
    if draw(st.booleans()):  # a tiny conv output scale: multipliers above 1 (left shifts), heavy saturation
        g.given_quant["conv_out"] = QuantParams.per_tensor(1e-4, 0)
    return g, calib


def _check(g, calib, device, tmp_path):
    target = PHONES[device]
    c = compile_model(g, calib=calib, target=target, outdir=tmp_path / target)
    kinds = {neon_layers.specialise(n, c.graph, get_target(target)).kind for n in c.graph.nodes if neon_layers.specialise(n, c.graph, get_target(target))}
    assert "gemm" in kinds  # the conv and the FC take the specialised kernels
    assert_runs_bit_exact(c, device, quantize(calib, *c.graph.tensors["x"].quant.scalar()))


@pytest.mark.parametrize("device", list(PHONES))
# no shrinking: each example builds and runs firmware; the failure message names the layer instead
@settings(max_examples=8, deadline=None, derandomize=True, phases=[Phase.explicit, Phase.generate],
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(case=layer_graphs())
def test_neon_layers_bit_exact(device, case, tmp_path_factory):
    need(device)
    g, calib = case
    _check(g, calib, device, tmp_path_factory.mktemp("neon"))
