/* Average pooling and spatial mean, int8, Helium (MVE), specialised per layer (shapes and zero
 * points are literals of the always-inlined calls). Window sums run 4 channels per int32x4 vector
 * (VLDRB.S32 + VADD per tap); the rounding division of average pooling, whose divisor varies at
 * the borders, is done per lane exactly as the portable kernel does it; the mean's single
 * requantization is vectorized (tcm_requant_lr). */
#ifndef TC_MVE_POOL_H
#define TC_MVE_POOL_H

#include <stdint.h>

#include "tc_fixedpoint.h"
#include "tc_mve.h"

/* A declared no-op so the kernel family has a translation unit (tc_mve_pool.c). */
void tcm_pool_unused(void);

/* Sum over taps of 4 channels (n < 4: the last, predicated block); row pointers x advance in_w * C. */
TCM_INLINE int32x4_t tcm_window_sum4(const int8_t *x, int rows, int cols, int row_step, int C, int32x4_t acc, int n)
{
    const mve_pred16_t pr = vctp32q((uint32_t)n);
    for (int r = 0; r < rows; ++r, x += row_step) {
        const int8_t *p = x;
        for (int k = 0; k < cols; ++k, p += C) acc = vaddq_s32(acc, n >= 4 ? vldrbq_s32(p) : vldrbq_z_s32(p, pr));
    }
    return acc;
}

TCM_INLINE int8_t tcm_avg_one(int32_t acc, int32_t n, int requantize, int32_t in_zp, int32_t m, int32_t sh, int32_t out_zp)
{
    int32_t avg = acc > 0 ? (acc + n / 2) / n : (acc - n / 2) / n; /* round half away from zero */
    if (requantize) avg = tc_mbqm(avg - in_zp, m, sh) + out_zp;
    return (int8_t)tc_clamp(avg, -128, 127);
}

TCM_INLINE void tcm_avg_pool_s8(const int8_t *in, int8_t *out, int in_h, int in_w, int C, int out_h, int out_w, int k_h,
                                int k_w, int stride_h, int stride_w, int pad_top, int pad_left, int count_include_pad,
                                int32_t in_zp, int requantize, int32_t m, int32_t sh, int32_t out_zp)
{
    for (int oy = 0; oy < out_h; ++oy) {
        const int iy0 = oy * stride_h - pad_top;
        const int ky0 = iy0 < 0 ? -iy0 : 0, ky1 = in_h - iy0 < k_h ? in_h - iy0 : k_h;
        for (int ox = 0; ox < out_w; ++ox) {
            const int ix0 = ox * stride_w - pad_left;
            const int kx0 = ix0 < 0 ? -ix0 : 0, kx1 = in_w - ix0 < k_w ? in_w - ix0 : k_w;
            const int valid = (ky1 - ky0) * (kx1 - kx0);
            const int32_t n = count_include_pad ? k_h * k_w : valid;
            const int32x4_t init = vdupq_n_s32(count_include_pad ? (k_h * k_w - valid) * in_zp : 0);
            const int8_t *x = in + ((iy0 + ky0) * in_w + ix0 + kx0) * C;
            int8_t *o = out + (oy * out_w + ox) * C;
            for (int c = 0; c < C; c += 4) {
                const int left = C - c;
                const int32x4_t acc = tcm_window_sum4(x + c, ky1 - ky0, kx1 - kx0, in_w * C, C, init, left);
                o[c] = tcm_avg_one(vgetq_lane_s32(acc, 0), n, requantize, in_zp, m, sh, out_zp);
                if (left > 1) o[c + 1] = tcm_avg_one(vgetq_lane_s32(acc, 1), n, requantize, in_zp, m, sh, out_zp);
                if (left > 2) o[c + 2] = tcm_avg_one(vgetq_lane_s32(acc, 2), n, requantize, in_zp, m, sh, out_zp);
                if (left > 3) o[c + 3] = tcm_avg_one(vgetq_lane_s32(acc, 3), n, requantize, in_zp, m, sh, out_zp);
            }
        }
    }
}

/* Spatial mean: sum(x - in_zp) over hw pixels, requantized (shift in [-31, 31], checked offline). */
TCM_INLINE void tcm_mean_hw_s8(const int8_t *in, int8_t *out, int hw, int C, int32_t in_zp, int32_t m, int32_t sh,
                               int32_t out_zp)
{
    const int32x4_t vm = vdupq_n_s32(m), right = vdupq_n_s32(sh < 0 ? sh : 0), lft = vdupq_n_s32(sh > 0 ? sh : 0);
    for (int c = 0; c < C; c += 4) {
        const int left = C - c;
        const int32x4_t acc = tcm_window_sum4(in + c, 1, hw, 0, C, vdupq_n_s32(-hw * in_zp), left);
        const int32x4_t r = tcm_requant_lr(acc, vm, right, lft, sh > 0, out_zp, -128, 127);
        if (left >= 4) vstrbq_s32(out + c, r);
        else tcm_store_tail(out + c, r, vctp32q((uint32_t)left));
    }
}

#endif /* TC_MVE_POOL_H */
