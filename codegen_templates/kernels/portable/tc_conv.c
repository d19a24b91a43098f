#include "tc_conv.h"
#include "tc_fixedpoint.h"

void tc_conv_s8(const tc_conv_params *p, const int8_t *in, const int8_t *w, const int32_t *bias,
                const int32_t *mult, const int32_t *shift, int8_t *out)
{
    const int32_t cin_g = p->in_c / p->groups;
    const int32_t cout_g = p->out_c / p->groups;
    for (int32_t oy = 0; oy < p->out_h; ++oy) {
        for (int32_t ox = 0; ox < p->out_w; ++ox) {
            for (int32_t oc = 0; oc < p->out_c; ++oc) {
                const int32_t g = oc / cout_g;
                int32_t acc = bias ? bias[oc] : 0;
                for (int32_t ky = 0; ky < p->k_h; ++ky) {
                    const int32_t iy = oy * p->stride_h - p->pad_top + ky * p->dil_h;
                    if (iy < 0 || iy >= p->in_h) continue; /* padding contributes nothing */
                    for (int32_t kx = 0; kx < p->k_w; ++kx) {
                        const int32_t ix = ox * p->stride_w - p->pad_left + kx * p->dil_w;
                        if (ix < 0 || ix >= p->in_w) continue;
                        const int8_t *x = in + ((iy * p->in_w + ix) * p->in_c + g * cin_g);
                        const int8_t *f = w + (((oc * p->k_h + ky) * p->k_w + kx) * cin_g);
                        for (int32_t ic = 0; ic < cin_g; ++ic) {
                            acc += ((int32_t)x[ic] + p->input_offset) * (int32_t)f[ic];
                        }
                    }
                }
                acc = tc_mbqm(acc, mult[oc], shift[oc]) + p->output_offset;
                out[(oy * p->out_w + ox) * p->out_c + oc] = (int8_t)tc_clamp(acc, p->act_min, p->act_max);
            }
        }
    }
}

void tc_depthwise_conv_s8(const tc_conv_params *p, const int8_t *in, const int8_t *w, const int32_t *bias,
                          const int32_t *mult, const int32_t *shift, int8_t *out)
{
    const int32_t mult_c = p->out_c / p->in_c; /* channel multiplier */
    for (int32_t oy = 0; oy < p->out_h; ++oy) {
        for (int32_t ox = 0; ox < p->out_w; ++ox) {
            for (int32_t oc = 0; oc < p->out_c; ++oc) {
                const int32_t ic = oc / mult_c;
                int32_t acc = bias ? bias[oc] : 0;
                for (int32_t ky = 0; ky < p->k_h; ++ky) {
                    const int32_t iy = oy * p->stride_h - p->pad_top + ky * p->dil_h;
                    if (iy < 0 || iy >= p->in_h) continue;
                    for (int32_t kx = 0; kx < p->k_w; ++kx) {
                        const int32_t ix = ox * p->stride_w - p->pad_left + kx * p->dil_w;
                        if (ix < 0 || ix >= p->in_w) continue;
                        const int32_t x = in[(iy * p->in_w + ix) * p->in_c + ic];
                        acc += (x + p->input_offset) * (int32_t)w[(oc * p->k_h + ky) * p->k_w + kx];
                    }
                }
                acc = tc_mbqm(acc, mult[oc], shift[oc]) + p->output_offset;
                out[(oy * p->out_w + ox) * p->out_c + oc] = (int8_t)tc_clamp(acc, p->act_min, p->act_max);
            }
        }
    }
}
