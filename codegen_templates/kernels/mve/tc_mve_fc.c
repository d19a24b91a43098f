/* The per-layer fully connected kernel is tc_mve_fc.h, inlined into each layer's call. */
#include "tc_mve_fc.h"

void tcm_fc_unused(void)
{
}
