#include "tc_copy.h"
#include "tc_fixedpoint.h"

void tc_copy4d_s8(int8_t *dst, const int32_t ds[4], const int8_t *src, const int32_t ss[4], const int32_t d[4])
{
    for (int32_t i0 = 0; i0 < d[0]; ++i0)
        for (int32_t i1 = 0; i1 < d[1]; ++i1)
            for (int32_t i2 = 0; i2 < d[2]; ++i2)
                for (int32_t i3 = 0; i3 < d[3]; ++i3)
                    dst[i0 * ds[0] + i1 * ds[1] + i2 * ds[2] + i3 * ds[3]] =
                        src[i0 * ss[0] + i1 * ss[1] + i2 * ss[2] + i3 * ss[3]];
}

void tc_requant_copy4d_s8(int8_t *dst, const int32_t ds[4], const int8_t *src, const int32_t ss[4],
                          const int32_t d[4], int32_t input_zp, int32_t output_zp, int32_t multiplier,
                          int32_t shift)
{
    for (int32_t i0 = 0; i0 < d[0]; ++i0)
        for (int32_t i1 = 0; i1 < d[1]; ++i1)
            for (int32_t i2 = 0; i2 < d[2]; ++i2)
                for (int32_t i3 = 0; i3 < d[3]; ++i3) {
                    const int32_t v = src[i0 * ss[0] + i1 * ss[1] + i2 * ss[2] + i3 * ss[3]];
                    const int32_t q = tc_mbqm(v - input_zp, multiplier, shift) + output_zp;
                    dst[i0 * ds[0] + i1 * ds[1] + i2 * ds[2] + i3 * ds[3]] = (int8_t)tc_clamp(q, -128, 127);
                }
}

void tc_fill_s8(int8_t *dst, int32_t n, int8_t value)
{
    for (int32_t i = 0; i < n; ++i) dst[i] = value;
}

void tc_move_s8(int8_t *dst, const int8_t *src, int32_t n)
{
    if (dst == src) return;
    for (int32_t i = 0; i < n; ++i) dst[i] = src[i];
}

void tc_resize_nearest_s8(const int8_t *in, int32_t in_w, int32_t channels, const int32_t *rows, int32_t out_h,
                          const int32_t *cols, int32_t out_w, int8_t *out)
{
    for (int32_t y = 0; y < out_h; ++y)
        for (int32_t x = 0; x < out_w; ++x)
            for (int32_t c = 0; c < channels; ++c)
                out[(y * out_w + x) * channels + c] = in[(rows[y] * in_w + cols[x]) * channels + c];
}
