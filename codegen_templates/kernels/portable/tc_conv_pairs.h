/* The convolution loop of the vector backends' generic tc_conv_s8 (kernels/neon, kernels/mve):
 * two output channels per loaded input vector, over the taps inside the input only; the input
 * offset enters as offset * sum(w) (sum((x + off) * w) = sum(x * w) + off * sum(w), exact in
 * int32). With groups == 1 and dilation 1 along x, the valid taps of one filter row are one
 * contiguous run. tc_dot2.h is the including backend's own (NEON or Helium dot products). */
#ifndef TC_CONV_PAIRS_H
#define TC_CONV_PAIRS_H

#include "tc_conv_util.h"
#include "tc_dot2.h"

static inline __attribute__((always_inline)) void tc_conv_s8_pairs(const tc_conv_params *p, const int8_t *in, const int8_t *w, const int32_t *bias,
                                    const int32_t *mult, const int32_t *shift, int8_t *out)
{
    const int32_t cin_g = p->in_c / p->groups, cout_g = p->out_c / p->groups;
    const int32_t off = p->input_offset, filt = p->k_h * p->k_w * cin_g;
    const int32_t one_run = p->groups == 1 && p->dil_w == 1;
    for (int32_t oy = 0; oy < p->out_h; ++oy) {
        const int32_t iy0 = oy * p->stride_h - p->pad_top;
        const int32_t ky0 = tc_conv_tap_first(iy0, p->dil_h), ky1 = tc_conv_tap_end(iy0, p->dil_h, p->k_h, p->in_h);
        for (int32_t ox = 0; ox < p->out_w; ++ox) {
            const int32_t ix0 = ox * p->stride_w - p->pad_left;
            const int32_t kx0 = tc_conv_tap_first(ix0, p->dil_w), kx1 = tc_conv_tap_end(ix0, p->dil_w, p->k_w, p->in_w);
            int8_t *o = out + (oy * p->out_w + ox) * p->out_c;
            for (int32_t g = 0; g < p->groups; ++g) {
                const int32_t oc_end = (g + 1) * cout_g;
                for (int32_t oc = g * cout_g; oc < oc_end; oc += 2) {
                    const int32_t two = oc + 1 < oc_end;
                    int32_t s[2] = {0, 0}, sw[2] = {0, 0};
                    for (int32_t ky = ky0; ky < ky1; ++ky) {
                        const int32_t iy = iy0 + ky * p->dil_h;
                        const int8_t *xr = in + (iy * p->in_w + ix0) * p->in_c + g * cin_g;
                        const int8_t *fr = w + (oc * p->k_h + ky) * p->k_w * cin_g;
                        if (one_run) {
                            const int8_t *x = xr + kx0 * p->in_c, *f = fr + kx0 * cin_g;
                            const int32_t n = (kx1 - kx0) * cin_g;
                            if (two) tc_dot_1x2(x, f, f + filt, n, s, sw);
                            else tc_dot_1x1(x, f, n, s, sw);
                        } else {
                            for (int32_t kx = kx0; kx < kx1; ++kx) {
                                const int8_t *x = xr + kx * p->dil_w * p->in_c, *f = fr + kx * cin_g;
                                if (two) tc_dot_1x2(x, f, f + filt, cin_g, s, sw);
                                else tc_dot_1x1(x, f, cin_g, s, sw);
                            }
                        }
                    }
                    o[oc] = tc_conv_requant((bias ? bias[oc] : 0) + s[0] + off * sw[0], mult[oc], shift[oc], p);
                    if (two) {
                        o[oc + 1] = tc_conv_requant((bias ? bias[oc + 1] : 0) + s[1] + off * sw[1], mult[oc + 1], shift[oc + 1], p);
                    }
                }
            }
        }
    }
}

#endif /* TC_CONV_PAIRS_H */
