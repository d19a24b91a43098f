/* Dense convolution (groups == 1), int8, Helium (MVE), specialised per layer: shapes, strides,
 * pads and zero points are literals of the always-inlined call.
 *
 * Offline (tinyconv/ops/helium.py dense_weights): the filter of K = k_h * k_w * in_c values is
 * padded with zero weights to Kp, a multiple of 16, and laid out as [channel block of 4][16-value
 * chunk][channel][16], so one pointer walks the weights with post-incremented loads; per block a
 * requantization record whose base is bias + input_offset * sum(w).
 *
 * Each pixel's K inputs are one run (1x1 convolutions without padding read the input in place;
 * others are gathered into a stack patch whose padding taps hold the input zero point, which
 * contributes exactly 0 to base + sum(x * w)). One input vector feeds four VMLADAVA (4 output
 * channels); the four sums are requantized as one vector. */
#ifndef TC_MVE_CONV_H
#define TC_MVE_CONV_H

#include <stdint.h>

#include "tc_mve.h"

#define TCM_CONV_PATCH 1024 /* largest Kp (bytes of the stack patch) */

/* A declared no-op so the kernel family has a translation unit (tc_mve_conv.c). */
void tcm_conv_unused(void);

/* A predicated VSTRB.8. GCC 12 models it as a store of all 16 bytes, so a later overlapping store
 * can make it look dead (it dropped a patch row's padding fill that way): the empty asm with a
 * memory clobber keeps it. */
TCM_INLINE void tcm_store_p8(int8_t *d, int8x16_t v, mve_pred16_t pr)
{
    vstrbq_p_s8(d, v, pr);
    __asm__ volatile("" ::: "memory");
}

/* d[0 .. n) = s[0 .. n), n a literal: 16-byte vectors and a predicated tail. */
TCM_INLINE void tcm_copy(int8_t *d, const int8_t *s, int n)
{
    for (; n >= 16; n -= 16, d += 16, s += 16) vstrbq_s8(d, vldrbq_s8(s));
    if (n > 0) {
        const mve_pred16_t pr = vctp8q((uint32_t)n);
        tcm_store_p8(d, vldrbq_z_s8(s, pr), pr);
    }
}

TCM_INLINE void tcm_fill(int8_t *d, int8_t v, int n)
{
    const int8x16_t vv = vdupq_n_s8(v);
    for (; n >= 16; n -= 16, d += 16) vstrbq_s8(d, vv);
    if (n > 0) tcm_store_p8(d, vv, vctp8q((uint32_t)n));
}

/* d[0 .. n) = s[0 .. n) for a run-time n (a border row's valid columns). */
TCM_INLINE void tcm_copy_var(int8_t *d, const int8_t *s, int n)
{
    for (; n > 0; n -= 16, d += 16, s += 16) {
        const mve_pred16_t pr = vctp8q((uint32_t)n);
        tcm_store_p8(d, vldrbq_z_s8(s, pr), pr);
    }
}

/* The K inputs of output pixel (oy, ox) into patch (padding taps = pad_value). With dil_w == 1 a
 * row's valid columns are one run: a border row is filled with pad_value, then the run copied. */
TCM_INLINE void tcm_conv_patch(int8_t *patch, const int8_t *in, int oy, int ox, int in_h, int in_w, int in_c, int k_h,
                               int k_w, int stride_h, int stride_w, int dil_h, int dil_w, int pad_top, int pad_left,
                               int8_t pad_value)
{
    const int iy0 = oy * stride_h - pad_top, ix0 = ox * stride_w - pad_left, row = k_w * in_c;
    const int kx0 = ix0 < 0 ? -ix0 : 0, kx1 = in_w - ix0 < k_w ? in_w - ix0 : k_w; /* dil_w == 1 only */
    for (int ky = 0; ky < k_h; ++ky) {
        const int iy = iy0 + ky * dil_h;
        int8_t *d = patch + ky * row;
        if (iy < 0 || iy >= in_h) {
            tcm_fill(d, pad_value, row);
        } else if (dil_w == 1) {
            const int8_t *s = in + (iy * in_w + ix0) * in_c;
            if (kx0 == 0 && kx1 == k_w) {
                tcm_copy(d, s, row);
            } else {
                tcm_fill(d, pad_value, row);
                tcm_copy_var(d + kx0 * in_c, s + kx0 * in_c, (kx1 - kx0) * in_c);
            }
        } else {
            for (int kx = 0; kx < k_w; ++kx, d += in_c) {
                const int ix = ix0 + kx * dil_w;
                if (ix < 0 || ix >= in_w) tcm_fill(d, pad_value, in_c);
                else tcm_copy(d, in + (iy * in_w + ix) * in_c, in_c);
            }
        }
    }
}

/* s_j += x . w_j for the 4 consecutive 16-byte weight vectors at *w (advanced past them). Inline
 * asm: GCC 12 spills the four accumulators and recomputes weight addresses; VMLADAVA needs even
 * registers (constraint Te). */
#define TCM_DOT4(xv, w, s0, s1, s2, s3)                                                                        \
    do {                                                                                                     \
        int8x16_t t_;                                                                                        \
        __asm__("vldrb.8 %q[t], [%[w]], #16\n\tvmladava.s8 %[a], %q[x], %q[t]\n\t"                          \
                "vldrb.8 %q[t], [%[w]], #16\n\tvmladava.s8 %[b], %q[x], %q[t]\n\t"                          \
                "vldrb.8 %q[t], [%[w]], #16\n\tvmladava.s8 %[c], %q[x], %q[t]\n\t"                          \
                "vldrb.8 %q[t], [%[w]], #16\n\tvmladava.s8 %[d], %q[x], %q[t]"                                \
                : [w] "+r"(w), [a] "+Te"(s0), [b] "+Te"(s1), [c] "+Te"(s2), [d] "+Te"(s3), [t] "=&w"(t_)          \
                : [x] "w"(xv)                                                                                \
                : "memory");                                                                                 \
    } while (0)

/* 4 output channels (one weight block) of one pixel from its K inputs at x (K a literal; a zeroing
 * load for the last chunk, so nothing past x + K is read); n < 4 stores only n channels. */
TCM_INLINE void tcm_conv_block(const int8_t *x, const int8_t *w, const int32_t *rec, int8_t *o, int K, int n,
                               int has_left, int32_t out_off, int32_t lo, int32_t hi)
{
    const int nk = (K + 15) / 16;
    int32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (int k = 0; k < nk; ++k) {
        const int8x16_t xv = (k == nk - 1 && (K & 15)) ? vldrbq_z_s8(x + 16 * k, vctp8q((uint32_t)(K & 15)))
                                                       : vldrbq_s8(x + 16 * k);
        TCM_DOT4(xv, w, s0, s1, s2, s3);
    }
    const int32x4_t acc = tcm_lanes4(s0, s1, s2, s3);
    const int32x4_t r = tcm_requant_rec(vaddq_s32(acc, vldrwq_s32(rec)), rec, has_left, out_off, lo, hi);
    if (n >= 4) vstrbq_s32(o, r);
    else tcm_store_tail(o, r, vctp32q((uint32_t)n));
}

/* All output channels of one pixel. */
TCM_INLINE void tcm_conv_pixel(const int8_t *x, const int8_t *w, const int32_t *rec, int8_t *o, int K, int out_c,
                               int has_left, int32_t out_off, int32_t lo, int32_t hi)
{
    const int wstep = 4 * ((K + 15) & ~15), rw = TCM_REC_WORDS(has_left);
    int c = 0;
    for (; c + 4 <= out_c; c += 4, w += wstep, rec += rw) tcm_conv_block(x, w, rec, o + c, K, 4, has_left, out_off, lo, hi);
    if (out_c & 3) tcm_conv_block(x, w, rec, o + c, K, out_c & 3, has_left, out_off, lo, hi);
}

TCM_INLINE void tcm_conv_s8(const int8_t *in, int8_t *out, const int8_t *w, const int32_t *rec, int in_h, int in_w,
                            int in_c, int out_h, int out_w, int out_c, int k_h, int k_w, int stride_h, int stride_w,
                            int dil_h, int dil_w, int pad_top, int pad_left, int has_left, int32_t in_off,
                            int32_t out_off, int32_t lo, int32_t hi)
{
    const int K = k_h * k_w * in_c;
    const int pointwise = k_h == 1 && k_w == 1 && pad_top == 0 && pad_left == 0;
    int8_t patch[pointwise ? 1 : (K + 15) & ~15] __attribute__((aligned(16)));
    for (int oy = 0; oy < out_h; ++oy) {
        for (int ox = 0; ox < out_w; ++ox) {
            const int8_t *x;
            if (pointwise) {
                x = in + ((oy * stride_h) * in_w + ox * stride_w) * in_c;
            } else {
                tcm_conv_patch(patch, in, oy, ox, in_h, in_w, in_c, k_h, k_w, stride_h, stride_w, dil_h, dil_w, pad_top,
                               pad_left, (int8_t)(-in_off));
                x = patch;
            }
            tcm_conv_pixel(x, w, rec, out + (oy * out_w + ox) * out_c, K, out_c, has_left, out_off, lo, hi);
        }
    }
}

#endif /* TC_MVE_CONV_H */
