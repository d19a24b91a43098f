#include "tc_neon_softmax.h"

#include <arm_neon.h>

#include "tc_softmax_fixed.h"

static int32_t tcn_row_max(const int8_t *x, int32_t depth)
{
    int32_t c = 0, m = -128;
    if (depth >= 16) {
        int8x16_t v = vld1q_s8(x);
        for (c = 16; c + 16 <= depth; c += 16) v = vmaxq_s8(v, vld1q_s8(x + c));
        m = vmaxvq_s8(v);
    }
    for (; c < depth; ++c) m = x[c] > m ? x[c] : m;
    return m;
}

void tcn_softmax_s8(const int8_t *in, int32_t rows, int32_t depth, const int32_t *table, int8_t *out)
{
    const int32_t *exp_of = table, *sum_term = table + 256;
    for (int32_t r = 0; r < rows; ++r) {
        const int8_t *x = in + (int64_t)r * depth;
        int8_t *y = out + (int64_t)r * depth;
        const int32_t max_in_row = tcn_row_max(x, depth);
        int32_t sum_of_exps = 0; /* Q12; >= 2^19: the row maximum contributes exp(0) */
        for (int32_t c = 0; c < depth; ++c) sum_of_exps += sum_term[max_in_row - x[c]];
        int out_shift;
        const int32_t scale = tc_sm_reciprocal(sum_of_exps, &out_shift);
        if (out_shift > 31) { /* sum of exps >= 512: every output rounds to 0, i.e. -128 */
            for (int32_t c = 0; c < depth; ++c) y[c] = -128;
            continue;
        }
        for (int32_t c = 0; c < depth; ++c) { /* a zero exp (below diff_min) gives -128 too */
            const int32_t v = tc_rounding_divide_by_pot(tc_sat_rounding_doubling_high_mul(scale, exp_of[max_in_row - x[c]]), out_shift);
            y[c] = (int8_t)tc_clamp(v - 128, -128, 127);
        }
    }
}
