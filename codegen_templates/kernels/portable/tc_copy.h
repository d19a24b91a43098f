/* Data movement for reshape, transpose, slice, split, concat, pad and nearest resize.
 * One strided 4-D copy: dst[d_off + i·dst_strides] = src[s_off + i·src_strides] for i < dims.
 * The strides are computed by the compiler per layer. */
#ifndef TC_COPY_H
#define TC_COPY_H

#include <stdint.h>

void tc_copy4d_s8(int8_t *dst, const int32_t dst_strides[4], const int8_t *src, const int32_t src_strides[4],
                  const int32_t dims[4]);
/* As tc_copy4d_s8, requantizing each value: MBQM(v - input_zp, mult, shift) + output_zp. */
void tc_requant_copy4d_s8(int8_t *dst, const int32_t dst_strides[4], const int8_t *src,
                          const int32_t src_strides[4], const int32_t dims[4], int32_t input_zp,
                          int32_t output_zp, int32_t multiplier, int32_t shift);
void tc_fill_s8(int8_t *dst, int32_t n, int8_t value);
/* Copy n bytes unless dst == src (reshape in place). Regions never partially overlap. */
void tc_move_s8(int8_t *dst, const int8_t *src, int32_t n);
/* NHWC nearest resize: out[y][x] = in[rows[y]][cols[x]]. */
void tc_resize_nearest_s8(const int8_t *in, int32_t in_w, int32_t channels, const int32_t *rows, int32_t out_h,
                          const int32_t *cols, int32_t out_w, int8_t *out);

#endif
