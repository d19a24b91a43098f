#include "tc_conv_transpose.h"
#include "tc_fixedpoint.h"

void tc_conv_transpose_s8(const tc_conv_transpose_params *p, const int8_t *in, const int8_t *w, const int32_t *bias,
                          const int32_t *mult, const int32_t *shift, int8_t *out)
{
    for (int32_t oy = 0; oy < p->out_h; ++oy) {
        for (int32_t ox = 0; ox < p->out_w; ++ox) {
            for (int32_t oc = 0; oc < p->out_c; ++oc) {
                int32_t acc = bias ? bias[oc] : 0;
                for (int32_t ky = 0; ky < p->k_h; ++ky) {
                    const int32_t ty = oy + p->pad_top - ky * p->dil_h;
                    if (ty < 0) break; /* ty only decreases with ky */
                    if (ty % p->stride_h != 0) continue;
                    const int32_t iy = ty / p->stride_h;
                    if (iy >= p->in_h) continue;
                    for (int32_t kx = 0; kx < p->k_w; ++kx) {
                        const int32_t tx = ox + p->pad_left - kx * p->dil_w;
                        if (tx < 0) break;
                        if (tx % p->stride_w != 0) continue;
                        const int32_t ix = tx / p->stride_w;
                        if (ix >= p->in_w) continue;
                        const int8_t *x = in + (iy * p->in_w + ix) * p->in_c;
                        const int8_t *f = w + ((oc * p->k_h + ky) * p->k_w + kx) * p->in_c;
                        for (int32_t ic = 0; ic < p->in_c; ++ic) {
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
