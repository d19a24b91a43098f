/* Helpers shared by the AArch64 NEON kernels (kernels/neon/). */
#ifndef TC_NEON_H
#define TC_NEON_H

#include <arm_neon.h>

/* acc += 4-lane dot products of 16 int8 pairs: SDOT with the dot-product extension, else widening
 * multiplies and pairwise adds (same sums). */
#if defined(__ARM_FEATURE_DOTPROD)
#define TCN_DOT(acc, a, b) vdotq_s32((acc), (a), (b))
#else
static inline int32x4_t tcn_dot(int32x4_t acc, int8x16_t a, int8x16_t b)
{
    acc = vpadalq_s16(acc, vmull_s8(vget_low_s8(a), vget_low_s8(b)));
    return vpadalq_s16(acc, vmull_high_s8(a, b));
}
#define TCN_DOT(acc, a, b) tcn_dot((acc), (a), (b))
#endif

/* MultiplyByQuantizedMultiplier on 4 lanes, bit-exact with tc_mbqm: l = max(shift, 0),
 * r = min(shift, 0). SQSHL saturates the left shift as tc_mbqm_general does; SQRDMULH is
 * SaturatingRoundingDoublingHighMul; SRSHL by r rounds half up, so negative values first drop by
 * one (where r < 0) to round half away from zero like tc_rounding_divide_by_pot. The drop cannot
 * wrap: SaturatingRoundingDoublingHighMul never returns INT32_MIN (|a b| <= 2^62 - 2^31 unless
 * both are INT32_MIN, which saturates to INT32_MAX). */
static inline int32x4_t tcn_requant4_right(int32x4_t acc, int32x4_t m, int32x4_t r)
{
    const int32x4_t x = vqrdmulhq_s32(acc, m);
    return vrshlq_s32(vsraq_n_s32(x, vandq_s32(x, r), 31), r);
}

/* The same without the fix-up (SRSHL rounds half up), for layers with a fused ReLU (act_min >= the
 * output zero point): the two roundings differ only on negative ties, where both results are <= 0
 * and the clamp maps both to act_min. */
static inline int32x4_t tcn_requant4_up(int32x4_t acc, int32x4_t m, int32x4_t r)
{
    return vrshlq_s32(vqrdmulhq_s32(acc, m), r);
}

static inline int32x4_t tcn_requant4(int32x4_t acc, int32x4_t m, int32x4_t l, int32x4_t r)
{
    return tcn_requant4_right(vqshlq_s32(acc, l), m, r);
}

#endif /* TC_NEON_H */
