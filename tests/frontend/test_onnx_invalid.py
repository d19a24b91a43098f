"""ONNX models the operator spec (and onnxruntime) refuses: through the real CLI each ends in one
`error:` line naming the node, never a traceback, a crash or a silently accepted model. Before
these checks, the attribute cases gave IndexError/ValueError tracebacks or compiled something the
model does not mean (an axis wrapped around, `perm=[0,0,1,2]` as a copy)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from tinyconv.cli import main
from tinyconv.errors import ModelError

F = TensorProto.FLOAT


def model(nodes, inits=(), x_shape=(1, 2, 8, 8), y_shape=None, opset=13, qdq_inits=()):
    w = numpy_helper.from_array(np.full((4, 2, 3, 3), 0.1, np.float32), "w")
    g = helper.make_graph(nodes, "m", [helper.make_tensor_value_info("x", F, list(x_shape))], [helper.make_tensor_value_info("y", F, y_shape)],
                          [w, *inits, *qdq_inits])  # fmt: skip
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def conv(name="conv0", inputs=("x", "w"), out="y", **attrs):
    n = helper.make_node("Conv", list(inputs), [out], name, **{k: v for k, v in attrs.items() if v != []})
    n.attribute.extend(helper.make_attribute(k, v, attr_type=onnx.AttributeProto.INTS) for k, v in attrs.items() if v == [])
    return n


def cli_error(tmp_path, capsys, m: onnx.ModelProto, *needles) -> str:
    path = tmp_path / "model.onnx"
    path.write_bytes(m.SerializeToString())
    x_shape = [d.dim_value for d in m.graph.input[0].type.tensor_type.shape.dim]
    np.save(tmp_path / "calib.npy", np.random.default_rng(0).normal(0, 1, (2, *x_shape[1:])).astype(np.float32))
    rc = main(["compile", str(path), "--calib", str(tmp_path / "calib.npy"), "-o", str(tmp_path / "out")])
    cap = capsys.readouterr()
    err = cap.err.strip()
    assert rc != 0, cap.out
    assert err.startswith("error:") and len(err.splitlines()) == 1, err
    assert "Traceback" not in err and "Warning" not in err
    for n in needles:
        assert n in err, f"{n!r} not in {err!r}"
    return err


CONV_ATTRS = {
    "pads_empty": ({"pads": []}, "'pads'"),
    "pads_negative": ({"pads": [1, -1, 1, 1]}, "negative"),
    "pads_six_entries": ({"pads": [1, 1, 1, 1, 1, 1]}, "6 entries"),
    "dilation_zero": ({"dilations": [0, 1]}, "dilations"),
    "dilation_negative": ({"dilations": [-2, 1]}, "dilations"),
    "dilation_huge": ({"dilations": [2**31 - 1, 1]}, "dilations"),  # before: onnx's C++ shape inference aborted the process
    "stride_zero": ({"strides": [0, 1]}, "strides"),
    "auto_pad_bogus": ({"auto_pad": "BOGUS"}, "BOGUS"),
    "group_zero": ({"group": 0}, "group"),
    "kernel_shape_wrong": ({"kernel_shape": [5, 5]}, "kernel_shape"),
}


@pytest.mark.parametrize("case", sorted(CONV_ATTRS))
def test_conv_attribute_out_of_range(tmp_path, capsys, case):
    attrs, needle = CONV_ATTRS[case]
    cli_error(tmp_path, capsys, model([conv(**attrs)]), "Conv 'conv0'", needle)


def test_bias_of_the_wrong_length(tmp_path, capsys):
    b = numpy_helper.from_array(np.zeros(3, np.float32), "b")
    cli_error(tmp_path, capsys, model([conv(inputs=("x", "w", "b"))], [b]), "Conv 'conv0'", "bias", "[4]")


def test_maxpool_without_kernel_shape(tmp_path, capsys):
    cli_error(tmp_path, capsys, model([helper.make_node("MaxPool", ["x"], ["y"], "pool0", strides=[2, 2])]), "MaxPool 'pool0'", "kernel_shape")


def test_pool_kernel_of_the_wrong_rank(tmp_path, capsys):
    cli_error(tmp_path, capsys, model([helper.make_node("MaxPool", ["x"], ["y"], "pool0", kernel_shape=[2])]), "MaxPool 'pool0'", "kernel_shape")


@pytest.mark.parametrize("perm", [[0, 0, 1, 2], [0, 1, 2, 5], [0, 1, 2]])
def test_transpose_perm_not_a_permutation(tmp_path, capsys, perm):
    """Before: [0,0,1,2] compiled as a copy; [0,1,2,5] was an IndexError."""
    nodes = [conv(out="c"), helper.make_node("Transpose", ["c"], ["y"], "tr0", perm=perm)]
    cli_error(tmp_path, capsys, model(nodes), "Transpose 'tr0'", "perm")


@pytest.mark.parametrize("op,attrs", [("Concat", {"axis": 4}), ("Concat", {"axis": -5}), ("Concat", {}), ("Softmax", {"axis": 4}), ("Flatten", {"axis": 5}),
                                      ("Split", {"axis": 7})])  # fmt: skip
def test_axis_out_of_range_or_missing(tmp_path, capsys, op, attrs):
    """Before: axes wrapped around (axis 4 of a rank-4 tensor became axis 0) or a KeyError."""
    ins = ["c", "c"] if op == "Concat" else ["c"]
    outs = ["y", "y2"] if op == "Split" else ["y"]
    nodes = [conv(out="c"), helper.make_node(op, ins, outs, "axis_op", **attrs)]
    cli_error(tmp_path, capsys, model(nodes), f"{op} 'axis_op'", "axis")


def test_clip_with_a_matrix_bound(tmp_path, capsys):
    hi = numpy_helper.from_array(np.ones((2, 2), np.float32), "hi")
    lo = numpy_helper.from_array(np.float32(0), "lo")
    nodes = [conv(out="c"), helper.make_node("Clip", ["c", "lo", "hi"], ["y"], "clip0")]
    cli_error(tmp_path, capsys, model(nodes, [lo, hi]), "Clip 'clip0'", "scalar")


def run_cli_process(tmp_path, m: onnx.ModelProto, *args) -> subprocess.CompletedProcess:
    """The real CLI in its own process: warnings reach stderr as a user sees them (pytest captures them in-process)."""
    path = tmp_path / "model.onnx"
    path.write_bytes(m.SerializeToString())
    np.save(tmp_path / "calib.npy", np.random.default_rng(0).normal(0, 1, (2, 2, 8, 8)).astype(np.float32))
    return subprocess.run([sys.executable, "-m", "tinyconv.cli", *args[:1], str(path), "--calib", str(tmp_path / "calib.npy"), *args[1:]],
                          capture_output=True, text=True, timeout=300)  # fmt: skip


@pytest.mark.parametrize("lo,hi", [(-1e30, 1e30)])
def test_clip_bound_1e30_checks_bit_exact(tmp_path, lo, hi):
    """A Clip bound of 1e30 is no bound in practice: compiles, builds with -Werror, bit-exact on the host."""
    inits = [numpy_helper.from_array(np.float32(lo), "lo"), numpy_helper.from_array(np.float32(hi), "hi")]
    nodes = [conv(out="c"), helper.make_node("Clip", ["c", "lo", "hi"], ["y"], "clip0")]
    r = run_cli_process(tmp_path, model(nodes, inits), "check", "--device", "host")
    assert r.returncode == 0, r.stderr
    assert "Warning" not in r.stderr and "Traceback" not in r.stderr


def test_model_onnxruntime_refuses_does_not_crash_check(tmp_path):
    """Clip with min/max attributes at opset 11 is refused by onnxruntime; tinyconv reads it. Before:
    `check` crashed with an onnxruntime traceback after the device run; now it reports without that comparison."""
    nodes = [conv(out="c"), helper.make_node("Clip", ["c"], ["y"], "clip0", min=0.0, max=6.0)]
    r = run_cli_process(tmp_path, model(nodes, opset=11), "check", "--device", "host")
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr and "onnxruntime float" not in r.stdout


@pytest.mark.parametrize("scale", [5e-324, 0.0, -0.5, float("inf"), float("nan")])
def test_qdq_scale_not_positive_finite(tmp_path, capsys, scale):
    """Before: 5e-324 (0 in float32) gave a ZeroDivisionError traceback; 0 and -0.5 were accepted."""
    s = numpy_helper.from_array(np.array(scale, np.float32), "s")
    z = numpy_helper.from_array(np.array(0, np.int8), "z")
    nodes = [conv(out="c"), helper.make_node("QuantizeLinear", ["c", "s", "z"], ["cq"], "q0"), helper.make_node("DequantizeLinear", ["cq", "s", "z"], ["y"], "dq0")]
    cli_error(tmp_path, capsys, model(nodes, [s, z]), "QuantizeLinear 'q0'", "scale")


def test_weights_overflowing_float_give_no_runtime_warning(tmp_path):
    """Weights of 3e38 overflow the float reference: one `error:` line, no RuntimeWarning printed before it."""
    w = numpy_helper.from_array(np.full((4, 2, 3, 3), 3e38, np.float32), "w")
    g = helper.make_graph([conv()], "m", [helper.make_tensor_value_info("x", F, [1, 2, 8, 8])], [helper.make_tensor_value_info("y", F, None)], [w])
    r = run_cli_process(tmp_path, helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), "compile", "-o", str(tmp_path / "out"))
    err = r.stderr.strip()
    assert r.returncode == 2 and err.startswith("error:") and len(err.splitlines()) == 1, err


def test_shape_inference_crash_is_one_error(monkeypatch):
    """onnx's C++ shape inference aborting (as it did on a huge dilation) kills only a child process."""
    from tinyconv.frontend import onnx_isolated

    monkeypatch.setattr(onnx_isolated.shape_inference, "infer_shapes", lambda *a, **k: os.abort())
    with pytest.raises(ModelError, match="shape inference crashed.*SIGABRT"):
        onnx_isolated.infer_shapes(model([conv()]), "model.onnx")


def c64(name, values, dtype=np.int64):
    return numpy_helper.from_array(np.asarray(values, dtype), name)


FOUND_BY_HAND = {  # before: StopIteration / ValueError tracebacks, or a RuntimeWarning and a late error
    "unsqueeze_repeated_axes": ([helper.make_node("Unsqueeze", ["x", "a"], ["y"], "unsq")], [c64("a", [0, 0])], (1, 2, 8, 8), "axes"),
    "div_by_zero_constant": ([helper.make_node("Div", ["x", "k"], ["y"], "div")], [c64("k", [0.0], np.float32)], (1, 2, 8, 8), "holds 0"),
    "batch_of_four": ([helper.make_node("Relu", ["x"], ["y"], "relu")], [], (4, 2, 8, 8), "fixed batch of 4"),
    "rank1_input": ([helper.make_node("Softmax", ["x"], ["y"], "sm")], [], (4,), "fixed batch of 4"),
}


@pytest.mark.parametrize("case", sorted(FOUND_BY_HAND))
def test_more_invalid_models(tmp_path, capsys, case):
    nodes, inits, x_shape, needle = FOUND_BY_HAND[case]
    g = helper.make_graph(nodes, "m", [helper.make_tensor_value_info("x", F, list(x_shape))], [helper.make_tensor_value_info("y", F, None)], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    path = tmp_path / "model.onnx"
    path.write_bytes(m.SerializeToString())
    np.save(tmp_path / "calib.npy", np.zeros((2, *x_shape[1:]), np.float32))
    rc = main(["compile", str(path), "--calib", str(tmp_path / "calib.npy"), "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert rc != 0 and err.startswith("error:") and len(err.splitlines()) == 1, err
    assert needle in err, err


def test_batch_made_inside_the_model_is_refused_before_a_spatial_kernel(tmp_path, capsys):
    """Found by the fuzz campaign (onnx case 337): Concat on axis 0 made a batch of 2 images that a
    GlobalAveragePool then reduced; the reference reduced both, the generated kernel only the first
    (a mismatch on every input). The spatial kernels process one image, so this is refused."""
    nodes = [conv(out="c"), helper.make_node("Concat", ["c", "c"], ["cc"], "cat_batch", axis=0), helper.make_node("GlobalAveragePool", ["cc"], ["y"], "gap")]
    cli_error(tmp_path, capsys, model(nodes), "gap", "batch of 2")


def test_clip_bound_1e38_is_no_bound(tmp_path):
    """Fuzz campaign onnx case 451: Clip max 1e38 fused into a conv overflowed float32 when the
    int8 bounds were formed (an OverflowError traceback). It is no bound: compiles, bit-exact."""
    inits = [numpy_helper.from_array(np.float32(0.0), "lo"), numpy_helper.from_array(np.float32(1e38), "hi")]
    nodes = [conv(out="c"), helper.make_node("Clip", ["c", "lo", "hi"], ["y"], "clip0")]
    r = run_cli_process(tmp_path, model(nodes, inits), "check", "--device", "host")
    assert r.returncode == 0, r.stderr


def test_infinite_bias(tmp_path, capsys):
    """Fuzz campaign onnx case 573: a bias of -inf reached the multiplier computation (a traceback)."""
    b = numpy_helper.from_array(np.array([0, 0, 0, -np.inf], np.float32), "b")
    cli_error(tmp_path, capsys, model([conv(inputs=("x", "w", "b"))], [b]), "Conv 'conv0'", "infinite")
