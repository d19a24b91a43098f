/* Residual add, int8, through per-input lookup tables (backend-neutral, header only: the
 * generated model includes it when a layer takes this variant). TFLite's add rescales each input
 * on its own ((q + offset) << 20, then MultiplyByQuantizedMultiplierSmallerThanOneExp), so each
 * input's contribution is a function of one int8 value: tinyconv/ops/elementwise.py tabulates
 * it at compile time (256 int32 per input, exact by construction), and only the sum's
 * requantization (tc_requant.h record) runs here. Inputs and output have the same shape. */
#ifndef TC_ADD_LUT_H
#define TC_ADD_LUT_H

#include <stdint.h>

#include "tc_fixedpoint.h"
#include "tc_requant.h"

/* ta, tb: tables indexed by q + 128; rq: one record of kind rq_kind (TC_RQ_RIGHT: the zero point
 * is in it, out_zp unused). */
static inline void tc_add_lut_s8(const int32_t *ta, const int32_t *tb, const int32_t *rq, int32_t rq_kind, int32_t out_zp,
                                 int32_t act_min, int32_t act_max, const int8_t *a, const int8_t *b, int8_t *out,
                                 int32_t n)
{
    const int32_t *ta0 = ta + 128, *tb0 = tb + 128;
    for (int32_t i = 0; i < n; ++i) {
        const int32_t sum = ta0[a[i]] + tb0[b[i]];
        const int32_t y = rq_kind == TC_RQ_RIGHT ? tc_rq_apply_right(sum, rq) : tc_rq_apply(sum, rq) + out_zp;
        out[i] = tc_clamp_s8(y, act_min, act_max);
    }
}

#endif /* TC_ADD_LUT_H */
