"""The four MLPerf Tiny int8 .tflite models: tinyconv's int8 reference and the generated C (host
build) equal TensorFlow Lite Micro byte for byte, on the shipped outputs and on a live interpreter."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from tinyconv import native, reference
from tinyconv.frontend.tflite import load_tflite
from tinyconv.pipeline import compile_model

tflm = pytest.importorskip("tflite_micro", reason="tflite-micro (the bit-exact oracle) is not installed")
from tflite_micro import runtime  # noqa: E402

MODELS = {
    "kws": "kws_ref_model",
    "vww": "vww_96_int8",
    "ic": "pretrainedResnet_quant",
    "ad": "ad01_int8",
}


def model_path(mlperf_dir, task):
    return mlperf_dir / task / f"{MODELS[task]}.tflite"


def shipped_pairs(mlperf_dir, task):
    """[(kind, input, TFLM output)] for the seed-0 input and, where shipped, the real sample."""
    stem = mlperf_dir / task / MODELS[task]
    pairs = []
    for kind in ("seed0", "sample"):
        x, y = stem.with_name(f"{stem.name}.{kind}_input0.npy"), stem.with_name(f"{stem.name}.{kind}_output0.tflm_host.npy")
        if x.exists() and y.exists():
            pairs.append((kind, np.load(x), np.load(y)))
    assert pairs, f"no shipped inputs for {task}"
    return pairs


def random_inputs(shape, n, seed):
    return np.random.default_rng(seed).integers(-128, 128, size=(n, *shape[1:]), dtype=np.int64).astype(np.int8)


def tflm_outputs(path, xs):
    interp = runtime.Interpreter.from_file(str(path))
    outs = []
    for x in xs:
        interp.set_input(x[None], 0)
        interp.invoke()
        outs.append(np.array(interp.get_output(0))[0])
    return np.stack(outs)


@pytest.mark.parametrize("task", sorted(MODELS))
def test_reference_equals_shipped_tflm_outputs(mlperf_dir, task):
    g = load_tflite(model_path(mlperf_dir, task))
    assert g.is_quantized()
    (inp,), (out,) = g.inputs, g.outputs
    for kind, x, y in shipped_pairs(mlperf_dir, task):
        got = reference.run(g, {inp: x}, mode="int8")[out]
        assert got.dtype == np.int8
        np.testing.assert_array_equal(got.reshape(y.shape), y, err_msg=f"{task} {kind}")


@pytest.mark.parametrize("task", sorted(MODELS))
def test_reference_equals_live_tflm(mlperf_dir, task):
    path = model_path(mlperf_dir, task)
    g = load_tflite(path)
    (inp,), (out,) = g.inputs, g.outputs
    xs = [x[0] for _, x, _ in shipped_pairs(mlperf_dir, task)]
    xs = np.concatenate([np.stack(xs), random_inputs(g.tensors[inp].shape, 4, seed=7)])
    want = tflm_outputs(path, xs)
    got = np.stack([reference.run(g, {inp: x[None]}, mode="int8")[out][0] for x in xs])
    np.testing.assert_array_equal(got.reshape(want.shape), want)
    # and the live interpreter agrees with the shipped files
    for _, x, y in shipped_pairs(mlperf_dir, task):
        np.testing.assert_array_equal(tflm_outputs(path, x).reshape(y.shape), y)


@pytest.mark.slow
@pytest.mark.parametrize("task", sorted(MODELS))
def test_generated_c_bit_exact_on_host(mlperf_dir, tmp_path, task):
    path = model_path(mlperf_dir, task)
    compiled = compile_model(path, target="host", outdir=tmp_path / "lib")
    assert compiled.float_graph is None  # already int8: no calibration
    g = compiled.graph
    (inp,) = g.inputs
    pairs = shipped_pairs(mlperf_dir, task)
    xs = np.concatenate([np.stack([x[0] for _, x, _ in pairs]), random_inputs(g.tensors[inp].shape, 3, seed=11)])
    out_bytes = compiled.library.manifest["output"]["bytes"]
    got = native.run_batch(native.build(tmp_path / "lib"), xs, out_bytes)
    want = tflm_outputs(path, xs).reshape(len(xs), -1)
    np.testing.assert_array_equal(got, want)
    for k, (_, _, y) in enumerate(pairs):
        np.testing.assert_array_equal(got[k], y.reshape(-1))


@pytest.mark.slow
def test_cli_check_int8_inputs_and_save_outputs(mlperf_dir, tmp_path):
    """`tinyconv check MODEL.tflite --device host --inputs X.npy --save-outputs Y.npy` (int8 inputs)."""
    x, y = mlperf_dir / "kws" / "kws_ref_model.sample_input0.npy", mlperf_dir / "kws" / "kws_ref_model.sample_output0.tflm_host.npy"
    out = tmp_path / "y.npy"
    r = subprocess.run([sys.executable, "-m", "tinyconv.cli", "check", str(model_path(mlperf_dir, "kws")), "--device", "host",
                        "--inputs", str(x), "--save-outputs", str(out)], capture_output=True, text=True)  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    np.testing.assert_array_equal(np.load(out).reshape(np.load(y).shape), np.load(y))
