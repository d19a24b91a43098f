"""NEON average pooling sums windows of up to 256 pixels in int16 (kernels/neon/tc_pool.c): at the
limit, with every input at -128 or 127 (the sums -32768 and 32512), and one pixel past it (int32
sums), the outputs equal the reference on both phone cores."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import need
from tinyconv import reference
from tinyconv.harness import api
from tinyconv.ir import QuantParams
from tinyconv.pipeline import compile_model

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "core"))
from ir_graphs import GraphBuilder  # noqa: E402

pytestmark = [pytest.mark.device, pytest.mark.slow]


@pytest.mark.parametrize("kh, oh", [(16, 2), (17, 1)])  # windows of 256 (int16 sums) and 272 pixels (int32)
@pytest.mark.parametrize("device, target", [("qemu-aarch64", "aarch64"), ("qemu-aarch64-i8mm", "aarch64-i8mm")])
def test_avg_pool_window_sums_at_int16_limits(device, target, kh, oh, tmp_path):
    need(device)
    b = GraphBuilder("pool_sums", (1, 17, 16, 17))  # 17 channels: 16 by vector, 1 scalar
    full = b.node("full", "avg_pool2d", ["x"], (1, oh, 1, 17), kernel=(kh, 16), strides=(1, 1), pads=(0, 0, 0, 0), count_include_pad=False)
    g = b.finish(full)
    g.given_quant["x"] = QuantParams.per_tensor(0.05, -3)
    g.given_quant["full_out"] = QuantParams.per_tensor(0.05, -3)
    c = compile_model(g, target=target, outdir=tmp_path / target)
    rng = np.random.default_rng(3)
    xq = np.stack([np.full((17, 16, 17), -128), np.full((17, 16, 17), 127), rng.choice([-128, 127], (17, 16, 17))]).astype(np.int8)
    expected = reference.run_batch(c.graph, xq[:, None]).reshape(len(xq), -1)
    got = np.asarray(api.run_inputs(c.library.outdir, device, xq.reshape(len(xq), -1)).outputs).reshape(expected.shape)
    np.testing.assert_array_equal(got, expected)
