/* AArch64 NEON: convolutions with few input channels (groups 1, in_c <= 4: the first layer of an
 * image or audio network), with no im2col. Specialised per layer (tinyconv/neon_layers.py).
 *
 * One kernel row of a window, ky, is (k_w - 1) * dil_w * in_c + in_c consecutive input bytes, so
 * it is read with one 16-byte load per 16 bytes of row (the load overlaps the next pixels; the
 * bytes past the row, and between dilated taps, meet zero weights: the weights are laid out per
 * row in `lanes` groups of 4 bytes, padded offline). SDOT by element then uses each 4-byte group
 * of a pixel's row against 4 channels x 4 bytes of weights.
 *
 * The input is first staged on the stack as the padded image the windows cover (padded taps hold
 * the input zero point, so bias + input_offset * sum(w) stays exact, as in tc_neon_gemm.h), with
 * slack after it so that every 16-byte load stays inside the buffer: no window needs a border
 * check. Register tiles: 4 pixels x 16 channels, or 8 pixels x up to 8 channels; tiles run over
 * the pixels in output order and may straddle output rows. */
#ifndef TC_NEON_SMALL_C_H
#define TC_NEON_SMALL_C_H

#include <stddef.h>
#include <stdint.h>

#include "tc_neon_gemm.h" /* TCN_LAYER, tcn_out_stage, tcn_narrow16, the requantization helpers */

typedef struct {
    int32_t in_h, in_w, in_c;
    int32_t out_h, out_w, out_c;
    int32_t k_h, stride_h, stride_w, dil_h, pad_top, pad_left;
    int32_t img_h, img_w; /* the staged image: rows and columns the windows cover (padding included) */
    int32_t lanes;        /* 4-byte groups per kernel row: weights per channel are k_h * lanes * 4 bytes */
    int32_t left;         /* some channel's requantization shifts left (else SQSHL is skipped) */
    int32_t in_zp, output_offset, act_min, act_max;
} tcn_smallc_params;

/* w: per block of up to 16 channels (16, then the c4 % 16 left), [k_h][lanes][nb][4]
 * (neon_layers._pack_small_c_weights); bias: folded, channels padded to 4; rq: [c4 / 4][3][4]. */

/* bytes of 16-byte row loads per kernel row, and the slack the last window's loads need */
#define TCN_SC_CHUNKS(p) (((p)->lanes + 3) / 4)
#define TCN_SC_IMG_BYTES(p) ((p)->img_h * (p)->img_w * (p)->in_c + 16 * TCN_SC_CHUNKS(p))

/* The first n (1..16) bytes of v: one store for 16, 8 or 4 (the channel counts of whole blocks). */
static inline __attribute__((always_inline)) void tcn_sc_store(int8_t *o, int8x16_t v, int32_t n)
{
    if (n == 16) {
        vst1q_s8(o, v);
    } else if (n == 8) {
        vst1_s8(o, vget_low_s8(v));
    } else if (n == 4) {
        vst1q_lane_s32((int32_t *)(void *)o, vreinterpretq_s32_s8(v), 0);
    } else {
        int8_t t[16];
        vst1q_s8(t, v);
        for (int32_t j = 0; j < n; ++j) o[j] = t[j];
    }
}

/* Up to 8 channels (r1 ignored when nv == 1) + offset, clamped, in the low half. */
static inline __attribute__((always_inline)) int8x16_t tcn_sc_narrow8(int32x4_t r0, int32x4_t r1, const tcn_out_stage *s)
{
    const int16x8_t h = vqaddq_s16(vqmovn_high_s32(vqmovn_s32(r0), r1), s->offset);
    int8x8_t v = vqmovn_s16(h);
    if (!s->full) v = vmin_s8(vmax_s8(v, vget_low_s8(s->lo)), vget_low_s8(s->hi));
    return vcombine_s8(v, v);
}

/* Requantization of 4 channels. With a clamp whose minimum is at or above the output zero point
 * (a fused ReLU), SRSHL's round-half-up is enough: it differs from the reference's
 * round-half-away only on negative halves, where both results are <= 0 and the clamp maps both
 * to act_min. Else tcn_requant4(_right)'s exact fix-up. */
static inline __attribute__((always_inline)) int32x4_t tcn_sc_requant(int32x4_t acc, int32x4_t m, int32x4_t l, int32x4_t r,
                                                                      int32_t left, int32_t up)
{
    if (left) acc = vqshlq_s32(acc, l);
    return up ? tcn_requant4_up(acc, m, r) : tcn_requant4_right(acc, m, r);
}

/* One tile: np pixels (4 or 8; window origins in the staged image x[j], or base + j * step when x
 * is NULL: constant offsets from one register) x nb channels (4..16, np * nb <= 64 so the
 * accumulators stay in registers). The first `valid` pixels are stored, pixel j's n channels at
 * o + j * out_c. */
TCN_LAYER void tcn_sc_tile(const tcn_smallc_params *p, const int8_t *base, int32_t step, const int8_t *const *x, int32_t np,
                           int32_t valid, const int8_t *w, int32_t nb, const int32_t *bias, const int32_t *q,
                           const tcn_out_stage *s, int8_t *o, int32_t n)
{
    const int32_t nv = nb / 4, row = p->dil_h * p->img_w * p->in_c, lanes = p->lanes;
    int32x4_t acc[8][4];
    __asm__ volatile("" ::: "memory"); /* the bias, too, is loaded per tile (see the records below) */
#pragma GCC unroll 8
    for (int32_t j = 0; j < np; ++j) {
#pragma GCC unroll 4
        for (int32_t v = 0; v < nv; ++v) acc[j][v] = vld1q_s32(bias + 4 * v);
    }
    for (int32_t ky = 0; ky < p->k_h; ++ky) {
#pragma GCC unroll 4
        for (int32_t c0 = 0; c0 < lanes; c0 += 4) { /* one 16-byte load per pixel per 4 groups */
            int8x16_t xv[8];
#pragma GCC unroll 8
            for (int32_t j = 0; j < np; ++j) xv[j] = vld1q_s8((x ? x[j] : base + j * step) + ky * row + 4 * c0);
#define TCN_SC_LANE(L)                                                                                   \
    if (c0 + (L) < lanes) {                                                                              \
        int8x16_t wv[4];                                                                                 \
        _Pragma("GCC unroll 4") for (int32_t v = 0; v < nv; ++v) wv[v] = vld1q_s8(w + 16 * v);           \
        w += 16 * nv;                                                                                    \
        _Pragma("GCC unroll 8") for (int32_t j = 0; j < np; ++j) {                                       \
            _Pragma("GCC unroll 4") for (int32_t v = 0; v < nv; ++v) acc[j][v] =                         \
                vdotq_laneq_s32(acc[j][v], wv[v], xv[j], L);                                             \
        }                                                                                                \
    }
            TCN_SC_LANE(0)
            TCN_SC_LANE(1)
            TCN_SC_LANE(2)
            TCN_SC_LANE(3)
#undef TCN_SC_LANE
        }
    }
    /* Records loaded here, once per tile: the empty asm keeps the compiler from hoisting them out
     * of the pixel loop, where they would be spilled around the SDOTs and reloaded anyway. */
    __asm__ volatile("" ::: "memory");
    int32x4_t m[4], l[4], r[4];
#pragma GCC unroll 4
    for (int32_t v = 0; v < nv; ++v) {
        m[v] = vld1q_s32(q + 12 * v), l[v] = vld1q_s32(q + 12 * v + 4), r[v] = vld1q_s32(q + 12 * v + 8);
    }
#pragma GCC unroll 8
    for (int32_t j = 0; j < valid; ++j) {
        int32x4_t y[4];
#pragma GCC unroll 4
        for (int32_t v = 0; v < 4; ++v) {
            if (v < nv) y[v] = tcn_sc_requant(acc[j][v], m[v], l[v], r[v], p->left, p->act_min >= p->output_offset);
            else y[v] = vdupq_n_s32(0);
        }
        tcn_sc_store(o + j * p->out_c, nv > 2 ? tcn_narrow16(y[0], y[1], y[2], y[3], s) : tcn_sc_narrow8(y[0], y[1], s), n);
    }
}

/* Copy the input into img (img_h x img_w pixels, every pixel outside the input = zero point). */
TCN_LAYER void tcn_sc_stage(const tcn_smallc_params *p, const int8_t *in, int8_t *img)
{
    const int32_t c = p->in_c;
    const int32_t x0 = p->pad_left < p->img_w ? p->pad_left : p->img_w; /* staged columns holding input */
    const int32_t x1 = p->pad_left + p->in_w < p->img_w ? p->pad_left + p->in_w : p->img_w;
    __builtin_memset(img, p->in_zp, (size_t)TCN_SC_IMG_BYTES(p));
    if (x1 <= x0) return;
    for (int32_t y = 0; y < p->img_h; ++y) {
        const int32_t iy = y - p->pad_top;
        if (iy < 0 || iy >= p->in_h) continue;
        __builtin_memcpy(img + (y * p->img_w + x0) * c, in + (iy * p->in_w + x0 - p->pad_left) * c, (size_t)((x1 - x0) * c));
    }
}

/* Window origins of the next `valid` pixels (then repeats of the last: loaded, never stored),
 * advancing the cursor (row: the output row's first window, ox: the column). */
TCN_LAYER void tcn_sc_windows(const tcn_smallc_params *p, int32_t np, int32_t valid, const int8_t **row, int32_t *ox,
                              const int8_t **x)
{
    const int32_t step = p->stride_w * p->in_c, row_step = p->stride_h * p->img_w * p->in_c;
#pragma GCC unroll 8
    for (int32_t j = 0; j < np; ++j) {
        if (j < valid) {
            x[j] = *row + *ox * step;
            if (++*ox == p->out_w) *ox = 0, *row += row_step;
        } else {
            x[j] = x[j - 1];
        }
    }
}

/* Every channel block of one tile. */
TCN_LAYER void tcn_sc_blocks(const tcn_smallc_params *p, const int8_t *base, int32_t step, const int8_t *const *x, int32_t np,
                             int32_t valid, const int8_t *w, const int32_t *bias, const int32_t *rq, const tcn_out_stage *s,
                             int8_t *o)
{
    const int32_t c4 = (p->out_c + 3) & ~3, wch = p->k_h * p->lanes * 4;
    int32_t c0 = 0;
    for (; c0 + 16 <= c4; c0 += 16) {
        tcn_sc_tile(p, base, step, x, np, valid, w + c0 * wch, 16, bias + c0, rq + 3 * c0, s, o + c0, p->out_c - c0 < 16 ? p->out_c - c0 : 16);
    }
    if (c0 < c4) tcn_sc_tile(p, base, step, x, np, valid, w + c0 * wch, c4 - c0, bias + c0, rq + 3 * c0, s, o + c0, p->out_c - c0);
}

TCN_LAYER void tcn_conv_small_c_s8(const tcn_smallc_params *p, const int8_t *in, const int8_t *w, const int32_t *bias,
                                   const int32_t *rq, int8_t *out)
{
    const int32_t npix = p->out_h * p->out_w;
    const int32_t np = p->out_c > 8 ? 4 : 8; /* pixels per tile: 4 x 16 or 8 x 8 accumulators */
    const tcn_out_stage s = tcn_out_stage_make(p->output_offset, p->act_min, p->act_max);
    int8_t img[TCN_SC_IMG_BYTES(p)] __attribute__((aligned(16)));
    tcn_sc_stage(p, in, img);
    const int32_t step = p->stride_w * p->in_c, row_step = p->stride_h * p->img_w * p->in_c;
    const int8_t *row = img, *x[8];
    int32_t ox = 0, px = 0;
    for (; px + np <= npix; px += np) { /* whole tiles: every bound a constant */
        if (p->out_w % np == 0) { /* the tile lies in one output row: windows at constant offsets */
            tcn_sc_blocks(p, row + ox * step, step, 0, np, np, w, bias, rq, &s, out + px * p->out_c);
            if ((ox += np) == p->out_w) ox = 0, row += row_step;
            continue;
        }
        tcn_sc_windows(p, np, np, &row, &ox, x);
        tcn_sc_blocks(p, 0, 0, x, np, np, w, bias, rq, &s, out + px * p->out_c);
    }
    if (px < npix) {
        tcn_sc_windows(p, np, npix - px, &row, &ox, x);
        tcn_sc_blocks(p, 0, 0, x, np, npix - px, w, bias, rq, &s, out + px * p->out_c);
    }
}

#endif /* TC_NEON_SMALL_C_H */
