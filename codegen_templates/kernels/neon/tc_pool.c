/* Pooling, int8, AArch64 NEON backend: same API and results as the portable kernel. Windows are
 * walked once per 16 channels (vector max, or int32 sums); the per-channel division (round half
 * away from zero) and requantization of the few pooled outputs stay scalar. */
#include "tc_pool.h"
#include "tc_fixedpoint.h"
#include "tc_neon.h"

/* Valid window rows/cols of one output pixel. */
typedef struct {
    int32_t y0, y1, x0, x1;
} tcn_window;

static inline tcn_window tcn_window_at(const tc_pool_params *p, int32_t oy, int32_t ox)
{
    const int32_t iy = oy * p->stride_h - p->pad_top, ix = ox * p->stride_w - p->pad_left;
    tcn_window w = {iy < 0 ? 0 : iy, iy + p->k_h > p->in_h ? p->in_h : iy + p->k_h,
                    ix < 0 ? 0 : ix, ix + p->k_w > p->in_w ? p->in_w : ix + p->k_w};
    return w;
}

void tc_max_pool_s8(const tc_pool_params *p, const int8_t *in, int8_t *out)
{
    const int32_t C = p->channels;
    const int8x16_t lo = vdupq_n_s8((int8_t)p->act_min), hi = vdupq_n_s8((int8_t)p->act_max);
    for (int32_t oy = 0; oy < p->out_h; ++oy) {
        for (int32_t ox = 0; ox < p->out_w; ++ox) {
            const tcn_window w = tcn_window_at(p, oy, ox);
            int8_t *o = out + (oy * p->out_w + ox) * C;
            int32_t c = 0;
            for (; c + 16 <= C; c += 16) {
                int8x16_t m = vdupq_n_s8(-128); /* with the clamp below, the same as the reference's -129 */
                for (int32_t y = w.y0; y < w.y1; ++y)
                    for (int32_t x = w.x0; x < w.x1; ++x) m = vmaxq_s8(m, vld1q_s8(in + (y * p->in_w + x) * C + c));
                vst1q_s8(o + c, vminq_s8(vmaxq_s8(m, lo), hi));
            }
            for (; c < C; ++c) {
                int32_t m = -129;
                for (int32_t y = w.y0; y < w.y1; ++y)
                    for (int32_t x = w.x0; x < w.x1; ++x) {
                        const int32_t v = in[(y * p->in_w + x) * C + c];
                        if (v > m) m = v;
                    }
                o[c] = (int8_t)tc_clamp(m, p->act_min, p->act_max);
            }
        }
    }
}

/* sums[c] = sum of channel c over the window (or the whole hw run), 16 channels per pass: in
 * int16 for windows of up to 256 pixels (one widening add per 8 values), else int32. */
static void tcn_window_sums(const int8_t *in, int32_t in_w, int32_t C, tcn_window w, int32_t *sums)
{
    int32_t c = 0;
    if ((w.y1 - w.y0) * (w.x1 - w.x0) <= 256) { /* int16 sums are exact: 256 * -128 fits */
        for (; c + 16 <= C; c += 16) {
            int16x8_t l = vdupq_n_s16(0), h = l;
            for (int32_t y = w.y0; y < w.y1; ++y)
                for (int32_t x = w.x0; x < w.x1; ++x) {
                    const int8x16_t v = vld1q_s8(in + (y * in_w + x) * C + c);
                    l = vaddw_s8(l, vget_low_s8(v));
                    h = vaddw_high_s8(h, v);
                }
            vst1q_s32(sums + c, vmovl_s16(vget_low_s16(l)));
            vst1q_s32(sums + c + 4, vmovl_high_s16(l));
            vst1q_s32(sums + c + 8, vmovl_s16(vget_low_s16(h)));
            vst1q_s32(sums + c + 12, vmovl_high_s16(h));
        }
    }
    for (; c + 16 <= C; c += 16) {
        int32x4_t s0 = vdupq_n_s32(0), s1 = s0, s2 = s0, s3 = s0;
        for (int32_t y = w.y0; y < w.y1; ++y)
            for (int32_t x = w.x0; x < w.x1; ++x) {
                const int8x16_t v = vld1q_s8(in + (y * in_w + x) * C + c);
                const int16x8_t l = vmovl_s8(vget_low_s8(v)), h = vmovl_high_s8(v);
                s0 = vaddw_s16(s0, vget_low_s16(l));
                s1 = vaddw_high_s16(s1, l);
                s2 = vaddw_s16(s2, vget_low_s16(h));
                s3 = vaddw_high_s16(s3, h);
            }
        vst1q_s32(sums + c, s0);
        vst1q_s32(sums + c + 4, s1);
        vst1q_s32(sums + c + 8, s2);
        vst1q_s32(sums + c + 12, s3);
    }
    for (; c < C; ++c) {
        int32_t s = 0;
        for (int32_t y = w.y0; y < w.y1; ++y)
            for (int32_t x = w.x0; x < w.x1; ++x) s += in[(y * in_w + x) * C + c];
        sums[c] = s;
    }
}

void tc_avg_pool_s8(const tc_pool_params *p, const int8_t *in, int8_t *out)
{
    const int32_t C = p->channels;
    int32_t sums[C];
    for (int32_t oy = 0; oy < p->out_h; ++oy) {
        for (int32_t ox = 0; ox < p->out_w; ++ox) {
            const tcn_window w = tcn_window_at(p, oy, ox);
            const int32_t valid = (w.y1 - w.y0) * (w.x1 - w.x0);
            const int32_t n = p->count_include_pad ? p->k_h * p->k_w : valid;
            const int32_t pad_sum = p->count_include_pad ? (n - valid) * p->input_zp : 0;
            int8_t *o = out + (oy * p->out_w + ox) * C;
            tcn_window_sums(in, p->in_w, C, w, sums);
            for (int32_t c = 0; c < C; ++c) {
                const int32_t acc = sums[c] + pad_sum;
                int32_t avg = acc > 0 ? (acc + n / 2) / n : (acc - n / 2) / n; /* round half away from zero */
                if (p->requantize) avg = tc_mbqm(avg - p->input_zp, p->multiplier, p->shift) + p->output_zp;
                o[c] = (int8_t)tc_clamp(avg, -128, 127);
            }
        }
    }
}

void tc_mean_hw_s8(const int8_t *in, int32_t hw, int32_t channels, int32_t input_zp, int32_t output_zp,
                   int32_t multiplier, int32_t shift, int8_t *out)
{
    int32_t sums[channels];
    const tcn_window all = {0, 1, 0, hw};
    tcn_window_sums(in, hw, channels, all, sums);
    for (int32_t c = 0; c < channels; ++c) {
        out[c] = (int8_t)tc_clamp(tc_mbqm(sums[c] - hw * input_zp, multiplier, shift) + output_zp, -128, 127);
    }
}

void tc_global_max_pool_s8(const int8_t *in, int32_t hw, int32_t channels, int8_t *out)
{
    int32_t c = 0;
    for (; c + 16 <= channels; c += 16) {
        int8x16_t m = vld1q_s8(in + c);
        for (int32_t i = 1; i < hw; ++i) m = vmaxq_s8(m, vld1q_s8(in + i * channels + c));
        vst1q_s8(out + c, m);
    }
    for (; c < channels; ++c) {
        int8_t m = in[c];
        for (int32_t i = 1; i < hw; ++i) {
            if (in[i * channels + c] > m) m = in[i * channels + c];
        }
        out[c] = m;
    }
}
