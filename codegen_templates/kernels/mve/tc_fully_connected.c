/* Fully connected, int8, Armv8.1-M Helium (MVE) backend for Cortex-M55. Same API (portable
 * tc_fully_connected.h) and bit-exact results as the portable kernel. Two output rows per pass
 * share each loaded input vector: VMLADAVA.S8 over 16 lanes, tail-predicated with VCTP.8; the
 * input offset enters as offset * sum(w) (VADDVA.S8 in the same pass), exact in int32. */
#include "tc_fully_connected.h"
#include "tc_fixedpoint.h"
#include "tc_mve.h"


/* Four rows per pass share each input vector (rows past the end repeat the last one); their sums
 * are requantized as one vector and stored with a predicated VSTRB.32. */
static void tcm_fc_rows4(const tc_fc_params *p, const int8_t *in, const int8_t *w, const int32_t *bias,
                         const int32_t *mult, const int32_t *shift, int8_t *out)
{
    const int32_t K = p->in_features, off = p->input_offset;
    for (int32_t o = 0; o < p->out_features; o += 4) {
        const int32_t left = p->out_features - o;
        const int8_t *x = in, *w0 = w + o * K;
        const int8_t *w1 = left > 1 ? w0 + K : w0, *w2 = left > 2 ? w1 + K : w1, *w3 = left > 3 ? w2 + K : w2;
        int32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0, z0 = 0, z1 = 0, z2 = 0, z3 = 0;
        for (int32_t k = K >> 4; k > 0; --k) { /* whole vectors: unpredicated, post-incremented loads */
            const int8x16_t xv = vldrbq_s8(x);
            int8x16_t v = vldrbq_s8(w0);
            s0 = vmladavaq_s8(s0, xv, v);
            z0 = vaddvaq_s8(z0, v);
            v = vldrbq_s8(w1);
            s1 = vmladavaq_s8(s1, xv, v);
            z1 = vaddvaq_s8(z1, v);
            v = vldrbq_s8(w2);
            s2 = vmladavaq_s8(s2, xv, v);
            z2 = vaddvaq_s8(z2, v);
            v = vldrbq_s8(w3);
            s3 = vmladavaq_s8(s3, xv, v);
            z3 = vaddvaq_s8(z3, v);
            x += 16;
            w0 += 16;
            w1 += 16;
            w2 += 16;
            w3 += 16;
        }
        if (K & 15) { /* the tail: zeroing loads, nothing read past the end */
            const mve_pred16_t pr = vctp8q((uint32_t)(K & 15));
            const int8x16_t xv = vldrbq_z_s8(x, pr);
            int8x16_t v = vldrbq_z_s8(w0, pr);
            s0 = vmladavaq_s8(s0, xv, v);
            z0 = vaddvaq_s8(z0, v);
            v = vldrbq_z_s8(w1, pr);
            s1 = vmladavaq_s8(s1, xv, v);
            z1 = vaddvaq_s8(z1, v);
            v = vldrbq_z_s8(w2, pr);
            s2 = vmladavaq_s8(s2, xv, v);
            z2 = vaddvaq_s8(z2, v);
            v = vldrbq_z_s8(w3, pr);
            s3 = vmladavaq_s8(s3, xv, v);
            z3 = vaddvaq_s8(z3, v);
        }
        int32x4_t acc = vdupq_n_s32(s0), sw = vdupq_n_s32(z0);
        acc = vsetq_lane_s32(s1, acc, 1);
        acc = vsetq_lane_s32(s2, acc, 2);
        acc = vsetq_lane_s32(s3, acc, 3);
        sw = vsetq_lane_s32(z1, sw, 1);
        sw = vsetq_lane_s32(z2, sw, 2);
        sw = vsetq_lane_s32(z3, sw, 3);
        const mve_pred16_t pr = vctp32q((uint32_t)left);
        acc = vaddq_s32(acc, vmulq_n_s32(sw, off));
        if (bias) acc = vaddq_s32(acc, vldrwq_z_s32(bias + o, pr));
        const int32x4_t r = tcm_requant4(acc, vldrwq_z_s32(mult + o, pr), vldrwq_z_s32(shift + o, pr),
                                         p->output_offset, p->act_min, p->act_max);
        vstrbq_p_s32(out + o, r, pr);
    }
}

void tc_fully_connected_s8(const tc_fc_params *p, const int8_t *in, const int8_t *w, const int32_t *bias,
                           const int32_t *mult, const int32_t *shift, int8_t *out)
{
    int32_t ok = 1;
    for (int32_t i = 0; i < p->out_features; ++i) ok &= shift[i] >= -31 && shift[i] <= 31;
    if (ok) {
        tcm_fc_rows4(p, in, w, bias, mult, shift, out);
        return;
    }
    const int32_t K = p->in_features, off = p->input_offset;
    for (int32_t o = 0; o < p->out_features; o += 2) {
        const int32_t two = o + 1 < p->out_features;
        const int8_t *x = in, *wa = w + o * K, *wb = two ? wa + K : wa;
        int32_t s0 = 0, s1 = 0, w0 = 0, w1 = 0;
        for (int32_t n = K; n > 0; n -= 16) {
            const mve_pred16_t pr = vctp8q((uint32_t)n);
            const int8x16_t xv = vldrbq_z_s8(x, pr), av = vldrbq_z_s8(wa, pr), bv = vldrbq_z_s8(wb, pr);
            s0 = vmladavaq_s8(s0, xv, av);
            w0 = vaddvaq_s8(w0, av);
            s1 = vmladavaq_s8(s1, xv, bv);
            w1 = vaddvaq_s8(w1, bv);
            x += 16;
            wa += 16;
            wb += 16;
        }
        out[o] = (int8_t)tc_clamp(tc_mbqm((bias ? bias[o] : 0) + s0 + off * w0, mult[o], shift[o]) + p->output_offset,
                                  p->act_min, p->act_max);
        if (two) {
            out[o + 1] = (int8_t)tc_clamp(
                tc_mbqm((bias ? bias[o + 1] : 0) + s1 + off * w1, mult[o + 1], shift[o + 1]) + p->output_offset,
                p->act_min, p->act_max);
        }
    }
}
