/* One or two int8 dot products with their weight sums, NEON (SDOT, else SMULL / SADALP): 16 values
 * per step, a scalar loop for the rest. The vector backends' copies share these names, so
 * kernels/portable/tc_conv_pairs.h runs on either. */
#ifndef TC_DOT2_H
#define TC_DOT2_H

#include "tc_neon.h"

/* s[0] += x.wa, s[1] += x.wb, sw[0] += sum(wa), sw[1] += sum(wb) over n values */
static inline void tc_dot_1x2(const int8_t *x, const int8_t *wa, const int8_t *wb, int32_t n, int32_t *s, int32_t *sw)
{
    const int8x16_t ones = vdupq_n_s8(1);
    int32x4_t a = vdupq_n_s32(0), b = a, sa = a, sb = a;
    int32_t k = 0;
    for (; k + 16 <= n; k += 16) {
        const int8x16_t xv = vld1q_s8(x + k), av = vld1q_s8(wa + k), bv = vld1q_s8(wb + k);
        a = TCN_DOT(a, xv, av);
        sa = TCN_DOT(sa, ones, av);
        b = TCN_DOT(b, xv, bv);
        sb = TCN_DOT(sb, ones, bv);
    }
    int32_t s0 = s[0] + vaddvq_s32(a), s1 = s[1] + vaddvq_s32(b);
    int32_t w0 = sw[0] + vaddvq_s32(sa), w1 = sw[1] + vaddvq_s32(sb);
    for (; k < n; ++k) {
        s0 += x[k] * wa[k];
        s1 += x[k] * wb[k];
        w0 += wa[k];
        w1 += wb[k];
    }
    s[0] = s0;
    s[1] = s1;
    sw[0] = w0;
    sw[1] = w1;
}

/* *s += x.w, *sw += sum(w) over n values */
static inline void tc_dot_1x1(const int8_t *x, const int8_t *w, int32_t n, int32_t *s, int32_t *sw)
{
    const int8x16_t ones = vdupq_n_s8(1);
    int32x4_t a = vdupq_n_s32(0), sa = a;
    int32_t k = 0;
    for (; k + 16 <= n; k += 16) {
        const int8x16_t wv = vld1q_s8(w + k);
        a = TCN_DOT(a, vld1q_s8(x + k), wv);
        sa = TCN_DOT(sa, ones, wv);
    }
    int32_t s0 = *s + vaddvq_s32(a), w0 = *sw + vaddvq_s32(sa);
    for (; k < n; ++k) {
        s0 += x[k] * w[k];
        w0 += w[k];
    }
    *s = s0;
    *sw = w0;
}

#endif /* TC_DOT2_H */
