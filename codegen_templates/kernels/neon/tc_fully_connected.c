/* Fully connected, int8, AArch64 NEON backend (SDOT with the dot-product extension, else SMULL /
 * SADALP). Same API (portable tc_fully_connected.h) and bit-exact results as the portable kernel.
 * Two output rows per loaded input vector, 16 values per step; the input offset enters as
 * offset * sum(w), exact in int32; scalar tail for K % 16. */
#include "tc_fully_connected.h"
#include "tc_fixedpoint.h"
#include "tc_neon.h"

void tc_fully_connected_s8(const tc_fc_params *p, const int8_t *in, const int8_t *w, const int32_t *bias,
                           const int32_t *mult, const int32_t *shift, int8_t *out)
{
    const int32_t K = p->in_features, off = p->input_offset;
    const int8x16_t ones = vdupq_n_s8(1);
    for (int32_t o = 0; o < p->out_features; o += 2) {
        const int32_t two = o + 1 < p->out_features;
        const int8_t *wa = w + o * K, *wb = two ? wa + K : wa;
        int32x4_t a = vdupq_n_s32(0), b = a, sa = a, sb = a;
        int32_t k = 0;
        for (; k + 16 <= K; k += 16) {
            const int8x16_t xv = vld1q_s8(in + k), av = vld1q_s8(wa + k), bv = vld1q_s8(wb + k);
            a = TCN_DOT(a, xv, av);
            sa = TCN_DOT(sa, ones, av);
            b = TCN_DOT(b, xv, bv);
            sb = TCN_DOT(sb, ones, bv);
        }
        int32_t s0 = vaddvq_s32(a), s1 = vaddvq_s32(b), w0 = vaddvq_s32(sa), w1 = vaddvq_s32(sb);
        for (; k < K; ++k) {
            s0 += in[k] * wa[k];
            s1 += in[k] * wb[k];
            w0 += wa[k];
            w1 += wb[k];
        }
        out[o] = (int8_t)tc_clamp(tc_mbqm((bias ? bias[o] : 0) + s0 + off * w0, mult[o], shift[o]) + p->output_offset,
                                  p->act_min, p->act_max);
        if (two) {
            out[o + 1] = (int8_t)tc_clamp(
                tc_mbqm((bias ? bias[o + 1] : 0) + s1 + off * w1, mult[o + 1], shift[o + 1]) + p->output_offset,
                p->act_min, p->act_max);
        }
    }
}
