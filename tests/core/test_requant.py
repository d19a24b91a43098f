"""The fast requantization identity (tinyconv/requant.py, kernels/portable/tc_requant.h) equals the
reference (tinyconv/fixedpoint.py) on every rounding boundary, for every shift the kernels see."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from native_checks import need_compiler

from tinyconv.fixedpoint import multiply_by_quantized_multiplier, quantize_multiplier, requantize
from tinyconv.requant import KIND_ANY, KIND_RIGHT, apply_records, apply_right_floor, requant_records

KERNELS = Path(__file__).resolve().parents[2] / "codegen_templates" / "kernels" / "portable"
MULTIPLIERS = [0, 1 << 30, (1 << 30) + 1, 1518500250, 1999999999, (1 << 31) - 1]
CLAMPS = [(0, -128, 127), (-128, -128, 127), (127, -128, 127), (5, -3, 90), (-60, -60, 127)]  # (zp, lo, hi)
# clamps whose lower end is at or above the zero point (fused ReLUs): the short right form applies
FLOOR_CLAMPS = [(-128, -128, 127), (0, 0, 127), (-60, -60, 127), (5, 6, 90), (127, 127, 127), (-128, -100, 6)]


def boundary_accs(m: int, shift: int, bound: int) -> np.ndarray:
    """Accumulators around every tie of both rounding steps near zero and at the ends of the
    range, plus the range ends and random values: where an off-by-one would show."""
    rng = np.random.default_rng(abs(shift) * 7 + m % 1000)
    accs = [0, 1, -1, 2, -2, bound, -bound, bound - 1, -bound + 1]
    if m:
        r = max(-shift, 0)
        # ties of RoundingDivideByPOT: h = k*2^r + 2^(r-1); of the doubling high mul: acc*m = (2k+1)*2^30
        for h in list(range(-40, 41)) + [int(bound * m) >> (31 + r), -(int(bound * m) >> (31 + r))]:
            for t in ((h << r) + (1 << r >> 1), h << r):
                centre = (t << 31) // m
                accs.extend(range(centre - 3, centre + 4))
        for k in range(-20, 21):
            centre = ((2 * k + 1) << 30) // m
            accs.extend(range(centre - 2, centre + 3))
    accs.extend(rng.integers(-bound, bound + 1, 2000).tolist())
    a = np.array(accs, np.int64)
    return np.unique(a[np.abs(a) <= bound])


def widest_bound(shift: int) -> int:
    """The largest accumulator bound the fast path accepts (a left shift needs 2|acc|·2^l < 2^31)."""
    return (1 << 31) - 1 if shift < 0 else ((1 << 30) >> shift) - 1


@pytest.mark.parametrize("shift", list(range(-31, 0)) + [0, 1, 2, 7])
@pytest.mark.parametrize("m", MULTIPLIERS)
def test_fast_requant_equals_reference_on_every_boundary(m, shift):
    bound = widest_bound(shift)
    accs = boundary_accs(m, shift, bound)
    for zp, lo, hi in CLAMPS:
        want = requantize(accs, m, shift, zp, lo, hi)
        for allow_right in (True, False):
            kind, rec = requant_records([m], [shift], bound, zp, allow_right)
            got = apply_records(accs[:, None], kind, rec, zp, lo, hi)[:, 0]
            bad = np.nonzero(want != got)[0]
            assert bad.size == 0, f"kind {kind} m={m} shift={shift} zp={zp}: acc {accs[bad[:5]]} gives {got[bad[:5]]}, reference {want[bad[:5]]}"


@pytest.mark.parametrize("shift", list(range(-31, 0)))
@pytest.mark.parametrize("m", MULTIPLIERS)
def test_floor_form_equals_reference_when_the_clamp_starts_at_the_zero_point(m, shift):
    bound = widest_bound(shift)
    accs = boundary_accs(m, shift, bound)
    for zp, lo, hi in FLOOR_CLAMPS:
        found = requant_records([m], [shift], bound, zp)
        if found[0] != KIND_RIGHT:  # zp * 2^62 does not fit beside the product: the ANY form
            continue
        got = apply_right_floor(accs[:, None], found[1], lo, hi)[:, 0]
        want = requantize(accs, m, shift, zp, lo, hi)
        bad = np.nonzero(want != got)[0]
        assert bad.size == 0, f"m={m} shift={shift} zp={zp} [{lo}, {hi}]: acc {accs[bad[:5]]} gives {got[bad[:5]]}, reference {want[bad[:5]]}"


def test_floor_form_needs_the_clamp():
    # Without the sign correction a negative tie rounds up: acc -2 at 0.25 is -0.5, the reference's -1.
    kind, rec = requant_records([1 << 30], [-1], 1000, 0)
    accs = np.array([-2, -6, 2])
    assert np.array_equal(requantize(accs, 1 << 30, -1, 0, -128, 127), [-1, -2, 1])
    assert np.array_equal(apply_right_floor(accs[:, None], rec, -128, 127)[:, 0], [0, -1, 1])
    assert np.array_equal(apply_right_floor(accs[:, None], rec, 0, 127)[:, 0], requantize(accs, 1 << 30, -1, 0, 0, 127))


def test_right_form_folds_the_zero_point_unless_it_could_overflow():
    assert requant_records([1 << 30], [-5], 1 << 20, 100)[0] == KIND_RIGHT
    assert requant_records([1 << 30], [0], 1 << 20, 100)[0] == KIND_ANY  # shift 0 is not a right shift
    # shift -31 with a full-range accumulator: zp * 2^62 cannot join K
    assert requant_records([(1 << 31) - 1], [-31], (1 << 31) - 1, 127)[0] == KIND_ANY
    assert requant_records([(1 << 31) - 1], [-31], (1 << 31) - 1, 0)[0] == KIND_RIGHT


def test_general_path_when_a_left_shift_could_saturate():
    assert requant_records([1 << 30], [3], 1 << 28, 0) is None
    assert requant_records([1 << 30], [3], (1 << 27) - 1, 0) is not None
    assert requant_records([-5], [-1], 100, 0) is None


def test_dead_channel_with_a_huge_bias_keeps_the_fast_path():
    # TFLite models carry channels with multiplier 0 and |bias| near 2^30 (vww): the result is the
    # zero point whatever the accumulator, and the other channels' bounds are their own.
    accs = np.array([[-(1 << 30), -1000], [(1 << 30) - 1, 999], [0, -4], [-1, 1]])
    want = np.stack([requantize(accs[:, 0], 0, 0, 3, -128, 127), requantize(accs[:, 1], 1 << 30, -3, 3, -128, 127)], axis=1)
    for allow_right in (True, False):
        kind, rec = requant_records([0, 1 << 30], [0, -3], [1 << 30, 1000], 3, allow_right)
        assert kind == (KIND_RIGHT if allow_right else KIND_ANY)
        assert np.array_equal(apply_records(accs, kind, rec, 3, -128, 127), want)


@settings(max_examples=300, deadline=None)
@given(
    real=st.floats(min_value=1e-9, max_value=64.0, allow_nan=False),
    zp=st.integers(-128, 127),
    lo=st.integers(-128, 127),
    width=st.integers(0, 255),
    accs=st.lists(st.integers(-(1 << 24), 1 << 24), min_size=1, max_size=50),
)
def test_fast_requant_random_multipliers(real, zp, lo, width, accs):
    m, shift = quantize_multiplier(real)
    hi = min(127, lo + width)
    found = requant_records([m], [shift], 1 << 24, zp)
    if found is None:  # only a large left shift with a wide accumulator
        assert shift > 0 and (1 << 24) << (shift + 1) >= 1 << 31
        return
    a = np.array(accs, np.int64)
    assert np.array_equal(apply_records(a[:, None], *found, zp, lo, hi)[:, 0], requantize(a, m, shift, zp, lo, hi))


HARNESS_C = r"""
#include <stdio.h>
#include "tc_requant.h"
/* stdin: one 16-byte record, the kind (int32), the zero point, act_min, act_max (int32; a clamp
 * range from the first two: the clamped right form), then int32 accumulators; stdout: int32 results */
int main(void)
{
    int32_t r[4], acc, kind, zp, lo, hi;
    if (fread(r, sizeof r, 1, stdin) != 1 || fread(&kind, 4, 1, stdin) != 1 || fread(&zp, 4, 1, stdin) != 1 ||
        fread(&lo, 4, 1, stdin) != 1 || fread(&hi, 4, 1, stdin) != 1) return 2;
    while (fread(&acc, 4, 1, stdin) == 1) {
        int32_t y = kind == TC_RQ_RIGHT ? tc_rq_apply_right(acc, r) : tc_rq_apply(acc, r);
        if (lo <= hi) {
            y = kind == TC_RQ_RIGHT ? tc_rq_apply_right_clamped(acc, r, zp, lo) : y + zp;
            y = y < lo ? lo : y > hi ? hi : y;
        }
        fwrite(&y, 4, 1, stdout);
    }
    return 0;
}
"""


def run_header(exe, kind, rec, accs, zp=0, clamp=(1, 0)) -> np.ndarray:
    head = rec.tobytes() + np.array([kind, zp, *clamp], np.int32).tobytes()
    out = subprocess.run([str(exe)], input=head + accs.astype(np.int32).tobytes(), capture_output=True, check=True, timeout=60).stdout
    return np.frombuffer(out, np.int32).astype(np.int64)


@pytest.fixture(scope="module")
def requant_exe(tmp_path_factory):
    need_compiler("gcc")
    d = tmp_path_factory.mktemp("rq")
    (d / "main.c").write_text(HARNESS_C)
    exe = d / "rq"
    subprocess.run(["gcc", "-O2", "-std=c99", "-Wall", "-Wextra", "-Werror", "-fsanitize=undefined", "-fno-sanitize-recover",
                    "-I", str(KERNELS), str(d / "main.c"), "-o", str(exe)], check=True, timeout=120)  # fmt: skip
    return exe


@pytest.mark.parametrize("shift", [-31, -25, -24, -13, -2, -1, 0, 1, 5])
@pytest.mark.parametrize("m", MULTIPLIERS)
def test_c_header_equals_reference_on_every_boundary(requant_exe, m, shift):
    bound = widest_bound(shift)
    accs = boundary_accs(m, shift, bound)
    for zp in (0, -128, 127, 37):
        want = multiply_by_quantized_multiplier(accs, m, shift) + zp  # unclamped
        for allow_right in (True, False):
            kind, rec = requant_records([m], [shift], bound, zp, allow_right)
            got = run_header(requant_exe, kind, rec, accs) + (zp if kind == KIND_ANY else 0)
            bad = np.nonzero(got != want)[0]
            assert got.size == accs.size and bad.size == 0, f"kind {kind} zp {zp}: acc {accs[bad[:5]]} gives {got[bad[:5]]}, reference {want[bad[:5]]}"


@pytest.mark.parametrize("shift", [-31, -25, -24, -13, -2, -1])
@pytest.mark.parametrize("m", MULTIPLIERS)
def test_c_header_clamped_right_form_equals_reference(requant_exe, m, shift):
    # tc_rq_apply_right_clamped: the short form for clamps at or above the zero point, else the full one
    bound = widest_bound(shift)
    accs = boundary_accs(m, shift, bound)
    for zp, lo, hi in FLOOR_CLAMPS + CLAMPS:
        kind, rec = requant_records([m], [shift], bound, zp)
        got = run_header(requant_exe, kind, rec, accs, zp, (lo, hi))
        want = requantize(accs, m, shift, zp, lo, hi)
        bad = np.nonzero(got != want)[0]
        assert got.size == accs.size and bad.size == 0, f"kind {kind} zp {zp} [{lo}, {hi}]: acc {accs[bad[:5]]} gives {got[bad[:5]]}, reference {want[bad[:5]]}"


def test_channel_that_always_rounds_to_zero_keeps_the_right_form():
    # shift -31 with a small accumulator range: every result is 0, so the zero point needs no
    # 2^62-scaled constant (the case of vww's nearly dead channels).
    m, bound = (1 << 31) - 1, 1 << 20
    kind, rec = requant_records([m, 1 << 30], [-31, -4], bound, -128)
    assert kind == KIND_RIGHT
    accs = boundary_accs(1 << 30, -4, bound)
    got = apply_records(np.stack([accs, accs], axis=1), kind, rec, -128, -128, 127)
    assert np.array_equal(got[:, 0], requantize(accs, m, -31, -128, -128, 127))
    assert np.array_equal(got[:, 1], requantize(accs, 1 << 30, -4, -128, -128, 127))


def test_channel_with_one_possible_result_keeps_the_right_form():
    # A huge bias and tiny weights (vww): the accumulator stays in [bias - 500, bias + 500], where
    # MBQM with shift -27 has a single value; the record gives that constant.
    m, shift, bias = 1320764593, -27, 1 << 30
    lo, hi = np.array([bias - 500]), np.array([bias + 500])
    kind, rec = requant_records([m], [shift], bias + 500, -128, acc_range=(lo, hi))
    assert kind == KIND_RIGHT
    accs = np.arange(bias - 500, bias + 501)
    assert np.array_equal(apply_records(accs[:, None], kind, rec, -128, -128, 127)[:, 0], requantize(accs, m, shift, -128, -128, 127))


def test_accumulator_range_is_reached_by_some_input():
    from tinyconv.requant import accumulator_range

    w = np.array([[3, -2, 0], [-1, -1, 5]], np.int8)
    lo, hi = accumulator_range(w, np.array([10, -7]), 5)
    xs = np.array(np.meshgrid(*[np.arange(-128, 128)] * 3)).reshape(3, -1).T[::37] + 5
    sums = xs @ w.T.astype(np.int64) + np.array([10, -7])
    assert np.all(sums >= lo) and np.all(sums <= hi)
    assert lo.tolist() == [(127 + 5) * -2 + (-128 + 5) * 3 + 10, (127 + 5) * -2 + (-128 + 5) * 5 - 7]
