/* Convolution, int8 (TFLite int8 spec). Layouts: input/output NHWC (N = 1), weights OHWI
 * [out_c][k_h][k_w][in_c / groups], bias int32 [out_c] or NULL. Per-channel requantization. */
#ifndef TC_CONV_H
#define TC_CONV_H

#include <stdint.h>

#include "tc_requant.h"

typedef struct {
    int32_t in_h, in_w, in_c;
    int32_t out_h, out_w, out_c;
    int32_t k_h, k_w, groups;
    int32_t stride_h, stride_w, dil_h, dil_w, pad_top, pad_left;
    int32_t input_offset;  /* -input zero point, in [-127, 128] */
    int32_t output_offset; /* output zero point, in [-128, 127] */
    int32_t act_min, act_max;
    /* Optional fast requantization (kernels that support it; the others use mult / shift):
     * rq_kind TC_RQ_NONE, or TC_RQ_ANY / TC_RQ_RIGHT (every channel shifts right) with rq the
     * [out_c][4] records of tc_requant.h. */
    int32_t rq_kind;
    const int32_t *rq;
    /* Optional weights re-laid-out offline for one backend's kernel (NULL: none; see the
     * backend's tc_conv*.h and tinyconv/ops/conv_layout.py). */
    const void *wpack;
    int32_t wpack_run; /* dense patch rows padded to this many values (0: not padded) */
} tc_conv_params;

/* Any groups (grouped and depthwise included). */
void tc_conv_s8(const tc_conv_params *p, const int8_t *in, const int8_t *w, const int32_t *bias,
                const int32_t *mult, const int32_t *shift, int8_t *out);

/* groups == in_c: one filter tap column per output channel (channel multiplier out_c / in_c). */
void tc_depthwise_conv_s8(const tc_conv_params *p, const int8_t *in, const int8_t *w, const int32_t *bias,
                          const int32_t *mult, const int32_t *shift, int8_t *out);

#endif
