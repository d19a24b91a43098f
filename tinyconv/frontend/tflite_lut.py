"""256-entry int8 lookup tables that reproduce TFLite Micro's int8 LOGISTIC, TANH and HARD_SWISH.

Each table is TFLM's own integer algorithm (reference kernels at tflite-micro 90b983c2) run in
NumPy on all 256 possible inputs, so a table lookup is bit-exact with the interpreter by
construction. Entry i is the output for the input value i - 128 (`lut[x + 128]`).

LOGISTIC / TANH (`reference_integer_ops::Logistic` / `Tanh`, prepare in logistic_common.cc /
tanh.cc), kInputIntegerBits = 4:
  * real = double(input_scale) · 2^27; (q, input_left_shift) = frexp(real);
    input_multiplier = round_half_away(q · 2^31);
  * radius = floor(15 · 2^27 / 2^input_left_shift)                    (CalculateInputRadius)
  * d = x - input_zero_point; d <= -radius → -128, d >= radius → 127; otherwise
    v = MultiplyByQuantizedMultiplier(d, input_multiplier, input_left_shift) as a Q4.27 value,
    logistic: out = clamp(RoundingDivideByPOT(gemmlowp::logistic(v), 23) - 128)   (Q0.31 → 1/256)
    tanh:     out = clamp(RoundingDivideByPOT(gemmlowp::tanh(v), 24))          (Q0.31 → 1/128)
  TFLM ignores the output quantization here (it requires scale 1/256 zp -128 for logistic; tanh's
  output is always read as 1/128, zp 0), so the table holds what TFLM writes.

HARD_SWISH (`reference_ops::HardSwish<int8_t>`, prepare in hard_swish_common.cc): 16-bit fixed
point; the float32 arithmetic of the prepare step is reproduced with np.float32.
"""

from __future__ import annotations

import math

import numpy as np

from tinyconv.fixedpoint import (
    INT32_MAX,
    INT32_MIN,
    multiply_by_quantized_multiplier,
    quantize_multiplier,
    rounding_divide_by_pot,
    saturating_rounding_doubling_high_mul,
)
from tinyconv.ops.softmax import exp_on_negative_values, one_over_one_plus_x_for_x_in_0_1

INPUTS = np.arange(-128, 128, dtype=np.int64)
_INPUT_INTEGER_BITS = 4

_srdhm = saturating_rounding_doubling_high_mul


def _round_half_away(x: float) -> int:
    return int(math.floor(x + 0.5)) if x >= 0 else -int(math.floor(-x + 0.5))


def _wrap32(x):
    return ((np.asarray(x, np.int64) + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def _sat_shl(x, n: int):
    """gemmlowp SaturatingRoundingMultiplyByPOT<n> for n > 0 (Rescale to fewer integer bits)."""
    return np.clip(np.asarray(x, np.int64) << n, INT32_MIN, INT32_MAX)


def _neg(x):
    """gemmlowp FixedPoint unary minus: int32 negation (wraps INT32_MIN, as in C)."""
    return _wrap32(-np.asarray(x, np.int64))


def sigmoid_tanh_params(input_scale: float) -> tuple[int, int, int]:
    """(input_multiplier, input_left_shift, input_range_radius) of TFLM's int8 logistic / tanh."""
    real = float(np.float32(input_scale)) * float(1 << (31 - _INPUT_INTEGER_BITS))
    q, shift = math.frexp(real)
    mult = _round_half_away(q * (1 << 31))
    radius = math.floor(1.0 * ((1 << _INPUT_INTEGER_BITS) - 1) * (1 << (31 - _INPUT_INTEGER_BITS)) / math.ldexp(1.0, shift))
    return mult, shift, radius


def gemmlowp_logistic(a: np.ndarray, integer_bits: int = _INPUT_INTEGER_BITS) -> np.ndarray:
    """gemmlowp::logistic of a Q`integer_bits` value, as Q0.31 (raw int32 in int64)."""
    a = np.asarray(a, np.int64)
    positive = a > 0
    abs_input = np.where(positive, a, _neg(a))
    result_if_positive = one_over_one_plus_x_for_x_in_0_1(exp_on_negative_values(_neg(abs_input), integer_bits))
    result_if_negative = _wrap32(INT32_MAX - result_if_positive)  # ResultF::One() - x, One() = INT32_MAX for Q0.31
    return np.where(a == 0, 1 << 30, np.where(positive, result_if_positive, result_if_negative))


def _one_minus_x_over_one_plus_x_for_x_in_0_1(a: np.ndarray) -> np.ndarray:
    """(1 - a) / (1 + a) for a Q0.31 value a in (0, 1), as Q0.31 (gemmlowp Newton-Raphson)."""
    s = np.asarray(a, np.int64) + INT32_MAX  # RoundingHalfSum(a, One)
    half_denominator = np.where(s >= 0, (s + 1) // 2, -((-s + 1) // 2))
    x = _wrap32(1515870810 + _srdhm(half_denominator, -1010580540))  # 48/17 - 32/17 · d, Q2.29
    for _ in range(3):
        half_denominator_times_x = _srdhm(half_denominator, x)
        one_minus = _wrap32((1 << 29) - half_denominator_times_x)
        x = _wrap32(x + _sat_shl(_srdhm(x, one_minus), 2))
    return _sat_shl(_wrap32(x - (1 << 29)), 2)  # Rescale<0>(x - F2::One())


def gemmlowp_tanh(a: np.ndarray, integer_bits: int = _INPUT_INTEGER_BITS) -> np.ndarray:
    """gemmlowp::tanh of a Q`integer_bits` value, as Q0.31."""
    a = np.asarray(a, np.int64)
    negative = a < 0
    n = np.where(negative, a, _neg(a))  # -|a|
    # neg_tanh_on_negative_values: ExactMulByPot<1> reinterprets n with one more integer bit.
    t = _one_minus_x_over_one_plus_x_for_x_in_0_1(exp_on_negative_values(n, integer_bits + 1))
    return np.where(a == 0, 0, np.where(negative, _neg(t), t))


def logistic_lut(input_scale: float, input_zero_point: int) -> np.ndarray:
    mult, shift, radius = sigmoid_tanh_params(input_scale)
    d = INPUTS - input_zero_point
    inside = (d > -radius) & (d < radius)
    v = multiply_by_quantized_multiplier(np.where(inside, d, 0), mult, shift)
    y = np.clip(rounding_divide_by_pot(gemmlowp_logistic(v), 31 - 8) - 128, -128, 127)
    return np.where(d <= -radius, -128, np.where(d >= radius, 127, y)).astype(np.int8)


def tanh_lut(input_scale: float, input_zero_point: int) -> np.ndarray:
    mult, shift, radius = sigmoid_tanh_params(input_scale)
    d = INPUTS - input_zero_point
    inside = (d > -radius) & (d < radius)
    v = multiply_by_quantized_multiplier(np.where(inside, d, 0), mult, shift)
    y = np.clip(rounding_divide_by_pot(gemmlowp_tanh(v), 31 - 7), -128, 127)
    return np.where(d <= -radius, -128, np.where(d >= radius, 127, y)).astype(np.int8)


# -- hard swish ---------------------------------------------------------------------------------------

INT16_MIN, INT16_MAX = -(1 << 15), (1 << 15) - 1


def _downscale_int32_to_int16_multiplier(m: int) -> int:
    if m >= INT32_MAX - (1 << 15):
        return INT16_MAX
    return (m + (1 << 15)) >> 16


def _srdhm16(a, b):
    """gemmlowp SaturatingRoundingDoublingHighMul for int16."""
    a = np.asarray(a, np.int64)
    b = np.asarray(b, np.int64)
    p = a * b
    nudge = np.where(p >= 0, 1 << 14, 1 - (1 << 14))
    s = p + nudge
    q = np.where(s >= 0, s // (1 << 15), -((-s) // (1 << 15)))  # C division
    return np.where((a == INT16_MIN) & (b == INT16_MIN), INT16_MAX, q)


def _sdhm16(a, b):
    """TFLite SaturatingDoublingHighMul (int16, rounding toward zero)."""
    a = np.asarray(a, np.int64)
    b = np.asarray(b, np.int64)
    p = a * b
    q = np.where(p >= 0, p // (1 << 15), -((-p) // (1 << 15)))
    return np.where((a == INT16_MIN) & (b == INT16_MIN), INT16_MAX, q)


def _sat_shl16(x, amount: int):
    return np.clip(np.asarray(x, np.int64) * (1 << amount), INT16_MIN, INT16_MAX)


def hard_swish_params(input_scale: float, output_scale: float) -> dict:
    """TFLM HardSwishPrepare (int8): the two 16-bit multipliers and their exponents."""
    hires_input_scale = np.float32(1.0 / 128.0) * np.float32(input_scale)
    reluish_scale = np.float32(3.0) / np.float32(32768.0)
    out_m32, out_exp = quantize_multiplier(float(np.float32(hires_input_scale / np.float32(output_scale))))
    rel_m32, rel_exp = quantize_multiplier(float(np.float32(hires_input_scale / reluish_scale)))
    return {
        "output_multiplier": _downscale_int32_to_int16_multiplier(out_m32),
        "output_exponent": out_exp,
        "reluish_multiplier": _downscale_int32_to_int16_multiplier(rel_m32),
        "reluish_exponent": rel_exp,
    }


def hard_swish_lut(input_scale: float, input_zero_point: int, output_scale: float, output_zero_point: int) -> np.ndarray:
    p = hard_swish_params(input_scale, output_scale)
    if p["output_exponent"] > 0:
        raise ValueError("the HARD_SWISH output multiplier exponent is positive (TFLM refuses these scales)")
    x = INPUTS - input_zero_point  # int16 in C; |x| <= 255
    hires = x * (1 << 7)
    preshift_out = _srdhm16(hires, p["output_multiplier"])
    reluish = hires
    e = p["reluish_exponent"]
    if e > 0:
        reluish = _sat_shl16(reluish, e - 1)
    reluish = _srdhm16(reluish, p["reluish_multiplier"])
    if e > 0:
        reluish = _sat_shl16(reluish, 1)
    if e < 0:
        reluish = rounding_divide_by_pot(reluish, -e)
    reluish = (reluish + (1 << 15)) >> 1
    out = _sdhm16(reluish, preshift_out)
    out = rounding_divide_by_pot(out, -p["output_exponent"])
    out = _wrap16(out + output_zero_point)
    return np.clip(out, -128, 127).astype(np.int8)


def _wrap16(x):
    return ((np.asarray(x, np.int64) + (1 << 15)) & 0xFFFF) - (1 << 15)


# -- RELU, RELU6, LEAKY_RELU ----------------------------------------------------------------------------


def _multiplier(real: float, what: str) -> tuple[int, int]:
    from tinyconv.fixedpoint import quantize_multiplier

    if not (math.isfinite(real) and real > 0):
        raise ValueError(f"{what} {real:g} must be positive and finite")
    mult, shift = quantize_multiplier(real)
    if not -31 <= shift <= 30:
        raise ValueError(f"{what} {real:g} is outside the range TFLite's fixed-point multiplier can represent")
    return mult, shift


def relu_lut(input_scale: float, input_zero_point: int, output_scale: float, output_zero_point: int) -> np.ndarray:
    """TFLM ReluQuantized: zp_out + MBQM(q - zp_in, double(s_in) / double(s_out)), clamped to [zp_out, 127]."""
    mult, shift = _multiplier(float(np.float32(input_scale)) / float(np.float32(output_scale)), "the input/output scale ratio")
    y = output_zero_point + multiply_by_quantized_multiplier(INPUTS - input_zero_point, mult, shift)
    return np.clip(y, max(-128, output_zero_point), 127).astype(np.int8)


def relu6_lut(input_scale: float, input_zero_point: int) -> np.ndarray:
    """TFLM Relu6Quantized: the integers clamped to [zp_in, q(6.0)] in the input's own parameters
    (q(6) = round(6.0f / s_in) + zp_in, float32, clamped to int8); no requantization."""
    six = int(np.clip(_round_half_away(float(np.float32(6.0) / np.float32(input_scale))) + input_zero_point, -128, 127))
    return np.clip(INPUTS, input_zero_point, six).astype(np.int8)


def leaky_relu_lut(input_scale: float, input_zero_point: int, output_scale: float, output_zero_point: int, alpha: float) -> np.ndarray:
    """TFLM QuantizeLeakyRelu: separate multipliers for x >= 0 (s_in / s_out) and x < 0
    (s_in · alpha / s_out), each formed in float32 as TFLM does, then widened to double."""
    si, so, a = np.float32(input_scale), np.float32(output_scale), np.float32(alpha)
    m_id, s_id = _multiplier(float(si / so), "the input/output scale ratio")
    d = INPUTS - input_zero_point
    real_alpha = float(si * a / so)
    if real_alpha == 0.0:
        neg = np.zeros_like(d)
    else:
        if not math.isfinite(real_alpha):
            raise ValueError(f"alpha {float(a):g} gives a non-finite multiplier")
        m_a, s_a = _multiplier(abs(real_alpha), "alpha · input/output scale ratio")
        neg = multiply_by_quantized_multiplier(d, m_a if real_alpha > 0 else -m_a, s_a)
    y = output_zero_point + np.where(d >= 0, multiply_by_quantized_multiplier(d, m_id, s_id), neg)
    return np.clip(y, -128, 127).astype(np.int8)
