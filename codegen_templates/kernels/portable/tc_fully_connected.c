#include "tc_fully_connected.h"
#include "tc_fixedpoint.h"

void tc_fully_connected_s8(const tc_fc_params *p, const int8_t *in, const int8_t *w, const int32_t *bias,
                           const int32_t *mult, const int32_t *shift, int8_t *out)
{
    for (int32_t o = 0; o < p->out_features; ++o) {
        const int8_t *row = w + o * p->in_features;
        int32_t acc = bias ? bias[o] : 0;
        for (int32_t k = 0; k < p->in_features; ++k) {
            acc += ((int32_t)in[k] + p->input_offset) * (int32_t)row[k];
        }
        acc = tc_mbqm(acc, mult[o], shift[o]) + p->output_offset;
        out[o] = (int8_t)tc_clamp(acc, p->act_min, p->act_max);
    }
}
