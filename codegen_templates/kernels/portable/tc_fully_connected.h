/* Fully connected, int8: out[o] = requant(bias[o] + sum_k (in[k] + input_offset) * w[o][k]).
 * Weights [out_features][in_features]; per-output-channel multipliers (per-tensor is repeated). */
#ifndef TC_FULLY_CONNECTED_H
#define TC_FULLY_CONNECTED_H

#include <stdint.h>

#include "tc_requant.h"

typedef struct {
    int32_t in_features, out_features;
    int32_t input_offset, output_offset;
    int32_t act_min, act_max;
    int32_t rq_kind;   /* optional fast requantization, as in tc_conv.h */
    const int32_t *rq;
    /* Optional weights re-laid-out offline for one backend's kernel, with the biases they need
     * (NULL: none; see the backend's tc_fully_connected.c and tinyconv/ops/conv_layout.py). */
    const void *wpack;
    const int32_t *wpack_bias;
} tc_fc_params;

void tc_fully_connected_s8(const tc_fc_params *p, const int8_t *in, const int8_t *w, const int32_t *bias,
                           const int32_t *mult, const int32_t *shift, int8_t *out);

#endif
