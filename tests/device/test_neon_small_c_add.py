"""The NEON first-layer and residual-add kernels (kernels/neon/tc_neon_small_c.h, tc_neon_add.h) on
both emulated phone cores, byte for byte against the NumPy reference, on hypothesis-generated
layers: two convolutions with 1-4 input channels (kernel sizes 1x1 to 10x4, strides 1/2,
dilations, padding, odd widths, kernel rows of 1 to 13 four-byte groups, 3 to 40 output channels,
so every tile shape and channel remainder) summed by an Add whose input and output scales, zero
points and clamp are drawn (either input the larger scale, lengths not a multiple of 16, clamps
below the zero point that need the exact round-half-away fix-up, fused ReLUs that do not, and an
output scale so small that the Add falls back to the generic vector kernel)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from conftest import assert_runs_bit_exact, need, run_neon_program
from tinyconv import neon_layers
from tinyconv.fixedpoint import quantize
from tinyconv.ir import QuantParams
from tinyconv.pipeline import compile_model
from tinyconv.targets import get_target

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "core"))
from ir_graphs import GraphBuilder  # noqa: E402

pytestmark = [pytest.mark.device, pytest.mark.slow]

PHONES = {"qemu-aarch64": "aarch64", "qemu-aarch64-i8mm": "aarch64-i8mm"}
ACTS = [None, (0.0, None), (0.0, 6.0), (-0.5, 0.5), (0.25, None)]


def _out(n: int, k: int, s: int, d: int, p0: int, p1: int) -> int:
    return (n + p0 + p1 - d * (k - 1) - 1) // s + 1


@st.composite
def small_c_add_graphs(draw):
    """x [1, h, w, cin <= 4] -> conv a, conv b (same geometry, own weights) -> add (-> graph output)."""
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    cin = draw(st.integers(1, 4))
    kh, kw = draw(st.sampled_from([(1, 1), (3, 3), (3, 3), (2, 3), (5, 4), (10, 4), (1, 5)]))
    sh, sw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    dh, dw = draw(st.sampled_from([(1, 1), (1, 1), (2, 1), (1, 2), (2, 3)]))
    h = draw(st.integers(max(1, (kh - 1) * dh - 3), (kh - 1) * dh + 9))
    w = draw(st.integers(max(1, (kw - 1) * dw - 3), (kw - 1) * dw + 11))
    pads = tuple(draw(st.integers(0, 2)) for _ in range(4)) if draw(st.booleans()) else (0, 0, 0, 0)
    oh, ow = _out(h, kh, sh, dh, pads[0], pads[2]), _out(w, kw, sw, dw, pads[1], pads[3])
    if oh <= 0 or ow <= 0:  # the window does not fit: a 1x1 conv instead
        kh = kw = sh = sw = dh = dw = 1
        pads = (0, 0, 0, 0)
        oh, ow = h, w
    cout = draw(st.sampled_from([3, 4, 5, 8, 12, 16, 19, 24, 40]))
    b = GraphBuilder("neon_small_c_add", (1, h, w, cin))
    geometry = dict(strides=(sh, sw), dilations=(dh, dw), pads=pads, groups=1)
    branches = []
    for name in ("ca", "cb"):
        wt = b.const(f"w_{name}", rng.normal(size=(cout, kh, kw, cin)) / np.sqrt(kh * kw * cin))
        bias = b.const(f"b_{name}", rng.normal(size=cout) * 0.1)
        act = draw(st.sampled_from(ACTS))
        branches.append(b.node(name, "conv2d", ["x", wt, bias], (1, oh, ow, cout), act=act, **geometry))
    y = b.node("add", "add", branches, (1, oh, ow, cout), act=draw(st.sampled_from(ACTS)))
    g = b.finish(y)

    def q(lo, hi):  # a drawn scale (log-uniform) and zero point
        return QuantParams.per_tensor(float(np.exp(draw(st.floats(np.log(lo), np.log(hi))))), draw(st.integers(-128, 127)))

    g.given_quant["ca_out"] = q(1e-3, 0.2)
    g.given_quant["cb_out"] = g.given_quant["ca_out"] if draw(st.booleans()) else q(1e-3, 0.2)  # equal scales: both terms exact
    if draw(st.booleans()):
        g.given_quant["add_out"] = q(1e-3, 0.5)
    if draw(st.integers(0, 7)) == 0:  # an output multiplier above 1: the generic vector Add
        g.given_quant["add_out"] = QuantParams.per_tensor(1e-9, 0)
    if draw(st.integers(0, 4)) == 0:  # a tiny conv output scale: requantization shifting left
        g.given_quant["ca_out"] = QuantParams.per_tensor(1e-5, 0)

    sign = draw(st.sampled_from([0, 1, -1]))  # input zero point free, -128 or +127
    calib = rng.normal(size=(3, h, w, cin)).astype(np.float32)
    if sign:
        calib = sign * (np.abs(calib) + 0.05)
    return g, calib


def _check(g, calib, device, tmp_path):
    target = PHONES[device]
    c = compile_model(g, calib=calib, target=target, outdir=tmp_path / target)
    kernels = {lay["name"]: lay["kernel"] for lay in c.library.manifest["layers"]}
    assert kernels["ca"] == kernels["cb"] == "neon_small_c"
    add = c.graph.nodes[-1]
    assert kernels["add"] == ("neon_add_flat" if neon_layers._flat_add(add, c.graph) else "neon_add")
    assert neon_layers.specialise(c.graph.nodes[0], c.graph, get_target(target)).kind == "small_c"
    assert_runs_bit_exact(c, device, quantize(calib, *c.graph.tensors["x"].quant.scalar()))


@pytest.mark.parametrize("device", list(PHONES))
# no shrinking: each example builds and runs firmware; the failure message names the layer instead
@settings(max_examples=10, deadline=None, derandomize=True, phases=[Phase.explicit, Phase.generate],
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(case=small_c_add_graphs())
def test_small_c_conv_and_add_bit_exact(device, case, tmp_path_factory):
    need(device)
    g, calib = case
    _check(g, calib, device, tmp_path_factory.mktemp("neon_small_c"))


RELU_PROGRAM = r"""
#include <stdio.h>
#include "tc_fixedpoint.h"
#include "tc_neon_small_c.h"

static uint64_t state = 88172645463325252ull;
static int32_t rnd(void) { state ^= state << 13; state ^= state >> 7; state ^= state << 17; return (int32_t)state; }

int main(void)
{
    static const int32_t mults[] = {1073741824, 1073741825, 1518500250, 2147483647};
    static const int32_t offsets[] = {-128, -127, -5, 0, 3, 126, 127};
    long checked = 0, bad = 0;
    for (int32_t shift = -31; shift <= 31; ++shift) {
        for (unsigned mi = 0; mi < 4 + 16; ++mi) {
            const int32_t m = mi < 4 ? mults[mi] : (int32_t)(((uint32_t)rnd() | 0x40000000u) & 0x7fffffffu);
            int32_t acc[256];
            int n = 0;
            acc[n++] = INT32_MIN; acc[n++] = INT32_MAX; acc[n++] = 0; acc[n++] = -1;
            for (int e = 0; e < 31; ++e) { /* ties of every shift, after the multiply too */
                const int32_t b = (int32_t)(1u << e);
                acc[n++] = -b; acc[n++] = -(b + (b >> 1)); acc[n++] = -(b >> 1) - 1; acc[n++] = b + (b >> 1);
            }
            while (n < 256) acc[n++] = rnd() >> (rnd() & 31);
            const int32x4_t mv = vdupq_n_s32(m), lv = vdupq_n_s32(shift > 0 ? shift : 0), rv = vdupq_n_s32(shift > 0 ? 0 : shift);
            for (unsigned oi = 0; oi < sizeof offsets / sizeof offsets[0]; ++oi) {
                for (int32_t lift = 0; lift <= 2; ++lift) { /* act_min = zero point, or above it */
                    const int32_t off = offsets[oi], lo = off + lift > 127 ? 127 : off + lift, hi = 127 - lift;
                    const tcn_out_stage s = tcn_out_stage_make(off, lo, hi > lo ? hi : lo);
                    for (int i = 0; i < n; i += 16) {
                        int8_t got[16];
                        int32x4_t y[4];
                        for (int v = 0; v < 4; ++v) y[v] = tcn_sc_requant(vld1q_s32(acc + i + 4 * v), mv, lv, rv, shift > 0, 1);
                        vst1q_s8(got, tcn_narrow16(y[0], y[1], y[2], y[3], &s));
                        for (int j = 0; j < 16; ++j) {
                            const int64_t y = (int64_t)tc_mbqm_general(acc[i + j], m, shift) + off; /* no int32 wrap */
                            const int32_t want = y < lo ? lo : y > (hi > lo ? hi : lo) ? (hi > lo ? hi : lo) : (int32_t)y;
                            checked++;
                            if (got[j] != want && bad++ < 5) printf("acc %d m %d shift %d off %d: got %d want %d\n", acc[i + j], m, shift, off, got[j], want);
                        }
                    }
                }
            }
        }
    }
    for (int32_t off = -128; off <= 127; ++off) /* the kernels take the shortcut exactly when act_min >= offset */
        for (int32_t lo = -128; lo <= 127; ++lo)
            if (tcn_out_stage_make(off, lo, 127).up != (lo >= off) && bad++ < 5) printf("up flag wrong: off %d act_min %d\n", off, lo);
    printf("checked %ld mismatches %ld\n", checked, bad);
    return bad != 0;
}
"""


@pytest.mark.parametrize("cpu", ["cortex-a76", "max,sme=off,sve-default-vector-length=16"])
def test_relu_requant_round_half_up_is_exact(tmp_path, cpu):
    """The shortcut under a fused ReLU (tc_neon.h tcn_requant4_up: round half up, no fix-up; used by
    the first-layer, GEMM and depthwise kernels through tcn_sc_requant / TCN_RQR) gives the
    reference's clamped output for every shift, ties included."""
    need("qemu-aarch64")
    assert run_neon_program(tmp_path, RELU_PROGRAM, cpu, std="gnu99", timeout=120) == 63 * 20 * 7 * 3 * 256
