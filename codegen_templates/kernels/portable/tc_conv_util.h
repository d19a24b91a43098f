/* Helpers shared by the optimized convolution kernels (kernels/dsp, mve, neon tc_conv.c). */
#ifndef TC_CONV_UTIL_H
#define TC_CONV_UTIL_H

#include "tc_conv.h"
#include "tc_fixedpoint.h"

/* One output channel's accumulator → int8: requantize, output offset, fused activation clamp. */
static inline int8_t tc_conv_requant(int32_t acc, int32_t m, int32_t sh, const tc_conv_params *p)
{
    return (int8_t)tc_clamp(tc_mbqm(acc, m, sh) + p->output_offset, p->act_min, p->act_max);
}

/* The same for channel oc, through the fast records when the layer has them (p->rq_kind is a
 * literal in per-layer inlined code, so the branch folds away there; shared out-of-line kernels
 * define TC_RQ_ENABLED 0 and keep only the reference path). */
#ifndef TC_RQ_ENABLED
#define TC_RQ_ENABLED 1
#endif
static inline __attribute__((always_inline)) int8_t tc_conv_requant_ch(int32_t acc, int32_t oc, const int32_t *mult,
                                                                      const int32_t *shift, const tc_conv_params *p)
{
    if (!TC_RQ_ENABLED) return tc_conv_requant(acc, mult[oc], shift[oc], p);
    int32_t y;
    if (p->rq_kind == TC_RQ_RIGHT) /* zero point included */
        y = tc_rq_apply_right_clamped(acc, p->rq + 4 * oc, p->output_offset, p->act_min);
    else if (p->rq_kind == TC_RQ_ANY) y = tc_rq_apply(acc, p->rq + 4 * oc) + p->output_offset;
    else y = tc_mbqm(acc, mult[oc], shift[oc]) + p->output_offset;
    return tc_clamp_s8(y, p->act_min, p->act_max);
}

/* Filter taps k in [tc_conv_tap_first, tc_conv_tap_end) of a window starting at input index i0
 * (may be negative: padding) with dilation dil land inside an input of n elements. */
static inline int32_t tc_conv_tap_first(int32_t i0, int32_t dil)
{
    return i0 >= 0 ? 0 : (-i0 + dil - 1) / dil;
}

static inline int32_t tc_conv_tap_end(int32_t i0, int32_t dil, int32_t k, int32_t n)
{
    const int32_t e = n - i0 <= 0 ? 0 : (n - i0 + dil - 1) / dil;
    return e < k ? e : k;
}

#endif /* TC_CONV_UTIL_H */
