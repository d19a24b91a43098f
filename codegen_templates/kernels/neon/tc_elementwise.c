/* Add and Mul, int8, AArch64 NEON backend: same API and results as the portable kernel. Add over
 * equal shapes (residual connections) runs 16 elements per step with the exact vector
 * requantization (tcn_requant4_right); broadcasting, left-shifting parameters and Mul use the
 * scalar reference loop. */
#include "tc_elementwise_ref.h"
#include "tc_neon.h"

/* The first n & ~15 elements when no shift is a left shift and left_shift is 16..23 (TFLite
 * uses 20); returns how many were done. (x + offset) << left_shift is formed as an int16 shift by
 * left_shift - 16 (|x + offset| <= 255, so it fits) and a widening shift by 16. */
static int32_t tcn_add_flat(const tc_binary_params *p, const int8_t *a, const int8_t *b, int8_t *out, int32_t n)
{
    if (p->a_shift > 0 || p->b_shift > 0 || p->output_shift > 0 || p->left_shift < 16 || p->left_shift > 23) return 0;
    const int16x8_t aoff = vdupq_n_s16((int16_t)p->a_offset), boff = vdupq_n_s16((int16_t)p->b_offset);
    const int16x8_t pre = vdupq_n_s16((int16_t)(p->left_shift - 16));
    const int32x4_t am = vdupq_n_s32(p->a_multiplier), ar = vdupq_n_s32(p->a_shift);
    const int32x4_t bm = vdupq_n_s32(p->b_multiplier), br = vdupq_n_s32(p->b_shift);
    const int32x4_t om = vdupq_n_s32(p->output_multiplier), orr = vdupq_n_s32(p->output_shift);
    const int16x8_t ooff = vdupq_n_s16((int16_t)p->output_offset);
    const int8x16_t lo = vdupq_n_s8((int8_t)p->act_min), hi = vdupq_n_s8((int8_t)p->act_max);
    int32_t i = 0;
#define TCN_SUM(k, ah, bh, half)                                                                          \
    tcn_requant4_right(vaddq_s32(tcn_requant4_right(vshll##half##n_s16(ah, 16), am, ar),                   \
                                 tcn_requant4_right(vshll##half##n_s16(bh, 16), bm, br)), om, orr)
    for (; i + 16 <= n; i += 16) {
        const int8x16_t av = vld1q_s8(a + i), bv = vld1q_s8(b + i);
        const int16x8_t a0 = vshlq_s16(vaddw_s8(aoff, vget_low_s8(av)), pre), a1 = vshlq_s16(vaddw_high_s8(aoff, av), pre);
        const int16x8_t b0 = vshlq_s16(vaddw_s8(boff, vget_low_s8(bv)), pre), b1 = vshlq_s16(vaddw_high_s8(boff, bv), pre);
        const int32x4_t s0 = TCN_SUM(0, vget_low_s16(a0), vget_low_s16(b0), _);
        const int32x4_t s1 = TCN_SUM(1, a0, b0, _high_);
        const int32x4_t s2 = TCN_SUM(2, vget_low_s16(a1), vget_low_s16(b1), _);
        const int32x4_t s3 = TCN_SUM(3, a1, b1, _high_);
        /* + output offset and clamp: saturating narrows are exact as the clamp range is inside int8 */
        const int16x8_t h0 = vqaddq_s16(vqmovn_high_s32(vqmovn_s32(s0), s1), ooff);
        const int16x8_t h1 = vqaddq_s16(vqmovn_high_s32(vqmovn_s32(s2), s3), ooff);
        vst1q_s8(out + i, vminq_s8(vmaxq_s8(vqmovn_high_s16(vqmovn_s16(h0), h1), lo), hi));
    }
#undef TCN_SUM
    return i;
}

void tc_add_s8(const tc_binary_params *p, const int8_t *a, const int8_t *b, int8_t *out)
{
    if (same_shape(p)) {
        const int32_t n = p->dims[0] * p->dims[1] * p->dims[2] * p->dims[3];
        for (int32_t i = tcn_add_flat(p, a, b, out, n); i < n; ++i) {
            out[i] = (int8_t)tc_clamp(add_one(p, a[i], b[i]), p->act_min, p->act_max);
        }
        return;
    }
    TC_BROADCAST_LOOP(add_one)
}

void tc_mul_s8(const tc_binary_params *p, const int8_t *a, const int8_t *b, int8_t *out)
{
    TC_BROADCAST_LOOP(mul_one)
}
