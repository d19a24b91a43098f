"""Fast exact requantization: per-channel constants folded at compile time (backend-neutral).

The reference (fixedpoint.py, TFLite's double rounding) computes, for shift = -r <= 0,

    h = floor((acc*m + 2^30) / 2^31)                            SaturatingRoundingDoublingHighMul
    y = floor((h + 2^(r-1) - [h < 0]) / 2^r)   (r >= 1)         RoundingDivideByPOT, half away from 0

and two nested floors of integer quotients merge into one: y = floor(V / 2^(31+r)) with
V = acc*m + 2^30 + 2^(30+r) - [h<0]*2^31. For every multiplier quantize_multiplier yields
(0 or [2^30, 2^31)), [h < 0] can be replaced by [acc < 0]: they differ only at m = 2^30, acc = -1
and m = 0, acc < 0, where the numerator stays in [0, 2^(31+r)) either way. A left shift l >= 0 has
no rounding divide: y = floor((acc*2^l*m + 2^30) / 2^31) = floor((acc*2^(l+1)*m + 2^31) / 2^32),
exact when |acc|*2^(l+1) < 2^31 (then the reference's saturation cannot trigger either).

So every channel becomes one 64-bit multiply-accumulate and one shift of the high word:

    a = acc << pre                                   pre  = max(shift, -1) + 1
    V = K + a*m + (acc < 0 ? nc : 0)                 K    = 2^30 + 2^(30+r)  or  2^31 (shift >= 0)
    y = (int32)(V >> 32) >> post                     post = r - 1  or  0;  nc = -2^31 if r >= 1
    out = clamp(y + out_zp, act_min, act_max)

|a*m| < 2^62 and K <= 2^30 + 2^61, so V never overflows int64. The output zero point is added after
the shift, unless every channel shifts right and out_zp * 2^(32 + post) fits in K beside the
product (checked per channel; it fails only for very large shifts): then it is folded into K
and the right-shift form needs neither pre, nc nor an add. The C side
(kernels/portable/tc_requant.h) reads one record of 4 int32 per channel: K low word, K high word,
m, ctl (see requant_records).
"""

from __future__ import annotations

import numpy as np

from tinyconv.fixedpoint import INT32_MIN, multiply_by_quantized_multiplier

CTL_NEG = 1 << 31
KIND_ANY, KIND_RIGHT = 1, 2  # TC_RQ_ANY, TC_RQ_RIGHT in tc_requant.h


def _int32_bits(recs: np.ndarray) -> np.ndarray:
    return ((recs + (1 << 31)) % (1 << 32) - (1 << 31)).astype(np.int32)


def requant_records(multiplier, shift, acc_bound, out_zp: int, allow_right: bool = True,
                    acc_range: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[int, np.ndarray] | None:
    """(kind, [C, 4] int32 records) for tc_requant.h, or None when some channel needs the general
    path (a left shift whose scaled accumulator could reach 2^31, a negative multiplier).

    Records are [K low, K high, m, ctl]. KIND_RIGHT (every channel shifts right or is dead):
    ctl = post and K includes out_zp * 2^(32 + post), so the result includes the zero point.
    KIND_ANY: ctl = post | pre << 8 | CTL_NEG for a right shift; the zero point is added after.
    acc_bound: the largest |accumulator| of each channel (bias included), or one for all;
    acc_range: optional per-channel (lowest, highest) accumulator, finds channels whose result
    is one constant (a huge bias, tiny weights)."""
    mult = np.asarray(multiplier, np.int64).reshape(-1)
    sh = np.asarray(shift, np.int64).reshape(-1)
    bounds = np.broadcast_to(np.asarray(acc_bound, np.int64), mult.shape).tolist()
    if np.any(mult < 0) or np.any(mult > 2**31 - 1) or np.any(sh < -31) or np.any(sh > 30):
        return None
    if acc_range is None:
        acc_range = (-np.asarray(bounds, np.int64), np.asarray(bounds, np.int64))
    lo_hi = list(zip(np.asarray(acc_range[0]).tolist(), np.asarray(acc_range[1]).tolist()))
    right = _right_records(mult.tolist(), sh.tolist(), bounds, lo_hi, out_zp) if allow_right else None
    if right is not None:
        return KIND_RIGHT, right
    recs = np.zeros((mult.size, 4), np.int64)
    for c, (m, s, bound) in enumerate(zip(mult.tolist(), sh.tolist(), bounds)):
        if m == 0:  # a dead channel: the reference gives 0 for every accumulator; so does V = 2^31
            pre, post, k, neg = 0, 0, 1 << 31, 0
        elif s >= 0:
            pre, post, k, neg = s + 1, 0, 1 << 31, 0
            if bound << pre >= 1 << 31:
                return None
        else:
            r = -s
            pre, post, k, neg = 0, r - 1, (1 << 30) + (1 << (30 + r)), CTL_NEG
        recs[c] = (k & 0xFFFFFFFF, k >> 32, m, post | pre << 8 | neg)
    return KIND_ANY, _int32_bits(recs)


def _right_records(mult, shifts, bounds, lo_hi, zp: int) -> np.ndarray | None:
    recs = np.zeros((len(mult), 4), np.int64)
    for c, (m, s, bound, (lo, hi)) in enumerate(zip(mult, shifts, bounds, lo_hi)):
        ends = multiply_by_quantized_multiplier(np.array([lo, hi]), m, s)
        if m == 0 or ends[0] == ends[1]:  # MBQM is monotonic in acc: one value over the whole range
            # V = K - [acc < 0] * 2^31 with K = 2^31 + value * 2^32 and m = 0: high word = value
            post, k, m = 0, (1 << 31) + (zp + int(ends[0])) * (1 << 32), 0
        elif s < 0:
            post = -s - 1
            k = (1 << 30) + (1 << (30 - s)) + zp * (1 << (32 + post))
        else:
            return None
        if bound * m + abs(k) + (1 << 31) >= 1 << 63:  # V must stay inside int64
            return None
        recs[c] = (k & 0xFFFFFFFF, k >> 32, m, post)
    return _int32_bits(recs)


def apply_records(acc, kind: int, records: np.ndarray, out_zp: int, act_min: int, act_max: int) -> np.ndarray:
    """The C sequence of tc_requant.h in NumPy int64: acc [..., C] int32 accumulators → int8.
    For testing the identity, not for the reference."""
    acc = np.asarray(acc, np.int64)
    r = np.asarray(records, np.int64) & 0xFFFFFFFF
    khi = np.where(r[:, 1] >= 1 << 31, r[:, 1] - (1 << 32), r[:, 1])
    k = khi * (1 << 32) + r[:, 0]
    m = r[:, 2]
    ctl = r[:, 3]
    if kind == KIND_RIGHT:
        v = k + acc * m - np.where(acc < 0, 1 << 31, 0)
        return np.clip((v >> 32) >> ctl, act_min, act_max).astype(np.int8)
    post, pre = ctl & 31, (ctl >> 8) & 31
    nc = np.where(ctl & CTL_NEG, INT32_MIN, 0)
    a = acc * (np.int64(1) << pre)
    assert np.all(np.abs(a) < 2**31), "pre-shift overflowed int32: the records' bound was wrong"
    v = k + a * m + np.where(acc < 0, nc, 0)  # |a*m| < 2^62 and K < 2^62: inside int64
    y = (v >> 32) >> post
    return np.clip(y + out_zp, act_min, act_max).astype(np.int8)


def apply_right_floor(acc, records: np.ndarray, act_min: int, act_max: int) -> np.ndarray:
    """tc_rq_apply_right_floor (KIND_RIGHT records without the sign correction) then the clamp, in
    NumPy int64. Equal to the reference only when act_min >= the output zero point: a negative
    accumulator then gives at most the zero point (K + acc*m < 2^(31+r) for m >= 0, r >= 1), which
    the clamp lifts to act_min, as it does the reference's result. For testing, not the reference."""
    acc = np.asarray(acc, np.int64)
    r = np.asarray(records, np.int64) & 0xFFFFFFFF
    khi = np.where(r[:, 1] >= 1 << 31, r[:, 1] - (1 << 32), r[:, 1])
    v = khi * (1 << 32) + r[:, 0] + acc * r[:, 2]
    return np.clip((v >> 32) >> r[:, 3], act_min, act_max).astype(np.int8)


def accumulator_range(weights: np.ndarray, bias: np.ndarray | None, input_offset: int) -> tuple[np.ndarray, np.ndarray]:
    """Per output channel, the lowest and highest accumulator any int8 input can produce."""
    w = np.asarray(weights, np.int64).reshape(weights.shape[0], -1)
    xs = np.array([-128 + input_offset, 127 + input_offset], np.int64)
    hi = np.where(w > 0, w * xs[1], w * xs[0]).sum(axis=1)
    lo = np.where(w > 0, w * xs[0], w * xs[1]).sum(axis=1)
    b = np.zeros(w.shape[0], np.int64) if bias is None else np.asarray(bias, np.int64)
    return lo + b, hi + b


def accumulator_bound(weights: np.ndarray, bias: np.ndarray | None, input_offset: int) -> np.ndarray:
    """Per output channel, Σ|w| * max|x + input_offset| + |bias|: no accumulator can exceed it."""
    w = np.asarray(weights, np.int64).reshape(weights.shape[0], -1)
    worst = np.abs(w).sum(axis=1) * max(abs(-128 + input_offset), abs(127 + input_offset))
    if bias is not None:
        worst = worst + np.abs(np.asarray(bias, np.int64))
    return worst
