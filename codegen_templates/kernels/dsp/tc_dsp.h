/* Helpers shared by the Armv7E-M DSP kernels (kernels/dsp/). */
#ifndef TC_DSP_H
#define TC_DSP_H

#include <stdint.h>
#include <string.h>
#include <arm_acle.h>

#if !defined(__ARM_FEATURE_DSP)
#error "kernels/dsp needs the Armv7E-M DSP extension (cortex-m4, -m7, -m33, -m55)"
#endif

static inline int32_t tcd_ld4(const int8_t *p)
{
    int32_t v;
    memcpy(&v, p, 4); /* one (unaligned) LDR */
    return v;
}

/* gcc 12's arm_acle.h has no __ror: the rotate that exposes bytes 1 and 3 to SXTB16. */
static inline int32_t tcd_ror8(int32_t v)
{
    const uint32_t u = (uint32_t)v;
    return (int32_t)((u >> 8) | (u << 24));
}

/* SXTB16(v ROR 8): bytes 1 and 3 of v, sign-extended, in one instruction (as below). */
static inline int32_t tcd_sxtb16_ror8(int32_t v)
{
    int32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(v));
    return r;
}

/* a + SXTB16(v ROR 8): bytes 1 and 3 of v, sign-extended and added to a's halves, in one
 * instruction (gcc 12 emits the rotate separately). */
static inline int32_t tcd_sxtab16_ror8(int32_t a, int32_t v)
{
    int32_t r;
    __asm__("sxtab16 %0, %1, %2, ror #8" : "=r"(r) : "r"(a), "r"(v));
    return r;
}

#endif /* TC_DSP_H */
