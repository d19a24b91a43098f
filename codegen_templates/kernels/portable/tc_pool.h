/* Pooling, int8, NHWC (N = 1). Windows never read padding: max ignores it, average divides by the
 * count of valid elements (or the whole window with count_include_pad, padding = zero point). */
#ifndef TC_POOL_H
#define TC_POOL_H

#include <stdint.h>

typedef struct {
    int32_t in_h, in_w, channels;
    int32_t out_h, out_w;
    int32_t k_h, k_w, stride_h, stride_w, pad_top, pad_left;
    int32_t act_min, act_max;
    /* average pooling only */
    int32_t count_include_pad, input_zp, output_zp, requantize, multiplier, shift;
} tc_pool_params;

void tc_max_pool_s8(const tc_pool_params *p, const int8_t *in, int8_t *out);
void tc_avg_pool_s8(const tc_pool_params *p, const int8_t *in, int8_t *out);

/* Mean over H and W, requantized: out[c] = MBQM(sum(in - input_zp), mult, shift) + output_zp. */
void tc_mean_hw_s8(const int8_t *in, int32_t hw, int32_t channels, int32_t input_zp, int32_t output_zp,
                   int32_t multiplier, int32_t shift, int8_t *out);
void tc_global_max_pool_s8(const int8_t *in, int32_t hw, int32_t channels, int8_t *out);

#endif
