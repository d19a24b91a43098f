/* SMMLA (i8mm) GEMM tiles for the aarch64-i8mm target; included by tc_neon_gemm.h only, after
 * its SDOT tiles and output helpers. Plain NEON targets get kernels/neon/tc_neon_mmla.h (none). */
#ifndef TC_NEON_MMLA_H
#define TC_NEON_MMLA_H

#if !defined(__ARM_FEATURE_MATMUL_INT8)
#error "the aarch64-i8mm kernels need the int8 matrix multiply extension (-march=armv8.6-a+i8mm)"
#endif

#define TCN_HAVE_MMLA 1

/* One SMMLA reduction step (16 reduction values) of a full 16-channel block: the pixel pairs'
 * 2x8 operands, A (pixels 0, 1; v16 for values 0-7, v17 for 8-15) and B (pixels 2, 3; v18, v19),
 * times 4 channel pairs of weights per four-register load (v28-v31). */
#define TCN_MM(acc, A, wv) "smmla v" #acc ".4s, " A ".16b, " wv ".16b\n\t"
#define TCN_MM_QUAD(a0, a1, a2, a3, b0, b1, b2, b3, A, B)                                                  \
    "ld1 {v28.16b-v31.16b}, [%[w]], #64\n\t" TCN_MM(a0, A, "v28") TCN_MM(b0, B, "v28") TCN_MM(a1, A, "v29") \
        TCN_MM(b1, B, "v29") TCN_MM(a2, A, "v30") TCN_MM(b2, B, "v30") TCN_MM(a3, A, "v31") TCN_MM(b3, B, "v31")
#define TCN_MM_STEP                                                                                         \
    "ldr q24, [%[p0]], #16\n\t"                                                                             \
    "ldr q25, [%[p1]], #16\n\t"                                                                             \
    "ldr q26, [%[p2]], #16\n\t"                                                                             \
    "ldr q27, [%[p3]], #16\n\t"                                                                             \
    "zip1 v16.2d, v24.2d, v25.2d\n\t"                                                                       \
    "zip1 v18.2d, v26.2d, v27.2d\n\t"                                                                       \
    "zip2 v17.2d, v24.2d, v25.2d\n\t"                                                                       \
    "zip2 v19.2d, v26.2d, v27.2d\n\t"                                                                       \
    TCN_MM_QUAD(0, 1, 2, 3, 8, 9, 10, 11, "v16", "v18") TCN_MM_QUAD(4, 5, 6, 7, 12, 13, 14, 15, "v16", "v18")     \
    TCN_MM_QUAD(0, 1, 2, 3, 8, 9, 10, 11, "v17", "v19") TCN_MM_QUAD(4, 5, 6, 7, 12, 13, 14, 15, "v17", "v19")

/* 4 pixels x 16 channels with SMMLA in assembler (the walk as in tcn_tile_4x16): 4 input loads, 4
 * zips and 4 four-register weight loads feed 32 SMMLAs per 16 reduction values. Accumulators
 * v0-v7 (pixels 0, 1) and v8-v15 (pixels 2, 3), channel pair j in v(j) / v(8 + j), stored to
 * acc[pixel pair][pair j][4] at the end. */
TCN_LAYER void tcn_tile_mmla16(const int8_t *const *x, const int8_t *w, tcn_walk wk, const int32_t *bias,
                               int32_t acc[2][8][4])
{
    const tcn_segs g = tcn_segments(wk);
    const int8_t *x0 = x[0], *x1 = x[1], *x2 = x[2], *x3 = x[3];
    int32_t *ap = &acc[0][0][0], rc, sc, kc;
    __asm__ volatile("ld1 {v0.4s-v3.4s}, [%[b]]\n\t"
                     "ld1 {v8.4s-v11.4s}, [%[b]]\n\t"
                     "ldp q4, q5, [%[b], #64]\n\t"
                     "ldp q6, q7, [%[b], #96]\n\t"
                     "ldp q12, q13, [%[b], #64]\n\t"
                     "ldp q14, q15, [%[b], #96]\n\t"
                     TCN_ASM_WALK(TCN_MM_STEP)
                     "st1 {v0.4s-v3.4s}, [%[ap]], #64\n\t"
                     "st1 {v4.4s-v7.4s}, [%[ap]], #64\n\t"
                     "st1 {v8.4s-v11.4s}, [%[ap]], #64\n\t"
                     "st1 {v12.4s-v15.4s}, [%[ap]], #64\n\t"
                     : [p0] "+r"(x0), [p1] "+r"(x1), [p2] "+r"(x2), [p3] "+r"(x3), [w] "+r"(w), [ap] "+r"(ap),
                       [rc] "=&r"(rc), [sc] "=&r"(sc), [kc] "=&r"(kc)
                     : [b] "r"(bias), TCN_ASM_WALK_OPERANDS(g)
                     : "memory", "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9", "v10", "v11", "v12", "v13",
                       "v14", "v15", "v16", "v17", "v18", "v19", "v24", "v25", "v26", "v27", "v28", "v29", "v30", "v31");
}

/* 4 pixels x nb channels (nb 4..16, a multiple of 4) with SMMLA: a 2x8 operand holds 8 reduction
 * values of a pixel pair (zipped from two 16-byte row loads), the weights 2 channels x 8 values
 * (neon_layers._pack_i8mm_weights), each instruction a 2x2 block of 32 MACs. Bias in channel-pair
 * layout [b(2j), b(2j+1), b(2j), b(2j+1)]. */
TCN_LAYER void tcn_tile_mmla(const int8_t *const *x, const int8_t *w, int32_t nb, tcn_walk wk, const int32_t *bias,
                             const int32_t *q, const tcn_out_stage *s, int8_t *const *o, int32_t n, int32_t left)
{
    const int32_t np = nb / 2;
    int32x4_t acc[2][8];
    const tcn_segs g = tcn_segments(wk);
    if (np == 8 && TCN_CONST_WALK(g)) { /* a full block: the assembler tile above */
        int32_t a[2][8][4] __attribute__((aligned(16)));
        tcn_tile_mmla16(x, w, wk, bias, a);
#pragma GCC unroll 8
        for (int32_t j = 0; j < 8; ++j) acc[0][j] = vld1q_s32(a[0][j]), acc[1][j] = vld1q_s32(a[1][j]);
    } else {
#pragma GCC unroll 8
        for (int32_t j = 0; j < np; ++j) acc[0][j] = acc[1][j] = vld1q_s32(bias + 4 * j);
        TCN_WALK_BEGIN(wk)
            const int64x2_t v0 = vreinterpretq_s64_s8(vld1q_s8(x[0] + k)), v1 = vreinterpretq_s64_s8(vld1q_s8(x[1] + k));
            const int64x2_t v2 = vreinterpretq_s64_s8(vld1q_s8(x[2] + k)), v3 = vreinterpretq_s64_s8(vld1q_s8(x[3] + k));
            const int8x16_t a_lo = vreinterpretq_s8_s64(vzip1q_s64(v0, v1)), a_hi = vreinterpretq_s8_s64(vzip2q_s64(v0, v1));
            const int8x16_t b_lo = vreinterpretq_s8_s64(vzip1q_s64(v2, v3)), b_hi = vreinterpretq_s8_s64(vzip2q_s64(v2, v3));
            /* weights 4 vectors per LD1 where the channel pairs allow (np = 8: a full block) */
#define TCN_MMLA_HALF(a, b)                                                                                     \
        do {                                                                                                    \
            if (np == 8) {                                                                                      \
                const int8x16x4_t w0 = vld1q_s8_x4(w), w1 = vld1q_s8_x4(w + 64);                                \
                _Pragma("GCC unroll 4") for (int32_t j = 0; j < 4; ++j) {                                       \
                    acc[0][j] = vmmlaq_s32(acc[0][j], a, w0.val[j]);                                            \
                    acc[1][j] = vmmlaq_s32(acc[1][j], b, w0.val[j]);                                            \
                    acc[0][j + 4] = vmmlaq_s32(acc[0][j + 4], a, w1.val[j]);                                    \
                    acc[1][j + 4] = vmmlaq_s32(acc[1][j + 4], b, w1.val[j]);                                    \
                }                                                                                               \
            } else {                                                                                            \
                _Pragma("GCC unroll 8") for (int32_t j = 0; j < np; ++j) {                                      \
                    const int8x16_t wv = vld1q_s8(w + 16 * j);                                                  \
                    acc[0][j] = vmmlaq_s32(acc[0][j], a, wv);                                                   \
                    acc[1][j] = vmmlaq_s32(acc[1][j], b, wv);                                                   \
                }                                                                                               \
            }                                                                                                   \
            w += 16 * np;                                                                                       \
        } while (0)
            TCN_MMLA_HALF(a_lo, b_lo);
            __asm__ volatile("" ::: "memory"); /* keep the next weights' loads here (register pressure) */
            TCN_MMLA_HALF(a_hi, b_hi);
#undef TCN_MMLA_HALF
        }
    }
    /* acc[i][j] lanes: (pixel 2i, channel 2j), (2i, 2j+1), (2i+1, 2j), (2i+1, 2j+1) */
#pragma GCC unroll 4
    for (int32_t px = 0; px < 4; ++px) {
        if (!o[px]) continue;
        int32x4_t r[4];
#pragma GCC unroll 4
        for (int32_t v = 0; v < 4; ++v) {
            if (v < nb / 4) {
                const int64x2_t lo = vreinterpretq_s64_s32(acc[px / 2][2 * v]), hi = vreinterpretq_s64_s32(acc[px / 2][2 * v + 1]);
                const int32x4_t a = vreinterpretq_s32_s64(px & 1 ? vzip2q_s64(lo, hi) : vzip1q_s64(lo, hi));
                const int32x4_t m = vld1q_s32(q + 12 * v), l = vld1q_s32(q + 12 * v + 4), rr = vld1q_s32(q + 12 * v + 8);
                r[v] = left ? tcn_requant4(a, m, l, rr) : TCN_RQR(a, m, rr);
            } else {
                r[v] = vdupq_n_s32(0);
            }
        }
        tcn_store_n(o[px], tcn_narrow16(r[0], r[1], r[2], r[3], s), n);
    }
}

#endif /* TC_NEON_MMLA_H */
