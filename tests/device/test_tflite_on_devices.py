"""The MLPerf Tiny int8 .tflite models on every emulated board: the bytes the device returns equal
TensorFlow Lite Micro's outputs shipped beside the models (seed and sample inputs)."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import need
from tinyconv.check import run_check

DEVICES = ("qemu-m4", "qemu-m7", "qemu-m55", "qemu-aarch64", "qemu-aarch64-i8mm")
MODELS = {"kws": "kws_ref_model", "vww": "vww_96_int8", "ic": "pretrainedResnet_quant", "ad": "ad01_int8"}


@pytest.mark.device
@pytest.mark.slow
@pytest.mark.parametrize("task", sorted(MODELS))
@pytest.mark.parametrize("device", DEVICES)
def test_tflite_equals_tflm_on_device(mlperf_dir, device, task, tmp_path):
    need(device)
    d, stem = mlperf_dir / task, MODELS[task]
    for kind in ("seed0", "sample"):
        x_path = d / f"{stem}.{kind}_input0.npy"
        if not x_path.exists():
            continue  # vww and ad ship a seed input only
        x = np.load(x_path)
        want = np.load(d / f"{stem}.{kind}_output0.tflm_host.npy")
        report, got, _ = run_check(d / f"{stem}.tflite", device=device, inputs=x, workdir=tmp_path / kind)
        assert report["bit_exact"]
        assert got.dtype == np.int8 and np.array_equal(got.reshape(want.shape), want), f"{kind}: device output differs from TFLite Micro's"
