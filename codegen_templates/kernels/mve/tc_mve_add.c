/* Add through lookup tables, scalar form (see tc_mve_add.h). */
#include "tc_mve_add.h"

#include "tc_fixedpoint.h"

void tcm_add_lut_scalar_s8(const int8_t *a, const int8_t *b, int8_t *out, int32_t n, const int32_t *ta,
                           const int32_t *tb, int32_t m, int32_t shift, int32_t out_off, int32_t lo, int32_t hi)
{
    for (int32_t i = 0; i < n; ++i) {
        const int32_t s = ta[(uint8_t)a[i]] + tb[(uint8_t)b[i]];
        out[i] = (int8_t)tc_clamp(tc_mbqm(s, m, shift) + out_off, lo, hi);
    }
}
