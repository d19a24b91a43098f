#include "tc_lut.h"
#include "tc_fixedpoint.h"

void tc_lut_s8(const int8_t *in, int8_t *out, int32_t n, const int8_t *lut)
{
    for (int32_t i = 0; i < n; ++i) {
        out[i] = lut[(int32_t)in[i] + 128];
    }
}

void tc_prelu_s8(const tc_prelu_params *p, const int8_t *in, const int8_t *alpha,
                 const int32_t *alpha_multiplier, const int32_t *alpha_shift, int8_t *out)
{
    int32_t i = 0;
    for (int32_t o = 0; o < p->outer; ++o) {
        for (int32_t c = 0; c < p->channels; ++c, ++i) {
            const int32_t d = (int32_t)in[i] + p->input_offset;
            int32_t y;
            if (d >= 0) {
                y = tc_mbqm(d, p->identity_multiplier, p->identity_shift);
            } else {
                const int32_t a = (int32_t)alpha[c] + p->alpha_offset;
                y = tc_mbqm(d * a, alpha_multiplier[c], alpha_shift[c]);
            }
            out[i] = (int8_t)tc_clamp(y + p->output_offset, -128, 127);
        }
    }
}
