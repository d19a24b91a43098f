/* AArch64 NEON: int8 Add of two same-shape tensors (residual connections), specialised per layer
 * (tinyconv/neon_layers.py, kind "add"): each layer gets its own function with its parameters as
 * constants, so the arithmetic below is chosen at compile time. Bit-exact with the reference
 * (TFLite's add: each input rescaled as MBQM((q + offset) << left_shift, m, shift <= 0), the sum
 * requantized as MBQM(sum, m_out, shift_out <= 0) + zero point, clamped).
 *
 * Cheaper than tc_elementwise.c's runtime-parameter loop because:
 * - the input with the larger scale has multiplier 2^30 and shift 0 (TFLite's construction), so
 *   its term SQRDMULH(x << left_shift, 2^30) is exactly x << (left_shift - 1): one widening shift;
 * - a right shift known to be negative needs only SSRA x, x, #31 as the round-half-away fix-up;
 * - under a fused ReLU (act_min >= output zero point) the output needs no fix-up at all (see
 *   tcn_sc_requant in tc_neon_small_c.h: the clamp absorbs round-half-up's difference);
 * - the last n % 16 elements go through the same vector step on a copy, not a scalar loop. */
#ifndef TC_NEON_ADD_H
#define TC_NEON_ADD_H

#include <stddef.h>
#include <stdint.h>

#include "tc_neon.h"

typedef struct {
    int32_t n;                        /* elements */
    int32_t a_offset, b_offset;       /* -zero points */
    int32_t left_shift;               /* 17..23 (TFLite: 20) */
    int32_t a_mult, a_shift, b_mult, b_shift; /* shifts <= 0 */
    int32_t out_mult, out_shift;      /* out_shift <= 0 */
    int32_t out_offset, act_min, act_max;
} tcn_add_params;

/* acc + rounding shift right of y by n (1..31): SRSRA when the shift is a compile-time constant
 * (optimised builds, where the layer's parameters are folded), else SRSHL and an add. */
#if defined(__OPTIMIZE__)
#define TCN_ADD_RSRA(acc, y, n) vrsraq_n_s32((acc), (y), (n))
#else
#define TCN_ADD_RSRA(acc, y, n) vaddq_s32((acc), vrshlq_s32((y), vdupq_n_s32(-(n))))
#endif

static inline __attribute__((always_inline)) int32_t tcn_add_exact(int32_t mult, int32_t shift)
{
    return mult == (1 << 30) && shift == 0;
}

/* One input's term for 4 lanes, added to acc unless first: x holds
 * (q + offset) << (left_shift - 16), or << (left_shift - 17) when the term is exact (multiplier
 * 2^30, shift 0: SQRDMULH(x << left_shift, 2^30) is x << (left_shift - 1)). */
static inline __attribute__((always_inline)) int32x4_t tcn_add_term(int32x4_t acc, int32_t first, int16x4_t x, int32_t mult,
                                                                    int32_t shift)
{
    const int32x4_t w = vshll_n_s16(x, 16);
    if (tcn_add_exact(mult, shift)) return first ? w : vaddq_s32(acc, w);
    int32x4_t y = vqrdmulhq_s32(w, vdupq_n_s32(mult));
    if (shift == 0) return first ? y : vaddq_s32(acc, y);
    y = vsraq_n_s32(y, y, 31); /* negative values down by one: the rounding shift's half-up becomes half-away */
    return first ? vrshlq_s32(y, vdupq_n_s32(shift)) : TCN_ADD_RSRA(acc, y, -shift);
}

/* Both terms: an exact one first, so the other's rounding shift can accumulate onto it. */
static inline __attribute__((always_inline)) int32x4_t tcn_add_sum(int16x4_t xa, int16x4_t xb, const tcn_add_params *p)
{
    const int32x4_t none = vdupq_n_s32(0);
    if (tcn_add_exact(p->b_mult, p->b_shift) && !tcn_add_exact(p->a_mult, p->a_shift))
        return tcn_add_term(tcn_add_term(none, 1, xb, p->b_mult, p->b_shift), 0, xa, p->a_mult, p->a_shift);
    return tcn_add_term(tcn_add_term(none, 1, xa, p->a_mult, p->a_shift), 0, xb, p->b_mult, p->b_shift);
}

static inline __attribute__((always_inline)) int32x4_t tcn_add_out(int32x4_t s, const tcn_add_params *p)
{
    int32x4_t y = vqrdmulhq_s32(s, vdupq_n_s32(p->out_mult));
    if (p->out_shift == 0) return y;
    if (p->act_min < p->out_offset) y = vsraq_n_s32(y, y, 31);
    return vrshlq_s32(y, vdupq_n_s32(p->out_shift));
}

/* (q + offset) << shift for 8 lanes, in int16 (|q + offset| <= 255, shift <= 7). */
static inline __attribute__((always_inline)) int16x8_t tcn_add_pre(int16x8_t q_plus_offset, int32_t shift)
{
    return vshlq_s16(q_plus_offset, vdupq_n_s16((int16_t)shift));
}

/* 16 outputs. */
static inline __attribute__((always_inline)) int8x16_t tcn_add16(const tcn_add_params *p, int8x16_t av, int8x16_t bv)
{
    const int32_t a_exact = tcn_add_exact(p->a_mult, p->a_shift), b_exact = tcn_add_exact(p->b_mult, p->b_shift);
    const int32_t pa = p->left_shift - 16 - a_exact, pb = p->left_shift - 16 - b_exact;
    const int16x8_t aoff = vdupq_n_s16((int16_t)p->a_offset), boff = vdupq_n_s16((int16_t)p->b_offset);
    const int16x8_t a0 = tcn_add_pre(vaddw_s8(aoff, vget_low_s8(av)), pa), a1 = tcn_add_pre(vaddw_high_s8(aoff, av), pa);
    const int16x8_t b0 = tcn_add_pre(vaddw_s8(boff, vget_low_s8(bv)), pb), b1 = tcn_add_pre(vaddw_high_s8(boff, bv), pb);
#define TCN_ADD4(x, y) tcn_add_out(tcn_add_sum(x, y, p), p)
    const int32x4_t s0 = TCN_ADD4(vget_low_s16(a0), vget_low_s16(b0)), s1 = TCN_ADD4(vget_high_s16(a0), vget_high_s16(b0));
    const int32x4_t s2 = TCN_ADD4(vget_low_s16(a1), vget_low_s16(b1)), s3 = TCN_ADD4(vget_high_s16(a1), vget_high_s16(b1));
#undef TCN_ADD4
    /* + output offset, clamp: the saturating narrows are exact as the clamp range lies in int8 */
    const int16x8_t off = vdupq_n_s16((int16_t)p->out_offset);
    const int16x8_t h0 = vqaddq_s16(vqmovn_high_s32(vqmovn_s32(s0), s1), off);
    const int16x8_t h1 = vqaddq_s16(vqmovn_high_s32(vqmovn_s32(s2), s3), off);
    int8x16_t v = vqmovn_high_s16(vqmovn_s16(h0), h1);
    if (p->act_min > -128) v = vmaxq_s8(v, vdupq_n_s8((int8_t)p->act_min));
    if (p->act_max < 127) v = vminq_s8(v, vdupq_n_s8((int8_t)p->act_max));
    return v;
}

static inline __attribute__((always_inline)) void tcn_add_s8(const tcn_add_params *p, const int8_t *a, const int8_t *b, int8_t *out)
{
    int32_t i = 0;
    for (; i + 16 <= p->n; i += 16) vst1q_s8(out + i, tcn_add16(p, vld1q_s8(a + i), vld1q_s8(b + i)));
    const int32_t rest = p->n - i;
    if (rest > 0) { /* the tail through 16-byte copies (the bytes past it are computed and dropped) */
        int8_t ta[16] = {0}, tb[16] = {0}, to[16];
        __builtin_memcpy(ta, a + i, (size_t)rest);
        __builtin_memcpy(tb, b + i, (size_t)rest);
        vst1q_s8(to, tcn_add16(p, vld1q_s8(ta), vld1q_s8(tb)));
        __builtin_memcpy(out + i, to, (size_t)rest);
    }
}

#endif /* TC_NEON_ADD_H */
