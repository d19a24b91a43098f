/* Helpers shared by the AArch64 NEON kernels (kernels/neon/). */
#ifndef TC_NEON_H
#define TC_NEON_H

#include <arm_neon.h>

/* acc += 4-lane dot products of 16 int8 pairs: SDOT with the dot-product extension, else widening
 * multiplies and pairwise adds (same sums). */
#if defined(__ARM_FEATURE_DOTPROD)
#define TCN_DOT(acc, a, b) vdotq_s32((acc), (a), (b))
#else
static inline int32x4_t tcn_dot(int32x4_t acc, int8x16_t a, int8x16_t b)
{
    acc = vpadalq_s16(acc, vmull_s8(vget_low_s8(a), vget_low_s8(b)));
    return vpadalq_s16(acc, vmull_high_s8(a, b));
}
#define TCN_DOT(acc, a, b) tcn_dot((acc), (a), (b))
#endif

#endif /* TC_NEON_H */
