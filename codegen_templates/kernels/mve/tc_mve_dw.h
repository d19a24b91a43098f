/* Depthwise convolution, channel multiplier 1, int8, Helium (MVE), specialised per layer: every
 * shape, stride, pad and zero point is a literal of the call (always inlined), so tap offsets
 * are constants and the tap loops unroll.
 *
 * Offline (tinyconv/ops/helium.py): weights as [channel block][tap][4] (one VLDRB.S32 per tap,
 * consecutive), per 4 channels a requantization record whose base is bias + input_offset * sum(w),
 * and a row of input zero points. Every pixel computes base + sum(x * w) over all taps; a padding
 * tap reads the zero-point row, x = -input_offset, which adds exactly the -input_offset * w that
 * the base over-counts, so border pixels are exact with no per-tap offset add. */
#ifndef TC_MVE_DW_H
#define TC_MVE_DW_H

#include <stdint.h>

#include "tc_mve.h"

/* A declared no-op so the kernel family has a translation unit (tc_mve_dw.c). */
void tcm_dw_unused(void);

/* acc += x * w for one tap. The empty asm keeps the taps in order: without it GCC hoists all the
 * loads and multiplies first and spills the products to the stack. */
TCM_INLINE int32x4_t tcm_dw_tap(int32x4_t acc, int32x4_t xv, const int8_t *w)
{
    acc = vaddq_s32(acc, vmulq_s32(xv, vldrbq_s32(w)));
    __asm__ volatile("" : "+w"(acc)::"memory");
    return acc;
}

/* The same for an interior tap whose next input is xstep bytes on (a literal in [0, 127], the
 * post-increment range of VLDRB.S32): both loads post-increment, 4 instructions a tap. Widening
 * loads take a low base register (r0-r7): constraint "l". */
#ifdef __OPTIMIZE__
#define TCM_DW_TAP_POSTINC(acc, p, w, xstep)                                                                  \
    do {                                                                                                      \
        int32x4_t a_, b_;                                                                                     \
        __asm__("vldrb.s32 %q[a], [%[p]], %[xs]\n\tvldrb.s32 %q[b], [%[w]], #4\n\t"                            \
                "vmul.i32 %q[a], %q[a], %q[b]\n\tvadd.i32 %q[acc], %q[acc], %q[a]"                               \
                : [p] "+l"(p), [w] "+l"(w), [acc] "+w"(acc), [a] "=&w"(a_), [b] "=&w"(b_)                      \
                : [xs] "n"(xstep)                                                                             \
                : "memory");                                                                                  \
    } while (0)
#else
#define TCM_DW_TAP_POSTINC(acc, p, w, xstep) ((void)0)
#endif

/* One block of 4 channels at one pixel; tap t's input starts at x[t] + c, or, when x is NULL, at
 * xi + the tap's constant offset (interior pixels). tail (a constant) selects predicated input
 * loads and store for a last block under 4 channels. */
TCM_INLINE void tcm_dw_block(const int8_t *const *x, const int8_t *xi, int32_t c, const int8_t *w, const int32_t *rec,
                             int8_t *o, int k_h, int k_w, int ystep, int xstep, int has_left, int tail, mve_pred16_t pr,
                             int32_t out_off, int32_t lo, int32_t hi)
{
    int32x4_t acc = vldrwq_s32(rec);
    if (x) {
#pragma GCC unroll 25
        for (int t = 0; t < k_h * k_w; ++t, w += 4) {
            acc = tcm_dw_tap(acc, tail ? vldrbq_z_s32(x[t] + c, pr) : vldrbq_s32(x[t] + c), w);
        }
    } else {
        const int8_t *p = xi + c;
#ifdef __OPTIMIZE__ /* xstep is a literal only once the call is inlined and folded */
        const int postinc = !tail && xstep <= 127;
#else
        const int postinc = 0;
#endif
        if (postinc) {
#pragma GCC unroll 5
            for (int ky = 0; ky < k_h; ++ky, p += ystep - k_w * xstep) {
#pragma GCC unroll 5
                for (int kx = 0; kx < k_w; ++kx) TCM_DW_TAP_POSTINC(acc, p, w, xstep);
            }
        } else {
#pragma GCC unroll 5
            for (int ky = 0; ky < k_h; ++ky, p += ystep - k_w * xstep) {
#pragma GCC unroll 5
                for (int kx = 0; kx < k_w; ++kx, p += xstep, w += 4) {
                    acc = tcm_dw_tap(acc, tail ? vldrbq_z_s32(p, pr) : vldrbq_s32(p), w);
                }
            }
        }
    }
    const int32x4_t r = tcm_requant_rec(acc, rec, has_left, out_off, lo, hi);
    if (tail) tcm_store_tail(o + c, r, pr);
    else vstrbq_s32(o + c, r);
}

/* All channels of one pixel (tap inputs as in tcm_dw_block). */
TCM_INLINE void tcm_dw_pixel(const int8_t *const *x, const int8_t *xi, const int8_t *w, const int32_t *rec, int8_t *o,
                             int C, int k_h, int k_w, int ystep, int xstep, int has_left, int32_t out_off, int32_t lo,
                             int32_t hi)
{
    const int rw = TCM_REC_WORDS(has_left), wstep = 4 * k_h * k_w;
    int32_t c = 0;
    for (; c + 4 <= C; c += 4, w += wstep, rec += rw) {
        tcm_dw_block(x, xi, c, w, rec, o, k_h, k_w, ystep, xstep, has_left, 0, 0, out_off, lo, hi);
    }
    if (C & 3) {
        tcm_dw_block(x, xi, c, w, rec, o, k_h, k_w, ystep, xstep, has_left, 1, vctp32q((uint32_t)(C & 3)), out_off, lo, hi);
    }
}

TCM_INLINE void tcm_dw_s8(const int8_t *in, int8_t *out, const int8_t *w, const int32_t *rec, const int8_t *zp_row,
                          int in_h, int in_w, int C, int out_h, int out_w, int k_h, int k_w, int stride_h,
                          int stride_w, int dil_h, int dil_w, int pad_top, int pad_left, int has_left,
                          int32_t out_off, int32_t lo, int32_t hi)
{
    const int ntap = k_h * k_w;
    for (int oy = 0; oy < out_h; ++oy) {
        const int iy0 = oy * stride_h - pad_top;
        const int rows_in = iy0 >= 0 && iy0 + (k_h - 1) * dil_h < in_h;
        for (int ox = 0; ox < out_w; ++ox) {
            const int ix0 = ox * stride_w - pad_left;
            int8_t *o = out + (oy * out_w + ox) * C;
            if (rows_in && ix0 >= 0 && ix0 + (k_w - 1) * dil_w < in_w) { /* interior: constant tap offsets */
                tcm_dw_pixel(0, in + (iy0 * in_w + ix0) * C, w, rec, o, C, k_h, k_w, dil_h * in_w * C, dil_w * C,
                             has_left, out_off, lo, hi);
            } else {
                const int8_t *x[25];
#pragma GCC unroll 25
                for (int t = 0; t < ntap; ++t) {
                    const int iy = iy0 + (t / k_w) * dil_h, ix = ix0 + (t % k_w) * dil_w;
                    x[t] = iy >= 0 && iy < in_h && ix >= 0 && ix < in_w ? in + (iy * in_w + ix) * C : zp_row;
                }
                tcm_dw_pixel(x, 0, w, rec, o, C, k_h, k_w, 0, 0, has_left, out_off, lo, hi);
            }
        }
    }
}

#endif /* TC_MVE_DW_H */
