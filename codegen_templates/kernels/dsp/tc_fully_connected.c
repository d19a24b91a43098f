/* Fully connected, int8, Armv7E-M DSP backend (Cortex-M4/M7): the shared out-of-line kernel
 * behind the portable tc_fully_connected.h API; the code is in tc_fully_connected_dsp.h. */
#define TCD_FN static
#define TCD_INL static inline
#define TCD_SPEED 0
#define TC_RQ_ENABLED 0 /* layers with requantization records use per-layer code */
#include "tc_fully_connected_dsp.h"

void tc_fully_connected_s8(const tc_fc_params *p, const int8_t *in, const int8_t *w, const int32_t *bias,
                           const int32_t *mult, const int32_t *shift, int8_t *out)
{
    tcd_fully_connected_s8(p, in, w, bias, mult, shift, out);
}
