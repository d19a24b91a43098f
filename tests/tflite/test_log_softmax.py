"""LOG_SOFTMAX / ONNX LogSoftmax: tinyconv's int8 reference and the generated C equal TFLite
Micro's int8 LOG_SOFTMAX byte for byte, on many random shapes, scales and inputs."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import tflite_build as tb
from core.native_checks import assert_bit_exact_native
from tinyconv import reference
from tinyconv.errors import ModelError
from tinyconv.frontend.tflite import load_tflite
from tinyconv.ops.log_softmax import OUTPUT_SCALE, OUTPUT_ZERO_POINT, log_softmax_int8, log_softmax_params
from tinyconv.pipeline import compile_model

pytestmark = pytest.mark.skipif(tb.S is None, reason="tflite-micro (the bit-exact oracle) is not installed")


def log_softmax_model(rows: int, depth: int, in_scale: float, in_zp: int, out_scale=OUTPUT_SCALE, out_zp=OUTPUT_ZERO_POINT) -> bytes:
    mb = tb.ModelBuilder()
    x = mb.act("x", (rows, depth), in_scale, in_zp)
    y = mb.act("y", (rows, depth), out_scale, out_zp)
    mb.inputs, mb.outputs = [x], [y]
    mb.op(tb.op_code("LOG_SOFTMAX"), [x], [y], tb.S.BuiltinOptions.LogSoftmaxOptions, tb.S.LogSoftmaxOptionsT())
    return mb.build()


def tflm_batch(model: bytes, xs: np.ndarray) -> np.ndarray:
    interp = tb.tflm_runtime.Interpreter.from_bytes(model, arena_size=1 << 20)
    outs = []
    for x in xs:
        interp.set_input(x, 0)
        interp.invoke()
        outs.append(np.array(interp.get_output(0)))
    return np.stack(outs)


def random_case(rng):
    depth = int(rng.choice([1, 2, 3, 7, 10, 12, 35, 100, 640, 4095]))
    rows = int(rng.integers(1, 4))
    in_scale = float(np.float32(10 ** rng.uniform(-3.5, 2.0)))  # from fine to clamped (>= 32) multipliers
    return rows, depth, in_scale, int(rng.integers(-128, 128))


def random_inputs(rng, n, rows, depth):
    xs = rng.integers(-128, 128, size=(n, rows, depth))
    near_max = rng.integers(120, 128, size=(n, rows, depth))  # many entries close to the row max
    return np.where(rng.random((n, 1, 1)) < 0.3, near_max, xs).astype(np.int8)


def _reference_vs_tflm(cases: int, seed: int) -> list:
    rng = np.random.default_rng(seed)
    mismatched = []
    for case in range(cases):
        rows, depth, in_scale, in_zp = random_case(rng)
        xs = random_inputs(rng, 25, rows, depth)
        want = tflm_batch(log_softmax_model(rows, depth, in_scale, in_zp), xs)
        got = log_softmax_int8(xs, log_softmax_params(in_scale))
        if not np.array_equal(got, want):
            mismatched.append((case, rows, depth, in_scale, int(np.count_nonzero(got != want))))
    return mismatched


def test_reference_equals_tflm_on_random_models():
    assert not _reference_vs_tflm(40, seed=15), "reference differs from TFLite Micro"


@pytest.mark.slow
def test_reference_equals_tflm_on_many_random_models():
    mismatched = _reference_vs_tflm(400, seed=16)
    assert not mismatched, f"reference differs from TFLite Micro: {mismatched}"


@pytest.mark.parametrize(("rows", "depth", "in_scale", "in_zp"), [
    (3, 35, 0.0123, -100),
    pytest.param(1, 12, 0.0625, 3, marks=pytest.mark.slow),
    pytest.param(2, 640, 0.4, 0, marks=pytest.mark.slow),
    pytest.param(1, 4095, 40.0, 127, marks=pytest.mark.slow),  # longest row, clamped input multiplier
])  # fmt: skip
def test_generated_c_equals_tflm(tmp_path, rows, depth, in_scale, in_zp):
    model = log_softmax_model(rows, depth, in_scale, in_zp)
    path = tmp_path / "ls.tflite"
    path.write_bytes(model)
    c = compile_model(path, target="host", outdir=tmp_path / "lib")
    assert [n.op for n in c.graph.nodes] == ["log_softmax"]
    xs = random_inputs(np.random.default_rng(depth), 200, rows, depth)
    got = assert_bit_exact_native(c, xs, "gcc")  # sanitized native build == reference
    np.testing.assert_array_equal(got.reshape(xs.shape), tflm_batch(model, xs))


def test_output_params_other_than_tflms_are_refused(tmp_path):
    path = tmp_path / "bad.tflite"
    path.write_bytes(log_softmax_model(1, 10, 0.05, 0, out_scale=1 / 256, out_zp=-128))
    with pytest.raises(ModelError, match=r"LOG_SOFTMAX \(operator 0.*scale 16/256 and zero point 127"):
        load_tflite(path)


def test_onnx_log_softmax_compiles_bit_exact(tmp_path):
    """A speech-style head: Gemm → LogSoftmax (axis -1), quantized from float by tinyconv."""
    rng = np.random.default_rng(3)
    w = helper.make_tensor("w", TensorProto.FLOAT, (12, 40), rng.normal(size=(40, 12)).astype(np.float32).T.reshape(-1).tolist())
    nodes = [helper.make_node("Gemm", ["x", "w"], ["logits"], transB=1), helper.make_node("LogSoftmax", ["logits"], ["y"], axis=-1)]
    graph = helper.make_graph(nodes, "ls", [helper.make_tensor_value_info("x", TensorProto.FLOAT, (1, 40))],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, (1, 12))], [w])  # fmt: skip
    path = tmp_path / "ls.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    calib = rng.normal(size=(32, 40)).astype(np.float32)
    c = compile_model(path, calib=calib, target="host", outdir=tmp_path / "lib")
    assert [n.op for n in c.graph.nodes] == ["fully_connected", "log_softmax"]
    out = c.graph.tensors[c.graph.outputs[0]].quant.scalar()
    assert out == (np.float32(OUTPUT_SCALE), OUTPUT_ZERO_POINT)
    xs = rng.integers(-128, 128, size=(64, 40)).astype(np.int8)
    assert_bit_exact_native(c, xs, "gcc")
    # int8 log-probabilities track the float ones (within a few output steps of 1/16)
    fx = calib[:8]
    s, z = c.graph.tensors[c.graph.inputs[0]].quant.scalar()
    from tinyconv.fixedpoint import quantize

    q = reference.run_batch(c.graph, quantize(fx, s, z)).reshape(8, -1).astype(np.float64)
    f = reference.run_batch(c.float_graph, fx, mode="float").reshape(8, -1)
    deq = (q - OUTPUT_ZERO_POINT) * OUTPUT_SCALE
    close = deq > -7.5  # -8 is the saturated bottom of the int8 range
    assert np.abs(deq - f)[close].max() < 0.5
