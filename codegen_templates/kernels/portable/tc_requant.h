/* Fast exact requantization with per-channel constants folded at compile time (tinyconv/requant.py
 * derives the identity and proves it equal to the reference MultiplyByQuantizedMultiplier on every
 * rounding boundary; tests/core/test_requant.py runs this header against it).
 * One record of 4 int32 per output channel: m (Q31 multiplier), K low word, K high word
 * (the rounding constant), ctl = post | pre << 8, bit 31 set for a right shift (sign correction of the rounding). */
#ifndef TC_REQUANT_H
#define TC_REQUANT_H

#include <stdint.h>

#define TC_RQ_NONE 0  /* no records: MultiplyByQuantizedMultiplier from mult / shift */
#define TC_RQ_ANY 1   /* records, tc_rq_apply */
#define TC_RQ_RIGHT 2 /* records of channels that all shift right, tc_rq_apply_right */

/* acc → the unclamped requantized value, without the output zero point. */
static inline __attribute__((always_inline)) int32_t tc_rq_apply(int32_t acc, const int32_t *r)
{
    const uint32_t ctl = (uint32_t)r[3];
    const int32_t a = (int32_t)((uint32_t)acc << ((ctl >> 8) & 31u));
    int64_t v = (int64_t)(((uint64_t)(uint32_t)r[2] << 32) | (uint32_t)r[1]);
    v += (int64_t)a * r[0];
    /* - 2^31 when acc < 0 and the channel shifts right (ctl bit 31) */
    v -= (int64_t)((uint32_t)acc & ctl & 0x80000000u);
    return (int32_t)(v >> 32) >> (ctl & 31u);
}

/* The usual case of a layer whose every channel shifts right (pre = 0, sign bit set): one less
 * shift and no mask. */
static inline __attribute__((always_inline)) int32_t tc_rq_apply_right(int32_t acc, const int32_t *r)
{
    int64_t v = (int64_t)(((uint64_t)(uint32_t)r[2] << 32) | (uint32_t)r[1]);
    v += (int64_t)acc * r[0];
    v -= (int64_t)((uint32_t)acc & 0x80000000u);
    return (int32_t)(v >> 32) >> ((uint32_t)r[3] & 31u);
}

#endif /* TC_REQUANT_H */
