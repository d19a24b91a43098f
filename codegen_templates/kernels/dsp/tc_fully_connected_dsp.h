/* Fully connected kernels, int8, Armv7E-M DSP backend (Cortex-M4/M7; also used on M55 when kernels/mve
 * lacks it). Same API (portable tc_fully_connected.h) and bit-exact results as the portable kernel.
 * Two output rows per pass share each widened input word: 4 inputs are loaded as one word and
 * widened with SXTAB16 (adding the input offset; bytes 0,2 and, rotated by 8, bytes 1,3), each
 * weight word with SXTB16 in the same order, and SMLAD does two MACs. Scalar tail for K % 4 and
 * an odd last row.
 * Like tc_conv_dsp.h: tc_fully_connected.c builds the shared out-of-line kernel (TCD_SPEED 0,
 * TC_RQ_ENABLED 0); a per-layer function inlines tcd_fully_connected_s8 with literal params. */
#ifndef TC_FULLY_CONNECTED_DSP_H
#define TC_FULLY_CONNECTED_DSP_H

#include "tc_fully_connected.h"
#include "tc_fixedpoint.h"
#include "tc_dsp.h"

#ifndef TCD_FN
#define TCD_FN static inline __attribute__((always_inline))
#define TCD_INL static inline __attribute__((always_inline))
#endif
#ifndef TCD_SPEED
#define TCD_SPEED 1
#endif
#ifndef TC_RQ_ENABLED
#define TC_RQ_ENABLED 1
#endif

static inline __attribute__((always_inline)) int8_t tcd_fc_requant(int32_t acc, int32_t o, const int32_t *mult,
                                                                  const int32_t *shift, const tc_fc_params *p)
{
    int32_t y;
    if (TC_RQ_ENABLED && p->rq_kind == TC_RQ_RIGHT) /* zero point included */
        y = tc_rq_apply_right_clamped(acc, p->rq + 4 * o, p->output_offset, p->act_min);
    else if (TC_RQ_ENABLED && p->rq_kind == TC_RQ_ANY) y = tc_rq_apply(acc, p->rq + 4 * o) + p->output_offset;
    else y = tc_mbqm(acc, mult[o], shift[o]) + p->output_offset;
    return tc_clamp_s8(y, p->act_min, p->act_max);
}


/* Rows [0, 4 * quads) from int16 weights laid out offline (tinyconv/ops/conv_layout.py
 * dsp_fc_quads: per 4 rows, per 4 inputs, rows 0..3 each as the words (k, k+2), (k+1, k+3), then
 * per tail input the words (row 0, row 1), (row 2, row 3)) and biases with the input offset
 * folded in (bias + offset * sum(w)), so inputs widen without it. Per 4 inputs x 4 rows: LDR,
 * 2 SXTB16, 2 LDM, 8 SMLAD (inline assembly; gcc 12 spills this loop). */
#define TCD_FC_GROUP                                        \
    "ldr %[xo], [%[x]], #4\n\t"                           \
    "sxtb16 %[xe], %[xo]\n\t"                             \
    "sxtb16 %[xo], %[xo], ror #8\n\t"                     \
    "ldm %[w]!, {%[w0], %[w1], %[w2], %[w3]}\n\t"         \
    "smlad %[s0], %[xe], %[w0], %[s0]\n\t"                \
    "smlad %[s1], %[xe], %[w2], %[s1]\n\t"                \
    "smlad %[s0], %[xo], %[w1], %[s0]\n\t"                \
    "smlad %[s1], %[xo], %[w3], %[s1]\n\t"                \
    "ldm %[w]!, {%[w0], %[w1], %[w2], %[w3]}\n\t"         \
    "smlad %[s2], %[xe], %[w0], %[s2]\n\t"                \
    "smlad %[s3], %[xe], %[w2], %[s3]\n\t"                \
    "smlad %[s2], %[xo], %[w1], %[s2]\n\t"                \
    "smlad %[s3], %[xo], %[w3], %[s3]\n\t"

TCD_FN int32_t tcd_fc_quads(const tc_fc_params *p, const int8_t *in, const int32_t *mult, const int32_t *shift,
                            int8_t *out)
{
    const int32_t n = p->in_features, n4 = n & ~3, quads = p->out_features >> 2;
    const int32_t *wq = (const int32_t *)p->wpack;
    for (int32_t o = 0; o < 4 * quads; o += 4) {
        int32_t s0 = p->wpack_bias[o], s1 = p->wpack_bias[o + 1], s2 = p->wpack_bias[o + 2], s3 = p->wpack_bias[o + 3];
        const int8_t *x = in;
        register int32_t w0 __asm__("r8"), w1 __asm__("r9"), w2 __asm__("r10"), w3 __asm__("r11");
        int32_t xe, xo;
        int32_t g = n4 >> 2;
        if (g & 1) {
            __asm__ volatile(TCD_FC_GROUP
                             : [x] "+r"(x), [w] "+r"(wq), [s0] "+r"(s0), [s1] "+r"(s1), [s2] "+r"(s2), [s3] "+r"(s3),
                               [xe] "=&r"(xe), [xo] "=&r"(xo), [w0] "=&r"(w0), [w1] "=&r"(w1), [w2] "=&r"(w2), [w3] "=&r"(w3)
                             :
                             : "memory");
        }
        for (g >>= 1; g > 0; --g) {
            __asm__ volatile(TCD_FC_GROUP TCD_FC_GROUP
                             : [x] "+r"(x), [w] "+r"(wq), [s0] "+r"(s0), [s1] "+r"(s1), [s2] "+r"(s2), [s3] "+r"(s3),
                               [xe] "=&r"(xe), [xo] "=&r"(xo), [w0] "=&r"(w0), [w1] "=&r"(w1), [w2] "=&r"(w2), [w3] "=&r"(w3)
                             :
                             : "memory");
        }
        for (int32_t k = n4; k < n; ++k, wq += 2) {
            const int32_t v = *x++;
            s0 = __smlabb(v, wq[0], s0);
            s1 = __smlabt(v, wq[0], s1);
            s2 = __smlabb(v, wq[1], s2);
            s3 = __smlabt(v, wq[1], s3);
        }
        out[o] = tcd_fc_requant(s0, o, mult, shift, p);
        out[o + 1] = tcd_fc_requant(s1, o + 1, mult, shift, p);
        out[o + 2] = tcd_fc_requant(s2, o + 2, mult, shift, p);
        out[o + 3] = tcd_fc_requant(s3, o + 3, mult, shift, p);
    }
    return 4 * quads;
}

TCD_FN void tcd_fully_connected_s8(const tc_fc_params *p, const int8_t *in, const int8_t *w, const int32_t *bias,
                                   const int32_t *mult, const int32_t *shift, int8_t *out)
{
    const int32_t n = p->in_features, off = p->input_offset;
    const int32_t off2 = (int32_t)(((uint32_t)off << 16) | ((uint32_t)off & 0xFFFFu));
    int32_t o = TCD_SPEED && p->wpack ? tcd_fc_quads(p, in, mult, shift, out) : 0;
    for (; o + 1 < p->out_features; o += 2) {
        const int8_t *x = in, *wa = w + o * n, *wb = wa + n;
        int32_t s0 = bias ? bias[o] : 0, s1 = bias ? bias[o + 1] : 0;
        for (int32_t k = n >> 2; k > 0; --k) {
            const int32_t vx = tcd_ld4(x), va = tcd_ld4(wa), vb = tcd_ld4(wb);
            x += 4;
            wa += 4;
            wb += 4;
            const int32_t xe = __sxtab16(off2, vx), xo = tcd_sxtab16_ror8(off2, vx);
            s0 = __smlad(xe, __sxtb16(va), s0);
            s0 = __smlad(xo, tcd_sxtb16_ror8(va), s0);
            s1 = __smlad(xe, __sxtb16(vb), s1);
            s1 = __smlad(xo, tcd_sxtb16_ror8(vb), s1);
        }
        for (int32_t k = n & 3; k > 0; --k) {
            const int32_t a = *x++ + off;
            s0 += a * *wa++;
            s1 += a * *wb++;
        }
        out[o] = tcd_fc_requant(s0, o, mult, shift, p);
        out[o + 1] = tcd_fc_requant(s1, o + 1, mult, shift, p);
    }
    if (o < p->out_features) {
        const int8_t *x = in, *wa = w + o * n;
        int32_t s0 = bias ? bias[o] : 0;
        for (int32_t k = n >> 2; k > 0; --k) {
            const int32_t vx = tcd_ld4(x), va = tcd_ld4(wa);
            x += 4;
            wa += 4;
            s0 = __smlad(__sxtab16(off2, vx), __sxtb16(va), s0);
            s0 = __smlad(tcd_sxtab16_ror8(off2, vx), tcd_sxtb16_ror8(va), s0);
        }
        for (int32_t k = n & 3; k > 0; --k) s0 += (*x++ + off) * *wa++;
        out[o] = tcd_fc_requant(s0, o, mult, shift, p);
    }
}

#endif /* TC_FULLY_CONNECTED_DSP_H */
