"""int8 softmax: bit-exact with TensorFlow Lite Micro's reference kernel (real interpreter on
one-op .tflite models built here), the portable C kernel bit-exact with the NumPy reference
(native build under AddressSanitizer/UBSan), and the int8 result close to the float softmax."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from native_checks import assert_bit_exact_native, assert_compiles_cleanly, need_compiler
from tinyconv import reference
from tinyconv.errors import ModelError
from tinyconv.ir import Graph, Node, QuantParams, Tensor
from tinyconv.ops import op_of
from tinyconv.ops.softmax import exp_on_negative_values, one_over_one_plus_x_for_x_in_0_1, softmax_int8, softmax_params
from tinyconv.pipeline import compile_model
from tinyconv.quantize import prepare_all

# -- helpers ----------------------------------------------------------------------------------------


def softmax_graph(shape, in_scale, in_zp, beta=1.0, out_scale=1 / 256, out_zp=-128) -> Graph:
    """An int8 graph holding one prepared softmax node."""
    g = Graph(name="softmax")
    g.add_tensor(Tensor("x", tuple(shape), "int8", quant=QuantParams.per_tensor(in_scale, in_zp)))
    g.add_tensor(Tensor("y", tuple(shape), "int8", quant=QuantParams.per_tensor(out_scale, out_zp)))
    g.nodes.append(Node("softmax", "softmax", ["x"], ["y"], {"axis": len(shape) - 1, "beta": beta}))
    g.inputs, g.outputs = ["x"], ["y"]
    g.validate()
    prepare_all(g)
    return g


def ref_int8(g: Graph, x: np.ndarray) -> np.ndarray:
    node = g.nodes[0]
    return op_of(node).int8_ref(node, [x])[0]


# -- TFLite Micro oracle -------------------------------------------------------------------------------

tflm_runtime = pytest.importorskip("tflite_micro.python.tflite_micro.runtime", reason="tflite-micro not installed")
schema = pytest.importorskip("tflite_micro.tensorflow.lite.micro.python.schema_py_generated")
flatbuffers = pytest.importorskip("flatbuffers")


def softmax_tflite(shape, in_scale, in_zp, beta) -> bytes:
    """A .tflite model holding only SOFTMAX, int8 in (in_scale, in_zp) and out (1/256, -128)."""
    s = schema
    model = s.ModelT()
    model.version = 3
    code = s.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = s.BuiltinOperator.SOFTMAX
    code.version = 1
    model.operatorCodes = [code]

    def tensor(name, scale, zp):
        t = s.TensorT()
        t.shape, t.type, t.buffer, t.name = list(shape), s.TensorType.INT8, 0, name
        t.quantization = s.QuantizationParametersT()
        t.quantization.scale, t.quantization.zeroPoint = [float(scale)], [int(zp)]
        return t

    sub = s.SubGraphT()
    sub.tensors = [tensor("x", in_scale, in_zp), tensor("y", 1.0 / 256, -128)]
    sub.inputs, sub.outputs = [0], [1]
    op = s.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = 0, [0], [1]
    op.builtinOptionsType = s.BuiltinOptions.SoftmaxOptions
    op.builtinOptions = s.SoftmaxOptionsT()
    op.builtinOptions.beta = float(beta)
    sub.operators = [op]
    model.subgraphs = [sub]
    model.buffers = [s.BufferT()]  # buffer 0: the empty sentinel
    b = flatbuffers.Builder(1024)
    b.Finish(model.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def run_tflm(x: np.ndarray, in_scale, in_zp, beta) -> np.ndarray:
    model = softmax_tflite(x.shape, in_scale, in_zp, beta)
    it = tflm_runtime.Interpreter.from_bytes(model, arena_size=64 * 1024 + 4 * x.size)
    it.set_input(np.ascontiguousarray(x, np.int8), 0)
    it.invoke()
    y = it.get_output(0)
    assert y.dtype == np.int8 and y.shape == x.shape
    return y


def all_pairs() -> np.ndarray:
    """Every (a, b) of int8 values: every difference to the row max, both orders."""
    v = np.arange(-128, 128, dtype=np.int16)
    a, b = np.meshgrid(v, v, indexing="ij")
    return np.stack([a.ravel(), b.ravel()], axis=1).astype(np.int8)


# (input scale, input zero point, beta): typical logits scales, the cap of the multiplier
# (beta · scale · 2^26 > 2^31 - 1, diff_min = 0), beta · scale just above 2^-26, odd betas.
PARAMS = [
    (0.1, 3, 1.0),
    (0.0625, -128, 1.0),
    (0.3371, 17, 1.0),
    (0.01, 0, 1.0),
    (0.0039215, -5, 1.0),
    (1.0, 0, 1.0),
    (0.5, 12, 2.0),
    (0.25, -1, 0.5),
    (0.17, 100, 1.7),
    (40.0, 0, 1.0),
    (8.0, -20, 3.0),
    (1.6e-8, 0, 1.0),
    (0.73, 127, 0.001),
    (0.023, -77, 7.0),
]


@pytest.mark.parametrize("in_scale,in_zp,beta", PARAMS)
def test_tflm_bit_exact_all_pairs(in_scale, in_zp, beta):
    """Rows of 2: every int8 value against every other (all 65536 rows, every byte compared)."""
    x = all_pairs()
    g = softmax_graph(x.shape, in_scale, in_zp, beta)
    got = ref_int8(g, x)
    want = run_tflm(x, in_scale, in_zp, beta)
    bad = np.nonzero(got != want)
    assert bad[0].size == 0, f"{bad[0].size} mismatches, first row {x[bad[0][0]]}: ours {got[bad[0][0]]} tflm {want[bad[0][0]]}"


@pytest.mark.parametrize("in_scale,in_zp,beta", PARAMS)
@pytest.mark.parametrize("depth", [1, 3, 10, 37, 256, 511])
def test_tflm_bit_exact_random_rows(in_scale, in_zp, beta, depth):
    rng = np.random.default_rng(depth * 1000 + int(in_scale * 1e4) % 997)
    rows = max(8, 4096 // depth)
    x = rng.integers(-128, 128, size=(rows, depth)).astype(np.int8)
    # Rows with a narrow spread (many entries near the max: large sums), rows of one value, a
    # row holding every int8 value.
    x[: rows // 4] = np.clip(rng.integers(-3, 1, size=(rows // 4, depth)) + rng.integers(-125, 128, size=(rows // 4, 1)), -128, 127)
    x[rows // 4] = rng.integers(-128, 128)
    if depth >= 256:
        x[rows // 4 + 1, :256] = rng.permutation(np.arange(-128, 128))
    g = softmax_graph(x.shape, in_scale, in_zp, beta)
    np.testing.assert_array_equal(ref_int8(g, x), run_tflm(x, in_scale, in_zp, beta))


@pytest.mark.parametrize("shape", [(1, 10), (1, 4, 5, 12), (2, 3, 7), (5,)])
def test_tflm_bit_exact_nd(shape):
    rng = np.random.default_rng(len(shape))
    x = rng.integers(-128, 128, size=shape).astype(np.int8)
    g = softmax_graph(shape, 0.0917, -9, 1.0)
    np.testing.assert_array_equal(ref_int8(g, x), run_tflm(x, 0.0917, -9, 1.0))


def test_reference_run_uses_the_op():
    x = np.random.default_rng(3).integers(-128, 128, size=(3, 16)).astype(np.int8)
    g = softmax_graph(x.shape, 0.2, 4)
    y = reference.run(g, {"x": x})["y"]
    np.testing.assert_array_equal(y, run_tflm(x, 0.2, 4, 1.0))


MLPERF = [("ic", "pretrainedResnet_quant"), ("kws", "kws_ref_model"), ("vww", "vww_96_int8")]


@pytest.mark.parametrize("task,stem", MLPERF)
def test_mlperf_final_softmax(mlperf_dir, task, stem):
    """The models' own SOFTMAX: its input (kept by TFLM's kPreserveAllTensors) through int8_ref
    gives the stored TFLM output and the interpreter's output."""
    data = (mlperf_dir / task / f"{stem}.tflite").read_bytes()
    model = schema.ModelT.InitFromPackedBuf(data, 0)
    sub = model.subgraphs[0]

    def code(o):
        c = model.operatorCodes[o.opcodeIndex]
        return max(c.builtinCode, c.deprecatedBuiltinCode)

    (op,) = [o for o in sub.operators if code(o) == schema.BuiltinOperator.SOFTMAX]
    t = sub.tensors[op.inputs[0]]
    scale, zp = float(t.quantization.scale[0]), int(t.quantization.zeroPoint[0])
    for inp in sorted((mlperf_dir / task).glob(f"{stem}.*_input0.npy")):
        it = tflm_runtime.Interpreter.from_bytes(data, intrepreter_config=tflm_runtime.InterpreterConfig.kPreserveAllTensors)
        it.set_input(np.load(inp), 0)
        it.invoke()
        logits = np.asarray(it.GetTensor(op.inputs[0], 0)["tensor_data"], np.int8)
        g = softmax_graph(logits.shape, scale, zp, op.builtinOptions.beta)
        got = ref_int8(g, logits)
        np.testing.assert_array_equal(got, it.get_output(0).reshape(got.shape))
        stored = np.load(str(inp).replace("_input0.npy", "_output0.tflm_host.npy"))
        np.testing.assert_array_equal(got.reshape(-1), stored.reshape(-1))


# -- prepare -------------------------------------------------------------------------------------------


def test_prepare_params():
    # 0.1f · 2^26 → Q31 multiplier of float32(0.1)'s mantissa, shift 23; radius floor(31 · 2^26 / 2^23).
    assert softmax_params(1.0, 0.1) == {"input_multiplier": 1717986944, "input_left_shift": 23, "diff_min": -248}
    capped = softmax_params(1.0, 64.0)
    assert capped == {"input_multiplier": 2**31 - 1, "input_left_shift": 31, "diff_min": 0}
    with pytest.raises(ValueError):
        softmax_params(1.0, 1e-9)  # beta · scale · 2^26 <= 1: TFLite rejects it too


def test_prepare_rejects_bad_graphs():
    with pytest.raises(ModelError, match="1/256"):
        softmax_graph((1, 10), 0.1, 0, out_scale=1 / 128)
    with pytest.raises(ModelError, match="zero point -128"):
        softmax_graph((1, 10), 0.1, 0, out_zp=0)
    with pytest.raises(ModelError, match="rows longer"):
        softmax_graph((1, 5000), 0.1, 0)
    with pytest.raises(ModelError, match="too small"):
        softmax_graph((1, 10), 1e-9, 0)
    g = Graph()
    g.add_tensor(Tensor("x", (1, 4, 10)))
    n = Node("s", "softmax", ["x"], ["y"], {"axis": 1, "beta": 1.0})
    with pytest.raises(ModelError, match="last axis"):
        op_of(n).infer_shapes(n, g)


def test_fixed_output_quant():
    g = softmax_graph((1, 4), 0.1, 0)
    qp = op_of(g.nodes[0]).fixed_output_quant(g.nodes[0], g)
    assert qp.scalar() == (1 / 256, -128)


def test_fixed_point_pieces_match_the_functions():
    a = -np.arange(0, 31 * 2**26, 2**26 // 64 + 7, dtype=np.int64)  # Q5.26, [-31, 0]
    e = exp_on_negative_values(a) / 2**31
    assert np.max(np.abs(e - np.exp(a / 2**26))) < 2e-6
    x = np.arange(0, 2**31 - 1, 2**31 // 1000 + 3, dtype=np.int64)
    r = one_over_one_plus_x_for_x_in_0_1(x) / 2**31
    assert np.max(np.abs(r - 1 / (1 + x / 2**31))) < 1e-8


def test_huge_sum_outputs_minus_128():
    """Sum of exps >= 512 (TFLM's TFLITE_CHECK would abort): every output rounds to 0 → -128."""
    x = np.full((2, 600), 5, np.int8)
    x[1, :100] = 6  # 100 entries at the max, 500 at exp(-0.001): the sum is still ~600
    g = softmax_graph(x.shape, 0.001, 0)
    y = ref_int8(g, x)
    assert np.all(y == -128)


# -- C kernel through the native build -----------------------------------------------------------------


def fc_softmax_graph(seed: int = 0, k: int = 24, classes: int = 10) -> Graph:
    rng = np.random.default_rng(seed)
    g = Graph(name="fc_softmax")
    g.add_tensor(Tensor("x", (1, k)))
    g.inputs = ["x"]
    w = g.add_const("w", rng.normal(size=(classes, k)).astype(np.float32) / 2).name
    b = g.add_const("b", rng.normal(size=classes).astype(np.float32)).name
    g.add_tensor(Tensor("logits", (1, classes)))
    g.nodes.append(Node("fc", "fully_connected", ["x", w, b], ["logits"], {"act": None}))
    g.add_tensor(Tensor("probs", (1, classes)))
    g.nodes.append(Node("softmax", "softmax", ["logits"], ["probs"], {"axis": 1, "beta": 1.0}))
    g.outputs = ["probs"]
    g.validate()
    return g


def _native_check(c, xq):
    return assert_bit_exact_native(c, xq, "gcc")


needs_gcc = pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc not installed")


@needs_gcc
def test_native_fc_softmax_bit_exact(tmp_path):
    g = fc_softmax_graph()
    calib = np.random.default_rng(1).normal(size=(64, 24)).astype(np.float32) * 2
    c = compile_model(g, calib=calib, outdir=tmp_path / "lib")
    assert c.graph.tensors["probs"].quant.scalar() == (1 / 256, -128)
    assert "tc_softmax.c" in {p.name for p in c.library.outdir.glob("*.c")}
    rng = np.random.default_rng(2)
    xq = rng.integers(-128, 128, size=(400, 24)).astype(np.int8)
    expected = _native_check(c, xq)
    assert len(np.unique(expected)) > 20  # the softmax is not degenerate on these inputs


# Direct int8 graphs: every parameter regime, depth 1..4095, rows at the sum limits, in place.
NATIVE_CASES = [
    ((1, 10), 0.1, 3, 1.0),
    ((4, 3, 16), 0.0625, -128, 1.0),
    ((2, 256), 0.3371, 17, 1.0),
    ((1, 1), 0.5, 0, 1.0),
    ((3, 600), 0.001, 0, 1.0),  # sums >= 512 → shift > 31 path
    ((1, 4095), 1e-6, 0, 1.0),  # longest row, every entry at (almost) exp(0)
    ((2, 33), 40.0, 0, 1.0),  # capped multiplier, diff_min = 0
    ((2, 40), 1.6e-8, 5, 1.0),  # smallest usable beta · scale
    ((5, 7), 0.023, -77, 7.0),
]


@needs_gcc
@pytest.mark.parametrize("shape,in_scale,in_zp,beta", NATIVE_CASES)
def test_native_kernel_bit_exact(tmp_path, shape, in_scale, in_zp, beta):
    g = softmax_graph(shape, in_scale, in_zp, beta)
    c = compile_model(g, outdir=tmp_path / "lib")
    rng = np.random.default_rng(abs(hash(shape)) % 2**32)
    n = 64
    xq = rng.integers(-128, 128, size=(n, *shape)).astype(np.int8)
    xq[: n // 4] = rng.integers(-2, 1, size=(n // 4, *shape)) + rng.integers(-126, 128, size=(n // 4,) + (1,) * len(shape))
    xq[n // 4] = 0
    xq[n // 4 + 1] = 127
    xq[n // 4 + 2] = -128
    _native_check(c, xq.reshape(n, -1))


@needs_gcc
def test_native_all_pairs(tmp_path):
    """Every (a, b) int8 pair through the C kernel at a typical scale (256 inferences of 256 rows)."""
    g = softmax_graph((256, 2), 0.1371, -3)
    c = compile_model(g, outdir=tmp_path / "lib")
    _native_check(c, all_pairs().reshape(256, 512))


@pytest.mark.parametrize(
    "cc,flags",
    [
        ("gcc", []),
        ("clang", ["-Weverything", "-Wno-declaration-after-statement", "-Wno-padded", "-Wno-unknown-warning-option", "-Wno-unsafe-buffer-usage"]),
        ("arm-none-eabi-gcc", ["-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard", "-O2"]),
    ],
)
def test_generated_softmax_compiles_without_warnings(tmp_path, cc, flags):
    need_compiler(cc)
    c = compile_model(softmax_graph((2, 10), 0.1, 0), outdir=tmp_path / "lib")
    assert_compiles_cleanly(c, cc, flags)  # clang here without -Wno-sign-conversion: the kernel is clean of it
    kernel = (c.library.outdir / "tc_softmax.c").read_text() + (c.library.outdir / "tc_softmax.h").read_text()
    assert "float" not in kernel and "double" not in kernel and "malloc" not in kernel
    assert "tc_softmax_s8(" in (c.library.outdir / "tc_model.c").read_text()


# -- int8 vs float -------------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    x=hnp.arrays(np.int8, st.tuples(st.integers(1, 4), st.integers(1, 200)), elements=st.integers(-128, 127)),
    log_scale=st.floats(np.log(1e-3), np.log(2.0)),
    zp=st.integers(-128, 127),
    beta=st.sampled_from([0.25, 0.5, 1.0, 1.5, 3.0]),
)
def test_int8_close_to_float_softmax(x, log_scale, zp, beta):
    scale = float(np.float32(np.exp(log_scale)))
    p = softmax_params(beta, scale)
    y = softmax_int8(x, p["input_multiplier"], p["input_left_shift"], p["diff_min"]).astype(np.int64)
    z = beta * scale * (x.astype(np.float64) - zp)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    prob = e / e.sum(axis=-1, keepdims=True)
    expected = np.clip(np.round(prob * 256) - 128, -128, 127)
    assert np.max(np.abs(y - expected)) <= 1
    # and through the op's float_ref
    node = Node("s", "softmax", ["x"], ["y"], {"axis": x.ndim - 1, "beta": beta})
    fref = op_of(node).float_ref(node, [scale * (x.astype(np.float32) - zp)])[0]
    np.testing.assert_allclose(fref, prob, atol=1e-5)  # float32 input
