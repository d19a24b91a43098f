/* Add and Mul, int8, AArch64 NEON backend: same API and results as the portable kernel. Add over
 * equal shapes (residual connections) runs 16 elements per step with the exact vector
 * requantization (tcn_requant4); broadcasting and Mul use the scalar reference loop. */
#include "tc_elementwise_ref.h"
#include "tc_neon.h"

/* One input's 4 lanes, rescaled: MBQM((x + offset) << left_shift, multiplier, shift). */
static inline int32x4_t tcn_add_rescale(int16x4_t x, int32x4_t left, int32x4_t m, int32x4_t l, int32x4_t r)
{
    return tcn_requant4(vshlq_s32(vmovl_s16(x), left), m, l, r);
}

/* The first n & ~15 elements; returns how many were done. */
static int32_t tcn_add_flat(const tc_binary_params *p, const int8_t *a, const int8_t *b, int8_t *out, int32_t n)
{
    const int16x8_t aoff = vdupq_n_s16((int16_t)p->a_offset), boff = vdupq_n_s16((int16_t)p->b_offset);
    const int32x4_t left = vdupq_n_s32(p->left_shift);
    const int32x4_t am = vdupq_n_s32(p->a_multiplier), al = vdupq_n_s32(p->a_shift > 0 ? p->a_shift : 0), ar = vdupq_n_s32(p->a_shift > 0 ? 0 : p->a_shift);
    const int32x4_t bm = vdupq_n_s32(p->b_multiplier), bl = vdupq_n_s32(p->b_shift > 0 ? p->b_shift : 0), br = vdupq_n_s32(p->b_shift > 0 ? 0 : p->b_shift);
    const int32x4_t om = vdupq_n_s32(p->output_multiplier), ol = vdupq_n_s32(p->output_shift > 0 ? p->output_shift : 0);
    const int32x4_t orr = vdupq_n_s32(p->output_shift > 0 ? 0 : p->output_shift);
    const int16x8_t ooff = vdupq_n_s16((int16_t)p->output_offset);
    const int8x16_t lo = vdupq_n_s8((int8_t)p->act_min), hi = vdupq_n_s8((int8_t)p->act_max);
    int32_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const int8x16_t av = vld1q_s8(a + i), bv = vld1q_s8(b + i);
        const int16x8_t a0 = vaddq_s16(vmovl_s8(vget_low_s8(av)), aoff), a1 = vaddq_s16(vmovl_high_s8(av), aoff);
        const int16x8_t b0 = vaddq_s16(vmovl_s8(vget_low_s8(bv)), boff), b1 = vaddq_s16(vmovl_high_s8(bv), boff);
        int32x4_t s[4];
        s[0] = vaddq_s32(tcn_add_rescale(vget_low_s16(a0), left, am, al, ar), tcn_add_rescale(vget_low_s16(b0), left, bm, bl, br));
        s[1] = vaddq_s32(tcn_add_rescale(vget_high_s16(a0), left, am, al, ar), tcn_add_rescale(vget_high_s16(b0), left, bm, bl, br));
        s[2] = vaddq_s32(tcn_add_rescale(vget_low_s16(a1), left, am, al, ar), tcn_add_rescale(vget_low_s16(b1), left, bm, bl, br));
        s[3] = vaddq_s32(tcn_add_rescale(vget_high_s16(a1), left, am, al, ar), tcn_add_rescale(vget_high_s16(b1), left, bm, bl, br));
        for (int k = 0; k < 4; ++k) s[k] = tcn_requant4(s[k], om, ol, orr);
        /* + output offset and clamp: saturating narrows are exact as the clamp range is inside int8 */
        const int16x8_t h0 = vqaddq_s16(vqmovn_high_s32(vqmovn_s32(s[0]), s[1]), ooff);
        const int16x8_t h1 = vqaddq_s16(vqmovn_high_s32(vqmovn_s32(s[2]), s[3]), ooff);
        vst1q_s8(out + i, vminq_s8(vmaxq_s8(vqmovn_high_s16(vqmovn_s16(h0), h1), lo), hi));
    }
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
