"""The specialised NEON Add (kernels/neon/tc_neon_add.h) against the scalar reference rule
(tc_elementwise_ref.h add_one, the portable kernel's) for every pair of int8 inputs, on both
emulated phone cores. Each parameter set is compiled as the generated model compiles it (a
`static const` parameter struct inlined into its own call), so the exact 2^30 terms, the
one-instruction round-half-away fix-up, the fused-ReLU shortcut and the vector tail are each
checked on all 65,536 (a, b) pairs; rounding ties are rare in random models, so this is the test
that can see a wrong fix-up. Parameter sets come from the Add op's own prepare (the multipliers
TFLite forms) over drawn scales, zero points and clamps, plus left shifts other than 20."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import need, run_neon_program
from tinyconv import neon_layers
from tinyconv.ir import QuantParams, Tensor
from tinyconv.ops import op_of

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "core"))
from ir_graphs import GraphBuilder  # noqa: E402

pytestmark = pytest.mark.device
TAIL = 7  # elements past the 65,536 pairs: the copied tail step


def _add_qattrs(sa, za, sb, zb, so, zo, act):
    b = GraphBuilder("add", (1, 1, 1, 16))
    b.g.add_tensor(Tensor("y", (1, 1, 1, 16)))
    b.g.inputs = ["x", "y"]
    out = b.node("add", "add", ["x", "y"], act=act)
    g = b.finish(out)
    for name, (s, z) in {"x": (sa, za), "y": (sb, zb), out: (so, zo)}.items():
        g.tensors[name].quant = QuantParams.per_tensor(s, z)
    node = g.nodes[0]
    node.qattrs = op_of(node).prepare(node, g)
    return node, g


def parameter_sets():
    """(name, qattrs) covering either input the larger scale, equal scales, clamps above / below
    the output zero point, output shifts from 0 to far right, left shifts 17 and 23."""
    rng = np.random.default_rng(10)
    cases = [  # (scale a, scale b, scale out, act)
        (0.05, 0.05, 0.1, None), (0.05, 0.02, 0.06, (0.0, None)), (0.02, 0.05, 0.06, (-0.3, 0.3)),
        (0.031, 0.0302, 0.02, (0.0, 6.0)), (0.1, 0.001, 0.1, None), (0.004, 0.1, 0.5, (0.05, None)),
        (0.02, 0.03, 1e-4, None), (0.02, 0.03, 4e-7, (-1e-5, None)),
        (0.05, 0.02, 0.06, (-0.06, None)), (0.03, 0.07, 0.04, (-0.04, 0.2)),  # act_min one below the zero point
    ]  # fmt: skip
    for _ in range(10):
        sa, sb = np.exp(rng.uniform(np.log(1e-3), np.log(0.3), 2))
        so = float(np.exp(rng.uniform(np.log(max(sa, sb) / 8), np.log(4 * (sa + sb)))))
        act = [None, (0.0, None), (-so * rng.uniform(1, 100), so * rng.uniform(1, 100))][rng.integers(3)]
        cases.append((float(sa), float(sb), so, act))
    out = []
    for k, (sa, sb, so, act) in enumerate(cases):
        za, zb, zo = (int(v) for v in rng.integers(-128, 128, 3))
        node, g = _add_qattrs(sa, za, sb, zb, so, zo, act)
        assert neon_layers._flat_add(node, g), node.qattrs  # every set takes the specialised kernel
        out.append((f"p{k}", dict(node.qattrs)))
    for ls in (17, 23):  # left shifts other than TFLite's 20 (the int16 pre-shift's extremes)
        q = dict(out[1][1])
        q["left_shift"] = ls
        if ls > 20:  # keep (q + offset) << left_shift inside int32 as the reference needs
            q["input1_offset"], q["input2_offset"] = 100, -100
        out.append((f"ls{ls}", q))
    return out


def program(sets) -> str:
    n = 65536 + TAIL
    lines = [
        "#include <stdio.h>",
        '#include "tc_elementwise_ref.h"',
        '#include "tc_neon_add.h"',
        f"#define N {n}",
        "static int8_t A[N], B[N], OUT[N];",
        "static long bad, checked;",
        "static void compare(const char *name, const tcn_add_params *p) {",
        "    tc_binary_params r = {.dims = {1, 1, 1, N}, .a_strides = {0, 0, 0, 1}, .b_strides = {0, 0, 0, 1},",
        "        .a_offset = p->a_offset, .b_offset = p->b_offset, .output_offset = p->out_offset,",
        "        .a_multiplier = p->a_mult, .a_shift = p->a_shift, .b_multiplier = p->b_mult, .b_shift = p->b_shift,",
        "        .left_shift = p->left_shift, .output_multiplier = p->out_mult, .output_shift = p->out_shift,",
        "        .act_min = p->act_min, .act_max = p->act_max};",
        "    for (int i = 0; i < N; ++i) {",
        "        const int32_t want = tc_clamp(add_one(&r, A[i], B[i]), p->act_min, p->act_max);",
        "        checked++;",
        '        if (OUT[i] != want && bad++ < 5) printf("%s: a %d b %d got %d want %d\\n", name, A[i], B[i], OUT[i], want);',
        "    }",
        "}",
        "int main(void) {",
        "    for (int i = 0; i < N; ++i) A[i] = (int8_t)(i & 255), B[i] = (int8_t)((i >> 8) * 7 + (i >> 16));",
    ]
    for name, q in sets:
        lines += [
            "    {",
            f"        static const tcn_add_params {name} = {{.n = N, .a_offset = {q['input1_offset']}, .b_offset = {q['input2_offset']},",
            f"            .left_shift = {q['left_shift']}, .a_mult = {q['input1_multiplier']}, .a_shift = {q['input1_shift']},",
            f"            .b_mult = {q['input2_multiplier']}, .b_shift = {q['input2_shift']}, .out_mult = {q['output_multiplier']},",
            f"            .out_shift = {q['output_shift']}, .out_offset = {q['output_offset']}, .act_min = {q['act_min']}, .act_max = {q['act_max']}}};",
            f"        tcn_add_s8(&{name}, A, B, OUT);",
            f'        compare("{name}", &{name});',
            "    }",
        ]
    lines += ['    printf("checked %ld mismatches %ld\\n", checked, bad);', "    return bad != 0;", "}"]
    return "\n".join(lines) + "\n"


# -O0 too: without constant folding the kernel takes its register-shift form (TCN_ADD_RSRA)
@pytest.mark.parametrize("cpu, opt", [("cortex-a76", "-O2"), ("max,sme=off,sve-default-vector-length=16", "-O2"), ("cortex-a76", "-O0")])
def test_neon_add_every_input_pair(tmp_path, cpu, opt):
    need("qemu-aarch64")
    sets = parameter_sets()
    checked = run_neon_program(tmp_path, program(sets), cpu, opt=opt)
    assert checked == len(sets) * (65536 + TAIL)
