/* Convolution, int8, AArch64 NEON backend (Armv8.2-A; SDOT with the dot-product extension, else
 * SMULL / SADALP). Same API (portable tc_conv.h) and bit-exact results as kernels/portable/tc_conv.c.
 * Reductions run 16 int8 values per step into int32 lanes; the input offset enters as
 * offset * sum(w) (sum((x + off) * w) = sum(x * w) + off * sum(w), exact in int32), the weight sum
 * taken in the same pass; a scalar loop finishes lengths not a multiple of 16. tc_conv_s8 is
 * kernels/portable/tc_conv_pairs.h over this backend's tc_dot2.h. Depthwise: 16 channels per step (channel
 * multiplier 1) with widening multiplies, scalar for the rest. */
#include "tc_conv_pairs.h"
#include "tc_neon.h"

void tc_conv_s8(const tc_conv_params *p, const int8_t *in, const int8_t *w, const int32_t *bias,
                const int32_t *mult, const int32_t *shift, int8_t *out)
{
    tc_conv_s8_pairs(p, in, w, bias, mult, shift, out);
}

void tc_depthwise_conv_s8(const tc_conv_params *p, const int8_t *in, const int8_t *w, const int32_t *bias,
                          const int32_t *mult, const int32_t *shift, int8_t *out)
{
    const int32_t mult_c = p->out_c / p->in_c; /* channel multiplier */
    const int32_t ntap = p->k_h * p->k_w, off = p->input_offset;
    const int32_t nv = mult_c == 1 ? p->in_c & ~15 : 0; /* channels done 16 per step */
    const int16x8_t offv = vdupq_n_s16((int16_t)off);
    for (int32_t oy = 0; oy < p->out_h; ++oy) {
        const int32_t iy0 = oy * p->stride_h - p->pad_top;
        const int32_t ky0 = tc_conv_tap_first(iy0, p->dil_h), ky1 = tc_conv_tap_end(iy0, p->dil_h, p->k_h, p->in_h);
        for (int32_t ox = 0; ox < p->out_w; ++ox) {
            const int32_t ix0 = ox * p->stride_w - p->pad_left;
            const int32_t kx0 = tc_conv_tap_first(ix0, p->dil_w), kx1 = tc_conv_tap_end(ix0, p->dil_w, p->k_w, p->in_w);
            int8_t *o = out + (oy * p->out_w + ox) * p->out_c;
            for (int32_t c = 0; c < nv; c += 16) {
                int32x4_t a0 = vdupq_n_s32(0), a1 = a0, a2 = a0, a3 = a0;
                for (int32_t ky = ky0; ky < ky1; ++ky) {
                    const int8_t *xr = in + ((iy0 + ky * p->dil_h) * p->in_w + ix0) * p->in_c + c;
                    for (int32_t kx = kx0; kx < kx1; ++kx) {
                        const int8x16_t xv = vld1q_s8(xr + kx * p->dil_w * p->in_c);
                        int8_t wt[16];
                        const int8_t *f = w + c * ntap + ky * p->k_w + kx;
                        for (int32_t j = 0; j < 16; ++j) wt[j] = f[j * ntap];
                        const int8x16_t wv = vld1q_s8(wt);
                        const int16x8_t xl = vaddq_s16(vmovl_s8(vget_low_s8(xv)), offv);
                        const int16x8_t xh = vaddq_s16(vmovl_high_s8(xv), offv);
                        const int16x8_t wl = vmovl_s8(vget_low_s8(wv)), wh = vmovl_high_s8(wv);
                        a0 = vmlal_s16(a0, vget_low_s16(xl), vget_low_s16(wl));
                        a1 = vmlal_high_s16(a1, xl, wl);
                        a2 = vmlal_s16(a2, vget_low_s16(xh), vget_low_s16(wh));
                        a3 = vmlal_high_s16(a3, xh, wh);
                    }
                }
                int32_t acc[16];
                vst1q_s32(acc, a0);
                vst1q_s32(acc + 4, a1);
                vst1q_s32(acc + 8, a2);
                vst1q_s32(acc + 12, a3);
                for (int32_t j = 0; j < 16; ++j) {
                    o[c + j] = tc_conv_requant((bias ? bias[c + j] : 0) + acc[j], mult[c + j], shift[c + j], p);
                }
            }
            for (int32_t oc = nv; oc < p->out_c; ++oc) {
                const int32_t ic = oc / mult_c;
                int32_t acc = bias ? bias[oc] : 0;
                for (int32_t ky = ky0; ky < ky1; ++ky) {
                    const int8_t *xr = in + ((iy0 + ky * p->dil_h) * p->in_w + ix0) * p->in_c + ic;
                    const int8_t *fr = w + (oc * p->k_h + ky) * p->k_w;
                    for (int32_t kx = kx0; kx < kx1; ++kx) acc += (xr[kx * p->dil_w * p->in_c] + off) * fr[kx];
                }
                o[oc] = tc_conv_requant(acc, mult[oc], shift[oc], p);
            }
        }
    }
}
