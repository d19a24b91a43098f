/* Add and Mul, int8, AArch64 NEON backend: same API and results as the portable kernel. Add over
 * equal shapes (residual connections) runs 16 elements per step with the exact vector
 * requantization (tcn_requant4_right); broadcasting, left-shifting parameters and Mul use the
 * scalar reference loop. */
#include "tc_elementwise_ref.h"
#include "tc_neon.h"

/* One input's 4 lanes, rescaled: MBQM(x << left_shift, m, shift <= 0); a zero shift (TFLite gives the
 * input with the larger scale multiplier 2^30, shift 0) needs no rounding shift at all. */
static inline __attribute__((always_inline)) int32x4_t tcn_add_rescale(int32x4_t x, int32x4_t m, int32x4_t r, int no_shift)
{
    return no_shift ? vqrdmulhq_s32(x, m) : tcn_requant4_right(x, m, r);
}

/* The flat loop, specialised by the constant flags (which input shifts are zero, whether the
 * activation clamp can bind). Every shift is <= 0 and left_shift in 16..23 (TFLite uses 20):
 * (x + offset) << left_shift is an int16 shift by left_shift - 16 (|x + offset| <= 255 fits) and
 * a widening shift by 16. */
static inline __attribute__((always_inline)) int32_t tcn_add_flat_k(const tc_binary_params *p, const int8_t *a, const int8_t *b,
                                                                   int8_t *out, int32_t n, int a0, int b0, int full)
{
    const int16x8_t aoff = vdupq_n_s16((int16_t)p->a_offset), boff = vdupq_n_s16((int16_t)p->b_offset);
    const int16x8_t pre = vdupq_n_s16((int16_t)(p->left_shift - 16));
    const int32x4_t am = vdupq_n_s32(p->a_multiplier), ar = vdupq_n_s32(p->a_shift);
    const int32x4_t bm = vdupq_n_s32(p->b_multiplier), br = vdupq_n_s32(p->b_shift);
    const int32x4_t om = vdupq_n_s32(p->output_multiplier), orr = vdupq_n_s32(p->output_shift);
    const int16x8_t ooff = vdupq_n_s16((int16_t)p->output_offset);
    const int8x16_t lo = vdupq_n_s8((int8_t)p->act_min), hi = vdupq_n_s8((int8_t)p->act_max);
    int32_t i = 0;
#define TCN_SUM(ah, bh, half)                                                                             \
    tcn_requant4_right(vaddq_s32(tcn_add_rescale(vshll##half##n_s16(ah, 16), am, ar, a0),                  \
                                 tcn_add_rescale(vshll##half##n_s16(bh, 16), bm, br, b0)), om, orr)
    for (; i + 16 <= n; i += 16) {
        const int8x16_t av = vld1q_s8(a + i), bv = vld1q_s8(b + i);
        const int16x8_t a_0 = vshlq_s16(vaddw_s8(aoff, vget_low_s8(av)), pre), a_1 = vshlq_s16(vaddw_high_s8(aoff, av), pre);
        const int16x8_t b_0 = vshlq_s16(vaddw_s8(boff, vget_low_s8(bv)), pre), b_1 = vshlq_s16(vaddw_high_s8(boff, bv), pre);
        const int32x4_t s0 = TCN_SUM(vget_low_s16(a_0), vget_low_s16(b_0), _);
        const int32x4_t s1 = TCN_SUM(a_0, b_0, _high_);
        const int32x4_t s2 = TCN_SUM(vget_low_s16(a_1), vget_low_s16(b_1), _);
        const int32x4_t s3 = TCN_SUM(a_1, b_1, _high_);
        /* + output offset and clamp: saturating narrows are exact as the clamp range is inside int8 */
        const int16x8_t h0 = vqaddq_s16(vqmovn_high_s32(vqmovn_s32(s0), s1), ooff);
        const int16x8_t h1 = vqaddq_s16(vqmovn_high_s32(vqmovn_s32(s2), s3), ooff);
        int8x16_t v = vqmovn_high_s16(vqmovn_s16(h0), h1);
        if (!full) v = vminq_s8(vmaxq_s8(v, lo), hi);
        vst1q_s8(out + i, v);
    }
#undef TCN_SUM
    return i;
}

/* The first n & ~15 elements when no shift is a left shift (else 0: the scalar loop does all). */
static int32_t tcn_add_flat(const tc_binary_params *p, const int8_t *a, const int8_t *b, int8_t *out, int32_t n)
{
    if (p->a_shift > 0 || p->b_shift > 0 || p->output_shift > 0 || p->left_shift < 16 || p->left_shift > 23) return 0;
    const int full = p->act_min <= -128 && p->act_max >= 127;
    if (p->a_shift == 0) return full ? tcn_add_flat_k(p, a, b, out, n, 1, 0, 1) : tcn_add_flat_k(p, a, b, out, n, 1, 0, 0);
    if (p->b_shift == 0) return full ? tcn_add_flat_k(p, a, b, out, n, 0, 1, 1) : tcn_add_flat_k(p, a, b, out, n, 0, 1, 0);
    return full ? tcn_add_flat_k(p, a, b, out, n, 0, 0, 1) : tcn_add_flat_k(p, a, b, out, n, 0, 0, 0);
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
