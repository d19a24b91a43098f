/* One or two int8 dot products with their weight sums, Helium: VMLADAVA.S8 and VADDVA.S8 over 16
 * lanes, tail-predicated with VCTP.8 (zeroing loads never touch bytes past the end). The vector
 * backends' copies share these names, so kernels/portable/tc_conv_pairs.h runs on either. */
#ifndef TC_DOT2_H
#define TC_DOT2_H

#include "tc_mve.h"

/* s[0] += x.wa, s[1] += x.wb, sw[0] += sum(wa), sw[1] += sum(wb) over n values */
static inline void tc_dot_1x2(const int8_t *x, const int8_t *wa, const int8_t *wb, int32_t n, int32_t *s, int32_t *sw)
{
    int32_t s0 = s[0], s1 = s[1], w0 = sw[0], w1 = sw[1];
    while (n > 0) {
        const mve_pred16_t pr = vctp8q((uint32_t)n);
        const int8x16_t xv = vldrbq_z_s8(x, pr), av = vldrbq_z_s8(wa, pr), bv = vldrbq_z_s8(wb, pr);
        s0 = vmladavaq_s8(s0, xv, av);
        w0 = vaddvaq_s8(w0, av);
        s1 = vmladavaq_s8(s1, xv, bv);
        w1 = vaddvaq_s8(w1, bv);
        x += 16;
        wa += 16;
        wb += 16;
        n -= 16;
    }
    s[0] = s0;
    s[1] = s1;
    sw[0] = w0;
    sw[1] = w1;
}

/* *s += x.w, *sw += sum(w) over n values */
static inline void tc_dot_1x1(const int8_t *x, const int8_t *w, int32_t n, int32_t *s, int32_t *sw)
{
    int32_t s0 = *s, w0 = *sw;
    while (n > 0) {
        const mve_pred16_t pr = vctp8q((uint32_t)n);
        const int8x16_t wv = vldrbq_z_s8(w, pr);
        s0 = vmladavaq_s8(s0, vldrbq_z_s8(x, pr), wv);
        w0 = vaddvaq_s8(w0, wv);
        x += 16;
        w += 16;
        n -= 16;
    }
    *s = s0;
    *sw = w0;
}

#endif /* TC_DOT2_H */
