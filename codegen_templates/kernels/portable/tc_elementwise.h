/* Add and Mul, int8, with broadcasting: out is [d0][d1][d2][d3]; an input's stride is 0 along an
 * axis it broadcasts. Parameters as TFLite's (QUANT.md): add rescales both inputs to a common
 * 2^left_shift-scaled domain, mul requantizes the product. Output may alias an input of equal size. */
#ifndef TC_ELEMENTWISE_H
#define TC_ELEMENTWISE_H

#include <stdint.h>

typedef struct {
    int32_t dims[4];
    int32_t a_strides[4], b_strides[4];
    int32_t a_offset, b_offset, output_offset;
    int32_t a_multiplier, a_shift, b_multiplier, b_shift; /* add only */
    int32_t output_multiplier, output_shift, left_shift;
    int32_t act_min, act_max;
} tc_binary_params;

void tc_add_s8(const tc_binary_params *p, const int8_t *a, const int8_t *b, int8_t *out);
void tc_mul_s8(const tc_binary_params *p, const int8_t *a, const int8_t *b, int8_t *out);

#endif
