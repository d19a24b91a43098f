/* Add without broadcasting, int8, Helium (MVE): TFLite's add through two 256-entry int32 tables.
 * Each input's rescaled contribution ((x + offset) << left_shift, times its multiplier) depends on
 * one int8 value only, so tinyconv/ops/helium.py add_tables computes it offline for every byte;
 * the kernel gathers the two contributions (VLDRW gather, indexed by the byte read as uint8), adds
 * them and requantizes the sum once, exactly as the reference does. Output may alias an input. */
#ifndef TC_MVE_ADD_H
#define TC_MVE_ADD_H

#include <stdint.h>

#include "tc_mve.h"

/* The scalar form, for an output shift outside VRSHL's exact range. */
void tcm_add_lut_scalar_s8(const int8_t *a, const int8_t *b, int8_t *out, int32_t n, const int32_t *ta,
                           const int32_t *tb, int32_t m, int32_t shift, int32_t out_off, int32_t lo, int32_t hi);

/* 4 elements; tail (a constant) selects zeroing loads under pr, so nothing past n is read. */
TCM_INLINE int32x4_t tcm_add_lut4(const int8_t *a, const int8_t *b, const int32_t *ta, const int32_t *tb, int tail,
                                  mve_pred16_t pr, int32x4_t m, int32x4_t right, int32x4_t left, int has_left,
                                  int32_t out_off, int32_t lo, int32_t hi)
{
    const uint8_t *ua = (const uint8_t *)a, *ub = (const uint8_t *)b;
    const uint32x4_t ia = tail ? vldrbq_z_u32(ua, pr) : vldrbq_u32(ua), ib = tail ? vldrbq_z_u32(ub, pr) : vldrbq_u32(ub);
    const int32x4_t s = vaddq_s32(vldrwq_gather_shifted_offset_s32(ta, ia), vldrwq_gather_shifted_offset_s32(tb, ib));
    return tcm_requant_lr(s, m, right, left, has_left, out_off, lo, hi);
}

/* n, m, shift, out_off, lo and hi are literals of the layer (the call is always inlined). */
TCM_INLINE void tcm_add_lut_s8(const int8_t *a, const int8_t *b, int8_t *out, int32_t n, const int32_t *ta,
                               const int32_t *tb, int32_t m, int32_t shift, int32_t out_off, int32_t lo, int32_t hi)
{
    const int32x4_t vm = vdupq_n_s32(m), right = vdupq_n_s32(shift < 0 ? shift : 0), left = vdupq_n_s32(shift > 0 ? shift : 0);
    int32_t i = 0;
    for (; i + 4 <= n; i += 4) {
        vstrbq_s32(out + i, tcm_add_lut4(a + i, b + i, ta, tb, 0, 0, vm, right, left, shift > 0, out_off, lo, hi));
    }
    if (i < n) { /* zeroed lanes index entry 0 of each table: in bounds, and not stored */
        const mve_pred16_t pr = vctp32q((uint32_t)(n - i));
        tcm_store_tail(out + i, tcm_add_lut4(a + i, b + i, ta, tb, 1, pr, vm, right, left, shift > 0, out_off, lo, hi), pr);
    }
}

#endif /* TC_MVE_ADD_H */
