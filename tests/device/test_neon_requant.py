"""The NEON vector requantization (kernels/neon/tc_neon.h tcn_requant4 / tcn_requant4_right:
SQSHL, SQRDMULH, AND + SSRA fix-up, SRSHL) against the scalar tc_mbqm (itself tested against
tinyconv/fixedpoint.py), lane by lane, on emulated aarch64: every shift in [-31, 31], multipliers
at the Q31 extremes (positive and negative, as quantize_multiplier can return), accumulators at the
int32 extremes, around every rounding boundary and at random."""

from __future__ import annotations

import pytest

from conftest import need, run_neon_program

pytestmark = pytest.mark.device

PROGRAM = r"""
#include <stdio.h>
#include "tc_fixedpoint.h"
#include "tc_neon.h"

static uint64_t state = 88172645463325252ull;
static int32_t rnd(void) { state ^= state << 13; state ^= state >> 7; state ^= state << 17; return (int32_t)state; }

int main(void)
{
    static const int32_t mults[] = {0, 1, 1073741824, 1073741825, 1518500250, 2147483647, -1073741824, -2147483647};
    long checked = 0, bad = 0;
    for (int32_t shift = -31; shift <= 31; ++shift) {
        for (unsigned mi = 0; mi < sizeof mults / sizeof mults[0] + 64; ++mi) {
            const int32_t m = mi < sizeof mults / sizeof mults[0] ? mults[mi] : (int32_t)((uint32_t)rnd() | 0x40000000u) & 0x7fffffff;
            int32_t acc[512];
            int n = 0;
            acc[n++] = INT32_MIN; acc[n++] = INT32_MIN + 1; acc[n++] = INT32_MAX; acc[n++] = 0; acc[n++] = 1; acc[n++] = -1;
            for (int e = 0; e < 31 && n + 6 <= 448; ++e) { /* around the rounding points of every shift */
                const int32_t b = (int32_t)(1u << e);
                acc[n++] = b; acc[n++] = -b; acc[n++] = b + (b >> 1); acc[n++] = -(b + (b >> 1)); acc[n++] = (b >> 1) - 1; acc[n++] = -(b >> 1) - 1;
            }
            while (n < 512) acc[n++] = rnd() >> (rnd() & 31);
            const int32x4_t mv = vdupq_n_s32(m), lv = vdupq_n_s32(shift > 0 ? shift : 0), rv = vdupq_n_s32(shift > 0 ? 0 : shift);
            for (int i = 0; i < n; i += 4) {
                int32_t got[4], got_r[4];
                vst1q_s32(got, tcn_requant4(vld1q_s32(acc + i), mv, lv, rv));
                vst1q_s32(got_r, tcn_requant4_right(vld1q_s32(acc + i), mv, rv));
                for (int j = 0; j < 4; ++j) {
                    const int32_t want = tc_mbqm_general(acc[i + j], m, shift);
                    checked++;
                    if (got[j] != want || (shift <= 0 && got_r[j] != want)) {
                        if (bad++ < 5) printf("acc %d m %d shift %d: got %d / %d want %d\n", acc[i + j], m, shift, got[j], got_r[j], want);
                    }
                }
            }
        }
    }
    printf("checked %ld mismatches %ld\n", checked, bad);
    return bad != 0;
}
"""


@pytest.mark.parametrize("cpu", ["cortex-a76", "max,sme=off,sve-default-vector-length=16"])
def test_vector_requant_equals_scalar(tmp_path, cpu):
    need("qemu-aarch64")
    checked = run_neon_program(tmp_path, PROGRAM, cpu, timeout=120)
    assert checked > 63 * 72 * 500  # every shift x multiplier x accumulator was compared
