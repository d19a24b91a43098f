"""The architectures users run (tests/archs.py) bit-exact on the default emulated board and on the
Cortex-M55, whose per-layer Helium variants (tinyconv/ops/helium.py) these shapes exercise too."""

from __future__ import annotations

import numpy as np
import pytest

from archs import ARCHITECTURES
from conftest import need
from tinyconv.check import run_check


@pytest.mark.device
@pytest.mark.parametrize("device", ["qemu-m4", "qemu-m55"])
@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_architecture_bit_exact_on_device(arch, device, tmp_path):
    need(device)
    model, shape = ARCHITECTURES[arch]()
    path = tmp_path / f"{arch}.onnx"
    path.write_bytes(model.SerializeToString())
    calib = np.random.default_rng(0).normal(0, 1, (16, *shape)).astype(np.float32)
    report, _, _ = run_check(path, device=device, calib=calib, inputs=calib[:4], workdir=tmp_path / "work")
    assert report["bit_exact"], report["first_divergent_layer"]
