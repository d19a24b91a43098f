/* The small-input-channel convolution is static inline in tc_neon_small_c.h (specialised per
 * layer); this file exists so the kernel family has its usual two files. */
#include "tc_neon_small_c.h"

typedef int tcn_neon_small_c_translation_unit_not_empty; /* ISO C: a translation unit declares something */
