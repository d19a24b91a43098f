#include "tc_softmax.h"
#include "tc_fixedpoint.h"
#include "tc_softmax_fixed.h"

/* gemmlowp fixed-point helpers. Raw int32 values; "Qm" means m integer bits, 31 - m fraction bits. */

/* exp(a), a Q0 in [-1/4, 0): Taylor expansion around -1/8. */
static inline int32_t tc_sm_exp_quarter(int32_t a)
{
    const int32_t exp_minus_one_eighth = 1895147668; /* exp(-1/8), Q0 */
    const int32_t one_third = 715827883;             /* 1/3, Q0 */
    const int32_t x = a + (1 << 28);                 /* a + 1/8 */
    const int32_t x2 = tc_sat_rounding_doubling_high_mul(x, x);
    const int32_t x3 = tc_sat_rounding_doubling_high_mul(x2, x);
    const int32_t x4 = tc_sat_rounding_doubling_high_mul(x2, x2);
    const int32_t x4_over_4 = tc_rounding_divide_by_pot(x4, 2);
    const int32_t poly = tc_rounding_divide_by_pot(
        tc_sat_rounding_doubling_high_mul(x4_over_4 + x3, one_third) + x2, 1);
    return exp_minus_one_eighth + tc_sat_rounding_doubling_high_mul(exp_minus_one_eighth, x + poly);
}

/* exp(a) as Q0 for a Q5 value a <= 0. */
static inline int32_t tc_sm_exp_on_negative_values(int32_t a)
{
    static const int32_t barrel[7] = {1672461947, 1302514674, 790015084, 290630308, 39332535, 720401, 242};
    const int32_t one_quarter = (int32_t)1 << 24; /* 1/4 in Q5 */
    const int32_t a_mod_quarter_minus_one_quarter = (a & (one_quarter - 1)) - one_quarter;
    int32_t result = tc_sm_exp_quarter(tc_sm_sat_shl(a_mod_quarter_minus_one_quarter, 5));
    const int32_t remainder = a_mod_quarter_minus_one_quarter - a;
    for (int k = 0; k < 7; ++k) {
        /* bit of 2^(k - 2) in Q5: multiply by exp(-2^(k - 2)) */
        if (remainder & ((int32_t)1 << (24 + k))) {
            result = tc_sat_rounding_doubling_high_mul(result, barrel[k]);
        }
    }
    return a == 0 ? INT32_MAX : result;
}

/* x rescaled to Q5: MBQM with a left shift (x >= diff_min keeps it inside int32). */
static inline int32_t tc_sm_scaled_diff(int32_t diff, int32_t multiplier, int32_t left_shift)
{
    return tc_mbqm(diff, multiplier, left_shift);
}

void tc_softmax_s8(const int8_t *in, int32_t rows, int32_t depth, int32_t input_multiplier,
                   int32_t input_left_shift, int32_t diff_min, int8_t *out)
{
    for (int32_t r = 0; r < rows; ++r) {
        const int8_t *x = in + (int64_t)r * depth;
        int8_t *y = out + (int64_t)r * depth;
        int32_t max_in_row = -128;
        for (int32_t c = 0; c < depth; ++c) {
            if (x[c] > max_in_row) max_in_row = x[c];
        }
        int32_t sum_of_exps = 0; /* Q12 */
        for (int32_t c = 0; c < depth; ++c) {
            const int32_t diff = (int32_t)x[c] - max_in_row;
            if (diff >= diff_min) {
                const int32_t e = tc_sm_exp_on_negative_values(tc_sm_scaled_diff(diff, input_multiplier, input_left_shift));
                sum_of_exps += tc_rounding_divide_by_pot(e, 12);
            }
        }
        /* Reciprocal of the sum (sum >= 2^19 > 0: the row maximum contributes exp(0)). */
        int out_shift;
        const int32_t shifted_scale = tc_sm_reciprocal(sum_of_exps, &out_shift);
        for (int32_t c = 0; c < depth; ++c) {
            const int32_t diff = (int32_t)x[c] - max_in_row;
            int32_t v = -128;
            if (diff >= diff_min && out_shift <= 31) {
                const int32_t e = tc_sm_exp_on_negative_values(tc_sm_scaled_diff(diff, input_multiplier, input_left_shift));
                const int32_t unsat = tc_rounding_divide_by_pot(tc_sat_rounding_doubling_high_mul(shifted_scale, e), out_shift);
                v = tc_clamp(unsat - 128, -128, 127);
            }
            /* out_shift > 31 (sum of exps >= 512): every output rounds to 0, i.e. -128. */
            y[c] = (int8_t)v;
        }
    }
}

/* Wrapping int32 addition (gemmlowp's raw + on int32, no undefined behaviour here). */
static inline int32_t tc_sm_add(int32_t a, int32_t b)
{
    return (int32_t)((uint32_t)a + (uint32_t)b);
}

static inline int32_t tc_sm_sat_add(int32_t a, int32_t b)
{
    const int64_t v = (int64_t)a + b;
    return v > INT32_MAX ? INT32_MAX : (v < INT32_MIN ? INT32_MIN : (int32_t)v);
}

/* log(x) as Q5 for a Q12 value x >= 1: x normalised by its leading zeros two ways (directly and
 * premultiplied by sqrt(1/2)), the better-scaled one kept, then a rational approximation of the
 * log of the remaining factor (TFLite log_x_for_x_greater_than_or_equal_to_1<5>, Q6 accumulation). */
static int32_t tc_sm_log_q12(int32_t x)
{
    const int32_t log_2 = 1488522236, sqrt_sqrt_half = 1805811301, sqrt_half = 1518500250;
    const int32_t alpha_n = 117049297, alpha_d = 127690142, alpha_i = 1057819769, alpha_f = 638450708;
    const int32_t shifted_quarter = (int32_t)1 << 23; /* 1/4 in Q6 */
    const int headroom_a_plus_1 = tc_sm_clz32((uint32_t)x);
    const int32_t r_a = tc_sm_sat_shl(tc_sat_rounding_doubling_high_mul(tc_sm_sat_shl(x, headroom_a_plus_1 - 1), sqrt_half), 1);
    const int32_t pow2_a = tc_sm_sat_add(tc_sm_sat_shl(12 - headroom_a_plus_1, 25), shifted_quarter);
    const int headroom_b = tc_sm_clz32((uint32_t)tc_sat_rounding_doubling_high_mul(x, sqrt_half)) - 1;
    const int32_t r_b = tc_sm_sat_shl(x, headroom_b);
    const int32_t pow2_b = tc_sm_sat_add(tc_sm_sat_shl(12 - headroom_b, 25), -shifted_quarter);
    const int32_t r = r_a < r_b ? r_a : r_b;
    const int32_t pow2 = pow2_a > pow2_b ? pow2_a : pow2_b;

    const int64_t s = (int64_t)r + sqrt_sqrt_half;
    const int32_t p = (int32_t)((s + (s >= 0 ? 1 : -1)) / 2);
    int32_t q = tc_sm_add(r, -sqrt_sqrt_half);
    q = tc_sm_add(q, q);
    const int32_t q2 = tc_sat_rounding_doubling_high_mul(q, q);
    const int32_t num = tc_sm_add(tc_sat_rounding_doubling_high_mul(q, r),
                                  tc_sat_rounding_doubling_high_mul(tc_sat_rounding_doubling_high_mul(q, q2), alpha_n));
    const int32_t inner = tc_sm_add(tc_sm_add(alpha_i, q), tc_sat_rounding_doubling_high_mul(alpha_d, q2));
    const int32_t denom_minus_one = tc_sm_add(tc_sat_rounding_doubling_high_mul(p, inner), tc_sat_rounding_doubling_high_mul(alpha_f, q));
    const int32_t recip = tc_sm_one_over_one_plus_x(denom_minus_one);
    const int32_t acc = tc_sm_add(tc_sat_rounding_doubling_high_mul(pow2, log_2),
                                  tc_sat_rounding_doubling_high_mul(tc_rounding_divide_by_pot(num, 6), recip));
    return tc_sm_sat_shl(acc, 1); /* Q6 → Q5 */
}

void tc_log_softmax_s8(const int8_t *in, int32_t rows, int32_t depth, int32_t input_multiplier,
                       int32_t input_left_shift, int32_t diff_min, int32_t reverse_multiplier,
                       int32_t reverse_shift, int8_t *out)
{
    for (int32_t r = 0; r < rows; ++r) {
        const int8_t *x = in + (int64_t)r * depth;
        int8_t *y = out + (int64_t)r * depth;
        int32_t max_in_row = -128;
        for (int32_t c = 0; c < depth; ++c) {
            if (x[c] > max_in_row) max_in_row = x[c];
        }
        int32_t sum_of_exps = 0; /* Q12; depth <= 4095 keeps it inside int32 */
        for (int32_t c = 0; c < depth; ++c) {
            const int32_t diff = (int32_t)x[c] - max_in_row;
            if (diff >= diff_min) {
                const int32_t e = tc_sm_exp_on_negative_values(tc_sm_scaled_diff(diff, input_multiplier, input_left_shift));
                sum_of_exps += tc_rounding_divide_by_pot(e, 12);
            }
        }
        const int32_t log_sum = tc_sm_log_q12(sum_of_exps); /* Q5, >= 0 */
        const int32_t reverse = tc_mbqm(tc_sm_add(log_sum, INT32_MIN), reverse_multiplier, reverse_shift);
        const int32_t adjusted_diff_min = reverse > diff_min - 1 ? reverse : diff_min - 1;
        for (int32_t c = 0; c < depth; ++c) {
            const int32_t diff = (int32_t)x[c] - max_in_row;
            int32_t v = -128;
            if (diff > adjusted_diff_min) {
                const int32_t scaled = tc_sm_scaled_diff(diff, input_multiplier, input_left_shift);
                v = tc_clamp(tc_rounding_divide_by_pot(tc_sm_add(scaled, -log_sum), 22) + 127, -128, 127);
            }
            y[c] = (int8_t)v;
        }
    }
}
