"""Softmax over the last axis, int8 in / int8 out (TFLite Micro reference semantics).

The output is quantized with scale 1/256 and zero point -128 (the TFLite int8 convention), so the
op's output params are FIXED.

Prepare (TFLM `CalculateSoftmaxParams`, int8 input):
  * real = min(double(beta) * double(input_scale) * 2^(31 - 5), 2^31 - 1)   (kScaledDiffIntegerBits = 5)
  * (input_multiplier, input_left_shift) = QuantizeMultiplier(real); TFLite requires real > 1 and
    a shift >= 0 (QuantizeMultiplierGreaterThanOne);
  * diff_min = -floor((2^5 - 1) · 2^(31 - 5) / 2^input_left_shift)   (CalculateInputRadius).

Eval (TFLite `reference_ops::Softmax` for int8 → int8, gemmlowp fixed point), per row:
  * diff = x - max(row); entries with diff < diff_min contribute nothing and output -128;
  * d = MBQM(diff, input_multiplier, input_left_shift), a Q5.26 value <= 0;
  * e = exp_on_negative_values(d), a Q0.31 value;
  * sum = Σ RoundingDivideByPOT(e, 12), a Q12.19 accumulator (kAccumulationIntegerBits = 12);
  * 1/sum by `GetReciprocal`: normalise sum to [1, 2), one_over_one_plus_x_for_x_in_0_1
    (Newton-Raphson, three steps) and num_bits_over_unit = 12 - clz(sum);
  * out = clamp(RoundingDivideByPOT(SRDHM(recip, e), num_bits_over_unit + 31 - 8) - 128, -128, 127).

Everything below is NumPy int64 arithmetic emulating the int32 operations exactly: saturating
shifts clip, plain additions wrap (none wraps for valid parameters), and
`codegen_templates/kernels/portable/tc_softmax.c` is the same computation in C.

One deliberate deviation, documented: when the sum of exponentials reaches 512 (at least 512
entries essentially at the row maximum) the final shift exceeds 31, which gemmlowp asserts
against and the C++ code leaves undefined; tinyconv (reference and kernel) returns the
mathematically right value of that shift, 0, i.e. an output of -128.
"""

from __future__ import annotations

import math

import numpy as np

from tinyconv.errors import ModelError
from tinyconv.fixedpoint import (
    INT32_MAX,
    INT32_MIN,
    multiply_by_quantized_multiplier,
    quantize_multiplier,
    rounding_divide_by_pot,
    saturating_rounding_doubling_high_mul,
)
from tinyconv.ir import QuantParams
from tinyconv.ops.base import FIXED, Op, qparams, register

SCALED_DIFF_INTEGER_BITS = 5
ACCUMULATION_INTEGER_BITS = 12
OUTPUT_SCALE = 1.0 / 256.0
OUTPUT_ZERO_POINT = -128
# Each exp term is at most 2^19 in Q12.19; 4095 of them still fit in an int32 accumulator.
MAX_ROW_LENGTH = 4095

# exp(-2^k) in Q0.31 for k = -2..4 (gemmlowp's barrel shifter constants).
_EXP_BARREL = ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308), (2, 39332535), (3, 720401), (4, 242))
_EXP_MINUS_ONE_EIGHTH = 1895147668  # exp(-1/8), Q0.31
_ONE_THIRD = 715827883  # 1/3, Q0.31
_48_OVER_17 = 1515870810  # Q2.29
_NEG_32_OVER_17 = -1010580540  # Q2.29


def _wrap32(x):
    """int32 two's-complement wrap-around of an int64 array (plain C int32 addition)."""
    return ((np.asarray(x, np.int64) + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def _sat_shl(x, n: int):
    """gemmlowp SaturatingRoundingMultiplyByPOT with a positive exponent: saturating x · 2^n."""
    return np.clip(np.asarray(x, np.int64) << n, INT32_MIN, INT32_MAX)


_srdhm = saturating_rounding_doubling_high_mul
_rdbpot = rounding_divide_by_pot


def exp_on_interval_between_negative_one_quarter_and_0_excl(a: np.ndarray) -> np.ndarray:
    """exp(a) for a Q0.31 value a in [-1/4, 0): Taylor series around -1/8 (gemmlowp)."""
    x = _wrap32(a + (1 << 28))
    x2 = _srdhm(x, x)
    x3 = _srdhm(x2, x)
    x4 = _srdhm(x2, x2)
    x4_over_4 = _rdbpot(x4, 2)
    poly = _rdbpot(_wrap32(_srdhm(_wrap32(x4_over_4 + x3), _ONE_THIRD) + x2), 1)
    return _wrap32(_EXP_MINUS_ONE_EIGHTH + _srdhm(_EXP_MINUS_ONE_EIGHTH, _wrap32(x + poly)))


def exp_on_negative_values(a: np.ndarray, integer_bits: int = SCALED_DIFF_INTEGER_BITS) -> np.ndarray:
    """exp(a) in Q0.31 for a Q`integer_bits`.(31 - integer_bits) value a <= 0 (gemmlowp)."""
    a = np.asarray(a, np.int64)
    frac = 31 - integer_bits
    one_quarter = 1 << (frac - 2)
    a_mod_quarter_minus_one_quarter = _wrap32((a & (one_quarter - 1)) - one_quarter)
    result = exp_on_interval_between_negative_one_quarter_and_0_excl(_sat_shl(a_mod_quarter_minus_one_quarter, integer_bits))
    remainder = _wrap32(a_mod_quarter_minus_one_quarter - a)
    for exponent, multiplier in _EXP_BARREL:
        if integer_bits > exponent:
            bit = np.int64(1) << (frac + exponent)
            result = np.where((remainder & bit) != 0, _srdhm(result, multiplier), result)
    if integer_bits > 5:
        result = np.where(a < -(1 << (36 - integer_bits)), 0, result)
    return np.where(a == 0, INT32_MAX, result).astype(np.int64)


def one_over_one_plus_x_for_x_in_0_1(a: np.ndarray) -> np.ndarray:
    """1 / (1 + a) for a Q0.31 value a in [0, 1), as Q0.31 (gemmlowp Newton-Raphson)."""
    s = np.asarray(a, np.int64) + INT32_MAX  # RoundingHalfSum(a, One): (s ± 1) / 2, C division
    half_denominator = np.where(s >= 0, (s + 1) // 2, -((-s + 1) // 2))
    x = _wrap32(_48_OVER_17 + _srdhm(half_denominator, _NEG_32_OVER_17))  # Q2.29
    for _ in range(3):
        half_denominator_times_x = _srdhm(half_denominator, x)
        one_minus = _wrap32((1 << 29) - half_denominator_times_x)
        x = _wrap32(x + _sat_shl(_srdhm(x, one_minus), 2))
    return _sat_shl(x, 1)


def _clz32(x: np.ndarray) -> np.ndarray:
    """Leading zeros of a positive value as uint32 (exact through float64 for |x| < 2^53)."""
    _, e = np.frexp(np.asarray(x, np.int64).astype(np.float64))
    return np.where(np.asarray(x) == 0, 32, 32 - e).astype(np.int64)


def get_reciprocal(x: np.ndarray, integer_digits: int) -> tuple[np.ndarray, np.ndarray]:
    """TFLite GetReciprocal: (1/x as Q0.31 scaled into [1/2, 1], num_bits_over_unit)."""
    x = np.asarray(x, np.int64)
    headroom_plus_one = _clz32(x)
    num_bits_over_unit = integer_digits - headroom_plus_one
    shifted_sum_minus_one = _wrap32(((x << headroom_plus_one) & 0xFFFFFFFF) - (1 << 31))
    return one_over_one_plus_x_for_x_in_0_1(shifted_sum_minus_one), num_bits_over_unit


def softmax_int8(x: np.ndarray, input_multiplier: int, input_left_shift: int, diff_min: int) -> np.ndarray:
    """int8 softmax over the last axis of x (TFLite reference, see the module docstring)."""
    xi = np.asarray(x, np.int64)
    diff = xi - xi.max(axis=-1, keepdims=True)
    valid = diff >= diff_min
    # Masked entries are replaced by 0 before scaling; their result is discarded below.
    rescaled = multiply_by_quantized_multiplier(np.where(valid, diff, 0), input_multiplier, input_left_shift)
    exp_q0 = exp_on_negative_values(rescaled)
    terms = np.where(valid, _rdbpot(exp_q0, ACCUMULATION_INTEGER_BITS), 0)
    sum_of_exps = _wrap32(terms.sum(axis=-1, keepdims=True))
    recip, num_bits_over_unit = get_reciprocal(sum_of_exps, ACCUMULATION_INTEGER_BITS)
    exponent = num_bits_over_unit + 31 - 8
    prod = _srdhm(recip, exp_q0)
    # Shifts beyond 31 (sum of exps >= 512) give 0 here, see the module docstring.
    unsat = np.where(exponent > 31, 0, _rdbpot(prod, np.minimum(exponent, 62)))
    out = np.clip(unsat - 128, -128, 127)
    return np.where(valid, out, -128).astype(np.int8)


def softmax_params(beta: float, input_scale: float) -> dict:
    """TFLM CalculateSoftmaxParams for an int8 input: multiplier, left shift and diff_min."""
    real = float(np.float32(beta)) * float(np.float32(input_scale)) * float(1 << (31 - SCALED_DIFF_INTEGER_BITS))
    real = min(real, float((1 << 31) - 1))
    if not real > 1.0:
        raise ValueError(f"beta · input_scale = {real / (1 << 26):.3g} is too small for the int8 softmax (needs > 2^-26)")
    multiplier, shift = quantize_multiplier(real)
    if shift < 0:
        raise ValueError("softmax input multiplier has a negative shift")
    radius = math.floor(1.0 * ((1 << SCALED_DIFF_INTEGER_BITS) - 1) * (1 << (31 - SCALED_DIFF_INTEGER_BITS)) / (1 << shift))
    return {"input_multiplier": int(multiplier), "input_left_shift": int(shift), "diff_min": -int(radius)}


@register
class Softmax(Op):
    name = "softmax"
    output_policy = FIXED
    kernel_files = ("tc_softmax",)

    def infer_shapes(self, node, graph):
        shape = tuple(graph.tensors[node.inputs[0]].shape)
        axis = node.attrs.get("axis", -1)
        if len(shape) == 0 or axis not in (-1, len(shape) - 1):
            raise ModelError(f"{node.where()}: softmax is supported over the last axis only (got axis {axis} of a {len(shape)}-D tensor)", node=node.name)
        return [shape]

    def float_ref(self, node, ins):
        beta = float(node.attrs.get("beta", 1.0))
        z = ins[0].astype(np.float64) * beta
        z = np.exp(z - z.max(axis=-1, keepdims=True))
        return [(z / z.sum(axis=-1, keepdims=True)).astype(np.float32)]

    def fixed_output_quant(self, node, graph):
        return QuantParams.per_tensor(OUTPUT_SCALE, OUTPUT_ZERO_POINT)

    def prepare(self, node, graph):
        in_scale, _ = qparams(graph, node.inputs[0])
        out_scale, out_zp = qparams(graph, node.outputs[0])
        # TFLM: zero point exactly -128, scale within 0.1% of 1/256.
        if out_zp != OUTPUT_ZERO_POINT or abs(out_scale - OUTPUT_SCALE) > 0.001 * OUTPUT_SCALE:
            raise ModelError(f"{node.where()}: int8 softmax output must have scale 1/256 and zero point -128 (got {out_scale:g}, {out_zp})", node=node.name)
        depth = graph.tensors[node.inputs[0]].shape[-1]
        if depth > MAX_ROW_LENGTH:
            raise ModelError(f"{node.where()}: int8 softmax rows longer than {MAX_ROW_LENGTH} would overflow the int32 sum of exponentials (got {depth})", node=node.name)
        try:
            p = softmax_params(float(node.attrs.get("beta", 1.0)), in_scale)
        except ValueError as e:
            raise ModelError(f"{node.where()}: {e}", node=node.name) from None
        p["depth"] = int(depth)
        return p

    def int8_ref(self, node, ins):
        q = node.qattrs
        return [softmax_int8(ins[0], q["input_multiplier"], q["input_left_shift"], q["diff_min"])]

    def template_context(self, node, graph):
        t = graph.tensors[node.inputs[0]]
        return {"rows": t.size // t.shape[-1]}

    def macs(self, node, graph):
        return graph.tensors[node.inputs[0]].size

    def in_place_ok(self, node):
        # The kernel reads in[c] before writing out[c] and the row max / sum come first.
        return True
