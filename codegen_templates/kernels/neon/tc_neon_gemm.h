/* AArch64 NEON kernels for layers specialised at compile time (tinyconv/neon_layers.py):
 * weights packed in tile order, input_offset * sum(w) folded into the bias, per-channel
 * requantization records. Bit-exact with the portable kernels (the TFLite int8 arithmetic).
 *
 * Convolution with groups 1 and fully connected layers run as a GEMM over output pixels:
 * register tiles of 4 pixels x 16 channels, SDOT by element (SMMLA 2x8 by 8x2 tiles on i8mm
 * targets); 1x1 stride-1 unpadded layers with in_c a multiple of 16 read their pixels in place,
 * the others through an im2col row per pixel in which padded taps hold the input zero point
 * (so the folded bias stays exact) and the reduction is zero-padded to kp (multiple of 16).
 * Depthwise (channel multiplier 1): 16 channels per vector, packed [tap][channel] weights. */
#ifndef TC_NEON_GEMM_H
#define TC_NEON_GEMM_H

#include <stdint.h>

typedef struct {
    int32_t in_h, in_w, in_c;
    int32_t out_h, out_w, out_c;
    int32_t k_h, k_w, stride_h, stride_w, dil_h, dil_w, pad_top, pad_left;
    int32_t k, kp;     /* reduction length k_h * k_w * in_c, and padded to a multiple of 16 */
    int32_t direct;    /* pixels read in place (1x1, stride 1, no padding, in_c == kp) */
    int32_t in_zp;     /* input zero point: the value of padded taps */
    int32_t output_offset, act_min, act_max;
} tcn_gemm_params;

/* w: packed by neon_layers._pack_gemm_weights (or _pack_i8mm_weights); bias: folded, channels
 * padded to 4; rq: [ceil(out_c / 4)][3][4] multiplier, left shift, -right shift. */
void tcn_conv_gemm_s8(const tcn_gemm_params *p, const int8_t *in, const int8_t *w, const int32_t *bias,
                      const int32_t *rq, int8_t *out);

typedef struct {
    int32_t in_h, in_w, c, cp; /* channels, and padded to a multiple of 16 (weight row stride) */
    int32_t out_h, out_w;
    int32_t k_h, k_w, stride_h, stride_w, dil_h, dil_w, pad_top, pad_left;
    int32_t in_zp, output_offset, act_min, act_max;
} tcn_dw_params;

/* w: [k_h * k_w][cp] int8; bias: folded, [cp]; rq: [cp / 4][3][4]. */
void tcn_depthwise_s8(const tcn_dw_params *p, const int8_t *in, const int8_t *w, const int32_t *bias,
                      const int32_t *rq, int8_t *out);

#endif /* TC_NEON_GEMM_H */
