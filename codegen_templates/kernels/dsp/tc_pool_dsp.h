/* Global average pooling, int8, Armv7E-M DSP (header only: the generated model includes it for
 * layers that take this variant). Same arithmetic as tc_avg_pool_s8 over a window that is the
 * whole input: 4 channels per word, summed in int16 lanes by SXTAB16 (one instruction per 2
 * channels per pixel; exact while pixels * 128 < 2^15, which tinyconv/ops/pool.py checks). */
#ifndef TC_POOL_DSP_H
#define TC_POOL_DSP_H

#include <stdint.h>

#include "tc_dsp.h"
#include "tc_fixedpoint.h"

static inline void tcd_global_avg_pool_s8(const int8_t *in, int32_t hw, int32_t channels, int32_t requantize,
                                          int32_t input_zp, int32_t multiplier, int32_t shift, int32_t output_zp,
                                          int8_t *out)
{
    for (int32_t c = 0; c < channels; c += 4) {
        int32_t s02 = 0, s13 = 0; /* int16 lanes: channels (c, c+2) and (c+1, c+3) */
        const int8_t *x = in + c;
        for (int32_t i = 0; i < hw; ++i, x += channels) {
            const int32_t v = tcd_ld4(x);
            s02 = __sxtab16(s02, v);
            s13 = tcd_sxtab16_ror8(s13, v);
        }
        const int32_t sums[4] = {(int16_t)s02, (int16_t)s13, s02 >> 16, s13 >> 16};
        for (int32_t k = 0; k < 4; ++k) {
            const int32_t acc = sums[k];
            int32_t avg = acc > 0 ? (acc + hw / 2) / hw : (acc - hw / 2) / hw; /* half away from zero */
            if (requantize) avg = tc_mbqm(avg - input_zp, multiplier, shift) + output_zp;
            out[c + k] = (int8_t)tc_clamp(avg, -128, 127);
        }
    }
}

#endif /* TC_POOL_DSP_H */
