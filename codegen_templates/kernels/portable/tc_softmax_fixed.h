/* Fixed-point pieces of the int8 softmax shared by the portable kernel (tc_softmax.c) and the
 * NEON one (kernels/neon/tc_neon_softmax.c): saturating shift, leading zeros, and the reciprocal
 * 1 / (1 + a) that turns the sum of exponentials into the output scale (gemmlowp / TFLite Micro). */
#ifndef TC_SOFTMAX_FIXED_H
#define TC_SOFTMAX_FIXED_H

#include <stdint.h>

#include "tc_fixedpoint.h"

/* Saturating x * 2^n (gemmlowp SaturatingRoundingMultiplyByPOT, positive exponent). */
static inline int32_t tc_sm_sat_shl(int32_t x, int n)
{
    const int64_t v = (int64_t)x * ((int64_t)1 << n);
    return v > INT32_MAX ? INT32_MAX : (v < INT32_MIN ? INT32_MIN : (int32_t)v);
}

/* 1 / (1 + a) for a Q0 value a in [0, 1), as Q0: Newton-Raphson with 48/17 - 32/17 d. */
static inline int32_t tc_sm_one_over_one_plus_x(int32_t a)
{
    const int64_t s = (int64_t)a + INT32_MAX;
    const int32_t half_denominator = (int32_t)((s + (s >= 0 ? 1 : -1)) / 2);
    int32_t x = 1515870810 + tc_sat_rounding_doubling_high_mul(half_denominator, -1010580540); /* Q2 */
    for (int i = 0; i < 3; ++i) {
        const int32_t half_denominator_times_x = tc_sat_rounding_doubling_high_mul(half_denominator, x);
        const int32_t one_minus = ((int32_t)1 << 29) - half_denominator_times_x;
        x = x + tc_sm_sat_shl(tc_sat_rounding_doubling_high_mul(x, one_minus), 2);
    }
    return tc_sm_sat_shl(x, 1);
}

static inline int tc_sm_clz32(uint32_t v)
{
    int n = 0;
    if (v == 0) return 32;
    while (!(v & 0x80000000u)) {
        v <<= 1;
        ++n;
    }
    return n;
}

/* The row's reciprocal scale for a sum of exponentials (Q12, > 0) and the output shift it needs. */
static inline int32_t tc_sm_reciprocal(int32_t sum_of_exps, int *out_shift)
{
    const int headroom_plus_one = tc_sm_clz32((uint32_t)sum_of_exps);
    const int num_bits_over_unit = 12 - headroom_plus_one;
    const int32_t shifted_sum_minus_one = (int32_t)(((uint32_t)sum_of_exps << headroom_plus_one) - ((uint32_t)1 << 31));
    *out_shift = num_bits_over_unit + 31 - 8;
    return tc_sm_one_over_one_plus_x(shifted_sum_minus_one);
}

#endif /* TC_SOFTMAX_FIXED_H */
