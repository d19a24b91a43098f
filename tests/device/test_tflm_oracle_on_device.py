"""Oracle agreement on a board: 300 random int8 inputs per MLPerf Tiny .tflite model run on
qemu-m4 through the serial protocol, every output byte equal to the tflite-micro interpreter's."""

from __future__ import annotations

import os

import pytest

from conftest import need
from tflm_oracle import MODELS, mismatch_count, model_path, random_int8, tflm_outputs
from tinyconv.harness import api
from tinyconv.pipeline import compile_model

pytest.importorskip("tflite_micro", reason="tflite-micro (the bit-exact oracle) is not installed")

# 300 inputs per model; vww's 27 KB input costs 116 link round trips per inference (about 20 min
# for 300 on a loaded 2-core machine), so the default suite runs 60 of them and a campaign sets
# TINYCONV_DEVICE_ORACLE_INPUTS=300 (measured: 0 of 300 differ on every model).
N_INPUTS = int(os.environ.get("TINYCONV_DEVICE_ORACLE_INPUTS", 0)) or None
DEFAULT_INPUTS = {"ad": 300, "ic": 300, "kws": 300, "vww": 60}


@pytest.mark.device
@pytest.mark.slow
@pytest.mark.parametrize("task", sorted(MODELS))
def test_qemu_m4_equals_tflm_on_many_inputs(mlperf_dir, tmp_path, task):
    need("qemu-m4")
    n = N_INPUTS or DEFAULT_INPUTS[task]
    path = model_path(mlperf_dir, task)
    c = compile_model(path, target="cortex-m4", outdir=tmp_path / "lib")
    xs = random_int8(c.graph.tensors[c.graph.inputs[0]].shape, n, seed=2200 + sorted(MODELS).index(task))
    got = api.run_inputs(c.library.outdir, "qemu-m4", xs.reshape(n, -1)).outputs
    bad = mismatch_count(got, tflm_outputs(path, xs))
    print(f"{task}: {n} inputs on qemu-m4, mismatches {bad}")
    assert bad == 0, f"{task}: {bad} of {n} inputs differ from TFLite Micro on qemu-m4"
