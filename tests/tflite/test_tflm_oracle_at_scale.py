"""Oracle agreement at scale: on 3,000 random int8 inputs per MLPerf Tiny .tflite model, tinyconv's
NumPy reference and the generated C (one native process for the whole batch) equal the
tflite-micro interpreter byte for byte. One input proves little: a one-bit difference in a
multiplier flips a few outputs in a thousand (ad01 with a float32 FC multiplier: 14 of 3,000)."""

from __future__ import annotations

import numpy as np
import pytest

from tflm_oracle import MODELS, mismatch_count, model_path, random_int8, reference_outputs, tflm_outputs
from tinyconv import native
from tinyconv.frontend.tflite import load_tflite
from tinyconv.pipeline import compile_model

pytest.importorskip("tflite_micro", reason="tflite-micro (the bit-exact oracle) is not installed")

N_INPUTS = 3000


@pytest.mark.slow
@pytest.mark.parametrize("task", sorted(MODELS))
def test_reference_and_host_build_equal_tflm_on_3000_inputs(mlperf_dir, tmp_path, task):
    path = model_path(mlperf_dir, task)
    g = load_tflite(path)
    xs = random_int8(g.tensors[g.inputs[0]].shape, N_INPUTS, seed=1100 + sorted(MODELS).index(task))
    want = tflm_outputs(path, xs)

    ref_bad = mismatch_count(reference_outputs(g, xs), want)
    compiled = compile_model(path, target="host", outdir=tmp_path / "lib")
    exe = native.build(tmp_path / "lib")
    host_bad = mismatch_count(native.run_batch(exe, xs, compiled.library.manifest["output"]["bytes"], timeout=300), want)
    print(f"{task}: {N_INPUTS} inputs, reference mismatches {ref_bad}, host build mismatches {host_bad}")
    assert (ref_bad, host_bad) == (0, 0), f"{task}: inputs differing from TFLite Micro: reference {ref_bad}, host build {host_bad} of {N_INPUTS}"


def test_batched_reference_equals_single_inference(mlperf_dir):
    """The batch trick in tflm_oracle must not change a byte: compare with one-at-a-time runs."""
    from tinyconv import reference

    g = load_tflite(model_path(mlperf_dir, "kws"))
    xs = random_int8(g.tensors[g.inputs[0]].shape, 3, seed=5)
    single = reference.run_batch(g, xs).reshape(3, -1)
    np.testing.assert_array_equal(reference_outputs(g, xs, chunk=2), single)
