/* Helpers shared by the Helium (MVE) kernels (kernels/mve/). */
#ifndef TC_MVE_H
#define TC_MVE_H

#include <stdint.h>
#include <arm_mve.h>

#if !defined(__ARM_FEATURE_MVE)
#error "kernels/mve needs Helium (MVE): -mcpu=cortex-m55 -mfloat-abi=hard"
#endif

/* Four channels of tc_mbqm + output offset + clamp, exactly (any shift in [-31, 31], any m):
 * x * 2^left saturated (VQSHL; tc_mbqm saturates the int64 product the same way), then
 * SaturatingRoundingDoublingHighMul = VQRDMULH: (2 a m + 2^31) >> 32 = floor((a m + 2^30) / 2^31),
 * which equals the reference's truncating (p + nudge) / 2^31 for every p, and both give INT32_MAX
 * for a = m = INT32_MIN. RoundingDivideByPOT rounds half away from zero; VRSHL (negative shift)
 * rounds half up, so negative x first gets -1 (saturating, so INT32_MIN stays put): for x < 0,
 * (x - 1 + 2^(n-1)) >> n is the reference's result, and for n = 0 the fix-up is 0. */
static inline int32x4_t tcm_requant4(int32x4_t acc, int32x4_t m, int32x4_t sh, int32_t out_off, int32_t lo, int32_t hi)
{
    const int32x4_t zero = vdupq_n_s32(0);
    const int32x4_t rneg = vminq_s32(sh, zero); /* -right */
    int32x4_t x = vqrdmulhq_s32(vqshlq_s32(acc, vmaxq_s32(sh, zero)), m);
    x = vqaddq_s32(x, vshrq_n_s32(vandq_s32(x, rneg), 31));
    x = vaddq_n_s32(vrshlq_s32(x, rneg), out_off);
    return vminq_s32(vmaxq_s32(x, vdupq_n_s32(lo)), vdupq_n_s32(hi));
}

/* The same with the shift split offline into a right part (min(shift, 0), a VRSHL amount) and a
 * left part (max(shift, 0)); has_left is a compile-time constant of the layer, so layers whose
 * shifts are all right shifts skip the VQSHL. */
#define TCM_INLINE static inline __attribute__((always_inline))

TCM_INLINE int32x4_t tcm_requant_lr(int32x4_t acc, int32x4_t m, int32x4_t right, int32x4_t left, int has_left,
                                    int32_t out_off, int32_t lo, int32_t hi)
{
    int32x4_t x = vqrdmulhq_s32(has_left ? vqshlq_s32(acc, left) : acc, m);
    x = vqaddq_s32(x, vshrq_n_s32(vandq_s32(x, right), 31));
    x = vaddq_n_s32(vrshlq_s32(x, right), out_off);
    return vminq_s32(vmaxq_s32(x, vdupq_n_s32(lo)), vdupq_n_s32(hi));
}

/* One block of a requantization record (tinyconv/ops/helium.py requant_records): int32
 * [base][multiplier][right shift][left shift, when the layer has one], 4 lanes each. */
#define TCM_REC_WORDS(has_left) ((has_left) ? 16 : 12)

TCM_INLINE int32x4_t tcm_requant_rec(int32x4_t acc, const int32_t *rec, int has_left, int32_t out_off, int32_t lo, int32_t hi)
{
    return tcm_requant_lr(acc, vldrwq_s32(rec + 4), vldrwq_s32(rec + 8), has_left ? vldrwq_s32(rec + 12) : vdupq_n_s32(0),
                          has_left, out_off, lo, hi);
}

/* A predicated narrowing store of the first n < 4 lanes. GCC 12 models predicated stores as
 * writing the whole memory operand, which could make an earlier store to the bytes past the n
 * written look dead; the memory clobber keeps every earlier store. */
TCM_INLINE void tcm_store_tail(int8_t *d, int32x4_t v, mve_pred16_t pr)
{
    vstrbq_p_s32(d, v, pr);
    __asm__ volatile("" ::: "memory");
}

/* (s0, s1, s2, s3) as one vector. (The two-lane VMOV Qd[2], Qd[0], Rt, Rt2 would take 2
 * instructions instead of 4, but written as the assembler documents it, it put the values in the
 * wrong lanes on QEMU 7.2, whose VMOV_from_2gp writes Rt to the lower lane; not used.) */
TCM_INLINE int32x4_t tcm_lanes4(int32_t s0, int32_t s1, int32_t s2, int32_t s3)
{
    int32x4_t v = vdupq_n_s32(s0);
    v = vsetq_lane_s32(s1, v, 1);
    v = vsetq_lane_s32(s2, v, 2);
    return vsetq_lane_s32(s3, v, 3);
}

#endif /* TC_MVE_H */
