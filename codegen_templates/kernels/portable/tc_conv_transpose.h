/* Transposed convolution, int8 (TFLite TRANSPOSE_CONV arithmetic), groups = 1. Layouts: input /
 * output NHWC (N = 1), weights OHWI [out_c][k_h][k_w][in_c], bias int32 [out_c] or NULL.
 * Gather form: each output element sums the taps that land on it (no scratch memory):
 * oy + pad_top = iy * stride_h + ky * dil_h (likewise x). Per-channel requantization. */
#ifndef TC_CONV_TRANSPOSE_H
#define TC_CONV_TRANSPOSE_H

#include <stdint.h>

typedef struct {
    int32_t in_h, in_w, in_c;
    int32_t out_h, out_w, out_c;
    int32_t k_h, k_w;
    int32_t stride_h, stride_w, dil_h, dil_w, pad_top, pad_left;
    int32_t input_offset;  /* -input zero point */
    int32_t output_offset; /* output zero point */
    int32_t act_min, act_max;
} tc_conv_transpose_params;

void tc_conv_transpose_s8(const tc_conv_transpose_params *p, const int8_t *in, const int8_t *w, const int32_t *bias,
                          const int32_t *mult, const int32_t *shift, int8_t *out);

#endif
