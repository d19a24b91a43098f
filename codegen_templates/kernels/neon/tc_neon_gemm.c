/* The NEON layer kernels are static inline in tc_neon_gemm.h: each layer's call is specialised
 * for its constant parameters. This file exists so the kernel family has its usual two files. */
#include "tc_neon_gemm.h"

typedef int tcn_neon_gemm_translation_unit_not_empty; /* ISO C: a translation unit declares something */
