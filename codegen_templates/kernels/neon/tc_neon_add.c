/* The specialised Add is static inline in tc_neon_add.h (one function per layer); this file exists
 * so the kernel family has its usual two files. */
#include "tc_neon_add.h"

typedef int tcn_neon_add_translation_unit_not_empty; /* ISO C: a translation unit declares something */
