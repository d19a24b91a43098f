/* Fully connected, int8, Helium (MVE), specialised per layer (sizes and offsets are literals of
 * the always-inlined call). bias + input_offset * sum(w) is folded offline into the base of a
 * requantization record per 4 rows (tinyconv/ops/helium.py), so the inner loop is one weight load
 * and one VMLADAVA per 16 values and row; 4 rows share each input vector. */
#ifndef TC_MVE_FC_H
#define TC_MVE_FC_H

#include <stdint.h>

#include "tc_mve.h"

/* A declared no-op so the kernel family has a translation unit (tc_mve_fc.c). */
void tcm_fc_unused(void);

TCM_INLINE void tcm_fc_s8(const int8_t *in, const int8_t *w, const int32_t *rec, int8_t *out, int32_t K, int32_t O,
                          int has_left, int32_t out_off, int32_t lo, int32_t hi)
{
    for (int32_t o = 0; o < O; o += 4, rec += TCM_REC_WORDS(has_left)) {
        const int32_t left = O - o; /* rows past the end repeat the last row and are not stored */
        const int8_t *x = in, *w0 = w + o * K;
        const int8_t *w1 = left > 1 ? w0 + K : w0, *w2 = left > 2 ? w1 + K : w1, *w3 = left > 3 ? w2 + K : w2;
        int32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        for (int32_t k = K >> 4; k > 0; --k) {
            const int8x16_t xv = vldrbq_s8(x);
            s0 = vmladavaq_s8(s0, xv, vldrbq_s8(w0));
            s1 = vmladavaq_s8(s1, xv, vldrbq_s8(w1));
            s2 = vmladavaq_s8(s2, xv, vldrbq_s8(w2));
            s3 = vmladavaq_s8(s3, xv, vldrbq_s8(w3));
            x += 16;
            w0 += 16;
            w1 += 16;
            w2 += 16;
            w3 += 16;
        }
        if (K & 15) { /* zeroing loads: nothing read past the end */
            const mve_pred16_t pr = vctp8q((uint32_t)(K & 15));
            const int8x16_t xv = vldrbq_z_s8(x, pr);
            s0 = vmladavaq_s8(s0, xv, vldrbq_z_s8(w0, pr));
            s1 = vmladavaq_s8(s1, xv, vldrbq_z_s8(w1, pr));
            s2 = vmladavaq_s8(s2, xv, vldrbq_z_s8(w2, pr));
            s3 = vmladavaq_s8(s3, xv, vldrbq_z_s8(w3, pr));
        }
        const int32x4_t acc = tcm_lanes4(s0, s1, s2, s3);
        const int32x4_t r = tcm_requant_rec(vaddq_s32(acc, vldrwq_s32(rec)), rec, has_left, out_off, lo, hi);
        if (left >= 4) vstrbq_s32(out + o, r);
        else tcm_store_tail(out + o, r, vctp32q((uint32_t)left));
    }
}

#endif /* TC_MVE_FC_H */
