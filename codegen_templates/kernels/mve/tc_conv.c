/* Convolution, int8, Armv8.1-M Helium (MVE) backend for Cortex-M55. Same API (portable tc_conv.h)
 * and bit-exact results as kernels/portable/tc_conv.c: the same int32 sums (reordered), the same
 * requantization and clamps.
 *
 * Reductions run 16 int8 lanes at a time: VLDRB.8 loads, VMLADAVA.S8 accumulates the 16 products
 * into an int32, tail-predicated with VCTP.8 (zeroing loads never touch bytes past the end). The
 * input offset is applied through the weight sum: sum((x + off) * w) = sum(x * w) + off * sum(w),
 * exact in int32; VADDVA.S8 gathers sum(w) in the same pass. tc_conv_s8 computes two output
 * channels per pass from each loaded input vector; with groups == 1 and dilation 1 along x, the
 * valid taps of one filter row form one contiguous run of in_c * (valid columns) values.
 * Depthwise (channel multiplier 1) runs 4 channels per vector in int32 lanes: VLDRB.S32 of 4
 * adjacent channels, a gather load of their 4 weights, VMUL + VADD; other channels fall back to scalar. */
#include <arm_mve.h>

#include "tc_conv.h"
#include "tc_fixedpoint.h"

#if !defined(__ARM_FEATURE_MVE)
#error "kernels/mve/tc_conv.c needs Helium (MVE): -mcpu=cortex-m55 -mfloat-abi=hard"
#endif

/* tc_mbqm for the usual shift <= 0, m != INT32_MIN: (p + nudge) / 2^31 with C truncation equals
 * floor((p + 2^30) / 2^31) for every int64 p (one SMLAL + shift instead of a 64-bit division);
 * RoundingDivideByPOT as in tc_fixedpoint.h. Any other (shift, m) goes through tc_mbqm itself. */
static inline int32_t tcm_mbqm(int32_t x, int32_t m, int32_t sh)
{
    if (sh > 0 || m == INT32_MIN) return tc_mbqm(x, m, sh);
    const int32_t hi = (int32_t)(((int64_t)x * m + (1LL << 30)) >> 31);
    const int32_t n = -sh;
    const int32_t mask = (int32_t)((1LL << n) - 1);
    const int32_t threshold = (mask >> 1) + (hi < 0 ? 1 : 0);
    return (hi >> n) + ((hi & mask) > threshold ? 1 : 0);
}

static inline int8_t tcm_requant(int32_t acc, int32_t m, int32_t sh, const tc_conv_params *p)
{
    return (int8_t)tc_clamp(tcm_mbqm(acc, m, sh) + p->output_offset, p->act_min, p->act_max);
}

/* s[0] += x.wa, s[1] += x.wb, sw[0] += sum(wa), sw[1] += sum(wb) over n values */
static inline void tcm_dot_1x2(const int8_t *x, const int8_t *wa, const int8_t *wb, int32_t n, int32_t *s, int32_t *sw)
{
    int32_t s0 = s[0], s1 = s[1], w0 = sw[0], w1 = sw[1];
    while (n > 0) {
        const mve_pred16_t pr = vctp8q((uint32_t)n);
        const int8x16_t xv = vldrbq_z_s8(x, pr), av = vldrbq_z_s8(wa, pr), bv = vldrbq_z_s8(wb, pr);
        s0 = vmladavaq_s8(s0, xv, av);
        w0 = vaddvaq_s8(w0, av);
        s1 = vmladavaq_s8(s1, xv, bv);
        w1 = vaddvaq_s8(w1, bv);
        x += 16;
        wa += 16;
        wb += 16;
        n -= 16;
    }
    s[0] = s0;
    s[1] = s1;
    sw[0] = w0;
    sw[1] = w1;
}

static inline void tcm_dot_1x1(const int8_t *x, const int8_t *w, int32_t n, int32_t *s, int32_t *sw)
{
    int32_t s0 = *s, w0 = *sw;
    while (n > 0) {
        const mve_pred16_t pr = vctp8q((uint32_t)n);
        const int8x16_t wv = vldrbq_z_s8(w, pr);
        s0 = vmladavaq_s8(s0, vldrbq_z_s8(x, pr), wv);
        w0 = vaddvaq_s8(w0, wv);
        x += 16;
        w += 16;
        n -= 16;
    }
    *s = s0;
    *sw = w0;
}

/* First tap t >= 0 with i0 + t * dil >= 0, and one past the last tap t < k with i0 + t * dil < n. */
static inline int32_t tcm_tap_first(int32_t i0, int32_t dil)
{
    return i0 >= 0 ? 0 : (-i0 + dil - 1) / dil;
}

static inline int32_t tcm_tap_end(int32_t i0, int32_t dil, int32_t k, int32_t n)
{
    const int32_t e = n - i0 <= 0 ? 0 : (n - i0 + dil - 1) / dil;
    return e < k ? e : k;
}

void tc_conv_s8(const tc_conv_params *p, const int8_t *in, const int8_t *w, const int32_t *bias,
                const int32_t *mult, const int32_t *shift, int8_t *out)
{
    const int32_t cin_g = p->in_c / p->groups, cout_g = p->out_c / p->groups;
    const int32_t off = p->input_offset, filt = p->k_h * p->k_w * cin_g;
    const int32_t one_run = p->groups == 1 && p->dil_w == 1;
    for (int32_t oy = 0; oy < p->out_h; ++oy) {
        const int32_t iy0 = oy * p->stride_h - p->pad_top;
        const int32_t ky0 = tcm_tap_first(iy0, p->dil_h), ky1 = tcm_tap_end(iy0, p->dil_h, p->k_h, p->in_h);
        for (int32_t ox = 0; ox < p->out_w; ++ox) {
            const int32_t ix0 = ox * p->stride_w - p->pad_left;
            const int32_t kx0 = tcm_tap_first(ix0, p->dil_w), kx1 = tcm_tap_end(ix0, p->dil_w, p->k_w, p->in_w);
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
                            if (two) tcm_dot_1x2(x, f, f + filt, n, s, sw);
                            else tcm_dot_1x1(x, f, n, s, sw);
                        } else {
                            for (int32_t kx = kx0; kx < kx1; ++kx) {
                                const int8_t *x = xr + kx * p->dil_w * p->in_c, *f = fr + kx * cin_g;
                                if (two) tcm_dot_1x2(x, f, f + filt, cin_g, s, sw);
                                else tcm_dot_1x1(x, f, cin_g, s, sw);
                            }
                        }
                    }
                    o[oc] = tcm_requant((bias ? bias[oc] : 0) + s[0] + off * sw[0], mult[oc], shift[oc], p);
                    if (two) {
                        o[oc + 1] = tcm_requant((bias ? bias[oc + 1] : 0) + s[1] + off * sw[1], mult[oc + 1], shift[oc + 1], p);
                    }
                }
            }
        }
    }
}

void tc_depthwise_conv_s8(const tc_conv_params *p, const int8_t *in, const int8_t *w, const int32_t *bias,
                          const int32_t *mult, const int32_t *shift, int8_t *out)
{
    const int32_t mult_c = p->out_c / p->in_c; /* channel multiplier */
    const int32_t ntap = p->k_h * p->k_w, off = p->input_offset;
    const int32_t nv = mult_c == 1 ? p->in_c & ~3 : 0; /* channels done 4 per vector */
    const uint32x4_t woffs = vmulq_n_u32(vidupq_n_u32(0, 1), (uint32_t)ntap);
    for (int32_t oy = 0; oy < p->out_h; ++oy) {
        const int32_t iy0 = oy * p->stride_h - p->pad_top;
        const int32_t ky0 = tcm_tap_first(iy0, p->dil_h), ky1 = tcm_tap_end(iy0, p->dil_h, p->k_h, p->in_h);
        for (int32_t ox = 0; ox < p->out_w; ++ox) {
            const int32_t ix0 = ox * p->stride_w - p->pad_left;
            const int32_t kx0 = tcm_tap_first(ix0, p->dil_w), kx1 = tcm_tap_end(ix0, p->dil_w, p->k_w, p->in_w);
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
                o[c] = tcm_requant(vgetq_lane_s32(acc, 0), mult[c], shift[c], p);
                o[c + 1] = tcm_requant(vgetq_lane_s32(acc, 1), mult[c + 1], shift[c + 1], p);
                o[c + 2] = tcm_requant(vgetq_lane_s32(acc, 2), mult[c + 2], shift[c + 2], p);
                o[c + 3] = tcm_requant(vgetq_lane_s32(acc, 3), mult[c + 3], shift[c + 3], p);
            }
            for (int32_t oc = nv; oc < p->out_c; ++oc) {
                const int32_t ic = oc / mult_c;
                int32_t acc = bias ? bias[oc] : 0;
                for (int32_t ky = ky0; ky < ky1; ++ky) {
                    const int8_t *xr = in + ((iy0 + ky * p->dil_h) * p->in_w + ix0) * p->in_c + ic;
                    const int8_t *fr = w + (oc * p->k_h + ky) * p->k_w;
                    for (int32_t kx = kx0; kx < kx1; ++kx) acc += (xr[kx * p->dil_w * p->in_c] + off) * fr[kx];
                }
                o[oc] = tcm_requant(acc, mult[oc], shift[oc], p);
            }
        }
    }
}
