/* The per-layer depthwise kernel is tc_mve_dw.h, inlined into each layer's call. */
#include "tc_mve_dw.h"

void tcm_dw_unused(void)
{
}
