"""LOG_SOFTMAX's portable kernel on emulated boards: every output byte equals TFLite Micro's."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import QEMU_DEVICES, need
from tinyconv.harness import api
from tinyconv.pipeline import compile_model

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tflite"))
import tflite_build as tb  # noqa: E402
from test_log_softmax import log_softmax_model, random_inputs, tflm_batch  # noqa: E402


@pytest.mark.device
@pytest.mark.skipif(tb.S is None, reason="tflite-micro (the bit-exact oracle) is not installed")
@pytest.mark.parametrize("device", ["qemu-m4", "qemu-m55"])
def test_log_softmax_equals_tflm_on_device(tmp_path, device):
    need(device)
    rows, depth = 2, 35
    model = log_softmax_model(rows, depth, 0.0123, -100)
    path = tmp_path / "ls.tflite"
    path.write_bytes(model)
    c = compile_model(path, target=QEMU_DEVICES[device], outdir=tmp_path / "lib")
    xs = random_inputs(np.random.default_rng(7), 40, rows, depth)
    got = api.run_inputs(c.library.outdir, device, xs.reshape(len(xs), -1)).outputs
    np.testing.assert_array_equal(np.asarray(got).reshape(xs.shape), tflm_batch(model, xs))
