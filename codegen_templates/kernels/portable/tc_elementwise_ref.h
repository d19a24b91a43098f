/* Scalar Add / Mul element rules and the broadcasting loop, shared by every backend's
 * tc_elementwise.c (backends add vector paths for the flat, non-broadcast case). */
#ifndef TC_ELEMENTWISE_REF_H
#define TC_ELEMENTWISE_REF_H

#include "tc_elementwise.h"
#include "tc_fixedpoint.h"

/* How the element rules are defined: inline for backends that build vector loops around them;
 * the portable kernel defines plain `static` (one out-of-line copy: the shared kernel's size). */
#ifndef TC_ELEMENT_FN
#define TC_ELEMENT_FN static inline
#endif

TC_ELEMENT_FN int32_t add_one(const tc_binary_params *p, int32_t a, int32_t b)
{
    const int32_t sa = tc_mbqm((a + p->a_offset) * (1 << p->left_shift), p->a_multiplier, p->a_shift);
    const int32_t sb = tc_mbqm((b + p->b_offset) * (1 << p->left_shift), p->b_multiplier, p->b_shift);
    return tc_mbqm(sa + sb, p->output_multiplier, p->output_shift) + p->output_offset;
}

TC_ELEMENT_FN int32_t mul_one(const tc_binary_params *p, int32_t a, int32_t b)
{
    return tc_mbqm((a + p->a_offset) * (b + p->b_offset), p->output_multiplier, p->output_shift) + p->output_offset;
}

/* True when both inputs have the output's shape (no broadcasting): one flat loop then. */
static inline int same_shape(const tc_binary_params *p)
{
    int32_t stride = 1;
    for (int k = 3; k >= 0; --k) {
        if (p->dims[k] != 1 && (p->a_strides[k] != stride || p->b_strides[k] != stride)) return 0;
        stride *= p->dims[k];
    }
    return 1;
}

#define TC_BROADCAST_LOOP(FN)                                                                        \
    if (same_shape(p)) {                                                                             \
        const int32_t n = p->dims[0] * p->dims[1] * p->dims[2] * p->dims[3];                         \
        for (int32_t i = 0; i < n; ++i) out[i] = (int8_t)tc_clamp(FN(p, a[i], b[i]), p->act_min, p->act_max); \
        return;                                                                                      \
    }                                                                                                \
    int32_t o = 0;                                                                                   \
    for (int32_t i0 = 0; i0 < p->dims[0]; ++i0)                                                      \
        for (int32_t i1 = 0; i1 < p->dims[1]; ++i1)                                                  \
            for (int32_t i2 = 0; i2 < p->dims[2]; ++i2)                                              \
                for (int32_t i3 = 0; i3 < p->dims[3]; ++i3, ++o) {                                   \
                    const int32_t ia = i0 * p->a_strides[0] + i1 * p->a_strides[1] +                 \
                                       i2 * p->a_strides[2] + i3 * p->a_strides[3];                  \
                    const int32_t ib = i0 * p->b_strides[0] + i1 * p->b_strides[1] +                 \
                                       i2 * p->b_strides[2] + i3 * p->b_strides[3];                  \
                    out[o] = (int8_t)tc_clamp(FN(p, a[ia], b[ib]), p->act_min, p->act_max);          \
                }

#endif /* TC_ELEMENTWISE_REF_H */
