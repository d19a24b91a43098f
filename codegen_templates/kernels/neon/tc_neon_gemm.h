/* AArch64 NEON kernels for layers specialised at compile time (tinyconv/neon_layers.py):
 * weights packed in tile order, input_offset * sum(w) folded into the bias, per-channel
 * requantization records. Bit-exact with the portable kernels (the TFLite int8 arithmetic).
 *
 * Convolution with groups 1 and fully connected layers run as a GEMM over output pixels:
 * register tiles of 4 pixels x 16 channels, SDOT by element (SMMLA 2x8 by 8x2 tiles on i8mm
 * targets, for layers of more than one pixel), full 16-channel tiles in inline assembler. Layers
 * with in_c a multiple of 16 and rows of at least 4 output pixels take row tiles read tap by tap
 * from the input, or from a zero-point-padded copy of it when windows leave it; 1x1 stride-1
 * unpadded layers read their pixels in place (kp bytes each; past in_c they meet zero weights);
 * the others read windows inside the input by taps and the rest through an im2col row per pixel
 * in which padded taps hold the input zero point (so the folded bias stays exact) and the
 * reduction is zero-padded to kp (multiple of 16).
 * Depthwise (channel multiplier 1): 16 channels per vector, packed [tap][channel] weights.
 * The kernels are defined here, inlined into each layer (tc_neon_gemm.c has no code). */
#ifndef TC_NEON_GEMM_H
#define TC_NEON_GEMM_H

#include <stdint.h>

#include "tc_conv_util.h"
#include "tc_neon.h"

#if !defined(__ARM_FEATURE_DOTPROD)
#error "the NEON layer kernels need the Armv8.2-A dot-product extension (-march=armv8.2-a+dotprod)"
#endif

/* Entry points are inlined into each layer's call with its static const parameters, so the
 * compiler specialises every loop bound, copy size and branch for that layer. */
#define TCN_LAYER static inline __attribute__((always_inline))

typedef struct {
    int32_t in_h, in_w, in_c;
    int32_t out_h, out_w, out_c;
    int32_t k_h, k_w, stride_h, stride_w, dil_h, dil_w, pad_top, pad_left;
    int32_t k, kp;     /* reduction length k_h * k_w * in_c, and padded to a multiple of 16 */
    int32_t direct;    /* pixels read in place (1x1, stride 1, no padding) */
    int32_t left;      /* some channel's requantization shifts left (else SQSHL is skipped) */
    int32_t mmla;      /* i8mm packing: SMMLA tiles (bias in channel-pair layout) */
    int32_t in_zp;     /* input zero point: the value of padded taps */
    int32_t output_offset, act_min, act_max;
} tcn_gemm_params;

/* w: packed by neon_layers._pack_gemm_weights (or _pack_i8mm_weights); bias: folded, channels
 * padded to 4; rq: [ceil(out_c / 4)][3][4] multiplier, left shift, -right shift. */

typedef struct {
    int32_t in_h, in_w, c, cp; /* channels, and padded to a multiple of 16 (weight row stride) */
    int32_t out_h, out_w;
    int32_t k_h, k_w, stride_h, stride_w, dil_h, dil_w, pad_top, pad_left;
    int32_t in_zp, output_offset, act_min, act_max;
    int32_t left; /* some channel's requantization shifts left (else SQSHL is skipped) */
} tcn_dw_params;

/* w: [k_h * k_w][cp] int8; bias: folded, [cp]; rq: [cp / 4][3][4]. */

/* ---- output stage: 16 requantized channels of one pixel ---- */

typedef struct {
    int16x8_t offset;
    int8x16_t lo, hi;
    int32_t full; /* act range is all of int8 */
    int32_t up;   /* fused ReLU: right shifts may round half up (tcn_requant4_up) */
} tcn_out_stage;

static inline tcn_out_stage tcn_out_stage_make(int32_t output_offset, int32_t act_min, int32_t act_max)
{
    tcn_out_stage s = {vdupq_n_s16((int16_t)output_offset), vdupq_n_s8((int8_t)act_min), vdupq_n_s8((int8_t)act_max),
                       act_min <= -128 && act_max >= 127, act_min >= output_offset};
    return s;
}

/* int32 lanes (already requantized) + offset, clamped, as int8: saturating narrows are exact here
 * because the clamp range lies inside int8 (a value saturated at int16 clamps the same way). */
static inline int8x16_t tcn_narrow16(int32x4_t r0, int32x4_t r1, int32x4_t r2, int32x4_t r3, const tcn_out_stage *s)
{
    const int16x8_t h0 = vqaddq_s16(vqmovn_high_s32(vqmovn_s32(r0), r1), s->offset);
    const int16x8_t h1 = vqaddq_s16(vqmovn_high_s32(vqmovn_s32(r2), r3), s->offset);
    int8x16_t v = vqmovn_high_s16(vqmovn_s16(h0), h1);
    if (!s->full) v = vminq_s8(vmaxq_s8(v, s->lo), s->hi); /* the narrowing saturates at -128 / 127 anyway */
    return v;
}

/* Store the first n (4, 8, 12 or 16, or fewer at the end of a pixel) bytes of v. */
static inline void tcn_store_n(int8_t *o, int8x16_t v, int32_t n)
{
    if (n >= 16) {
        vst1q_s8(o, v);
        return;
    }
    int8_t t[16];
    vst1q_s8(t, v);
    for (int32_t j = 0; j < n; ++j) o[j] = t[j];
}

/* ---- im2col: one pixel's taps in (ky, kx, c) order, padded taps = input zero point ---- */

static inline void tcn_copy(int8_t *d, const int8_t *s, int32_t n)
{
    for (; n >= 16; n -= 16, d += 16, s += 16) vst1q_s8(d, vld1q_s8(s));
    if (n >= 8) {
        vst1_s8(d, vld1_s8(s));
        d += 8, s += 8, n -= 8;
    }
    if (n >= 4) {
        int32_t v;
        __builtin_memcpy(&v, s, 4);
        __builtin_memcpy(d, &v, 4);
        d += 4, s += 4, n -= 4;
    }
    for (; n > 0; --n) *d++ = *s++;
}

static inline void tcn_fill(int8_t *d, int8_t v, int32_t n)
{
    for (; n > 0; --n) *d++ = v;
}

TCN_LAYER void tcn_im2col(const tcn_gemm_params *p, const int8_t *in, int32_t pix, int8_t *row)
{
    const int32_t oy = pix / p->out_w, ox = pix - oy * p->out_w;
    const int32_t iy0 = oy * p->stride_h - p->pad_top, ix0 = ox * p->stride_w - p->pad_left;
    const int32_t kx0 = tc_conv_tap_first(ix0, p->dil_w), kx1 = tc_conv_tap_end(ix0, p->dil_w, p->k_w, p->in_w);
    const int32_t c = p->in_c, rowlen = p->k_w * c;
    const int8_t zp = (int8_t)p->in_zp;
    for (int32_t ky = 0; ky < p->k_h; ++ky, row += rowlen) {
        const int32_t iy = iy0 + ky * p->dil_h;
        if (iy < 0 || iy >= p->in_h || kx1 <= kx0) {
            tcn_fill(row, zp, rowlen);
            continue;
        }
        const int8_t *src = in + (iy * p->in_w + ix0) * c;
        if (kx0 == 0 && kx1 == p->k_w && p->dil_w == 1) { /* the whole row inside: one constant-size copy */
            tcn_copy(row, src, rowlen);
            continue;
        }
        for (int32_t kx = 0; kx < p->k_w; ++kx) {
            if (kx < kx0 || kx >= kx1) tcn_fill(row + kx * c, zp, c);
            else tcn_copy(row + kx * c, src + kx * p->dil_w * c, c);
        }
    }
}

/* ---- requantization of 16 channels, records loaded once per tile ---- */

/* Requantize vector v (4 channels) of a 16-channel group whose records start at q; s: the layer's
 * output stage (under a fused ReLU the right shift needs no fix-up). */
#define TCN_RQR(acc, m, r) (s->up ? tcn_requant4_up((acc), (m), (r)) : tcn_requant4_right((acc), (m), (r)))
#define TCN_RQ(acc, q, v) tcn_requant4((acc), vld1q_s32((q) + 12 * (v)), vld1q_s32((q) + 12 * (v) + 4), vld1q_s32((q) + 12 * (v) + 8))
/* The same, SQSHL only when the layer has left shifts (left: a constant once inlined). */
#define TCN_RQL(acc, q, v, left) ((left) ? TCN_RQ(acc, q, v) : TCN_RQR((acc), vld1q_s32((q) + 12 * (v)), vld1q_s32((q) + 12 * (v) + 8)))

/* ---- the reduction walk: which input bytes a pixel's k-th 16 reduction values are ----
 * Linear (im2col rows, or 1x1 pixels in place): k = 0, 16, ... kp. By taps (windows inside the
 * input, in_c a multiple of 16): the pixel's window origin + ky * rs + kx * cs + channel, so the
 * GEMM reads the input directly with no im2col copy. Constant per layer once inlined. */
typedef struct {
    int32_t nh, nw, rs, cs, kc;
} tcn_walk;

#define TCN_WALK_BEGIN(wk)                                                                             \
    for (int32_t ta_ = 0; ta_ < (wk).nh; ++ta_)                                                        \
        for (int32_t tb_ = 0; tb_ < (wk).nw; ++tb_)                                                    \
            for (int32_t kc_ = 0; kc_ < (wk).kc; kc_ += 16) {                                          \
                const int32_t k = ta_ * (wk).rs + tb_ * (wk).cs + kc_;

/* ---- GEMM tiles ---- */

/* The walk as segments of contiguous bytes, for the inline-asm tiles: a row of taps is one segment
 * when its taps are adjacent (cs == kc), else each tap is one. All constant once inlined. */
typedef struct {
    int32_t rows, segs, steps; /* segments per row, 16-byte steps per segment */
    long seg_adj, row_adj;     /* pointer moves after a segment / after a row's last segment */
} tcn_segs;

TCN_LAYER tcn_segs tcn_segments(tcn_walk wk)
{
    const int32_t joined = wk.cs == wk.kc || wk.nw == 1, len = joined ? wk.nw * wk.kc : wk.kc;
    const int32_t segs = joined ? 1 : wk.nw;
    tcn_segs g = {wk.nh, segs, len / 16, (long)wk.cs - len, (long)wk.rs - (long)(segs - 1) * wk.cs - len};
    return g;
}

/* The assembler tiles need the walk's sizes as assembler constants: true once the layer's static
 * const parameters are folded in (-O1 and up). Otherwise (-O0) the tiles fall back to intrinsics. */
#define TCN_CONST_WALK(g) (__builtin_constant_p((g).rows) && __builtin_constant_p((g).segs) && __builtin_constant_p((g).steps))

/* The walk in assembler, STEP (one 16-byte reduction step, advancing p0..p3 and the weights)
 * per step. Walks of at most TCN_UNROLL steps are unrolled whole with .rept (no loop counters; the
 * pointer moves between segments and rows are skipped after the last); longer ones loop over rows,
 * segments and 4-step blocks. Operands: p0..p3 (the pixels' rows, post-incremented), sa / ra
 * (seg_adj / row_adj), constants R, S, T (tcn_segs) and scratch counters rc, sc, kc.
 * GCC sizes an asm statement by its line count to choose between short and long branches around
 * it, so the template ends with (unassembled) copies of STEP: its line count stays above the code
 * the .rept blocks really emit. */
#define TCN_UNROLL 18
#define TCN_STR_(x) #x
#define TCN_STR(x) TCN_STR_(x)
#define TCN_ASM_WALK(STEP)                                                                               \
    ".if %c[R] * %c[S] * %c[T] <= " TCN_STR(TCN_UNROLL) "\n\t"                                          \
    ".set .Ltcn_r, 0\n\t"                                                                                \
    ".rept %c[R]\n\t"                                                                                    \
    ".set .Ltcn_r, .Ltcn_r + 1\n\t"                                                                      \
    ".set .Ltcn_s, 0\n\t"                                                                                \
    ".rept %c[S]\n\t"                                                                                    \
    ".set .Ltcn_s, .Ltcn_s + 1\n\t"                                                                      \
    ".rept %c[T]\n\t" STEP ".endr\n\t"                                                                   \
    ".if .Ltcn_s < %c[S]\n\t" TCN_ASM_ADD("sa") ".endif\n\t"                                             \
    ".endr\n\t"                                                                                          \
    ".if .Ltcn_r < %c[R]\n\t" TCN_ASM_ADD("ra") ".endif\n\t"                                             \
    ".endr\n\t"                                                                                          \
    ".else\n\t"                                                                                          \
    "mov %w[rc], #%c[R]\n"                                                                               \
    "1:\n\t"                                                                                             \
    ".if %c[S] > 1\n\t"                                                                                  \
    "mov %w[sc], #%c[S]\n"                                                                               \
    "2:\n\t"                                                                                             \
    ".endif\n\t"                                                                                         \
    ".rept %c[T] %% 4\n\t" STEP ".endr\n\t"                                                              \
    ".if %c[T] >= 4\n\t"                                                                                 \
    "mov %w[kc], #(%c[T] / 4)\n"                                                                         \
    "3:\n\t"                                                                                             \
    ".rept 4\n\t" STEP ".endr\n\t"                                                                       \
    "subs %w[kc], %w[kc], #1\n\t"                                                                        \
    "b.ne 3b\n\t"                                                                                        \
    ".endif\n\t"                                                                                         \
    ".if %c[S] > 1\n\t"                                                                                  \
    "subs %w[sc], %w[sc], #1\n\t"                                                                        \
    "b.eq 4f\n\t" TCN_ASM_ADD("sa")                                                                      \
    "b 2b\n"                                                                                             \
    "4:\n\t"                                                                                             \
    ".endif\n\t"                                                                                         \
    ".if %c[R] > 1\n\t" TCN_ASM_ADD("ra")                                                                \
    "subs %w[rc], %w[rc], #1\n\t"                                                                        \
    "b.ne 1b\n\t"                                                                                        \
    ".endif\n\t"                                                                                         \
    ".endif\n\t"                                                                                         \
    ".if 0\n\t" STEP STEP STEP STEP STEP STEP STEP STEP STEP STEP STEP STEP STEP STEP STEP STEP STEP ".endif\n\t"
#define TCN_ASM_ADD(d) \
    "add %[p0], %[p0], %[" d "]\n\tadd %[p1], %[p1], %[" d "]\n\tadd %[p2], %[p2], %[" d "]\n\tadd %[p3], %[p3], %[" d "]\n\t"
#define TCN_ASM_WALK_OPERANDS(g) \
    [sa] "r"((g).seg_adj), [ra] "r"((g).row_adj), [R] "i"((g).rows), [S] "i"((g).segs), [T] "i"((g).steps)

/* 4 pixels x nb channels with intrinsics, for the last block (nb = 4, 8 or 12), and for full blocks
 * where the assembler tiles cannot be used (TCN_CONST_WALK): nb / 4 weight vectors per reduction
 * quad, the same SDOTs by element; loops unrolled over the constant nb. */
TCN_LAYER void tcn_tile_4xn(const int8_t *const *x, const int8_t *w, int32_t nb, tcn_walk wk, const int32_t *bias,
                            const int32_t *q, const tcn_out_stage *s, int8_t *const *o, int32_t n, int32_t left)
{
    const int32_t nv = nb / 4;
    int32x4_t acc[4][4];
#pragma GCC unroll 4
    for (int32_t v = 0; v < nv; ++v) acc[0][v] = acc[1][v] = acc[2][v] = acc[3][v] = vld1q_s32(bias + 4 * v);
    TCN_WALK_BEGIN(wk)
        const int8x16_t x0 = vld1q_s8(x[0] + k), x1 = vld1q_s8(x[1] + k), x2 = vld1q_s8(x[2] + k), x3 = vld1q_s8(x[3] + k);
#define TCN_QUAD(L)                                                                                         \
    do {                                                                                                    \
        _Pragma("GCC unroll 4") for (int32_t v = 0; v < nv; ++v) {                                          \
            const int8x16_t wv = vld1q_s8(w + 16 * v);                                                      \
            acc[0][v] = vdotq_laneq_s32(acc[0][v], wv, x0, L);                                              \
            acc[1][v] = vdotq_laneq_s32(acc[1][v], wv, x1, L);                                              \
            acc[2][v] = vdotq_laneq_s32(acc[2][v], wv, x2, L);                                              \
            acc[3][v] = vdotq_laneq_s32(acc[3][v], wv, x3, L);                                              \
        }                                                                                                   \
        w += 16 * nv;                                                                                       \
    } while (0)
        TCN_QUAD(0);
        TCN_QUAD(1);
        TCN_QUAD(2);
        TCN_QUAD(3);
#undef TCN_QUAD
    }
#pragma GCC unroll 4
    for (int32_t px = 0; px < 4; ++px) {
        if (!o[px]) continue;
        int32x4_t r[4];
#pragma GCC unroll 4
        for (int32_t v = 0; v < 4; ++v) {
            if (v < nv) {
                const int32x4_t m = vld1q_s32(q + 12 * v), l = vld1q_s32(q + 12 * v + 4), rr = vld1q_s32(q + 12 * v + 8);
                r[v] = left ? tcn_requant4(acc[px][v], m, l, rr) : TCN_RQR(acc[px][v], m, rr);
            } else {
                r[v] = vdupq_n_s32(0);
            }
        }
        tcn_store_n(o[px], tcn_narrow16(r[0], r[1], r[2], r[3], s), n);
    }
}

/* 16 SDOTs by element: lane L of the 4 pixels' inputs (v24-v27) times 4 weight vectors (v28-v31,
 * 4 channels each) into accumulator v(4 * pixel + vector). */
#define TCN_SD(acc, wv, xv, L) "sdot v" #acc ".4s, " wv ".16b, " xv ".4b[" #L "]\n\t"
#define TCN_SDOT_PIX(a0, a1, a2, a3, xv, L) \
    TCN_SD(a0, "v28", xv, L) TCN_SD(a1, "v29", xv, L) TCN_SD(a2, "v30", xv, L) TCN_SD(a3, "v31", xv, L)
#define TCN_SDOT_LANE(L)                                                                                  \
    "ld1 {v28.16b-v31.16b}, [%[w]], #64\n\t" TCN_SDOT_PIX(0, 1, 2, 3, "v24", L) TCN_SDOT_PIX(4, 5, 6, 7, "v25", L) \
        TCN_SDOT_PIX(8, 9, 10, 11, "v26", L) TCN_SDOT_PIX(12, 13, 14, 15, "v27", L)

/* 4 pixels x 16 channels: per 16 reduction values, 4 input loads + 4 four-register weight loads
 * feed 64 SDOTs, and nothing else (accumulators v0-v15 stay in registers for the whole walk and
 * go to acc[pixel][16] at the end). */
TCN_LAYER void tcn_tile_4x16(const int8_t *x0, const int8_t *x1, const int8_t *x2, const int8_t *x3, const int8_t *w,
                          tcn_walk wk, const int32_t *bias, const int32_t *q, const tcn_out_stage *s,
                          int8_t *o0, int8_t *o1, int8_t *o2, int8_t *o3, int32_t n, int32_t left)
{
    const tcn_segs g = tcn_segments(wk);
    if (!TCN_CONST_WALK(g)) {
        const int8_t *const x[4] = {x0, x1, x2, x3};
        int8_t *const o[4] = {o0, o1, o2, o3};
        tcn_tile_4xn(x, w, 16, wk, bias, q, s, o, n, left);
        return;
    }
    int32_t acc[64] __attribute__((aligned(16)));
    int32_t *ap = acc, rc, sc, kc;
    __asm__ volatile("ld1 {v0.4s-v3.4s}, [%[b]]\n\t"
            "ld1 {v4.4s-v7.4s}, [%[b]]\n\t"
            "ld1 {v8.4s-v11.4s}, [%[b]]\n\t"
            "ld1 {v12.4s-v15.4s}, [%[b]]\n\t"
            TCN_ASM_WALK("ldr q24, [%[p0]], #16\n\t"
                         "ldr q25, [%[p1]], #16\n\t"
                         "ldr q26, [%[p2]], #16\n\t"
                         "ldr q27, [%[p3]], #16\n\t"
                         TCN_SDOT_LANE(0) TCN_SDOT_LANE(1) TCN_SDOT_LANE(2) TCN_SDOT_LANE(3))
            "st1 {v0.4s-v3.4s}, [%[ap]], #64\n\t"
            "st1 {v4.4s-v7.4s}, [%[ap]], #64\n\t"
            "st1 {v8.4s-v11.4s}, [%[ap]], #64\n\t"
            "st1 {v12.4s-v15.4s}, [%[ap]], #64\n\t"
            : [p0] "+r"(x0), [p1] "+r"(x1), [p2] "+r"(x2), [p3] "+r"(x3), [w] "+r"(w), [ap] "+r"(ap),
              [rc] "=&r"(rc), [sc] "=&r"(sc), [kc] "=&r"(kc)
            : [b] "r"(bias), TCN_ASM_WALK_OPERANDS(g)
            : "memory", "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9", "v10", "v11", "v12", "v13", "v14",
              "v15", "v24", "v25", "v26", "v27", "v28", "v29", "v30", "v31");
    const int32x4_t a00 = vld1q_s32(acc), a01 = vld1q_s32(acc + 4), a02 = vld1q_s32(acc + 8), a03 = vld1q_s32(acc + 12);
    const int32x4_t a10 = vld1q_s32(acc + 16), a11 = vld1q_s32(acc + 20), a12 = vld1q_s32(acc + 24), a13 = vld1q_s32(acc + 28);
    const int32x4_t a20 = vld1q_s32(acc + 32), a21 = vld1q_s32(acc + 36), a22 = vld1q_s32(acc + 40), a23 = vld1q_s32(acc + 44);
    const int32x4_t a30 = vld1q_s32(acc + 48), a31 = vld1q_s32(acc + 52), a32 = vld1q_s32(acc + 56), a33 = vld1q_s32(acc + 60);
    /* records loaded once for the 4 pixels (int8 stores may alias them, so reloads would follow) */
    const int32x4_t m0 = vld1q_s32(q), l0 = vld1q_s32(q + 4), r0 = vld1q_s32(q + 8);
    const int32x4_t m1 = vld1q_s32(q + 12), l1 = vld1q_s32(q + 16), r1 = vld1q_s32(q + 20);
    const int32x4_t m2 = vld1q_s32(q + 24), l2 = vld1q_s32(q + 28), r2 = vld1q_s32(q + 32);
    const int32x4_t m3 = vld1q_s32(q + 36), l3 = vld1q_s32(q + 40), r3 = vld1q_s32(q + 44);
#define TCN_RQV(a, v) (left ? tcn_requant4((a), m##v, l##v, r##v) : TCN_RQR((a), m##v, r##v))
#define TCN_PIX(o, a)                                                                                        \
    if (o) tcn_store_n(o, tcn_narrow16(TCN_RQV(a##0, 0), TCN_RQV(a##1, 1), TCN_RQV(a##2, 2), TCN_RQV(a##3, 3), s), n)
    TCN_PIX(o0, a0);
    TCN_PIX(o1, a1);
    TCN_PIX(o2, a2);
    TCN_PIX(o3, a3);
#undef TCN_PIX
#undef TCN_RQV
}

/* 1 pixel x 16 channels (one-pixel layers: fully connected): per 16 reduction values one input
 * load and 4 four-register weight loads feed 16 SDOTs. The walk's other pointers are dummies. */
#define TCN_SDOT_LANE1(L) "ld1 {v28.16b-v31.16b}, [%[w]], #64\n\t" TCN_SDOT_PIX(0, 1, 2, 3, "v24", L)
TCN_LAYER void tcn_tile_1x16(const int8_t *x0, const int8_t *w, tcn_walk wk, const int32_t *bias, const int32_t *q,
                             const tcn_out_stage *s, int8_t *o, int32_t n, int32_t left)
{
    const tcn_segs g = tcn_segments(wk);
    if (!TCN_CONST_WALK(g)) {
        const int8_t *const x[4] = {x0, x0, x0, x0};
        int8_t *const oo[4] = {o, 0, 0, 0};
        tcn_tile_4xn(x, w, 16, wk, bias, q, s, oo, n, left);
        return;
    }
    int32_t acc[16] __attribute__((aligned(16)));
    int32_t *ap = acc, rc, sc, kc;
    const int8_t *x1 = x0, *x2 = x0, *x3 = x0;
    __asm__ volatile("ld1 {v0.4s-v3.4s}, [%[b]]\n\t"
                     TCN_ASM_WALK("ldr q24, [%[p0]], #16\n\t" TCN_SDOT_LANE1(0) TCN_SDOT_LANE1(1) TCN_SDOT_LANE1(2) TCN_SDOT_LANE1(3))
                     "st1 {v0.4s-v3.4s}, [%[ap]]\n\t"
                     : [p0] "+r"(x0), [p1] "+r"(x1), [p2] "+r"(x2), [p3] "+r"(x3), [w] "+r"(w), [ap] "+r"(ap),
                       [rc] "=&r"(rc), [sc] "=&r"(sc), [kc] "=&r"(kc)
                     : [b] "r"(bias), TCN_ASM_WALK_OPERANDS(g)
                     : "memory", "v0", "v1", "v2", "v3", "v24", "v28", "v29", "v30", "v31");
    tcn_store_n(o, tcn_narrow16(TCN_RQL(vld1q_s32(acc), q, 0, left), TCN_RQL(vld1q_s32(acc + 4), q, 1, left),
                                TCN_RQL(vld1q_s32(acc + 8), q, 2, left), TCN_RQL(vld1q_s32(acc + 12), q, 3, left), s), n);
}

#include "tc_neon_mmla.h" /* SMMLA tiles on i8mm targets (kernels/neon-i8mm), else none */

/* One tile of up to 4 pixels over every output channel. x[j]: pixel j's reduction row (kp bytes;
 * unused pixels repeat a valid row), o[j]: its output or NULL. */
TCN_LAYER void tcn_gemm_tile(const tcn_gemm_params *p, const int8_t *const *x, tcn_walk wk, const int8_t *w, const int32_t *bias,
                          const int32_t *rq, const tcn_out_stage *s, int8_t *const *o)
{
    const int32_t c4 = (p->out_c + 3) & ~3, kp = p->kp; /* weights per channel: kp bytes */
#if TCN_HAVE_MMLA
    if (p->mmla) { /* whole 16-channel blocks, then the remainder: every nb a constant */
        int32_t c0 = 0;
        for (; c0 + 16 <= c4; c0 += 16, w += kp * 16) {
            int8_t *oc[4] = {o[0] ? o[0] + c0 : 0, o[1] ? o[1] + c0 : 0, o[2] ? o[2] + c0 : 0, o[3] ? o[3] + c0 : 0};
            const int32_t n = p->out_c - c0 < 16 ? p->out_c - c0 : 16;
            tcn_tile_mmla(x, w, 16, wk, bias + 2 * c0, rq + 3 * c0, s, oc, n, p->left);
        }
        if (c0 < c4) {
            int8_t *oc[4] = {o[0] ? o[0] + c0 : 0, o[1] ? o[1] + c0 : 0, o[2] ? o[2] + c0 : 0, o[3] ? o[3] + c0 : 0};
            tcn_tile_mmla(x, w, c4 & 15, wk, bias + 2 * c0, rq + 3 * c0, s, oc, p->out_c - c0, p->left);
        }
        return;
    }
#endif
    int32_t c0 = 0; /* whole 16-channel blocks, then the remainder: every nb a constant */
    for (; c0 + 16 <= c4; c0 += 16, w += kp * 16) {
        int8_t *oc[4] = {o[0] ? o[0] + c0 : 0, o[1] ? o[1] + c0 : 0, o[2] ? o[2] + c0 : 0, o[3] ? o[3] + c0 : 0};
        const int32_t n = p->out_c - c0 < 16 ? p->out_c - c0 : 16;
        if (p->out_h * p->out_w == 1) /* one pixel: no point in 4 */
            tcn_tile_1x16(x[0], w, wk, bias + c0, rq + 3 * c0, s, oc[0], n, p->left);
        else
            tcn_tile_4x16(x[0], x[1], x[2], x[3], w, wk, bias + c0, rq + 3 * c0, s, oc[0], oc[1], oc[2], oc[3], n, p->left);
    }
    if (c0 < c4) {
        int8_t *oc[4] = {o[0] ? o[0] + c0 : 0, o[1] ? o[1] + c0 : 0, o[2] ? o[2] + c0 : 0, o[3] ? o[3] + c0 : 0};
        tcn_tile_4xn(x, w, c4 & 15, wk, bias + c0, rq + 3 * c0, s, oc, p->out_c - c0, p->left);
    }
}

/* ---- row tiles: 4 neighbouring output pixels of one row, windows read tap by tap ----
 * Convolutions whose in_c is a multiple of 16 and whose output rows hold at least 4 pixels read
 * every window straight from a source image: the input itself when no window leaves it, else a
 * copy of the part the windows cover with the padding filled with the input zero point (so no
 * tile needs an im2col row or a per-pixel window check). A row's last tile overlaps the one before
 * it when out_w is not a multiple of 4 (the shared pixels are stored twice, with equal values). */

/* Largest padded copy, in bytes, on the stack; bigger layers keep the im2col path. */
#define TCN_PAD_MAX (96 * 1024)

static inline void tcn_fill16(int8_t *d, int8x16_t v, int32_t n) /* n: a multiple of 16 */
{
    for (; n >= 32; n -= 32, d += 32) { const int8x16x2_t vv = {{v, v}}; vst1q_s8_x2(d, vv); }
    if (n) vst1q_s8(d, v);
}

static inline void tcn_copy16(int8_t *d, const int8_t *s, int32_t n) /* n: a multiple of 16 */
{
    for (; n >= 64; n -= 64, d += 64, s += 64) vst1q_s8_x4(d, vld1q_s8_x4(s));
    for (; n > 0; n -= 16, d += 16, s += 16) vst1q_s8(d, vld1q_s8(s));
}

/* The source image's size (padded rows, padded columns) and whether it must be a copy. */
static inline int32_t tcn_src_h(const tcn_gemm_params *p) { return (p->out_h - 1) * p->stride_h + (p->k_h - 1) * p->dil_h + 1; }
static inline int32_t tcn_src_w(const tcn_gemm_params *p) { return (p->out_w - 1) * p->stride_w + (p->k_w - 1) * p->dil_w + 1; }

static inline int32_t tcn_needs_pad(const tcn_gemm_params *p)
{
    return p->pad_top > 0 || p->pad_left > 0 || tcn_src_h(p) > p->in_h || tcn_src_w(p) > p->in_w;
}

static inline int32_t tcn_by_rows(const tcn_gemm_params *p)
{
    return !p->direct && p->in_c % 16 == 0 && p->out_w >= 4 &&
           (!tcn_needs_pad(p) || tcn_src_h(p) * tcn_src_w(p) * p->in_c <= TCN_PAD_MAX);
}

/* dst [src_h][src_w][in_c]: source pixel (r, c) is input pixel (r - pad_top, c - pad_left), or
 * the zero point outside the input. */
TCN_LAYER void tcn_pad_copy(const tcn_gemm_params *p, const int8_t *in, int8_t *dst)
{
    const int32_t C = p->in_c, sh = tcn_src_h(p), sw = tcn_src_w(p);
    const int32_t c_lo = p->pad_left, c_hi = p->in_w + p->pad_left < sw ? p->in_w + p->pad_left : sw;
    const int8x16_t zp = vdupq_n_s8((int8_t)p->in_zp);
    for (int32_t r = 0; r < sh; ++r, dst += sw * C) {
        const int32_t iy = r - p->pad_top;
        if (iy < 0 || iy >= p->in_h || c_hi <= c_lo) {
            tcn_fill16(dst, zp, sw * C);
            continue;
        }
        tcn_fill16(dst, zp, c_lo * C);
        tcn_copy16(dst + c_lo * C, in + iy * p->in_w * C, (c_hi - c_lo) * C);
        tcn_fill16(dst + c_hi * C, zp, (sw - c_hi) * C);
    }
}

TCN_LAYER void tcn_conv_rows(const tcn_gemm_params *p, const int8_t *src, int32_t src_w, const int8_t *w,
                             const int32_t *bias, const int32_t *rq, const tcn_out_stage *s, int8_t *out)
{
    const int32_t C = p->in_c, step = p->stride_w * C;
    const tcn_walk taps = {p->k_h, p->k_w, p->dil_h * src_w * C, p->dil_w * C, C};
    for (int32_t oy = 0; oy < p->out_h; ++oy) {
        const int8_t *row = src + oy * p->stride_h * src_w * C;
        int8_t *orow = out + oy * p->out_w * p->out_c;
        for (int32_t ox = 0; ox < p->out_w; ox += 4) {
            const int32_t x0 = ox + 4 <= p->out_w ? ox : p->out_w - 4;
            const int8_t *x[4] = {row + x0 * step, row + (x0 + 1) * step, row + (x0 + 2) * step, row + (x0 + 3) * step};
            int8_t *o[4] = {orow + x0 * p->out_c, orow + (x0 + 1) * p->out_c, orow + (x0 + 2) * p->out_c, orow + (x0 + 3) * p->out_c};
            tcn_gemm_tile(p, x, taps, w, bias, rq, s, o);
        }
    }
}

/* ---- the layer ---- */

TCN_LAYER void tcn_conv_gemm_s8(const tcn_gemm_params *p, const int8_t *in, const int8_t *w, const int32_t *bias,
                                const int32_t *rq, int8_t *out)
{
    const int32_t npix = p->out_h * p->out_w, kp = p->kp;
    const tcn_out_stage s = tcn_out_stage_make(p->output_offset, p->act_min, p->act_max);
    if (tcn_by_rows(p)) {
        if (!tcn_needs_pad(p)) {
            tcn_conv_rows(p, in, p->in_w, w, bias, rq, &s, out);
            return;
        }
        int8_t src[tcn_src_h(p) * tcn_src_w(p) * p->in_c] __attribute__((aligned(16)));
        tcn_pad_copy(p, in, src);
        tcn_conv_rows(p, src, tcn_src_w(p), w, bias, rq, &s, out);
        return;
    }
    if (p->direct) {
        /* 1x1, stride 1, unpadded: pixel j's reduction row is read in place, kp bytes from the
         * pixel (past in_c they are the next pixels' values, times zero weights). The last pixels,
         * whose kp bytes would run past the input, are copied into zero-padded rows. */
        const int32_t C = p->in_c, safe = npix - (kp + C - 1) / C + 1;
        const tcn_walk linear = {1, 1, 0, 0, kp};
        int8_t col[C == kp ? 16 : 4 * kp] __attribute__((aligned(16)));
        if (C != kp) tcn_fill16(col, vdupq_n_s8(0), 4 * kp);
        int32_t px = 0;
        for (; px + 4 <= safe; px += 4) { /* 4 whole pixels read in place: no checks */
            const int8_t *const x[4] = {in + px * C, in + (px + 1) * C, in + (px + 2) * C, in + (px + 3) * C};
            int8_t *const o[4] = {out + px * p->out_c, out + (px + 1) * p->out_c, out + (px + 2) * p->out_c, out + (px + 3) * p->out_c};
            tcn_gemm_tile(p, x, linear, w, bias, rq, &s, o);
        }
        for (; px < npix; px += 4) {
            const int8_t *x[4];
            int8_t *o[4];
            for (int32_t j = 0; j < 4; ++j) {
                const int32_t pj = px + j < npix ? px + j : npix - 1;
                x[j] = in + pj * C;
                if (C != kp && pj >= safe) {
                    tcn_copy(col + j * kp, x[j], C);
                    x[j] = col + j * kp;
                }
                o[j] = px + j < npix ? out + (px + j) * p->out_c : 0;
            }
            tcn_gemm_tile(p, x, linear, w, bias, rq, &s, o);
        }
        return;
    }
    const int32_t span_h = (p->k_h - 1) * p->dil_h, span_w = (p->k_w - 1) * p->dil_w;
    const int32_t by_taps = p->k_h * p->k_w > 1 && p->in_c % 16 == 0; /* interior tiles skip im2col */
    const tcn_walk linear = {1, 1, 0, 0, kp};
    const tcn_walk taps = {p->k_h, p->k_w, p->dil_h * p->in_w * p->in_c, p->dil_w * p->in_c, p->in_c};
    int8_t col[4 * kp] __attribute__((aligned(16)));
    for (int32_t j = 0; j < 4; ++j) tcn_fill(col + j * kp + p->k, 0, kp - p->k); /* reduction padding */
    for (int32_t px = 0; px < npix; px += 4) {
        const int8_t *x[4];
        int8_t *o[4];
        int32_t inside = by_taps;
        for (int32_t j = 0; j < 4; ++j) {
            const int32_t pj = px + j < npix ? px + j : npix - 1;
            o[j] = px + j < npix ? out + (px + j) * p->out_c : 0;
            const int32_t oy = pj / p->out_w, ox = pj - oy * p->out_w;
            const int32_t iy0 = oy * p->stride_h - p->pad_top, ix0 = ox * p->stride_w - p->pad_left;
            inside = inside && iy0 >= 0 && iy0 + span_h < p->in_h && ix0 >= 0 && ix0 + span_w < p->in_w;
            x[j] = in + (iy0 * p->in_w + ix0) * p->in_c; /* the window origin */
        }
        if (inside) {
            tcn_gemm_tile(p, x, taps, w, bias, rq, &s, o);
        } else {
            for (int32_t j = 0; j < 4; ++j) {
                if (px + j < npix) tcn_im2col(p, in, px + j, col + j * kp);
                x[j] = px + j < npix ? col + j * kp : x[j - 1];
            }
            tcn_gemm_tile(p, x, linear, w, bias, rq, &s, o);
        }
    }
}

/* ---- depthwise ---- */

/* Tap t's input pixel for channel c: at a constant offset from the window's first pixel when the
 * window lies inside the input (base != 0), else through the per-pixel pointer table (padded taps
 * point at a row of zero points). Both forms fold to one load per tap once inlined. */
#define TCN_DW_X(t, c)                                                                                 \
    (base ? base + (((t) / p->k_w) * p->dil_h * p->in_w + ((t) % p->k_w) * p->dil_w) * p->c + (c)     \
          : tap[t] + (c))

/* 16 channels of one output pixel. Two taps' products are summed in int16 (|x w| <= 128 * 127:
 * neon_layers only specialises layers whose weights avoid -128), then widened into int32. */
TCN_LAYER int8x16_t tcn_dw16(const tcn_dw_params *p, const int8_t *base, const int8_t *const *tap, int32_t c,
                             const int8_t *w, const int32_t *bias, const int32_t *rq, const tcn_out_stage *s)
{
    const int32_t ntap = p->k_h * p->k_w;
    int32x4_t a0 = vld1q_s32(bias + c), a1 = vld1q_s32(bias + c + 4), a2 = vld1q_s32(bias + c + 8), a3 = vld1q_s32(bias + c + 12);
#pragma GCC unroll 32
    for (int32_t t = 0; t < ntap; t += 2) {
        const int8x16_t x0 = vld1q_s8(TCN_DW_X(t, c)), w0 = vld1q_s8(w + t * p->cp + c);
        int16x8_t pl = vmull_s8(vget_low_s8(x0), vget_low_s8(w0)), ph = vmull_high_s8(x0, w0);
        if (t + 1 < ntap) {
            const int8x16_t x1 = vld1q_s8(TCN_DW_X(t + 1, c)), w1 = vld1q_s8(w + (t + 1) * p->cp + c);
            pl = vmlal_s8(pl, vget_low_s8(x1), vget_low_s8(w1));
            ph = vmlal_high_s8(ph, x1, w1);
        }
        a0 = vaddw_s16(a0, vget_low_s16(pl));
        a1 = vaddw_high_s16(a1, pl);
        a2 = vaddw_s16(a2, vget_low_s16(ph));
        a3 = vaddw_high_s16(a3, ph);
    }
    const int32_t *q = rq + 3 * c;
    return tcn_narrow16(TCN_RQL(a0, q, 0, p->left), TCN_RQL(a1, q, 1, p->left), TCN_RQL(a2, q, 2, p->left),
                        TCN_RQL(a3, q, 3, p->left), s);
}

/* 8 channels of one output pixel (the low half of the result). */
TCN_LAYER int8x8_t tcn_dw8(const tcn_dw_params *p, const int8_t *base, const int8_t *const *tap, int32_t c,
                           const int8_t *w, const int32_t *bias, const int32_t *rq, const tcn_out_stage *s)
{
    const int32_t ntap = p->k_h * p->k_w;
    int32x4_t a0 = vld1q_s32(bias + c), a1 = vld1q_s32(bias + c + 4);
#pragma GCC unroll 32
    for (int32_t t = 0; t < ntap; t += 2) {
        int16x8_t pr = vmull_s8(vld1_s8(TCN_DW_X(t, c)), vld1_s8(w + t * p->cp + c));
        if (t + 1 < ntap) pr = vmlal_s8(pr, vld1_s8(TCN_DW_X(t + 1, c)), vld1_s8(w + (t + 1) * p->cp + c));
        a0 = vaddw_s16(a0, vget_low_s16(pr));
        a1 = vaddw_high_s16(a1, pr);
    }
    const int32_t *q = rq + 3 * c;
    const int32x4_t z = vdupq_n_s32(0);
    return vget_low_s8(tcn_narrow16(TCN_RQL(a0, q, 0, p->left), TCN_RQL(a1, q, 1, p->left), z, z, s));
}

/* Every channel of one output pixel: 16, then 8 at a time, the last C % 8 scalar. */
TCN_LAYER void tcn_dw_pixel(const tcn_dw_params *p, const int8_t *base, const int8_t *const *tap, const int8_t *w,
                            const int32_t *bias, const int32_t *rq, const tcn_out_stage *s, int8_t *o)
{
    const int32_t C = p->c, ntap = p->k_h * p->k_w;
    int32_t c = 0;
    for (; c + 16 <= C; c += 16) vst1q_s8(o + c, tcn_dw16(p, base, tap, c, w, bias, rq, s));
    for (; c + 8 <= C; c += 8) vst1_s8(o + c, tcn_dw8(p, base, tap, c, w, bias, rq, s));
    for (; c < C; ++c) {
        int32_t acc = bias[c];
        for (int32_t t = 0; t < ntap; ++t) acc += *TCN_DW_X(t, c) * w[t * p->cp + c];
        const int32_t *r = rq + 3 * (c & ~3) + (c & 3);
        o[c] = (int8_t)tc_clamp(tc_mbqm(acc, r[0], r[4] + r[8]) + p->output_offset, p->act_min, p->act_max);
    }
}

TCN_LAYER void tcn_depthwise_s8(const tcn_dw_params *p, const int8_t *in, const int8_t *w, const int32_t *bias,
                                const int32_t *rq, int8_t *out)
{
    const int32_t C = p->c, ntap = p->k_h * p->k_w;
    const int32_t span_h = (p->k_h - 1) * p->dil_h, span_w = (p->k_w - 1) * p->dil_w;
    const tcn_out_stage s = tcn_out_stage_make(p->output_offset, p->act_min, p->act_max);
    int8_t zrow[p->cp] __attribute__((aligned(16)));
    const int8_t *tap[ntap];
    tcn_fill(zrow, (int8_t)p->in_zp, p->cp);
    for (int32_t oy = 0; oy < p->out_h; ++oy) {
        const int32_t iy0 = oy * p->stride_h - p->pad_top;
        for (int32_t ox = 0; ox < p->out_w; ++ox) {
            const int32_t ix0 = ox * p->stride_w - p->pad_left;
            int8_t *o = out + (oy * p->out_w + ox) * C;
            if (iy0 >= 0 && iy0 + span_h < p->in_h && ix0 >= 0 && ix0 + span_w < p->in_w) {
                tcn_dw_pixel(p, in + (iy0 * p->in_w + ix0) * C, 0, w, bias, rq, &s, o);
                continue;
            }
            for (int32_t ky = 0, t = 0; ky < p->k_h; ++ky) {
                const int32_t iy = iy0 + ky * p->dil_h;
                for (int32_t kx = 0; kx < p->k_w; ++kx, ++t) {
                    const int32_t ix = ix0 + kx * p->dil_w;
                    tap[t] = (iy >= 0 && iy < p->in_h && ix >= 0 && ix < p->in_w) ? in + (iy * p->in_w + ix) * C : zrow;
                }
            }
            tcn_dw_pixel(p, 0, tap, w, bias, rq, &s, o);
        }
    }
}

#endif /* TC_NEON_GEMM_H */
