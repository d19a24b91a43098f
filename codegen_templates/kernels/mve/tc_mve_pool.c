/* The per-layer pooling kernels are tc_mve_pool.h, inlined into each layer's call. */
#include "tc_mve_pool.h"

void tcm_pool_unused(void)
{
}
