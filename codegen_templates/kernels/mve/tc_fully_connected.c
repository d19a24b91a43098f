/* Fully connected, int8, Armv8.1-M Helium (MVE) backend for Cortex-M55. Same API (portable
 * tc_fully_connected.h) and bit-exact results as the portable kernel. Two output rows per pass
 * share each loaded input vector: VMLADAVA.S8 over 16 lanes, tail-predicated with VCTP.8; the
 * input offset enters as offset * sum(w) (VADDVA.S8 in the same pass), exact in int32. */
#include <arm_mve.h>

#include "tc_fully_connected.h"
#include "tc_fixedpoint.h"

#if !defined(__ARM_FEATURE_MVE)
#error "kernels/mve/tc_fully_connected.c needs Helium (MVE): -mcpu=cortex-m55 -mfloat-abi=hard"
#endif

/* tc_mbqm for the usual shift <= 0, m != INT32_MIN (exactly equal; see kernels/mve/tc_conv.c). */
static inline int32_t tcm_mbqm(int32_t x, int32_t m, int32_t sh)
{
    if (sh > 0 || m == INT32_MIN) return tc_mbqm(x, m, sh);
    const int32_t hi = (int32_t)(((int64_t)x * m + (1LL << 30)) >> 31);
    const int32_t n = -sh;
    const int32_t mask = (int32_t)((1LL << n) - 1);
    const int32_t threshold = (mask >> 1) + (hi < 0 ? 1 : 0);
    return (hi >> n) + ((hi & mask) > threshold ? 1 : 0);
}

void tc_fully_connected_s8(const tc_fc_params *p, const int8_t *in, const int8_t *w, const int32_t *bias,
                           const int32_t *mult, const int32_t *shift, int8_t *out)
{
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
        out[o] = (int8_t)tc_clamp(tcm_mbqm((bias ? bias[o] : 0) + s0 + off * w0, mult[o], shift[o]) + p->output_offset,
                                  p->act_min, p->act_max);
        if (two) {
            out[o + 1] = (int8_t)tc_clamp(
                tcm_mbqm((bias ? bias[o + 1] : 0) + s1 + off * w1, mult[o + 1], shift[o + 1]) + p->output_offset,
                p->act_min, p->act_max);
        }
    }
}
