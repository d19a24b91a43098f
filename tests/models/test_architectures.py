"""Architectures users run (tests/archs.py), exported to ONNX: each must import, match onnxruntime
in float, compile bit-exact on the host, and pass the onnxruntime QDQ cross-check (≤ 1 LSB)."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from archs import ARCHITECTURES
from tinyconv import reference
from tinyconv.check import prepare_inputs, run_check
from tinyconv.crosscheck import layerwise
from tinyconv.frontend.onnx import load_onnx
from tinyconv.pipeline import compile_model


def _calib(shape, n=16, seed=0):
    return np.random.default_rng(seed).normal(0, 1, (n, *shape)).astype(np.float32)


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_architecture_float_matches_onnxruntime(arch):
    model, shape = ARCHITECTURES[arch]()
    g = load_onnx(model)
    x = _calib(shape, 2)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    for xi in x:
        want = sess.run(None, {"input": xi[None]})[0]
        got = reference.onnx_out(g, reference.run_batch(g, reference.onnx_in(g, xi[None]), mode="float"))
        np.testing.assert_allclose(got.reshape(want.shape), want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_architecture_bit_exact_on_host(arch, tmp_path):
    model, shape = ARCHITECTURES[arch]()
    path = tmp_path / f"{arch}.onnx"
    path.write_bytes(model.SerializeToString())
    report, _, _ = run_check(path, device="host", calib=_calib(shape), workdir=tmp_path / "work")
    assert report["bit_exact"], report["first_divergent_layer"]
    assert report["sqnr_db"][0]["sqnr_db"] > 15.0


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_architecture_quantization_agrees_with_onnxruntime(arch):
    model, shape = ARCHITECTURES[arch]()
    calib = _calib(shape)
    c = compile_model(load_onnx(model), calib=calib)
    cc = layerwise(c.graph, prepare_inputs(c.graph, calib[:4]).int8_ir)
    worst = max(cc.layers, key=lambda lay: lay.max_abs_diff)
    assert cc.ok, f"max |diff| {cc.max_abs_diff} LSB at {worst.tensor}; identical {100 * cc.identical_fraction:.2f} %"
