/* Convolution, int8, Armv7E-M DSP backend (Cortex-M4/M7): the shared out-of-line kernels behind
 * the portable tc_conv.h API. The code is in tc_conv_dsp.h, which per-layer specialised layers
 * (--optimize speed) inline with literal parameters. */
#define TCD_FN static
#define TCD_INL static inline
#define TCD_SPEED 0
#define TC_RQ_ENABLED 0 /* layers with requantization records use per-layer code */
#include "tc_conv_dsp.h"

void tc_conv_s8(const tc_conv_params *p, const int8_t *in, const int8_t *w, const int32_t *bias,
                const int32_t *mult, const int32_t *shift, int8_t *out)
{
    tcd_conv_s8(p, in, w, bias, mult, shift, out);
}

void tc_depthwise_conv_s8(const tc_conv_params *p, const int8_t *in, const int8_t *w, const int32_t *bias,
                          const int32_t *mult, const int32_t *shift, int8_t *out)
{
    tcd_depthwise_conv_s8(p, in, w, bias, mult, shift, out);
}
