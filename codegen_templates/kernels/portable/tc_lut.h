/* Point-wise int8 activations: a 256-entry lookup table (unary) and PReLU (TFLite PRELU
 * arithmetic with a per-channel alpha). Both work in place (in == out). */
#ifndef TC_LUT_H
#define TC_LUT_H

#include <stdint.h>

/* out[i] = lut[in[i] + 128] for i < n; lut[k] is the output for the input k - 128. */
void tc_lut_s8(const int8_t *in, int8_t *out, int32_t n, const int8_t *lut);

typedef struct {
    int32_t outer;               /* elements / channels */
    int32_t channels;            /* the last axis (1: one slope for every element) */
    int32_t input_offset;        /* -input zero point */
    int32_t output_offset;       /* output zero point */
    int32_t identity_multiplier; /* in_scale / out_scale */
    int32_t identity_shift;
    int32_t alpha_offset;        /* -slope zero point */
} tc_prelu_params;

/* d = in + input_offset; d >= 0: mbqm(d, identity); else mbqm(d * (alpha[c] + alpha_offset),
 * alpha_multiplier[c], alpha_shift[c]); + output_offset, clamped to [-128, 127]. */
void tc_prelu_s8(const tc_prelu_params *p, const int8_t *in, const int8_t *alpha,
                 const int32_t *alpha_multiplier, const int32_t *alpha_shift, int8_t *out);

#endif
