"""The fixed-point primitives against hand-worked values and against an exact rational model."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyconv.fixedpoint import (
    INT32_MAX,
    INT32_MIN,
    activation_range,
    conv_multipliers,
    multiply_by_quantized_multiplier,
    quantize,
    quantize_multiplier,
    rounding_divide_by_pot,
    saturating_rounding_doubling_high_mul,
)


def test_quantize_multiplier_known_values():
    assert quantize_multiplier(0.5) == (1 << 30, 0)
    assert quantize_multiplier(1.0) == (1 << 30, 1)
    assert quantize_multiplier(0.0) == (0, 0)
    m, e = quantize_multiplier(0.1)
    assert e == -3 and m == round(0.8 * 2**31)
    assert quantize_multiplier(2.0**-40) == (0, 0)  # below the representable range: TFLite zeroes it


def test_srdhm_saturates_and_rounds():
    assert saturating_rounding_doubling_high_mul(INT32_MIN, INT32_MIN) == INT32_MAX
    # 3 * 2^30 * 2 / 2^32 = 1.5 -> 2. For negative products gemmlowp's nudge is 1 - 2^30, so
    # -1.5 becomes (-2^32 + 1) / 2^31 truncated = -1: ties go toward +inf here, as in TFLite.
    assert saturating_rounding_doubling_high_mul(3, 1 << 30) == 2
    assert saturating_rounding_doubling_high_mul(-3, 1 << 30) == -1


def test_rounding_divide_by_pot_half_away_from_zero():
    assert list(rounding_divide_by_pot(np.array([5, -5, 6, -6, 7, -7]), 1)) == [3, -3, 3, -3, 4, -4]
    assert list(rounding_divide_by_pot(np.array([4, -4]), 0)) == [4, -4]


@settings(max_examples=300)
@given(st.integers(-(2**24), 2**24), st.floats(1e-6, 60.0, allow_nan=False))
def test_mbqm_is_within_one_of_the_exact_product(x, real):
    m, e = quantize_multiplier(real)
    got = int(multiply_by_quantized_multiplier(np.int64(x), m, e))
    exact = Fraction(x) * Fraction(m) * Fraction(2) ** (e - 31)
    if abs(exact) < 2**31 - 1:
        assert abs(got - exact) <= 1


def test_per_tensor_multiplier_uses_double_product():
    # TFLM's GetQuantizedConvolutionMultipler (the tflite-micro oracle): double(in) * double(w) / double(out),
    # the same rule as per channel. These scales make the float32 product give another Q31 multiplier.
    s_in, s_w, s_out = 0.0123456789, 0.00987654321, 0.0456
    expected = float(np.float32(s_in)) * float(np.float32(s_w)) / float(np.float32(s_out))
    assert conv_multipliers(s_in, np.array([s_w]), s_out)[0] == expected
    assert conv_multipliers(s_in, np.array([s_w, s_w]), s_out)[0] == expected


def test_activation_ranges():
    assert activation_range(None, 0.1, -5) == (-128, 127)
    assert activation_range((0.0, None), 0.1, -5) == (-5, 127)
    assert activation_range((0.0, 6.0), 0.05, -128) == (-128, -8)


def test_edge_quantize_rounds_half_away_from_zero():
    assert list(quantize(np.array([0.5, -0.5, 1.5, -1.5, 1000.0]), 1.0, 0)) == [1, -1, 2, -2, 127]
