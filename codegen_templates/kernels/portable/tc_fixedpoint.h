/* tinyconv fixed-point primitives: the TFLite int8 reference arithmetic (double rounding).
 * Bit-exact with tinyconv/fixedpoint.py; every kernel requantizes through these. */
#ifndef TC_FIXEDPOINT_H
#define TC_FIXEDPOINT_H

#include <stdint.h>

static inline int32_t tc_sat_rounding_doubling_high_mul(int32_t a, int32_t b)
{
    if (a == INT32_MIN && b == INT32_MIN) {
        return INT32_MAX;
    }
    /* The reference's (p + nudge) / 2^31, truncating toward zero with nudge = p >= 0 ? 2^30 :
     * 1 - 2^30, equals floor((p + 2^30) / 2^31) for every int64 p: one multiply-add and a shift
     * instead of a 64-bit division. (Right shift of a negative int64 is arithmetic on every
     * compiler tinyconv targets, as for tc_rounding_divide_by_pot.) */
    return (int32_t)(((int64_t)a * (int64_t)b + (1LL << 30)) >> 31);
}

static inline int32_t tc_rounding_divide_by_pot(int32_t x, int exponent)
{
    const int32_t mask = (int32_t)((1LL << exponent) - 1);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    /* Arithmetic right shift of a negative value: implementation-defined in C99, arithmetic on
     * every compiler tinyconv targets (gcc, clang; Arm and x86). */
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

/* x * multiplier * 2^shift, multiplier a Q31 value, shift > 0 is a left shift: the general case. */
static inline int32_t tc_mbqm_general(int32_t x, int32_t multiplier, int32_t shift)
{
    const int left = shift > 0 ? shift : 0;
    const int right = shift > 0 ? 0 : -shift;
    int64_t shifted = (int64_t)x * ((int64_t)1 << left);
    /* Saturate like tinyconv/fixedpoint.py; valid TFLite params never reach these bounds. */
    if (shifted > INT32_MAX) shifted = INT32_MAX;
    if (shifted < INT32_MIN) shifted = INT32_MIN;
    return tc_rounding_divide_by_pot(tc_sat_rounding_doubling_high_mul((int32_t)shifted, multiplier), right);
}

/* The same, with the usual case (shift <= 0, multiplier != INT32_MIN, so no saturation can
 * occur) first: what every kernel's inner loop calls. */
static inline int32_t tc_mbqm(int32_t x, int32_t multiplier, int32_t shift)
{
    if (shift > 0 || multiplier == INT32_MIN) return tc_mbqm_general(x, multiplier, shift);
    return tc_rounding_divide_by_pot(tc_sat_rounding_doubling_high_mul(x, multiplier), -shift);
}

static inline int32_t tc_clamp(int32_t v, int32_t lo, int32_t hi)
{
    return v < lo ? lo : (v > hi ? hi : v);
}

/* tc_clamp to int8 bounds. With literal bounds (per-layer code) the [-128, 127] part is one SSAT
 * where the core has it, and only a bound inside that range costs a compare. */
static inline int8_t tc_clamp_s8(int32_t v, int32_t lo, int32_t hi)
{
#if defined(__ARM_FEATURE_SAT)
    if (__builtin_constant_p(lo) && __builtin_constant_p(hi)) {
        v = __builtin_arm_ssat(v, 8);
        if (lo > -128) v = v < lo ? lo : v;
        if (hi < 127) v = v > hi ? hi : v;
        return (int8_t)v;
    }
#endif
    return (int8_t)tc_clamp(v, lo, hi);
}

#endif /* TC_FIXEDPOINT_H */
