/* Softmax over the last axis, int8, AArch64 NEON backend, through a per-layer table of the
 * exponentials (tinyconv/neon_layers.py, kind "softmax"): x - row max takes only 256 values, so
 * the gemmlowp exp of each (and its Q12 term of the sum) is computed at compile time by the
 * reference's own code and looked up here; only the reciprocal of the sum (tc_softmax_fixed.h) and
 * the output scaling run per row. Same results as tc_softmax_s8; in == out allowed. */
#ifndef TC_NEON_SOFTMAX_H
#define TC_NEON_SOFTMAX_H

#include <stdint.h>

/* table: [2][256] int32: [0][d] the exp (Q0) of x - max = -d, 0 where -d < diff_min (those
 * entries output -128); [1][d] its term of the Q12 sum. depth <= 4095. */
void tcn_softmax_s8(const int8_t *in, int32_t rows, int32_t depth, const int32_t *table, int8_t *out);

#endif /* TC_NEON_SOFTMAX_H */
