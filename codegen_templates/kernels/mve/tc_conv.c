/* Convolution, int8, Armv8.1-M Helium (MVE) backend for Cortex-M55. Same API (portable tc_conv.h)
 * and bit-exact results as kernels/portable/tc_conv.c: the same int32 sums (reordered), the same
 * requantization and clamps.
 *
 * Reductions run 16 int8 lanes at a time: VLDRB.8 loads, VMLADAVA.S8 accumulates the 16 products
 * into an int32, tail-predicated with VCTP.8 (zeroing loads never touch bytes past the end). The
 * input offset is applied through the weight sum: sum((x + off) * w) = sum(x * w) + off * sum(w),
 * exact in int32; VADDVA.S8 gathers sum(w) in the same pass. tc_conv_s8's general case is
 * kernels/portable/tc_conv_pairs.h (two output channels per loaded input vector) over this
 * backend's tc_dot2.h.
 * Depthwise (channel multiplier 1) runs 4 channels per vector in int32 lanes: VLDRB.S32 of 4
 * adjacent channels, a gather load of their 4 weights, VMUL + VADD; other channels fall back to scalar.
 * Those are the fallbacks: groups == 1 with K <= TCM_PATCH goes through tcm_conv_dense (im2col,
 * 1 pixel x 4 channels, cached bias + offset * sum(w), vector requantization) and channel
 * multiplier 1 through tcm_dw_vec (transposed weights on the stack), both when every shift is in
 * [-31, 31]. */
#include <string.h>

#include "tc_conv_pairs.h"
#include "tc_mve.h"


/* Whether every shift[0 .. n) lies in [-31, 31] (tcm_requant4's range). */
static int32_t tcm_shifts_ok(const int32_t *shift, int32_t n)
{
    for (int32_t i = 0; i < n; ++i) {
        if (shift[i] < -31 || shift[i] > 31) return 0;
    }
    return 1;
}

/* sum(x[0 .. n) * w_j[0 .. n)) for the 4 filters w_j = w + j * K, one loaded x vector shared by
 * four VMLADAVA. Filters past the last channel are passed as repeats of the last one. */
static inline int32x4_t tcm_dot_1x4(const int8_t *x, const int8_t *w0, const int8_t *w1, const int8_t *w2,
                                    const int8_t *w3, int32_t n)
{
    int32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (int32_t k = n >> 4; k > 0; --k) { /* whole vectors: unpredicated, post-incremented loads */
        const int8x16_t xv = vldrbq_s8(x);
        s0 = vmladavaq_s8(s0, xv, vldrbq_s8(w0));
        s1 = vmladavaq_s8(s1, xv, vldrbq_s8(w1));
        s2 = vmladavaq_s8(s2, xv, vldrbq_s8(w2));
        s3 = vmladavaq_s8(s3, xv, vldrbq_s8(w3));
        x += 16;
        w0 += 16;
        w1 += 16;
        w2 += 16;
        w3 += 16;
    }
    if (n & 15) { /* the tail: zeroing loads, nothing read past the end */
        const mve_pred16_t pr = vctp8q((uint32_t)(n & 15));
        const int8x16_t xv = vldrbq_z_s8(x, pr);
        s0 = vmladavaq_s8(s0, xv, vldrbq_z_s8(w0, pr));
        s1 = vmladavaq_s8(s1, xv, vldrbq_z_s8(w1, pr));
        s2 = vmladavaq_s8(s2, xv, vldrbq_z_s8(w2, pr));
        s3 = vmladavaq_s8(s3, xv, vldrbq_z_s8(w3, pr));
    }
    int32x4_t r = vdupq_n_s32(s0);
    r = vsetq_lane_s32(s1, r, 1);
    r = vsetq_lane_s32(s2, r, 2);
    return vsetq_lane_s32(s3, r, 3);
}

static inline int32_t tcm_sum8(const int8_t *w, int32_t n)
{
    int32_t s = 0;
    for (; n > 0; n -= 16, w += 16) s = vaddvaq_s8(s, vldrbq_z_s8(w, vctp8q((uint32_t)n)));
    return s;
}

/* groups == 1, k_h * k_w * in_c <= TCM_PATCH: each pixel's patch is gathered (im2col) into a stack
 * buffer with padding taps set to the input zero point (-input_offset, an int8), so every pixel
 * sees all K values and sum((x + off) * w) = sum(x * w) + (bias + off * sum(w)), the second term
 * cached per channel (TCM_OCC channels at a time). 1x1 convolutions without padding read the
 * pixel's channels in place. 4 output channels per pass share each input vector; their sums are
 * requantized as one vector (tcm_requant4) and stored with VSTRB.32 (predicated for the tail). */
#define TCM_PATCH 640
#define TCM_OCC 64

static void tcm_conv_dense(const tc_conv_params *p, const int8_t *in, const int8_t *w, const int32_t *bias,
                           const int32_t *mult, const int32_t *shift, int8_t *out)
{
    int8_t patch[TCM_PATCH];
    int32_t cb[TCM_OCC];
    const int32_t K = p->k_h * p->k_w * p->in_c, row = p->k_w * p->in_c, off = p->input_offset;
    const int8_t pad = (int8_t)(-off);
    const int32_t pointwise = p->k_h == 1 && p->k_w == 1 && p->pad_top == 0 && p->pad_left == 0;
    const int32_t npix = p->out_h * p->out_w;
    for (int32_t oc0 = 0; oc0 < p->out_c; oc0 += TCM_OCC) {
        const int32_t noc = p->out_c - oc0 < TCM_OCC ? p->out_c - oc0 : TCM_OCC;
        for (int32_t i = 0; i < TCM_OCC; ++i) {
            cb[i] = i < noc ? (bias ? bias[oc0 + i] : 0) + off * tcm_sum8(w + (oc0 + i) * K, K) : 0;
        }
        for (int32_t pix = 0; pix < npix; ++pix) {
            const int32_t oy = pix / p->out_w, ox = pix % p->out_w;
            const int32_t iy0 = oy * p->stride_h - p->pad_top, ix0 = ox * p->stride_w - p->pad_left;
            const int8_t *x;
            if (pointwise) {
                x = in + (iy0 * p->in_w + ix0) * p->in_c;
            } else {
                for (int32_t ky = 0; ky < p->k_h; ++ky) {
                    const int32_t iy = iy0 + ky * p->dil_h;
                    int8_t *d = patch + ky * row;
                    if (iy < 0 || iy >= p->in_h) {
                        memset(d, pad, (size_t)row);
                    } else if (p->dil_w == 1 && ix0 >= 0 && ix0 + p->k_w <= p->in_w) {
                        memcpy(d, in + (iy * p->in_w + ix0) * p->in_c, (size_t)row);
                    } else {
                        for (int32_t kx = 0; kx < p->k_w; ++kx, d += p->in_c) {
                            const int32_t ix = ix0 + kx * p->dil_w;
                            if (ix < 0 || ix >= p->in_w) memset(d, pad, (size_t)p->in_c);
                            else memcpy(d, in + (iy * p->in_w + ix) * p->in_c, (size_t)p->in_c);
                        }
                    }
                }
                x = patch;
            }
            int8_t *o = out + pix * p->out_c + oc0;
            for (int32_t c = 0; c < noc; c += 4) {
                const int32_t left = noc - c;
                const int8_t *w0 = w + (oc0 + c) * K;
                const int8_t *w1 = left > 1 ? w0 + K : w0, *w2 = left > 2 ? w1 + K : w1, *w3 = left > 3 ? w2 + K : w2;
                const int32x4_t acc = vaddq_s32(tcm_dot_1x4(x, w0, w1, w2, w3, K), vldrwq_s32(cb + c));
                const mve_pred16_t pr = vctp32q((uint32_t)left);
                const int32x4_t r = tcm_requant4(acc, vldrwq_z_s32(mult + oc0 + c, pr), vldrwq_z_s32(shift + oc0 + c, pr),
                                                 p->output_offset, p->act_min, p->act_max);
                vstrbq_p_s32(o + c, r, pr);
            }
        }
    }
}

void tc_conv_s8(const tc_conv_params *p, const int8_t *in, const int8_t *w, const int32_t *bias,
                const int32_t *mult, const int32_t *shift, int8_t *out)
{
    if (p->groups == 1 && p->k_h * p->k_w * p->in_c <= TCM_PATCH && tcm_shifts_ok(shift, p->out_c)) {
        tcm_conv_dense(p, in, w, bias, mult, shift, out);
        return;
    }
    tc_conv_s8_pairs(p, in, w, bias, mult, shift, out);
}

/* Depthwise, channel multiplier 1: 4 adjacent channels per int32x4 vector (VLDRB.S32 of one tap's
 * channels, contiguous in NHWC). The weights of up to TCM_DW_BYTES / ntap channels are first
 * transposed to [tap][channel] on the stack so each tap's 4 weights are one VLDRB.S32 too.
 * Interior pixels start from bias + off * sum(w) (cached per chunk) and accumulate x * w; border
 * pixels start from the bias and add (x + off) * w over the taps inside the input only. The
 * sums are requantized as one vector; a channel count not a multiple of 4 ends with a predicated
 * block. */
#define TCM_DW_BYTES 576
#define TCM_DW_CH 64

static void tcm_dw_vec(const tc_conv_params *p, const int8_t *in, const int8_t *w, const int32_t *bias,
                       const int32_t *mult, const int32_t *shift, int8_t *out)
{
    int8_t wt[TCM_DW_BYTES];
    int32_t cb[TCM_DW_CH];
    const int32_t ntap = p->k_h * p->k_w, C = p->in_c, off = p->input_offset;
    int32_t chunk = (TCM_DW_BYTES / ntap) & ~3;
    if (chunk > TCM_DW_CH) chunk = TCM_DW_CH;
    const int32_t xstep = p->dil_w * C, ystep = p->dil_h * p->in_w * C;
    for (int32_t c0 = 0; c0 < C; c0 += chunk) {
        const int32_t nch = C - c0 < chunk ? C - c0 : chunk;
        for (int32_t c = 0; c < chunk; ++c) {
            int32_t sw = 0;
            for (int32_t t = 0; t < ntap; ++t) {
                const int8_t v = c < nch ? w[(c0 + c) * ntap + t] : 0;
                wt[t * chunk + c] = v;
                sw += v;
            }
            cb[c] = c < nch ? (bias ? bias[c0 + c] : 0) + off * sw : 0;
        }
        for (int32_t oy = 0; oy < p->out_h; ++oy) {
            const int32_t iy0 = oy * p->stride_h - p->pad_top;
            const int32_t ky0 = tc_conv_tap_first(iy0, p->dil_h), ky1 = tc_conv_tap_end(iy0, p->dil_h, p->k_h, p->in_h);
            for (int32_t ox = 0; ox < p->out_w; ++ox) {
                const int32_t ix0 = ox * p->stride_w - p->pad_left;
                const int32_t kx0 = tc_conv_tap_first(ix0, p->dil_w), kx1 = tc_conv_tap_end(ix0, p->dil_w, p->k_w, p->in_w);
                const int32_t interior = ky0 == 0 && ky1 == p->k_h && kx0 == 0 && kx1 == p->k_w;
                const int8_t *xb = in + ((iy0 + ky0 * p->dil_h) * p->in_w + ix0 + kx0 * p->dil_w) * C + c0;
                int8_t *o = out + (oy * p->out_w + ox) * p->out_c + c0;
                for (int32_t c = 0; c < nch; c += 4) {
                    const mve_pred16_t pr = vctp32q((uint32_t)(nch - c));
                    int32x4_t acc;
                    if (interior) {
                        acc = vldrwq_s32(cb + c);
                        const int8_t *xr = xb + c, *wr = wt + c;
                        for (int32_t ky = 0; ky < p->k_h; ++ky, xr += ystep) {
                            const int8_t *x = xr;
                            for (int32_t kx = 0; kx < p->k_w; ++kx, x += xstep, wr += chunk) {
                                acc = vaddq_s32(acc, vmulq_s32(vldrbq_z_s32(x, pr), vldrbq_s32(wr)));
                            }
                        }
                    } else {
                        acc = bias ? vldrwq_z_s32(bias + c0 + c, pr) : vdupq_n_s32(0);
                        const int8_t *xr = xb + c;
                        for (int32_t ky = ky0; ky < ky1; ++ky, xr += ystep) {
                            const int8_t *x = xr, *wr = wt + (ky * p->k_w + kx0) * chunk + c;
                            for (int32_t kx = kx0; kx < kx1; ++kx, x += xstep, wr += chunk) {
                                const int32x4_t xv = vaddq_n_s32(vldrbq_z_s32(x, pr), off);
                                acc = vaddq_s32(acc, vmulq_s32(xv, vldrbq_s32(wr)));
                            }
                        }
                    }
                    const int32x4_t r = tcm_requant4(acc, vldrwq_z_s32(mult + c0 + c, pr), vldrwq_z_s32(shift + c0 + c, pr),
                                                     p->output_offset, p->act_min, p->act_max);
                    vstrbq_p_s32(o + c, r, pr);
                }
            }
        }
    }
}

void tc_depthwise_conv_s8(const tc_conv_params *p, const int8_t *in, const int8_t *w, const int32_t *bias,
                          const int32_t *mult, const int32_t *shift, int8_t *out)
{
    if (p->out_c == p->in_c && p->k_h * p->k_w * 4 <= TCM_DW_BYTES && tcm_shifts_ok(shift, p->out_c)) {
        tcm_dw_vec(p, in, w, bias, mult, shift, out);
        return;
    }
    const int32_t mult_c = p->out_c / p->in_c; /* channel multiplier */
    const int32_t ntap = p->k_h * p->k_w, off = p->input_offset;
    const int32_t nv = mult_c == 1 ? p->in_c & ~3 : 0; /* channels done 4 per vector */
    const uint32x4_t woffs = vmulq_n_u32(vidupq_n_u32(0, 1), (uint32_t)ntap);
    for (int32_t oy = 0; oy < p->out_h; ++oy) {
        const int32_t iy0 = oy * p->stride_h - p->pad_top;
        const int32_t ky0 = tc_conv_tap_first(iy0, p->dil_h), ky1 = tc_conv_tap_end(iy0, p->dil_h, p->k_h, p->in_h);
        for (int32_t ox = 0; ox < p->out_w; ++ox) {
            const int32_t ix0 = ox * p->stride_w - p->pad_left;
            const int32_t kx0 = tc_conv_tap_first(ix0, p->dil_w), kx1 = tc_conv_tap_end(ix0, p->dil_w, p->k_w, p->in_w);
            int8_t *o = out + (oy * p->out_w + ox) * p->out_c;
            for (int32_t c = 0; c < nv; c += 4) {
                int32x4_t acc = bias ? vldrwq_s32(bias + c) : vdupq_n_s32(0);
                for (int32_t ky = ky0; ky < ky1; ++ky) {
                    const int8_t *xr = in + ((iy0 + ky * p->dil_h) * p->in_w + ix0) * p->in_c + c;
                    const int8_t *fr = w + c * ntap + ky * p->k_w;
                    for (int32_t kx = kx0; kx < kx1; ++kx) {
                        const int32x4_t xv = vaddq_n_s32(vldrbq_s32(xr + kx * p->dil_w * p->in_c), off);
                        const int32x4_t wv = vldrbq_gather_offset_s32(fr + kx, woffs);
                        acc = vaddq_s32(acc, vmulq_s32(xv, wv));
                    }
                }
                o[c] = tc_conv_requant(vgetq_lane_s32(acc, 0), mult[c], shift[c], p);
                o[c + 1] = tc_conv_requant(vgetq_lane_s32(acc, 1), mult[c + 1], shift[c + 1], p);
                o[c + 2] = tc_conv_requant(vgetq_lane_s32(acc, 2), mult[c + 2], shift[c + 2], p);
                o[c + 3] = tc_conv_requant(vgetq_lane_s32(acc, 3), mult[c + 3], shift[c + 3], p);
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
