/* Softmax over the last axis, int8 in / int8 out (scale 1/256, zero point -128): the TFLite Micro
 * int8 reference (gemmlowp fixed-point exp, Q12.19 sum, Newton-Raphson reciprocal). Bit-exact with
 * tinyconv/ops/softmax.py. Integer only; in == out is allowed (each row is read before it is
 * overwritten, element by element). */
#ifndef TC_SOFTMAX_H
#define TC_SOFTMAX_H

#include <stdint.h>

/* rows × depth values; input_multiplier / input_left_shift scale (x - row max) to Q5.26;
 * entries with x - row max < diff_min output -128. depth <= 4095. */
void tc_softmax_s8(const int8_t *in, int32_t rows, int32_t depth, int32_t input_multiplier,
                   int32_t input_left_shift, int32_t diff_min, int8_t *out);

/* Log-softmax over the last axis (TFLite Micro's int8 LOG_SOFTMAX; output scale 16/256, zero
 * point 127). Same input scaling as tc_softmax_s8; reverse_multiplier / reverse_shift (<= 0) map
 * the log of the sum back to input units for the cut-off. depth <= 4095; in == out allowed. */
void tc_log_softmax_s8(const int8_t *in, int32_t rows, int32_t depth, int32_t input_multiplier,
                       int32_t input_left_shift, int32_t diff_min, int32_t reverse_multiplier,
                       int32_t reverse_shift, int8_t *out);

#endif
