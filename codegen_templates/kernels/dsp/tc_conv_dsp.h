/* Convolution kernels, int8, Armv7E-M DSP backend (Cortex-M4/M7; also used on M55 for what kernels/mve
 * lacks). Same API (portable tc_conv.h) and bit-exact results as kernels/portable/tc_conv.c:
 * the same int32 sums (only their order changes, which integer addition does not see), the same
 * tc_mbqm requantization and clamps.
 *
 * Inner products use SMLAD (two 16x16 MACs per instruction). Four int8 values loaded as one word
 * are widened to two int16x2 words with SXTB16 / SXTAB16 (bytes 0,2 and, after a rotate by 8,
 * bytes 1,3); SXTAB16 adds the input offset at the same time ((x + offset) is in [-255, 255]).
 * Inputs and weights are widened in the same (0,2)(1,3) order, so the pairs match.
 * tc_conv_s8 with groups == 1 and a filter of at most 128 values (k_h * k_w * in_c) widens the
 * patches of 2 output pixels once into a 512-byte int16 stack buffer (offset added, padding 0)
 * and computes 2 pixels x 2 output channels per pass: per 4 values, 4 buffer words, 2 weight
 * words widened, 8 SMLAD. Longer filters (groups == 1) do the same in chunks of 128 values, the
 * partial sums kept on the stack (tcd_conv_patch_chunked). Grouped filters run 1 pixel x 2 channels straight from the
 * input (contiguous tap rows for interior pixels, tap by tap at the borders). Scalar tails handle
 * lengths not a multiple of 4 and odd channel / pixel counts. Depthwise runs one
 * (channel multiplier 1, filters of up to 64 taps) runs 4 channels per pass with SMLABB / SMLATT
 * (see tcd_dw_simd); other channels run one at a time over all pixels with the offset folded into the bias (bias + offset * sum(w),
 * int32-exact); interior pixels of a 3x3 filter go through an unrolled row loop with the 9
 * weights packed in int16 pairs for SMLABB / SMLABT.
 *
 * Every function here is TCD_FN: tc_conv.c defines it as plain `static` for the shared out-of-line
 * kernels (--optimize size / balanced); a per-layer function of the generated model (--optimize
 * speed) includes this header with the default, always_inline, and calls tcd_conv_s8 /
 * tcd_depthwise_conv_s8 with a `static const` params struct: every shape, stride, pad, offset
 * and clamp then is a literal the compiler folds into the loops. */
#ifndef TC_CONV_DSP_H
#define TC_CONV_DSP_H

#include "tc_conv_util.h"
#include "tc_dsp.h"

#ifndef TCD_FN
#define TCD_FN static inline __attribute__((always_inline))
#define TCD_INL static inline __attribute__((always_inline))
#endif
/* The per-layer (speed) paths read offline layouts (p->wpack) and a larger patch buffer; the
 * shared out-of-line kernels (tc_conv.c sets TCD_SPEED 0) leave them out, keeping their size. */
#ifndef TCD_SPEED
#define TCD_SPEED 1
#endif
#define TCD_K_SPEED 288 /* patch values per chunk in per-layer code: 1152 bytes of stack */


/* s[0] += x.wa, s[1] += x.wb */
TCD_INL void tcd_dot_1x2(const int8_t *x, const int8_t *wa, const int8_t *wb, int32_t n, int32_t off,
                               int32_t off2, int32_t *s)
{
    int32_t s0 = s[0], s1 = s[1];
    for (int32_t k = n >> 2; k > 0; --k) {
        const int32_t vx = tcd_ld4(x), va = tcd_ld4(wa), vb = tcd_ld4(wb);
        x += 4;
        wa += 4;
        wb += 4;
        const int32_t xe = __sxtab16(off2, vx), xo = tcd_sxtab16_ror8(off2, vx);
        s0 = __smlad(xe, __sxtb16(va), s0);
        s0 = __smlad(xo, tcd_sxtb16_ror8(va), s0);
        s1 = __smlad(xe, __sxtb16(vb), s1);
        s1 = __smlad(xo, tcd_sxtb16_ror8(vb), s1);
    }
    for (int32_t k = n & 3; k > 0; --k) {
        const int32_t a = *x++ + off;
        s0 += a * *wa++;
        s1 += a * *wb++;
    }
    s[0] = s0;
    s[1] = s1;
}

TCD_INL int32_t tcd_dot_1x1(const int8_t *x, const int8_t *w, int32_t n, int32_t off, int32_t off2, int32_t s)
{
    for (int32_t k = n >> 2; k > 0; --k) {
        const int32_t vx = tcd_ld4(x), v = tcd_ld4(w);
        x += 4;
        w += 4;
        s = __smlad(__sxtab16(off2, vx), __sxtb16(v), s);
        s = __smlad(tcd_sxtab16_ror8(off2, vx), tcd_sxtb16_ror8(v), s);
    }
    for (int32_t k = n & 3; k > 0; --k) {
        s += (*x++ + off) * *w++;
    }
    return s;
}

/* ---- groups == 1 and k_h * k_w * in_c <= TCD_K: 2-pixel int16 patch buffer ----
 * For k < K4 (K rounded down to 4), element k of pixel j (0, 1) sits in int32 word
 * 4 * (k / 4) + 2 * j + (k & 1), half (k >> 1) & 1: the words read [a02, a13, b02, b13] per
 * group of 4, matching SXTB16 / SXTB16(ROR 8) of 4 weights. The K % 4 tail follows as int16
 * pairs (a, b). Values are x + input_offset; padding is 0. 4 * TCD_K bytes on the stack. */
#define TCD_K 128

TCD_INL void tcd_put(int32_t *buf, int32_t K4, int32_t j, int32_t k, int32_t v)
{
    const int32_t idx = k < K4 ? ((k & ~3) + 2 * j + (k & 1)) * 2 + ((k >> 1) & 1) : 2 * k + j;
    const int16_t h = (int16_t)v;
    memcpy((char *)buf + 2 * idx, &h, 2); /* char-typed store: no aliasing question */
}

/* The whole patch of pixel j, value by value (one chunk, in_c not a multiple of 4). */
TCD_FN void tcd_fill_patch_all(const tc_conv_params *p, const int8_t *in, int32_t *buf, int32_t K4, int32_t j,
                           int32_t oy, int32_t ox)
{
    const int32_t iy0 = oy * p->stride_h - p->pad_top, ix0 = ox * p->stride_w - p->pad_left;
    const int32_t off = p->input_offset;
    int32_t k = 0;
    for (int32_t ky = 0; ky < p->k_h; ++ky) {
        const int32_t iy = iy0 + ky * p->dil_h;
        const int32_t row_ok = iy >= 0 && iy < p->in_h;
        for (int32_t kx = 0; kx < p->k_w; ++kx) {
            const int32_t ix = ix0 + kx * p->dil_w;
            if (row_ok && ix >= 0 && ix < p->in_w) {
                const int8_t *x = in + (iy * p->in_w + ix) * p->in_c;
                for (int32_t c = 0; c < p->in_c; ++c, ++k) tcd_put(buf, K4, j, k, x[c] + off);
            } else {
                for (int32_t c = 0; c < p->in_c; ++c, ++k) tcd_put(buf, K4, j, k, 0);
            }
        }
    }
}

/* Values [k_lo, k_lo + kn) of pixel j's patch (k_lo a multiple of 4; K4 = kn rounded down to 4).
 * With in_c a multiple of 4 every tap's run is whole groups of 4: one word load and two SXTAB16
 * per 4 values (zeros for padding taps); otherwise value by value. */
TCD_FN void tcd_fill_patch(const tc_conv_params *p, const int8_t *in, int32_t *buf, int32_t K4, int32_t j,
                           int32_t oy, int32_t ox, int32_t k_lo, int32_t kn)
{
    const int32_t iy0 = oy * p->stride_h - p->pad_top, ix0 = ox * p->stride_w - p->pad_left;
    const int32_t off = p->input_offset, off2 = (int32_t)(((uint32_t)off << 16) | ((uint32_t)off & 0xFFFFu));
    const int32_t C = p->in_c, k_hi = k_lo + kn, words = (C & 3) == 0;
    const int32_t t0 = k_lo / C;
    int32_t ky = t0 / p->k_w, kx = t0 % p->k_w;
    for (int32_t t = t0; t * C < k_hi; ++t, ++kx) {
        if (kx == p->k_w) {
            kx = 0;
            ++ky;
        }
        const int32_t iy = iy0 + ky * p->dil_h, ix = ix0 + kx * p->dil_w;
        const int32_t ok = iy >= 0 && iy < p->in_h && ix >= 0 && ix < p->in_w;
        const int8_t *x = ok ? in + (iy * p->in_w + ix) * C : in;
        const int32_t c_lo = k_lo > t * C ? k_lo - t * C : 0, c_hi = k_hi < (t + 1) * C ? k_hi - t * C : C;
        int32_t local = t * C + c_lo - k_lo;
        if (words) {
            int32_t *b = buf + local + 2 * j;
            for (int32_t c = c_lo; c < c_hi; c += 4, b += 4) {
                if (ok) {
                    const int32_t v = tcd_ld4(x + c);
                    b[0] = __sxtab16(off2, v);
                    b[1] = tcd_sxtab16_ror8(off2, v);
                } else {
                    b[0] = 0;
                    b[1] = 0;
                }
            }
        } else {
            for (int32_t c = c_lo; c < c_hi; ++c, ++local) tcd_put(buf, K4, j, local, ok ? x[c] + off : 0);
        }
    }
}

/* One pixel of a 1x1 convolution (stride any, no padding): its channels are contiguous. */
TCD_FN void tcd_fill_pointwise(const int8_t *x, int32_t *buf, int32_t K, int32_t K4, int32_t j, int32_t off,
                               int32_t off2)
{
    int32_t *b = buf + 2 * j;
    for (int32_t k = 0; k < K4; k += 4, b += 4) {
        const int32_t v = tcd_ld4(x + k);
        b[0] = __sxtab16(off2, v);
        b[1] = tcd_sxtab16_ror8(off2, v);
    }
    for (int32_t k = K4; k < K; ++k) tcd_put(buf, K4, j, k, x[k] + off);
}

/* One group of 4 patch values for 2 pixels x 2 channels from int16 weights laid out offline
 * (tinyconv/ops/conv_layout.py): LDM of the 4 buffer words, 2 LDRD of the channel pair's
 * words, 8 SMLAD. Inline assembly: gcc 12 spills this loop's registers. */
#define TCD_W16_GROUP                                                                   \
    "ldm %[b]!, {%[x0], %[x1], %[x2], %[x3]}\n\t"                                     \
    "ldrd %[wa], %[wb], [%[w]], #8\n\t"                                                \
    "smlad %[s0], %[x0], %[wa], %[s0]\n\t"                                             \
    "smlad %[s2], %[x2], %[wa], %[s2]\n\t"                                             \
    "smlad %[s0], %[x1], %[wb], %[s0]\n\t"                                             \
    "smlad %[s2], %[x3], %[wb], %[s2]\n\t"                                             \
    "ldrd %[wa], %[wb], [%[w]], #8\n\t"                                                \
    "smlad %[s1], %[x0], %[wa], %[s1]\n\t"                                             \
    "smlad %[s3], %[x2], %[wa], %[s3]\n\t"                                             \
    "smlad %[s1], %[x1], %[wb], %[s1]\n\t"                                             \
    "smlad %[s3], %[x3], %[wb], %[s3]\n\t"

/* s0, s1 (+)= pixel 0 . channels a, b; s2, s3 (+)= pixel 1 . a, b over n patch values of buf.
 * wq: the pair's int16 words (offline layout) or NULL: int8 rows wa, wb widened here. */
TCD_INL void tcd_block2x2(const int32_t *buf, const int8_t *wa, const int8_t *wb, const int32_t *wq, int32_t n,
                         int32_t *ps0, int32_t *ps1, int32_t *ps2, int32_t *ps3)
{
    int32_t s0 = *ps0, s1 = *ps1, s2 = *ps2, s3 = *ps3;
    const int32_t n4 = n & ~3;
    const int32_t *b = buf;
    if (TCD_SPEED && wq) {
        register int32_t x0 __asm__("r8"), x1 __asm__("r9"), x2 __asm__("r10"), x3 __asm__("r11");
        int32_t fa, fb;
        int32_t g = n4 >> 2;
        if (g & 1) {
            __asm__ volatile(TCD_W16_GROUP
                             : [b] "+r"(b), [w] "+r"(wq), [s0] "+r"(s0), [s1] "+r"(s1), [s2] "+r"(s2), [s3] "+r"(s3),
                               [x0] "=&r"(x0), [x1] "=&r"(x1), [x2] "=&r"(x2), [x3] "=&r"(x3), [wa] "=&r"(fa), [wb] "=&r"(fb)
                             :
                             : "memory");
        }
#pragma GCC unroll 4
        for (g >>= 1; g > 0; --g) {
            __asm__ volatile(TCD_W16_GROUP TCD_W16_GROUP
                             : [b] "+r"(b), [w] "+r"(wq), [s0] "+r"(s0), [s1] "+r"(s1), [s2] "+r"(s2), [s3] "+r"(s3),
                               [x0] "=&r"(x0), [x1] "=&r"(x1), [x2] "=&r"(x2), [x3] "=&r"(x3), [wa] "=&r"(fa), [wb] "=&r"(fb)
                             :
                             : "memory");
        }
        for (int32_t k = n4; k < n; ++k) { /* tail: buffer (pixel 0, pixel 1), weights (a, b) */
            const int32_t v = *b++, f = *wq++;
            s0 = __smlabb(v, f, s0);
            s1 = __smlabt(v, f, s1);
            s2 = __smlatb(v, f, s2);
            s3 = __smlatt(v, f, s3);
        }
    } else {
        for (int32_t k = n4 >> 2; k > 0; --k) {
            const int32_t ae = b[0], ao = b[1], be = b[2], bo = b[3];
            b += 4;
            int32_t v = tcd_ld4(wa);
            wa += 4;
            int32_t we = __sxtb16(v), wo = tcd_sxtb16_ror8(v);
            s0 = __smlad(ae, we, s0);
            s0 = __smlad(ao, wo, s0);
            s2 = __smlad(be, we, s2);
            s2 = __smlad(bo, wo, s2);
            v = tcd_ld4(wb);
            wb += 4;
            we = __sxtb16(v);
            wo = tcd_sxtb16_ror8(v);
            s1 = __smlad(ae, we, s1);
            s1 = __smlad(ao, wo, s1);
            s3 = __smlad(be, we, s3);
            s3 = __smlad(bo, wo, s3);
        }
        for (int32_t k = 0; k < n - n4; ++k) {
            int16_t t[2];
            memcpy(t, (const char *)(buf + n4) + 4 * k, 4);
            const int32_t a = t[0], bb = t[1], fa = wa[k], fb = wb[k];
            s0 += a * fa;
            s1 += a * fb;
            s2 += bb * fa;
            s3 += bb * fb;
        }
    }
    *ps0 = s0;
    *ps1 = s1;
    *ps2 = s2;
    *ps3 = s3;
}

/* Pixel j's patch with each kernel row (k_w * in_c contiguous values, dil_w 1) padded to R4 (a
 * multiple of 4; the padding meets zero weights): a row inside the input is R4 / 4 word loads
 * (the padding reads the next pixels' bytes, never past the input), others value by value. */
TCD_FN void tcd_fill_rows(const tc_conv_params *p, const int8_t *in, int32_t *buf, int32_t j, int32_t oy, int32_t ox,
                          int32_t R4)
{
    const int32_t iy0 = oy * p->stride_h - p->pad_top, ix0 = ox * p->stride_w - p->pad_left;
    const int32_t off = p->input_offset, off2 = (int32_t)(((uint32_t)off << 16) | ((uint32_t)off & 0xFFFFu));
    const int32_t R = p->k_w * p->in_c, in_bytes = p->in_h * p->in_w * p->in_c, K = p->k_h * R4;
    const int32_t col_ok = ix0 >= 0 && ix0 + p->k_w <= p->in_w;
    /* A one-word row (k_w * in_c == 4) hanging over the left or right edge by 1-3 bytes: the
     * word of the bytes inside (never outside the row) shifted into place, the padding bytes set
     * to the input zero point, which the offset turns into 0 (kws's first layer: 2 of 5 columns). */
    int32_t edge = 0, src = 0, lsh = 0, rsh = 0;
    uint32_t fill = 0;
    if (R == 4 && R4 == 4 && !col_ok && p->in_w >= p->k_w) {
        const uint32_t zp4 = 0x01010101u * (uint8_t)(int8_t)-off;
        const int32_t over = ix0 < 0 ? -ix0 * p->in_c : (ix0 + p->k_w - p->in_w) * p->in_c; /* padding bytes */
        edge = over < 4;
        if (edge && ix0 < 0) {
            src = over; /* the word starts at the row's first byte */
            lsh = 8 * over;
            fill = zp4 >> (32 - lsh);
        } else if (edge) {
            src = -over; /* the word ends at the row's last byte */
            rsh = 8 * over;
            fill = zp4 << (32 - rsh);
        }
    }
    for (int32_t ky = 0; ky < p->k_h; ++ky) {
        const int32_t iy = iy0 + ky * p->dil_h;
        const int32_t start = (iy * p->in_w + ix0) * p->in_c;
        int32_t *b = buf + ky * R4 + 2 * j;
        if (iy < 0 || iy >= p->in_h) {
            for (int32_t i = 0; i < R4; i += 4, b += 4) {
                b[0] = 0;
                b[1] = 0;
            }
        } else if (edge) {
            const int32_t v = (int32_t)((((uint32_t)tcd_ld4(in + start + src) << lsh) >> rsh) | fill);
            b[0] = __sxtab16(off2, v);
            b[1] = tcd_sxtab16_ror8(off2, v);
        } else if (col_ok && start + R4 <= in_bytes) {
            const int8_t *x = in + start;
#pragma GCC unroll 8
            for (int32_t i = 0; i < R4; i += 4, b += 4) {
                const int32_t v = tcd_ld4(x + i);
                b[0] = __sxtab16(off2, v);
                b[1] = tcd_sxtab16_ror8(off2, v);
            }
        } else {
            for (int32_t k = 0; k < R4; ++k) {
                const int32_t ix = ix0 + k / p->in_c;
                const int32_t v = k < R && ix >= 0 && ix < p->in_w ? in[start + k] + off : 0;
                tcd_put(buf, K, j, ky * R4 + k, v);
            }
        }
    }
}

/* Both pixels' outputs (o, o + out_c) of every channel pair from the int16 weights (out_c even):
 * pointers walk weights, biases and outputs, so the only per-pair work outside tcd_block2x2 is
 * the 4 requantizations. */
TCD_INL void tcd_conv_pairs_w16(const tc_conv_params *p, const int32_t *buf, int32_t K, const int32_t *bias,
                                const int32_t *mult, const int32_t *shift, int8_t *o)
{
    const int32_t *wq = (const int32_t *)p->wpack;
    for (int32_t oc = 0; oc < p->out_c; oc += 2, o += 2, wq += K) {
        int32_t s0 = bias ? bias[oc] : 0, s1 = bias ? bias[oc + 1] : 0, s2 = s0, s3 = s1;
        tcd_block2x2(buf, NULL, NULL, wq, K, &s0, &s1, &s2, &s3);
        o[0] = tc_conv_requant_ch(s0, oc, mult, shift, p);
        o[1] = tc_conv_requant_ch(s1, oc + 1, mult, shift, p);
        o[p->out_c] = tc_conv_requant_ch(s2, oc, mult, shift, p);
        o[p->out_c + 1] = tc_conv_requant_ch(s3, oc + 1, mult, shift, p);
    }
}

/* K <= TCD_K: one chunk. */
TCD_FN void tcd_conv_patch(const tc_conv_params *p, const int8_t *in, const int8_t *w, const int32_t *bias,
                           const int32_t *mult, const int32_t *shift, int8_t *out)
{
    int32_t buf[TCD_SPEED ? TCD_K_SPEED : TCD_K];
    /* kernel rows copied by words: padded rows need the padded weights (wpack); unpadded ones
     * (k_w * in_c a multiple of 4) read the int8 weights as they are */
    const int32_t rows = TCD_SPEED && p->wpack_run > 0;
    const int32_t K = rows ? p->k_h * p->wpack_run : p->k_h * p->k_w * p->in_c, K4 = K & ~3;
    const int32_t off = p->input_offset, off2 = (int32_t)(((uint32_t)off << 16) | ((uint32_t)off & 0xFFFFu));
    const int32_t pointwise = p->k_h == 1 && p->k_w == 1 && p->pad_top == 0 && p->pad_left == 0;
    const int32_t npix = p->out_h * p->out_w;
    for (int32_t pix = 0; pix < npix; pix += 2) {
        const int32_t two = pix + 1 < npix;
        for (int32_t j = 0; j < 2; ++j) {
            const int32_t q = two ? pix + j : pix; /* an odd last pixel is computed twice */
            const int32_t oy = q / p->out_w, ox = q % p->out_w;
            if (pointwise) {
                const int8_t *x = in + (oy * p->stride_h * p->in_w + ox * p->stride_w) * p->in_c;
                tcd_fill_pointwise(x, buf, K, K4, j, off, off2);
            } else if (rows) {
                tcd_fill_rows(p, in, buf, j, oy, ox, p->wpack_run);
            } else {
                tcd_fill_patch_all(p, in, buf, K4, j, oy, ox);
            }
        }
        int8_t *o0 = out + pix * p->out_c, *o1 = o0 + (two ? p->out_c : 0);
        if (TCD_SPEED && p->wpack && two && (p->out_c & 1) == 0) {
            tcd_conv_pairs_w16(p, buf, K, bias, mult, shift, o0);
            continue;
        }
        for (int32_t oc = 0; oc < p->out_c; oc += 2) {
            const int32_t pair = oc + 1 < p->out_c;
            const int8_t *wa = w + oc * K, *wb = pair ? wa + K : wa;
            int32_t s0 = bias ? bias[oc] : 0, s1 = bias && pair ? bias[oc + 1] : 0, s2 = s0, s3 = s1;
            tcd_block2x2(buf, wa, wb, TCD_SPEED && p->wpack ? (const int32_t *)p->wpack + (oc >> 1) * K : NULL, K, &s0, &s1, &s2, &s3);
            o0[oc] = tc_conv_requant_ch(s0, oc, mult, shift, p);
            o1[oc] = tc_conv_requant_ch(s2, oc, mult, shift, p);
            if (pair) {
                o0[oc + 1] = tc_conv_requant_ch(s1, oc + 1, mult, shift, p);
                o1[oc + 1] = tc_conv_requant_ch(s3, oc + 1, mult, shift, p);
            }
        }
    }
}

/* Filters longer than TCD_K run in chunks of TCD_K values: per chunk the two patches are refilled
 * and every channel pair's 4 sums continue from a stack copy (TCD_OCC channels at a time), so all
 * dense filters get the 2 pixels x 2 channels SMLAD loop. */
#define TCD_OCC 64

TCD_FN void tcd_conv_patch_chunked(const tc_conv_params *p, const int8_t *in, const int8_t *w, const int32_t *bias,
                           const int32_t *mult, const int32_t *shift, int8_t *out)
{
    int32_t buf[TCD_K];
    int32_t part[2 * TCD_OCC];
    const int32_t K = p->k_h * p->k_w * p->in_c, nchunk = (K + TCD_K - 1) / TCD_K;
    const int32_t off = p->input_offset, off2 = (int32_t)(((uint32_t)off << 16) | ((uint32_t)off & 0xFFFFu));
    const int32_t pointwise = p->k_h == 1 && p->k_w == 1 && p->pad_top == 0 && p->pad_left == 0;
    const int32_t npix = p->out_h * p->out_w, ocstep = nchunk > 1 ? TCD_OCC : p->out_c;
    for (int32_t pix = 0; pix < npix; pix += 2) {
        const int32_t two = pix + 1 < npix;
        int8_t *o0 = out + pix * p->out_c, *o1 = o0 + (two ? p->out_c : 0);
        for (int32_t oc0 = 0; oc0 < p->out_c; oc0 += ocstep) {
            const int32_t oc1 = p->out_c - oc0 < ocstep ? p->out_c : oc0 + ocstep;
            for (int32_t kc = 0; kc < nchunk; ++kc) {
                const int32_t k_lo = kc * TCD_K, kn = K - k_lo < TCD_K ? K - k_lo : TCD_K, K4 = kn & ~3;
                const int32_t first = kc == 0, last = kc == nchunk - 1;
                for (int32_t j = 0; j < 2; ++j) {
                    const int32_t q = two ? pix + j : pix; /* an odd last pixel is computed twice */
                    const int32_t oy = q / p->out_w, ox = q % p->out_w;
                    if (pointwise) {
                        const int8_t *x = in + (oy * p->stride_h * p->in_w + ox * p->stride_w) * p->in_c;
                        tcd_fill_pointwise(x + k_lo, buf, kn, K4, j, off, off2);
                    } else {
                        tcd_fill_patch(p, in, buf, K4, j, oy, ox, k_lo, kn);
                    }
                }
                for (int32_t oc = oc0; oc < oc1; oc += 2) {
                    const int32_t pair = oc + 1 < oc1;
                    const int8_t *wa = w + oc * K + k_lo, *wb = pair ? wa + K : wa;
                    int32_t *ps = part + 2 * (oc - oc0);
                    int32_t s0, s1, s2, s3;
                    if (first) {
                        s0 = bias ? bias[oc] : 0;
                        s1 = bias && pair ? bias[oc + 1] : 0;
                        s2 = s0;
                        s3 = s1;
                    } else {
                        s0 = ps[0];
                        s1 = ps[1];
                        s2 = ps[2];
                        s3 = ps[3];
                    }
                    tcd_block2x2(buf, wa, wb, TCD_SPEED && p->wpack ? (const int32_t *)p->wpack + (oc >> 1) * K + k_lo : NULL, kn,
                                 &s0, &s1, &s2, &s3);
                    if (!last) {
                        ps[0] = s0;
                        ps[1] = s1;
                        ps[2] = s2;
                        ps[3] = s3;
                        continue;
                    }
                    o0[oc] = tc_conv_requant_ch(s0, oc, mult, shift, p);
                    o1[oc] = tc_conv_requant_ch(s2, oc, mult, shift, p);
                    if (pair) {
                        o0[oc + 1] = tc_conv_requant_ch(s1, oc + 1, mult, shift, p);
                        o1[oc + 1] = tc_conv_requant_ch(s3, oc + 1, mult, shift, p);
                    }
                }
            }
        }
    }
}

/* One output pixel whose every tap column is inside the input (rows outside are skipped): with
 * groups == 1 and dil_w == 1 a tap row is one contiguous run of k_w * in_c values. */
TCD_FN void tcd_conv_pixel_interior(const tc_conv_params *p, const int8_t *in, const int8_t *w, const int32_t *bias,
                                    const int32_t *mult, const int32_t *shift, int8_t *out, int32_t oy, int32_t ox)
{
    const int32_t cin_g = p->in_c / p->groups, cout_g = p->out_c / p->groups;
    const int32_t off = p->input_offset, off2 = (int32_t)(((uint32_t)off << 16) | ((uint32_t)off & 0xFFFFu));
    const int32_t contiguous = p->dil_w == 1 && p->groups == 1;
    const int32_t run = contiguous ? p->k_w * cin_g : cin_g, runs = contiguous ? 1 : p->k_w;
    const int32_t run_step = p->dil_w * p->in_c, filt = p->k_h * p->k_w * cin_g;
    const int32_t iy0 = oy * p->stride_h - p->pad_top, ix0 = ox * p->stride_w - p->pad_left;
    int8_t *o = out + (oy * p->out_w + ox) * p->out_c;
    for (int32_t g = 0; g < p->groups; ++g) {
        const int32_t oc_end = (g + 1) * cout_g;
        for (int32_t oc = g * cout_g; oc < oc_end; oc += 2) {
            const int32_t two = oc + 1 < oc_end;
            int32_t s[2];
            s[0] = bias ? bias[oc] : 0;
            s[1] = two && bias ? bias[oc + 1] : 0;
            for (int32_t ky = 0; ky < p->k_h; ++ky) {
                const int32_t iy = iy0 + ky * p->dil_h;
                if (iy < 0 || iy >= p->in_h) continue;
                const int8_t *x = in + (iy * p->in_w + ix0) * p->in_c + g * cin_g;
                const int8_t *f = w + (oc * p->k_h + ky) * p->k_w * cin_g;
                for (int32_t r = 0; r < runs; ++r) {
                    if (two) {
                        tcd_dot_1x2(x + r * run_step, f + r * cin_g, f + r * cin_g + filt, run, off, off2, s);
                    } else {
                        s[0] = tcd_dot_1x1(x + r * run_step, f + r * cin_g, run, off, off2, s[0]);
                    }
                }
            }
            o[oc] = tc_conv_requant_ch(s[0], oc, mult, shift, p);
            if (two) o[oc + 1] = tc_conv_requant_ch(s[1], oc + 1, mult, shift, p);
        }
    }
}

/* One output pixel, any position (taps outside the input are skipped one by one). */
TCD_FN void tcd_conv_pixel(const tc_conv_params *p, const int8_t *in, const int8_t *w, const int32_t *bias,
                           const int32_t *mult, const int32_t *shift, int8_t *out, int32_t oy, int32_t ox)
{
    const int32_t cin_g = p->in_c / p->groups, cout_g = p->out_c / p->groups;
    const int32_t off = p->input_offset, off2 = (int32_t)(((uint32_t)off << 16) | ((uint32_t)off & 0xFFFFu));
    const int32_t filt = p->k_h * p->k_w * cin_g;
    const int32_t iy0 = oy * p->stride_h - p->pad_top, ix0 = ox * p->stride_w - p->pad_left;
    int8_t *o = out + (oy * p->out_w + ox) * p->out_c;
    for (int32_t g = 0; g < p->groups; ++g) {
        const int32_t oc_end = (g + 1) * cout_g;
        for (int32_t oc = g * cout_g; oc < oc_end; oc += 2) {
            const int32_t two = oc + 1 < oc_end;
            int32_t s[2];
            s[0] = bias ? bias[oc] : 0;
            s[1] = two && bias ? bias[oc + 1] : 0;
            for (int32_t ky = 0; ky < p->k_h; ++ky) {
                const int32_t iy = iy0 + ky * p->dil_h;
                if (iy < 0 || iy >= p->in_h) continue;
                for (int32_t kx = 0; kx < p->k_w; ++kx) {
                    const int32_t ix = ix0 + kx * p->dil_w;
                    if (ix < 0 || ix >= p->in_w) continue;
                    const int8_t *x = in + (iy * p->in_w + ix) * p->in_c + g * cin_g;
                    const int8_t *f = w + ((oc * p->k_h + ky) * p->k_w + kx) * cin_g;
                    if (two) {
                        tcd_dot_1x2(x, f, f + filt, cin_g, off, off2, s);
                    } else {
                        s[0] = tcd_dot_1x1(x, f, cin_g, off, off2, s[0]);
                    }
                }
            }
            o[oc] = tc_conv_requant_ch(s[0], oc, mult, shift, p);
            if (two) o[oc + 1] = tc_conv_requant_ch(s[1], oc + 1, mult, shift, p);
        }
    }
}

TCD_FN void tcd_conv_s8(const tc_conv_params *p, const int8_t *in, const int8_t *w, const int32_t *bias,
                const int32_t *mult, const int32_t *shift, int8_t *out)
{
    if (p->groups == 1) {
        const int32_t K = p->k_h * p->k_w * p->in_c;
        if (K <= TCD_K || (TCD_SPEED && (p->wpack_run || K <= TCD_K_SPEED))) tcd_conv_patch(p, in, w, bias, mult, shift, out);
        else tcd_conv_patch_chunked(p, in, w, bias, mult, shift, out);
        return;
    }
    const int32_t span = (p->k_w - 1) * p->dil_w;
    for (int32_t oy = 0; oy < p->out_h; ++oy) {
        for (int32_t ox = 0; ox < p->out_w; ++ox) {
            const int32_t ix0 = ox * p->stride_w - p->pad_left;
            if (ix0 >= 0 && ix0 + span < p->in_w) {
                tcd_conv_pixel_interior(p, in, w, bias, mult, shift, out, oy, ox);
            } else {
                tcd_conv_pixel(p, in, w, bias, mult, shift, out, oy, ox);
            }
        }
    }
}

/* Channel oc's requantization in the one-channel depthwise loops: the shared kernels
 * (TC_RQ_ENABLED 0) use the multiplier and shift the caller holds in registers (an int8 store
 * would otherwise force reloading them for every output: the code and speed of --optimize size). */
TCD_INL int8_t tcd_dw_requant(int32_t acc, int32_t oc, int32_t m, int32_t sh, const int32_t *mult, const int32_t *shift,
                              const tc_conv_params *p)
{
    return TC_RQ_ENABLED ? tc_conv_requant_ch(acc, oc, mult, shift, p) : tc_conv_requant(acc, m, sh, p);
}

/* 3x3, dilation 1: n consecutive output pixels of one channel whose taps are all inside the input.
 * x: the first pixel's top-left tap; the 9 weights packed as int16 pairs (SMLABB / SMLABT), the
 * input offset folded into bias. */
TCD_FN void tcd_dw3x3_row(const int8_t *x, int8_t *o, int32_t n, int32_t c1, int32_t r1, int32_t xstep, int32_t ostep,
                          const int32_t *wp, int32_t bias, int32_t oc, int32_t m, int32_t sh, const int32_t *mult,
                          const int32_t *shift, const tc_conv_params *p)
{
    const int32_t w01 = wp[0], w23 = wp[1], w45 = wp[2], w67 = wp[3], w8 = wp[4];
    const int32_t c2 = 2 * c1;
    for (; n > 0; --n, x += xstep, o += ostep) {
        const int8_t *x1 = x + r1, *x2 = x1 + r1;
        int32_t acc = bias;
        acc = __smlabb(x[0], w01, acc);
        acc = __smlabt(x[c1], w01, acc);
        acc = __smlabb(x[c2], w23, acc);
        acc = __smlabt(x1[0], w23, acc);
        acc = __smlabb(x1[c1], w45, acc);
        acc = __smlabt(x1[c2], w45, acc);
        acc = __smlabb(x2[0], w67, acc);
        acc = __smlabt(x2[c1], w67, acc);
        acc = __smlabb(x2[c2], w8, acc);
        *o = tcd_dw_requant(acc, oc, m, sh, mult, shift, p);
    }
}

/* Channel multiplier 1, channels [0, nc) with nc a multiple of 4: pixel by pixel, 4 channels per
 * pass. One word of input = 4 channels of one tap, widened with the offset by SXTAB16 into
 * (c0, c2) and (c1, c3); the matching weights come from a stack copy of up to TCD_DW_CH channels
 * packed the same way, and SMLABB / SMLATT accumulate each channel separately. Taps outside the
 * input are skipped (tap ranges computed once per pixel). */
#define TCD_DW_WORDS 128 /* 512 bytes: ntap * (channels / 2) words */

TCD_FN void tcd_dw_simd(const tc_conv_params *p, const int8_t *in, const int8_t *w, const int32_t *bias,
                        const int32_t *mult, const int32_t *shift, int8_t *out, int32_t nc)
{
    int32_t wbuf[TCD_DW_WORDS];
    const int32_t ntap = p->k_h * p->k_w;
    int32_t chunk = (TCD_DW_WORDS / ntap) * 2 & ~3; /* channels per chunk */
    const int32_t off = p->input_offset, off2 = (int32_t)(((uint32_t)off << 16) | ((uint32_t)off & 0xFFFFu));
    const int32_t xstep = p->dil_w * p->in_c, ystep = p->dil_h * p->in_w * p->in_c;
    for (int32_t c0 = 0; c0 < nc; c0 += chunk) {
        const int32_t nch = nc - c0 < chunk ? nc - c0 : chunk, G = nch >> 2;
        for (int32_t t = 0; t < ntap; ++t) {
            for (int32_t g = 0; g < G; ++g) {
                const int8_t *f = w + (c0 + 4 * g) * ntap + t;
                wbuf[(t * G + g) * 2] = (int32_t)(((uint32_t)(uint16_t)(int16_t)f[2 * ntap] << 16) | (uint16_t)(int16_t)f[0]);
                wbuf[(t * G + g) * 2 + 1] =
                    (int32_t)(((uint32_t)(uint16_t)(int16_t)f[3 * ntap] << 16) | (uint16_t)(int16_t)f[ntap]);
            }
        }
        for (int32_t oy = 0; oy < p->out_h; ++oy) {
            const int32_t iy0 = oy * p->stride_h - p->pad_top;
            const int32_t ky0 = tc_conv_tap_first(iy0, p->dil_h), ky1 = tc_conv_tap_end(iy0, p->dil_h, p->k_h, p->in_h);
            for (int32_t ox = 0; ox < p->out_w; ++ox) {
                const int32_t ix0 = ox * p->stride_w - p->pad_left;
                const int32_t kx0 = tc_conv_tap_first(ix0, p->dil_w), kx1 = tc_conv_tap_end(ix0, p->dil_w, p->k_w, p->in_w);
                const int8_t *xbase = in + ((iy0 + ky0 * p->dil_h) * p->in_w + ix0 + kx0 * p->dil_w) * p->in_c + c0;
                int8_t *o = out + (oy * p->out_w + ox) * p->out_c + c0;
                for (int32_t g = 0; g < G; ++g) {
                    const int32_t c = c0 + 4 * g;
                    int32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
                    if (bias) {
                        s0 = bias[c];
                        s1 = bias[c + 1];
                        s2 = bias[c + 2];
                        s3 = bias[c + 3];
                    }
                    const int8_t *xr = xbase + 4 * g;
                    for (int32_t ky = ky0; ky < ky1; ++ky, xr += ystep) {
                        const int8_t *x = xr;
                        const int32_t *wt = wbuf + ((ky * p->k_w + kx0) * G + g) * 2;
                        for (int32_t kx = kx0; kx < kx1; ++kx, x += xstep, wt += 2 * G) {
                            const int32_t v = tcd_ld4(x);
                            const int32_t xe = __sxtab16(off2, v), xo = tcd_sxtab16_ror8(off2, v);
                            const int32_t we = wt[0], wo = wt[1];
                            s0 = __smlabb(xe, we, s0);
                            s2 = __smlatt(xe, we, s2);
                            s1 = __smlabb(xo, wo, s1);
                            s3 = __smlatt(xo, wo, s3);
                        }
                    }
                    o[4 * g] = tc_conv_requant_ch(s0, c, mult, shift, p);
                    o[4 * g + 1] = tc_conv_requant_ch(s1, c + 1, mult, shift, p);
                    o[4 * g + 2] = tc_conv_requant_ch(s2, c + 2, mult, shift, p);
                    o[4 * g + 3] = tc_conv_requant_ch(s3, c + 3, mult, shift, p);
                }
            }
        }
    }
}

/* Channel multiplier 1, channels [0, nc), nc a multiple of 4, weights laid out offline in
 * p->wpack (tinyconv/ops/conv_layout.py dsp_depthwise_int16: per group of 4 channels, per tap,
 * the int16 words (c0, c2), (c1, c3)). Pixel by pixel, 4 channels per pass, over the taps inside
 * the input only. Border classes are separate code: the first 4 border rows and columns on each
 * side are written out one by one (TCD_FOR_PEELED), so each border pixel's tap window is a literal
 * as the interior's is, and every window's taps unroll with literal offsets (kws: 38 -> 28
 * instructions per output; about 3 KB of code per 3x3 layer). */
/* One pixel's channel groups: taps [ky0, ky1) x [kx0, kx1), xbase at tap (ky0, kx0); the callers
 * make the bounds literals (interior, peeled borders), so the taps unroll with literal offsets. */
static inline __attribute__((always_inline)) void tcd_dw_pixel(const tc_conv_params *p, const int8_t *xbase, int8_t *o,
                                                              const int32_t *bias, const int32_t *mult,
                                                              const int32_t *shift, int32_t G, int32_t ky0,
                                                              int32_t ky1, int32_t kx0, int32_t kx1)
{
    const int32_t ntap = p->k_h * p->k_w;
    const int32_t *wp = (const int32_t *)p->wpack;
    const int32_t off = p->input_offset, off2 = (int32_t)(((uint32_t)off << 16) | ((uint32_t)off & 0xFFFFu));
    const int32_t xstep = p->dil_w * p->in_c, ystep = p->dil_h * p->in_w * p->in_c;
    for (int32_t g = 0; g < G; ++g) {
        const int32_t c = 4 * g;
        int32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        if (bias) {
            s0 = bias[c];
            s1 = bias[c + 1];
            s2 = bias[c + 2];
            s3 = bias[c + 3];
        }
        const int8_t *xg = xbase + c;
        const int32_t *wg = wp + 2 * ntap * g;
#pragma GCC unroll 8
        for (int32_t ky = ky0; ky < ky1; ++ky) {
#pragma GCC unroll 8
            for (int32_t kx = kx0; kx < kx1; ++kx) {
                const int32_t v = tcd_ld4(xg + (ky - ky0) * ystep + (kx - kx0) * xstep);
                const int32_t xe = __sxtab16(off2, v), xo = tcd_sxtab16_ror8(off2, v);
                const int32_t *wt = wg + 2 * (ky * p->k_w + kx);
                s0 = __smlabb(xe, wt[0], s0);
                s2 = __smlatt(xe, wt[0], s2);
                s1 = __smlabb(xo, wt[1], s1);
                s3 = __smlatt(xo, wt[1], s3);
            }
        }
        o[c] = tc_conv_requant_ch(s0, c, mult, shift, p);
        o[c + 1] = tc_conv_requant_ch(s1, c + 1, mult, shift, p);
        o[c + 2] = tc_conv_requant_ch(s2, c + 2, mult, shift, p);
        o[c + 3] = tc_conv_requant_ch(s3, c + 3, mult, shift, p);
    }
}

/* Output indices [lo, hi) whose window lies inside an input of n (taps span + 1, padding pad). */
static inline int32_t tcd_inside_lo(int32_t pad, int32_t stride, int32_t out)
{
    const int32_t lo = (pad + stride - 1) / stride;
    return lo < out ? lo : out;
}

static inline int32_t tcd_inside_hi(int32_t n, int32_t span, int32_t pad, int32_t stride, int32_t out, int32_t lo)
{
    const int32_t last = n - 1 - span + pad; /* the largest o * stride inside */
    int32_t hi = last < 0 ? 0 : last / stride + 1;
    hi = hi < out ? hi : out;
    return hi > lo ? hi : lo;
}

/* Pixel (oy, ox) with the row's taps [ky0, ky1): the column window from ox. */
static inline __attribute__((always_inline)) void tcd_dw_at(const tc_conv_params *p, const int8_t *in, int8_t *out,
                                                           const int32_t *bias, const int32_t *mult,
                                                           const int32_t *shift, int32_t G, int32_t oy, int32_t ox,
                                                           int32_t ky0, int32_t ky1)
{
    const int32_t iy0 = oy * p->stride_h - p->pad_top, ix0 = ox * p->stride_w - p->pad_left;
    const int32_t kx0 = tc_conv_tap_first(ix0, p->dil_w), kx1 = tc_conv_tap_end(ix0, p->dil_w, p->k_w, p->in_w);
    const int8_t *xbase = in + ((iy0 + ky0 * p->dil_h) * p->in_w + ix0 + kx0 * p->dil_w) * p->in_c;
    tcd_dw_pixel(p, xbase, out + (oy * p->out_w + ox) * p->out_c, bias, mult, shift, G, ky0, ky1, kx0, kx1);
}

/* for (i = lo; i < hi; ++i) body, the first 4 iterations written out with literal i (lo, hi are
 * literals in per-layer code): a border row's or column's tap window then is a literal too. A
 * border deeper than 4 (rare: pad > 4 * stride) loops, its taps still correct. */
#define TCD_FOR_PEELED(i, lo, hi, body)                                                            \
    do {                                                                                           \
        if ((lo) < (hi)) { const int32_t i = (lo); body; }                                         \
        if ((lo) + 1 < (hi)) { const int32_t i = (lo) + 1; body; }                                 \
        if ((lo) + 2 < (hi)) { const int32_t i = (lo) + 2; body; }                                 \
        if ((lo) + 3 < (hi)) { const int32_t i = (lo) + 3; body; }                                 \
        for (int32_t i = (lo) + 4; i < (hi); ++i) { body; }                                        \
    } while (0)

/* Row oy with taps [ky0, ky1): left border columns, the interior, right border columns. */
static inline __attribute__((always_inline)) void tcd_dw_row(const tc_conv_params *p, const int8_t *in, int8_t *out,
                                                            const int32_t *bias, const int32_t *mult,
                                                            const int32_t *shift, int32_t G, int32_t oy, int32_t ky0,
                                                            int32_t ky1)
{
    const int32_t ox_lo = tcd_inside_lo(p->pad_left, p->stride_w, p->out_w);
    const int32_t ox_hi = tcd_inside_hi(p->in_w, (p->k_w - 1) * p->dil_w, p->pad_left, p->stride_w, p->out_w, ox_lo);
    TCD_FOR_PEELED(ox, 0, ox_lo, tcd_dw_at(p, in, out, bias, mult, shift, G, oy, ox, ky0, ky1));
    for (int32_t ox = ox_lo; ox < ox_hi; ++ox) {
        const int32_t iy0 = oy * p->stride_h - p->pad_top, ix0 = ox * p->stride_w - p->pad_left;
        const int8_t *xbase = in + ((iy0 + ky0 * p->dil_h) * p->in_w + ix0) * p->in_c;
        tcd_dw_pixel(p, xbase, out + (oy * p->out_w + ox) * p->out_c, bias, mult, shift, G, ky0, ky1, 0, p->k_w);
    }
    TCD_FOR_PEELED(ox, ox_hi, p->out_w, tcd_dw_at(p, in, out, bias, mult, shift, G, oy, ox, ky0, ky1));
}

/* Row oy, its tap rows from its position. */
static inline __attribute__((always_inline)) void tcd_dw_border_row(const tc_conv_params *p, const int8_t *in,
                                                                   int8_t *out, const int32_t *bias,
                                                                   const int32_t *mult, const int32_t *shift,
                                                                   int32_t G, int32_t oy)
{
    const int32_t iy0 = oy * p->stride_h - p->pad_top;
    tcd_dw_row(p, in, out, bias, mult, shift, G, oy, tc_conv_tap_first(iy0, p->dil_h),
               tc_conv_tap_end(iy0, p->dil_h, p->k_h, p->in_h));
}

TCD_FN void tcd_dw_packed(const tc_conv_params *p, const int8_t *in, const int32_t *bias, const int32_t *mult,
                          const int32_t *shift, int8_t *out, int32_t nc)
{
    const int32_t G = nc >> 2;
    const int32_t oy_lo = tcd_inside_lo(p->pad_top, p->stride_h, p->out_h);
    const int32_t oy_hi = tcd_inside_hi(p->in_h, (p->k_h - 1) * p->dil_h, p->pad_top, p->stride_h, p->out_h, oy_lo);
    TCD_FOR_PEELED(oy, 0, oy_lo, tcd_dw_border_row(p, in, out, bias, mult, shift, G, oy));
    for (int32_t oy = oy_lo; oy < oy_hi; ++oy) tcd_dw_row(p, in, out, bias, mult, shift, G, oy, 0, p->k_h);
    TCD_FOR_PEELED(oy, oy_hi, p->out_h, tcd_dw_border_row(p, in, out, bias, mult, shift, G, oy));
}

TCD_FN void tcd_depthwise_conv_s8(const tc_conv_params *p, const int8_t *in, const int8_t *w, const int32_t *bias,
                          const int32_t *mult, const int32_t *shift, int8_t *out)
{
    const int32_t mult_c = p->out_c / p->in_c; /* channel multiplier */
    const int32_t ntap = p->k_h * p->k_w, off = p->input_offset;
    const int32_t span_x = (p->k_w - 1) * p->dil_w, span_y = (p->k_h - 1) * p->dil_h;
    const int32_t is3x3 = p->k_h == 3 && p->k_w == 3 && p->dil_h == 1 && p->dil_w == 1;
    const int32_t c1 = p->in_c, r1 = p->in_w * p->in_c;
    int32_t oc_start = 0;
    if (TCD_SPEED && mult_c == 1 && p->wpack && p->in_c >= 4) {
        oc_start = p->in_c & ~3;
        tcd_dw_packed(p, in, bias, mult, shift, out, oc_start);
    } else if (mult_c == 1 && ntap <= TCD_DW_WORDS / 2 && p->in_c >= 4) {
        oc_start = p->in_c & ~3;
        tcd_dw_simd(p, in, w, bias, mult, shift, out, oc_start);
    }
    for (int32_t oc = oc_start; oc < p->out_c; ++oc) {
        const int32_t ic = oc / mult_c;
        const int8_t *f = w + oc * ntap;
        const int32_t b = bias ? bias[oc] : 0, m = mult[oc], sh = shift[oc];
        int32_t sumw = 0;
        for (int32_t t = 0; t < ntap; ++t) sumw += f[t];
        const int32_t b_in = b + off * sumw; /* bias + sum(off * w): interior pixels see every tap */
        int32_t wp[5] = {0, 0, 0, 0, 0};
        if (is3x3) {
            for (int32_t t = 0; t < 9; ++t) {
                wp[t >> 1] |= (int32_t)((uint32_t)(uint16_t)(int16_t)f[t] << (16 * (t & 1)));
            }
        }
        for (int32_t oy = 0; oy < p->out_h; ++oy) {
            const int32_t iy0 = oy * p->stride_h - p->pad_top;
            const int32_t row_in = iy0 >= 0 && iy0 + span_y < p->in_h;
            const int32_t ky0 = tc_conv_tap_first(iy0, p->dil_h), ky1 = tc_conv_tap_end(iy0, p->dil_h, p->k_h, p->in_h);
            int8_t *orow = out + oy * p->out_w * p->out_c + oc;
            /* interior columns [ox_lo, ox_hi): ix0 >= 0 and ix0 + span_x < in_w */
            const int32_t ox_lo = (p->pad_left + p->stride_w - 1) / p->stride_w;
            int32_t ox_hi = p->in_w - 1 - span_x + p->pad_left < 0 ? 0 : (p->in_w - 1 - span_x + p->pad_left) / p->stride_w + 1;
            if (ox_hi > p->out_w) ox_hi = p->out_w;
            for (int32_t ox = 0; ox < p->out_w; ++ox) {
                if (row_in && ox == ox_lo && ox_lo < ox_hi) {
                    const int8_t *x = in + (iy0 * p->in_w + ox * p->stride_w - p->pad_left) * p->in_c + ic;
                    int8_t *o = orow + ox * p->out_c;
                    if (is3x3) {
                        tcd_dw3x3_row(x, o, ox_hi - ox_lo, c1, r1, p->stride_w * c1, p->out_c, wp, b_in, oc, m, sh, mult, shift, p);
                    } else {
                        for (int32_t q = ox_lo; q < ox_hi; ++q, x += p->stride_w * c1, o += p->out_c) {
                            int32_t acc = b_in;
                            const int8_t *ft = f;
                            for (int32_t ky = 0; ky < p->k_h; ++ky) {
                                const int8_t *xr = x + ky * p->dil_h * r1;
                                for (int32_t kx = 0; kx < p->k_w; ++kx) acc += xr[kx * p->dil_w * c1] * *ft++;
                            }
                            *o = tcd_dw_requant(acc, oc, m, sh, mult, shift, p);
                        }
                    }
                    ox = ox_hi - 1;
                    continue;
                }
                /* border: only the taps inside the input, bounds computed once */
                const int32_t ix0 = ox * p->stride_w - p->pad_left;
                const int32_t kx0 = tc_conv_tap_first(ix0, p->dil_w), kx1 = tc_conv_tap_end(ix0, p->dil_w, p->k_w, p->in_w);
                int32_t acc = b;
                for (int32_t ky = ky0; ky < ky1; ++ky) {
                    const int8_t *xr = in + ((iy0 + ky * p->dil_h) * p->in_w + ix0) * p->in_c + ic;
                    const int8_t *fr = f + ky * p->k_w;
                    for (int32_t kx = kx0; kx < kx1; ++kx) acc += (xr[kx * p->dil_w * c1] + off) * fr[kx];
                }
                orow[ox * p->out_c] = tcd_dw_requant(acc, oc, m, sh, mult, shift, p);
            }
        }
    }
}

#endif /* TC_CONV_DSP_H */
