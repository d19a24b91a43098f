/* SMMLA (i8mm) GEMM tiles: none on plain Armv8.2-A. The aarch64-i8mm target takes
 * kernels/neon-i8mm/tc_neon_mmla.h instead (same name, the more specialised backend wins).
 * Included by tc_neon_gemm.h only. */
#ifndef TC_NEON_MMLA_H
#define TC_NEON_MMLA_H

#define TCN_HAVE_MMLA 0

#endif /* TC_NEON_MMLA_H */
