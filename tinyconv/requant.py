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
the shift (folding it into K would overflow for large r). The C side (kernels/portable/tc_requant.h)
reads one record of 4 int32 per channel: m, K low word, K high word, ctl = post | pre << 8, with
bit 31 set when nc = -2^31.
"""

from __future__ import annotations

import numpy as np

from tinyconv.fixedpoint import INT32_MIN

CTL_NEG = 1 << 31


def fast_requant_records(multiplier, shift, acc_bound) -> np.ndarray | None:
    """[C, 4] int32 records for tc_requant.h, or None when some channel needs the general path
    (a left shift whose scaled accumulator could reach 2^31, a negative or INT32_MIN multiplier).

    acc_bound: the largest |accumulator| each channel can produce (bias included), per channel
    or one for all."""
    mult = np.asarray(multiplier, np.int64).reshape(-1)
    sh = np.asarray(shift, np.int64).reshape(-1)
    bounds = np.broadcast_to(np.asarray(acc_bound, np.int64), mult.shape).tolist()
    recs = np.zeros((mult.size, 4), np.int64)
    for c, (m, s, bound) in enumerate(zip(mult.tolist(), sh.tolist(), bounds)):
        if m < 0 or m > 2**31 - 1 or s < -31 or s > 30:
            return None
        if m == 0:  # a dead channel: the reference gives 0 for every accumulator, and so does
            pre, post, k, neg = 0, 0, 1 << 31, 0  # V = 2^31 (- 2^31 in tc_rq_apply_right): high word 0
        elif s >= 0:
            pre, post, k, neg = s + 1, 0, 1 << 31, 0
            if bound << pre >= 1 << 31:
                return None
        else:
            r = -s
            pre, post, k, neg = 0, r - 1, (1 << 30) + (1 << (30 + r)), CTL_NEG
        recs[c] = (m, k & 0xFFFFFFFF, k >> 32, post | pre << 8 | neg)
    # Store as int32 bit patterns.
    return ((recs + (1 << 31)) % (1 << 32) - (1 << 31)).astype(np.int32)


def all_shift_right(multiplier, shift) -> bool:
    """True when tc_rq_apply_right serves every channel (each shifts right or is dead)."""
    m, s = np.asarray(multiplier).reshape(-1), np.asarray(shift).reshape(-1)
    return bool(np.all((s < 0) | (m == 0)))


def apply_records(acc, records: np.ndarray, out_zp: int, act_min: int, act_max: int) -> np.ndarray:
    """The C sequence of tc_requant.h in NumPy int64 (object ints where int64 would not do):
    acc [..., C] int32 accumulators → int8. For testing the identity, not for the reference."""
    acc = np.asarray(acc, np.int64)
    r = np.asarray(records, np.int64) & 0xFFFFFFFF
    m = np.where(r[:, 0] >= 1 << 31, r[:, 0] - (1 << 32), r[:, 0])
    khi = np.where(r[:, 2] >= 1 << 31, r[:, 2] - (1 << 32), r[:, 2])
    k = khi * (1 << 32) + r[:, 1]
    ctl = r[:, 3]
    post, pre = ctl & 31, (ctl >> 8) & 31
    nc = np.where(ctl & CTL_NEG, INT32_MIN, 0)
    a = acc * (np.int64(1) << pre)
    assert np.all(np.abs(a) < 2**31), "pre-shift overflowed int32: the records' bound was wrong"
    # a*m < 2^62 and K < 2^62: the sum stays inside int64.
    v = k + a * m + np.where(acc < 0, nc, 0)
    y = (v >> 32) >> post
    return np.clip(y + out_zp, act_min, act_max).astype(np.int8)


def accumulator_bound(weights: np.ndarray, bias: np.ndarray | None, input_offset: int) -> np.ndarray:
    """Per output channel, Σ|w| * max|x + input_offset| + |bias|: no accumulator can exceed it."""
    w = np.asarray(weights, np.int64).reshape(weights.shape[0], -1)
    worst = np.abs(w).sum(axis=1) * max(abs(-128 + input_offset), abs(127 + input_offset))
    if bias is not None:
        worst = worst + np.abs(np.asarray(bias, np.int64))
    return worst
