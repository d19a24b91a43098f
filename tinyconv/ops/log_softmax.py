"""LogSoftmax over the last axis, int8 in / int8 out (TFLite Micro's int8 LOG_SOFTMAX).

The output is quantized with scale 16/256 and zero point 127 (TFLM refuses anything else), so the
op's output params are FIXED.

Prepare (TFLM `PreprocessLogSoftmaxScalingExp` with beta 1, kScaledDiffIntegerBits 5):
  * (input_multiplier, input_left_shift, diff_min) exactly as softmax's (`softmax_params`);
  * reverse scaling: QuantizeMultiplier(2^(31 - input_left_shift) / input_multiplier), which must
    not be a left shift (QuantizeMultiplierSmallerThanOneExp).

Eval (TFLite `reference_ops::LogSoftmaxQuantized`), per row:
  * diff = x - max(row); d = MBQM(diff, input_multiplier, input_left_shift) (Q5.26) where
    diff >= diff_min; sum = Σ RoundingDivideByPOT(exp_on_negative_values(d), 12)  (Q12.19);
  * L = log_x_for_x_greater_than_or_equal_to_1<5>(sum)  (Q5.26, below);
  * adjusted_diff_min = max(diff_min - 1, MBQM(L + INT32_MIN, reverse multiplier, reverse shift));
  * out = diff > adjusted_diff_min ? clamp(RoundingDivideByPOT(d - L, 31 - 5 - 4) + 127) : -128.

`codegen_templates/kernels/portable/tc_softmax.c` (`tc_log_softmax_s8`) is the same computation
in C; both emulate int32 arithmetic exactly (saturating where gemmlowp saturates, wrapping adds).
"""

from __future__ import annotations

import numpy as np

from tinyconv.errors import ModelError
from tinyconv.fixedpoint import INT32_MIN, multiply_by_quantized_multiplier, quantize_multiplier
from tinyconv.ir import QuantParams
from tinyconv.ops.base import qparams, register
from tinyconv.ops.softmax import (
    ACCUMULATION_INTEGER_BITS,
    MAX_ROW_LENGTH,
    _clz32,
    _rdbpot,
    _sat_shl,
    _srdhm,
    _wrap32,
    exp_on_negative_values,
    one_over_one_plus_x_for_x_in_0_1,
    Softmax,
    softmax_params,
)

OUTPUT_SCALE = 16.0 / 256.0
OUTPUT_ZERO_POINT = 127
SCALED_DIFF_INTEGER_BITS = 5  # Q5.26 differences and log
OUTPUT_INTEGER_BITS = 4
_LOG_ACC_BITS = SCALED_DIFF_INTEGER_BITS + 1  # one bit of headroom while summing the log terms

# Q0.31 constants of TFLite's log_x_for_x_greater_than_or_equal_to_1 (values of the math below).
_LOG_2 = 1488522236  # log(2)
_SQRT_SQRT_HALF = 1805811301  # 0.5^(1/4)
_SQRT_HALF = 1518500250  # 0.5^(1/2)
_ONE_QUARTER = 536870912  # 1/4
_ALPHA_N = 117049297  # 11/240 · 2^(1/4)
_ALPHA_D = 127690142  # 1/20 · 2^(1/4)
_ALPHA_I = 1057819769  # 2 / 2^(1/4) - 2^(1/4)
_ALPHA_F = 638450708  # 1/4 · 2^(1/4)


def _sat_add(a, b):
    return np.clip(np.asarray(a, np.int64) + b, INT32_MIN, 2**31 - 1)


def _rounding_half_sum(a, b):
    s = np.asarray(a, np.int64) + b
    return np.where(s >= 0, (s + 1) // 2, -((-s + 1) // 2))  # (s ± 1) / 2, C division


def log_x_ge_1(x: np.ndarray, input_integer_bits: int = ACCUMULATION_INTEGER_BITS) -> np.ndarray:
    """log(x) as Q5.26 for a Q`input_integer_bits` value x >= 1 (TFLite's rational approximation
    after normalising x by its leading zeros, two ways, and keeping the better-scaled one)."""
    z = np.asarray(x, np.int64)
    shifted_quarter = _rdbpot(_ONE_QUARTER, _LOG_ACC_BITS)
    headroom_a_plus_1 = _clz32(z)
    r_a = _sat_shl(_srdhm(_sat_shl(z, headroom_a_plus_1 - 1), _SQRT_HALF), 1)
    pow2_a = _sat_add(_sat_shl(input_integer_bits - headroom_a_plus_1, 31 - _LOG_ACC_BITS), shifted_quarter)
    headroom_b = _clz32(_srdhm(z, _SQRT_HALF)) - 1
    r_b = _sat_shl(z, headroom_b)
    pow2_b = _sat_add(_sat_shl(input_integer_bits - headroom_b, 31 - _LOG_ACC_BITS), -shifted_quarter)
    r = np.minimum(r_a, r_b)
    pow2 = np.maximum(pow2_a, pow2_b)

    p = _rounding_half_sum(r, _SQRT_SQRT_HALF)
    q = _wrap32(2 * _wrap32(r - _SQRT_SQRT_HALF))
    q2 = _srdhm(q, q)
    num = _wrap32(_srdhm(q, r) + _srdhm(_srdhm(q, q2), _ALPHA_N))
    denom_minus_one = _wrap32(_srdhm(p, _wrap32(_wrap32(_ALPHA_I + q) + _srdhm(_ALPHA_D, q2))) + _srdhm(_ALPHA_F, q))
    recip = one_over_one_plus_x_for_x_in_0_1(denom_minus_one)
    log_acc = _wrap32(_srdhm(pow2, _LOG_2) + _srdhm(_rdbpot(num, _LOG_ACC_BITS), recip))
    return _sat_shl(log_acc, _LOG_ACC_BITS - SCALED_DIFF_INTEGER_BITS)


def log_softmax_params(input_scale: float) -> dict:
    p = softmax_params(1.0, input_scale)
    real_reverse = float(1 << (31 - p["input_left_shift"])) / float(p["input_multiplier"])
    m, shift = quantize_multiplier(real_reverse)
    if shift > 0:
        raise ValueError(f"input scale {input_scale:g} gives a reverse scaling multiplier ≥ 1 (TFLite requires < 1)")
    p["reverse_multiplier"], p["reverse_shift"] = int(m), int(shift)
    return p


def log_softmax_int8(x: np.ndarray, q: dict) -> np.ndarray:
    """int8 log-softmax over the last axis of x (see the module docstring)."""
    xi = np.asarray(x, np.int64)
    diff = xi - xi.max(axis=-1, keepdims=True)
    valid = diff >= q["diff_min"]
    scaled = multiply_by_quantized_multiplier(np.where(valid, diff, 0), q["input_multiplier"], q["input_left_shift"])
    terms = np.where(valid, _rdbpot(exp_on_negative_values(scaled), ACCUMULATION_INTEGER_BITS), 0)
    log_sum = log_x_ge_1(_wrap32(terms.sum(axis=-1, keepdims=True)))
    reverse = multiply_by_quantized_multiplier(_wrap32(log_sum + INT32_MIN), q["reverse_multiplier"], q["reverse_shift"])
    adjusted_diff_min = np.maximum(q["diff_min"] - 1, reverse)
    out_shift = 31 - SCALED_DIFF_INTEGER_BITS - OUTPUT_INTEGER_BITS
    out = np.clip(_rdbpot(_wrap32(scaled - log_sum), out_shift) + 127, -128, 127)
    return np.where(diff > adjusted_diff_min, out, -128).astype(np.int8)


@register
class LogSoftmax(Softmax):
    """Softmax's row layout, kernel file, MAC count and in-place rule; its own arithmetic."""

    name = "log_softmax"

    def infer_shapes(self, node, graph):
        shape = tuple(graph.tensors[node.inputs[0]].shape)
        if len(shape) == 0 or node.attrs.get("axis", -1) not in (-1, len(shape) - 1):
            raise ModelError(f"{node.where()}: log-softmax is supported over the last axis only", node=node.name)
        return [shape]

    def float_ref(self, node, ins):
        z = ins[0].astype(np.float64)
        z = z - z.max(axis=-1, keepdims=True)
        return [(z - np.log(np.exp(z).sum(axis=-1, keepdims=True))).astype(np.float32)]

    def fixed_output_quant(self, node, graph):
        return QuantParams.per_tensor(OUTPUT_SCALE, OUTPUT_ZERO_POINT)

    def prepare(self, node, graph):
        in_scale, _ = qparams(graph, node.inputs[0])
        out_scale, out_zp = qparams(graph, node.outputs[0])
        if out_zp != OUTPUT_ZERO_POINT or np.float32(out_scale) != np.float32(OUTPUT_SCALE):
            raise ModelError(f"{node.where()}: int8 log-softmax output must have scale 16/256 and zero point 127 "
                             f"(got {out_scale:g}, {out_zp}), as TFLite Micro requires", node=node.name)  # fmt: skip
        depth = graph.tensors[node.inputs[0]].shape[-1]
        if depth > MAX_ROW_LENGTH:
            raise ModelError(f"{node.where()}: int8 log-softmax rows longer than {MAX_ROW_LENGTH} would overflow the int32 sum of exponentials (got {depth})", node=node.name)
        try:
            p = log_softmax_params(in_scale)
        except ValueError as e:
            raise ModelError(f"{node.where()}: {e}", node=node.name) from None
        p["depth"] = int(depth)
        return p

    def int8_ref(self, node, ins):
        return [log_softmax_int8(ins[0], node.qattrs)]
