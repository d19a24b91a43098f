/* Fully connected, int8, Armv7E-M DSP backend (Cortex-M4/M7; also used on M55 when kernels/mve
 * lacks it). Same API (portable tc_fully_connected.h) and bit-exact results as the portable kernel.
 * Two output rows per pass share each widened input word: 4 inputs are loaded as one word and
 * widened with SXTAB16 (adding the input offset; bytes 0,2 and, rotated by 8, bytes 1,3), each
 * weight word with SXTB16 in the same order, and SMLAD does two MACs. Scalar tail for K % 4 and
 * an odd last row. */
#include "tc_fully_connected.h"
#include "tc_fixedpoint.h"
#include "tc_dsp.h"

static inline __attribute__((always_inline)) int8_t tcd_fc_requant(int32_t acc, int32_t o, const int32_t *mult,
                                                                  const int32_t *shift, const tc_fc_params *p)
{
    int32_t y;
    if (p->rq_kind == TC_RQ_RIGHT) y = tc_rq_apply_right(acc, p->rq + 4 * o); /* zero point included */
    else if (p->rq_kind == TC_RQ_ANY) y = tc_rq_apply(acc, p->rq + 4 * o) + p->output_offset;
    else y = tc_mbqm(acc, mult[o], shift[o]) + p->output_offset;
    return tc_clamp_s8(y, p->act_min, p->act_max);
}


void tc_fully_connected_s8(const tc_fc_params *p, const int8_t *in, const int8_t *w, const int32_t *bias,
                           const int32_t *mult, const int32_t *shift, int8_t *out)
{
    const int32_t n = p->in_features, off = p->input_offset;
    const int32_t off2 = (int32_t)(((uint32_t)off << 16) | ((uint32_t)off & 0xFFFFu));
    int32_t o = 0;
    for (; o + 1 < p->out_features; o += 2) {
        const int8_t *x = in, *wa = w + o * n, *wb = wa + n;
        int32_t s0 = bias ? bias[o] : 0, s1 = bias ? bias[o + 1] : 0;
        for (int32_t k = n >> 2; k > 0; --k) {
            const int32_t vx = tcd_ld4(x), va = tcd_ld4(wa), vb = tcd_ld4(wb);
            x += 4;
            wa += 4;
            wb += 4;
            const int32_t xe = __sxtab16(off2, vx), xo = __sxtab16(off2, tcd_ror8(vx));
            s0 = __smlad(xe, __sxtb16(va), s0);
            s0 = __smlad(xo, __sxtb16(tcd_ror8(va)), s0);
            s1 = __smlad(xe, __sxtb16(vb), s1);
            s1 = __smlad(xo, __sxtb16(tcd_ror8(vb)), s1);
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
            s0 = __smlad(__sxtab16(off2, tcd_ror8(vx)), __sxtb16(tcd_ror8(va)), s0);
        }
        for (int32_t k = n & 3; k > 0; --k) s0 += (*x++ + off) * *wa++;
        out[o] = tcd_fc_requant(s0, o, mult, shift, p);
    }
}
