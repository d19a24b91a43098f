"""The NEON table softmax (kernels/neon/tc_neon_softmax.c, table from neon_layers._softmax_table)
against the portable kernel (tc_softmax_s8, itself tested against TFLite Micro) and the NumPy
reference on emulated aarch64: input scales from tiny (every difference inside diff_min) to large
(most cut off), row lengths 1 to 600 (sums of exponentials past 512: every output -128), many rows
of 10 and 37 values (a wrongly rounded sum term shows only in about 1 output in 30,000), rows of
equal values, int8 extremes, random rows, and in place."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import need, run_neon_program
from tinyconv import neon_layers
from tinyconv.ops.softmax import softmax_int8, softmax_params

pytestmark = pytest.mark.device
SCALES = (0.004, 0.02, 0.0625, 0.1, 0.25, 1.0, 3.0)


def _rows(rng, depth: int, n: int) -> np.ndarray:
    rows = rng.integers(-128, 128, (n, depth))
    rows[0] = 5  # all equal
    rows[1] = rng.choice([-128, 127], depth)  # extremes
    rows[2, : depth // 2 + 1] = 127  # a block at the maximum
    return rows.astype(np.int8)


def program(cases) -> str:
    lines = ["#include <stdio.h>", "#include <string.h>", '#include "tc_softmax.h"', '#include "tc_neon_softmax.h"',
             "static long bad, checked;",
             "static void run(const char *name, const int8_t *x, int32_t rows, int32_t depth, int32_t mult, int32_t ls, int32_t dmin,",
             "                const int32_t *table, const int8_t *want_py) {",
             "    static int8_t want[8192], got[8192], inplace[8192];  /* rows * depth <= 8192 */",
             "    const int32_t n = rows * depth;",
             "    tc_softmax_s8(x, rows, depth, mult, ls, dmin, want);",
             "    tcn_softmax_s8(x, rows, depth, table, got);",
             "    memcpy(inplace, x, (size_t)n);",
             "    tcn_softmax_s8(inplace, rows, depth, table, inplace);",
             "    for (int32_t i = 0; i < n; ++i) {",
             "        checked++;",
             "        if ((got[i] != want[i] || inplace[i] != want[i] || want[i] != want_py[i]) && bad++ < 5)",
             '            printf("%s [%d]: neon %d in place %d portable %d reference %d\\n", name, i, got[i], inplace[i], want[i], want_py[i]);',
             "    }",
             "}",
             "int main(void) {"]  # fmt: skip
    for k, (q, x, want) in enumerate(cases):
        table = neon_layers._softmax_table(q)
        rows, depth = x.shape
        lines += [
            "    {",
            f"        static const int8_t x[] = {{{', '.join(map(str, x.reshape(-1)))}}};",
            f"        static const int8_t w[] = {{{', '.join(map(str, want.reshape(-1)))}}};",
            f"        static const int32_t t[] = {{{', '.join(map(str, table))}}};",
            f'        run("case{k}", x, {rows}, {depth}, {q["input_multiplier"]}, {q["input_left_shift"]}, {q["diff_min"]}, t, w);',
            "    }",
        ]
    lines += ['    printf("checked %ld mismatches %ld\\n", checked, bad);', "    return bad != 0;", "}"]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("cpu", ["cortex-a76", "max,sme=off,sve-default-vector-length=16"])
def test_neon_softmax_equals_portable_and_reference(tmp_path, cpu):
    need("qemu-aarch64")
    rng = np.random.default_rng(12)
    cases = []
    for scale in SCALES:
        q = softmax_params(1.0, scale)
        for depth in (1, 2, 10, 16, 37, 600):
            x = _rows(rng, depth, {600: 3, 10: 300, 37: 100}.get(depth, 6))  # many rows: rounding of the sum terms shows rarely
            cases.append((q, x, softmax_int8(x, q["input_multiplier"], q["input_left_shift"], q["diff_min"])))
    checked = run_neon_program(tmp_path, program(cases), cpu, kernel_sources=("neon/tc_neon_softmax.c", "portable/tc_softmax.c"))
    assert checked == sum(x.size for _, x, _ in cases)
