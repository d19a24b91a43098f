/* Fast exact requantization with per-channel constants folded at compile time (tinyconv/requant.py
 * derives the identity and proves it equal to the reference MultiplyByQuantizedMultiplier on every
 * rounding boundary; tests/core/test_requant.py runs this header against it).
 * One record of 4 int32 per output channel: K low word, K high word (the rounding constant),
 * m (the Q31 multiplier), ctl. */
#ifndef TC_REQUANT_H
#define TC_REQUANT_H

#include <stdint.h>
#include <string.h>

#define TC_RQ_NONE 0  /* no records: MultiplyByQuantizedMultiplier from mult / shift */
#define TC_RQ_ANY 1   /* tc_rq_apply: ctl = post | pre << 8 | 2^31 for a right shift */
#define TC_RQ_RIGHT 2 /* tc_rq_apply_right: every channel shifts right, ctl = post, K holds the zero point
                      (tc_rq_apply_right_clamped when the result is clamped) */

static inline __attribute__((always_inline)) int64_t tc_rq_k(const int32_t *r)
{
    return (int64_t)(((uint64_t)(uint32_t)r[1] << 32) | (uint32_t)r[0]);
}

/* acc → the unclamped requantized value, without the output zero point. */
static inline __attribute__((always_inline)) int32_t tc_rq_apply(int32_t acc, const int32_t *r)
{
    const uint32_t ctl = (uint32_t)r[3];
    const int32_t a = (int32_t)((uint32_t)acc << ((ctl >> 8) & 31u));
    int64_t v = tc_rq_k(r) + (int64_t)a * r[2];
    /* - 2^31 when acc < 0 and the channel shifts right (ctl bit 31) */
    v -= (int64_t)((uint32_t)acc & ctl & 0x80000000u);
    return (int32_t)(v >> 32) >> (ctl & 31u);
}

/* acc → the unclamped requantized value plus the output zero point (TC_RQ_RIGHT records). */
static inline __attribute__((always_inline)) int32_t tc_rq_apply_right(int32_t acc, const int32_t *r)
{
#if defined(__thumb2__) && defined(__ARM_FEATURE_DSP) && !defined(TC_RQ_PORTABLE)
    /* The same in 6 instructions (gcc makes 12 of the C): two LDRD, SMLAL, and the sign
     * correction as a second SMLAL of (acc >>> 31) by -2^31. Records are word-aligned. */
    int32_t lo, hi, m, post, neg;
    __asm__("ldrd %[lo], %[hi], [%[r]]\n\t"
            "ldrd %[m], %[post], [%[r], #8]\n\t"
            "smlal %[lo], %[hi], %[acc], %[m]\n\t"
            "lsr %[neg], %[acc], #31\n\t"
            "smlal %[lo], %[hi], %[neg], %[min]\n\t"
            "asr %[hi], %[hi], %[post]"
            : [lo] "=&r"(lo), [hi] "=&r"(hi), [m] "=&r"(m), [post] "=&r"(post), [neg] "=&r"(neg)
            : [acc] "r"(acc), [r] "r"(r), [min] "r"(INT32_MIN), "m"(*(const int32_t(*)[4])r));
    (void)lo;
    return hi;
#else
    int64_t v = tc_rq_k(r) + (int64_t)acc * r[2];
    v -= (int64_t)((uint32_t)acc & 0x80000000u);
    return (int32_t)(v >> 32) >> r[3];
#endif
}

/* tc_rq_apply_right without the sign correction, for a clamp whose lower end is at or above the
 * output zero point (a fused ReLU): only for the clamped result. With acc >= 0 the two are the same;
 * with acc < 0 the reference gives at most the zero point (m >= 0), hence act_min, and so does
 * this: K + acc * m <= 2^30 + 2^(30+r) - m < 2^(31+r) (r = post + 1 >= 1), so the high word
 * shifted by post is at most the zero point. Channels of one constant value have m = 0 and
 * K = 2^31 + value * 2^32: the high word is the value either way. 4 instructions. */
static inline __attribute__((always_inline)) int32_t tc_rq_apply_right_floor(int32_t acc, const int32_t *r)
{
#if defined(__thumb2__) && defined(__ARM_FEATURE_DSP) && !defined(TC_RQ_PORTABLE)
    int32_t lo, hi, m, post;
    __asm__("ldrd %[lo], %[hi], [%[r]]\n\t"
            "ldrd %[m], %[post], [%[r], #8]\n\t"
            "smlal %[lo], %[hi], %[acc], %[m]\n\t"
            "asr %[hi], %[hi], %[post]"
            : [lo] "=&r"(lo), [hi] "=&r"(hi), [m] "=&r"(m), [post] "=&r"(post)
            : [acc] "r"(acc), [r] "r"(r), "m"(*(const int32_t(*)[4])r));
    (void)lo;
    return hi;
#else
    const int64_t v = tc_rq_k(r) + (int64_t)acc * r[2];
    return (int32_t)(v >> 32) >> r[3];
#endif
}

/* The right form for a result clamped to [act_min, act_max]: the short one when act_min is at or
 * above the zero point (literals in per-layer code, so the choice folds away). */
static inline __attribute__((always_inline)) int32_t tc_rq_apply_right_clamped(int32_t acc, const int32_t *r,
                                                                               int32_t out_zp, int32_t act_min)
{
    return act_min >= out_zp ? tc_rq_apply_right_floor(acc, r) : tc_rq_apply_right(acc, r);
}

#endif /* TC_REQUANT_H */
