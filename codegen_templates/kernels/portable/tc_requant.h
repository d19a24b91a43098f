/* Fast exact requantization with per-channel constants folded at compile time (tinyconv/requant.py
 * derives the identity and proves it equal to the reference MultiplyByQuantizedMultiplier on every
 * rounding boundary; tests/core/test_requant.py runs this header against it).
 * One record per output channel: m (Q31 multiplier), K = k_hi:k_lo (rounding constant),
 * ctl = post | pre << 8, bit 31 set for a right shift (sign correction of the rounding). */
#ifndef TC_REQUANT_H
#define TC_REQUANT_H

#include <stdint.h>

typedef struct {
    int32_t m;
    uint32_t k_lo;
    int32_t k_hi;
    uint32_t ctl;
} tc_rq;

/* acc → the unclamped requantized value, without the output zero point. */
static inline __attribute__((always_inline)) int32_t tc_rq_apply(int32_t acc, const tc_rq *r)
{
    const uint32_t ctl = r->ctl;
    const int32_t a = (int32_t)((uint32_t)acc << ((ctl >> 8) & 31u));
    int64_t v = (int64_t)(((uint64_t)(uint32_t)r->k_hi << 32) | r->k_lo);
    v += (int64_t)a * r->m;
    /* - 2^31 when acc < 0 and the channel shifts right (ctl bit 31) */
    v -= (int64_t)((uint32_t)acc & ctl & 0x80000000u);
    return (int32_t)(v >> 32) >> (ctl & 31u);
}

/* The usual case of a layer whose every channel shifts right (pre = 0, sign bit set): one less
 * shift and no mask. */
static inline __attribute__((always_inline)) int32_t tc_rq_apply_right(int32_t acc, const tc_rq *r)
{
    int64_t v = (int64_t)(((uint64_t)(uint32_t)r->k_hi << 32) | r->k_lo);
    v += (int64_t)acc * r->m;
    v -= (int64_t)((uint32_t)acc & 0x80000000u);
    return (int32_t)(v >> 32) >> (r->ctl & 31u);
}

#endif /* TC_REQUANT_H */
