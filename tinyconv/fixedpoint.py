"""TFLite int8 fixed-point primitives, vectorised in NumPy int64 (see ../shared/docs/QUANT.md).

These are the bit-exact definitions that every C kernel mirrors in `codegen_templates/kernels`.
"""

from __future__ import annotations

import math

import numpy as np

from tinyconv.errors import ScaleRangeError

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1


# Largest left shift a multiplier may have: every kernel computes x · 2^shift of an int32 x in
# int64 before saturating, which is defined for shift <= 31. A multiplier of 2^31 or more turns
# every non-zero accumulator into -128 or 127, so such a layer is refused, not computed.
MAX_LEFT_SHIFT = 31


def quantize_multiplier(real: float) -> tuple[int, int]:
    """TFLite QuantizeMultiplier: real ≈ m · 2^(shift - 31), m a Q31 int32, shift positive = left.

    Every multiplier tinyconv forms goes through here, so this is where a scale combination that
    the int32 kernels cannot compute exactly (shift > MAX_LEFT_SHIFT, or not finite) is refused.
    """
    if not math.isfinite(real):
        raise ScaleRangeError(f"its scales give a requantization multiplier of {real}", hint="check the layer's scales")
    if real == 0.0:
        return 0, 0
    q, e = math.frexp(real)
    scaled = q * (1 << 31)  # exact: a power-of-two scaling of a double
    m = int(math.floor(abs(scaled)))
    if abs(scaled) - m >= 0.5:  # std::round: half away from zero
        m += 1
    m = m if scaled >= 0 else -m
    if m == 1 << 31:
        m //= 2
        e += 1
    if e < -31:
        m, e = 0, 0
    if e > MAX_LEFT_SHIFT:
        raise ScaleRangeError(f"its scales give a requantization multiplier of {real:.3g} (≥ 2^{MAX_LEFT_SHIFT}), "
                              "which int32 fixed point cannot apply", hint="check the layer's weight and output scales")  # fmt: skip
    return m, e


def quantize_multipliers(reals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pairs = [quantize_multiplier(float(r)) for r in np.asarray(reals, np.float64).reshape(-1)]
    return (np.array([p[0] for p in pairs], np.int32), np.array([p[1] for p in pairs], np.int32))


def conv_multipliers(input_scale: float, weight_scales: np.ndarray, output_scale: float) -> np.ndarray:
    """The real multipliers exactly as TFLite Micro forms them (QUANT.md, 'The multiplier itself').

    double(in) * double(w[c]) / double(out) for per-channel and per-tensor weights alike
    (`PopulateConvolutionQuantizationParams`, `GetQuantizedConvolutionMultipler`): a float32
    product of the scales changes the Q31 multiplier of 9 of ad01's 10 layers.
    """
    ws = np.asarray(weight_scales, np.float32).reshape(-1)
    return np.array([float(np.float32(input_scale)) * float(w) / float(np.float32(output_scale)) for w in ws])


def saturating_rounding_doubling_high_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = np.asarray(a, np.int64)
    b = np.asarray(b, np.int64)
    overflow = (a == INT32_MIN) & (b == INT32_MIN)
    p = a * b
    nudge = np.where(p >= 0, 1 << 30, 1 - (1 << 30))
    s = p + nudge
    # C division truncates toward zero; numpy // floors, so divide magnitudes.
    q = np.where(s >= 0, s >> 31, -((-s) >> 31))
    return np.where(overflow, INT32_MAX, q).astype(np.int64)


def rounding_divide_by_pot(x: np.ndarray, exponent: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.int64)
    exponent = np.asarray(exponent, np.int64)
    mask = (np.int64(1) << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> exponent) + (remainder > threshold)


def multiply_by_quantized_multiplier(x: np.ndarray, multiplier: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """TFLite reference MultiplyByQuantizedMultiplier (double rounding), broadcasting over the last axis."""
    shift = np.asarray(shift, np.int64)
    left = np.maximum(shift, 0)
    right = np.maximum(-shift, 0)
    x = np.asarray(x, np.int64) * (np.int64(1) << left)
    # Saturate as int32 would (x * 2^left is computed in int32 in C; TFLite guarantees no overflow
    # for valid params, the clip keeps the reference total and identical to the C kernels).
    x = np.clip(x, INT32_MIN, INT32_MAX)
    return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(x, multiplier), right)


def requantize(acc: np.ndarray, multiplier, shift, out_zp: int, act_min: int, act_max: int) -> np.ndarray:
    """int32 accumulator → int8: MBQM, add the output zero point, clamp."""
    y = multiply_by_quantized_multiplier(acc, multiplier, shift) + out_zp
    return np.clip(y, act_min, act_max).astype(np.int8)


def activation_range(act, scale: float, zero_point: int) -> tuple[int, int]:
    """Fused activation (None or a float (lo, hi) clamp) → int8 [act_min, act_max]."""
    lo, hi = -128, 127
    if act is not None:
        a_lo, a_hi = act
        # TFLite divides in float32 (CalculateActivationRangeQuantized), then rounds half away.
        if a_lo is not None and math.isfinite(a_lo):
            lo = max(lo, zero_point + int(_round_half_away(float(np.float32(a_lo) / np.float32(scale)))))
        if a_hi is not None and math.isfinite(a_hi):
            hi = min(hi, zero_point + int(_round_half_away(float(np.float32(a_hi) / np.float32(scale)))))
    return lo, max(lo, hi)


def _round_half_away(x: float) -> float:
    return math.floor(x + 0.5) if x >= 0 else -math.floor(-x + 0.5)


def quantize(x: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """float → int8 at the model edge: round half away from zero (TFLite's rule), then clamp.

    tinyconv's reference, the harness and the generated `*_quantize_input` helper all use this;
    ONNX QuantizeLinear rounds half to even, so an exact tie can differ by one step there.
    """
    v = np.asarray(x, np.float64) / np.float64(np.float32(scale))
    r = np.sign(v) * np.floor(np.abs(v) + 0.5)
    return np.clip(r + zero_point, -128, 127).astype(np.int8)


def dequantize(q: np.ndarray, scale, zero_point) -> np.ndarray:
    return ((np.asarray(q, np.int32) - zero_point) * np.asarray(scale, np.float32)).astype(np.float32)
