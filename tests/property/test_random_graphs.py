"""Random CNNs (real ONNX files) through the whole compiler: the generated C, built with
AddressSanitizer and UndefinedBehaviorSanitizer, must equal the NumPy int8 reference byte for byte,
and the float reference must match onnxruntime."""

from __future__ import annotations

import os

import numpy as np
import onnxruntime as ort
import pytest
from hypothesis import HealthCheck, given, settings

from random_onnx import random_cnn, random_cnn1d
from tinyconv import native, reference
from tinyconv.check import prepare_inputs
from tinyconv.frontend.onnx import load_onnx
from tinyconv.pipeline import compile_model

# The CI run sets TINYCONV_PROPERTY_EXAMPLES=200; a local fast run uses fewer.
EXAMPLES = int(os.environ.get("TINYCONV_PROPERTY_EXAMPLES", "40"))


SETTINGS = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                                                HealthCheck.function_scoped_fixture])


SHARDS = 4  # the examples are split into shards so pytest-xdist spreads them over the CPUs


@pytest.mark.parametrize("shard", range(SHARDS))
@settings(SETTINGS, max_examples=max(1, EXAMPLES // SHARDS))
@given(case=random_cnn())
def test_random_graph_bit_exact_under_sanitizers(tmp_path_factory, shard, case):
    check_random_model(tmp_path_factory, *case)


@settings(SETTINGS, max_examples=max(10, EXAMPLES // 4))
@given(random_cnn1d())
def test_random_1d_graph_bit_exact_under_sanitizers(tmp_path_factory, case):
    check_random_model(tmp_path_factory, *case)


def check_random_model(tmp_path_factory, model, in_shape):
    rng = np.random.default_rng(len(model.graph.node))
    calib = rng.normal(0, 1, size=(8, *in_shape)).astype(np.float32)
    g = load_onnx(model)

    # Float reference against onnxruntime.
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    want = sess.run(None, {"input": calib[:1]})[0]
    got = reference.onnx_out(g, reference.run_batch(g, reference.onnx_in(g, calib[:1]), mode="float"))
    np.testing.assert_allclose(got.reshape(want.shape), want, rtol=1e-4, atol=1e-4 * max(1.0, float(np.abs(want).max())))

    # int8: generated C (ASan + UBSan) == NumPy reference, every byte.
    outdir = tmp_path_factory.mktemp("lib")
    c = compile_model(g, calib=calib, outdir=outdir)
    xq = prepare_inputs(c.graph, calib).int8_ir
    expected = reference.run_batch(c.graph, xq).reshape(len(xq), -1)
    exe = native.build(outdir, sanitize=True, opt="-O1")
    out = native.run_batch(exe, xq, expected.shape[1])
    mism = int(np.count_nonzero(out != expected))
    assert mism == 0, f"{mism} of {expected.size} bytes differ; max |diff| {np.abs(out.astype(int) - expected).max()}"
