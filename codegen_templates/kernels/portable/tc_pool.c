#include "tc_pool.h"
#include "tc_fixedpoint.h"

void tc_max_pool_s8(const tc_pool_params *p, const int8_t *in, int8_t *out)
{
    for (int32_t oy = 0; oy < p->out_h; ++oy) {
        for (int32_t ox = 0; ox < p->out_w; ++ox) {
            for (int32_t c = 0; c < p->channels; ++c) {
                int32_t m = -129; /* below every int8: padding never wins */
                for (int32_t ky = 0; ky < p->k_h; ++ky) {
                    const int32_t iy = oy * p->stride_h - p->pad_top + ky;
                    if (iy < 0 || iy >= p->in_h) continue;
                    for (int32_t kx = 0; kx < p->k_w; ++kx) {
                        const int32_t ix = ox * p->stride_w - p->pad_left + kx;
                        if (ix < 0 || ix >= p->in_w) continue;
                        const int32_t v = in[(iy * p->in_w + ix) * p->channels + c];
                        if (v > m) m = v;
                    }
                }
                out[(oy * p->out_w + ox) * p->channels + c] = (int8_t)tc_clamp(m, p->act_min, p->act_max);
            }
        }
    }
}

void tc_avg_pool_s8(const tc_pool_params *p, const int8_t *in, int8_t *out)
{
    for (int32_t oy = 0; oy < p->out_h; ++oy) {
        for (int32_t ox = 0; ox < p->out_w; ++ox) {
            for (int32_t c = 0; c < p->channels; ++c) {
                int32_t acc = 0, n = 0;
                for (int32_t ky = 0; ky < p->k_h; ++ky) {
                    const int32_t iy = oy * p->stride_h - p->pad_top + ky;
                    for (int32_t kx = 0; kx < p->k_w; ++kx) {
                        const int32_t ix = ox * p->stride_w - p->pad_left + kx;
                        if (iy < 0 || iy >= p->in_h || ix < 0 || ix >= p->in_w) {
                            if (p->count_include_pad) { acc += p->input_zp; ++n; }
                            continue;
                        }
                        acc += in[(iy * p->in_w + ix) * p->channels + c];
                        ++n;
                    }
                }
                /* Round half away from zero (C division truncates). */
                int32_t avg = acc > 0 ? (acc + n / 2) / n : (acc - n / 2) / n;
                if (p->requantize) {
                    avg = tc_mbqm(avg - p->input_zp, p->multiplier, p->shift) + p->output_zp;
                }
                out[(oy * p->out_w + ox) * p->channels + c] = (int8_t)tc_clamp(avg, -128, 127);
            }
        }
    }
}

void tc_mean_hw_s8(const int8_t *in, int32_t hw, int32_t channels, int32_t input_zp, int32_t output_zp,
                   int32_t multiplier, int32_t shift, int8_t *out)
{
    for (int32_t c = 0; c < channels; ++c) {
        int32_t acc = 0;
        for (int32_t i = 0; i < hw; ++i) {
            acc += (int32_t)in[i * channels + c] - input_zp;
        }
        out[c] = (int8_t)tc_clamp(tc_mbqm(acc, multiplier, shift) + output_zp, -128, 127);
    }
}

void tc_global_max_pool_s8(const int8_t *in, int32_t hw, int32_t channels, int8_t *out)
{
    for (int32_t c = 0; c < channels; ++c) {
        int8_t m = in[c];
        for (int32_t i = 1; i < hw; ++i) {
            if (in[i * channels + c] > m) m = in[i * channels + c];
        }
        out[c] = m;
    }
}
