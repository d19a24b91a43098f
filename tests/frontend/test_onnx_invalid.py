"""ONNX models the operator spec (and onnxruntime) refuses: through the real CLI each ends in one
`error:` line naming the node, never a traceback, a crash or a silently accepted model. Before
these checks, the attribute cases gave IndexError/ValueError tracebacks or compiled something the
model does not mean (an axis wrapped around, `perm=[0,0,1,2]` as a copy)."""

from __future__ import annotations

import os

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


def test_clip_bound_1e30_compiles(tmp_path, capsys):
    """A Clip bound of 1e30 means no upper bound in practice: it compiles (before: a traceback)."""
    hi = numpy_helper.from_array(np.float32(1e30), "hi")
    lo = numpy_helper.from_array(np.float32(-1e30), "lo")
    nodes = [conv(out="c"), helper.make_node("Clip", ["c", "lo", "hi"], ["y"], "clip0")]
    path = tmp_path / "model.onnx"
    path.write_bytes(model(nodes, [lo, hi]).SerializeToString())
    np.save(tmp_path / "calib.npy", np.random.default_rng(0).normal(0, 1, (2, 2, 8, 8)).astype(np.float32))
    rc = main(["compile", str(path), "--calib", str(tmp_path / "calib.npy"), "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "Warning" not in err and "Traceback" not in err


@pytest.mark.parametrize("scale", [5e-324, 0.0, -0.5, float("inf"), float("nan")])
def test_qdq_scale_not_positive_finite(tmp_path, capsys, scale):
    """Before: 5e-324 (0 in float32) gave a ZeroDivisionError traceback; 0 and -0.5 were accepted."""
    s = numpy_helper.from_array(np.array(scale, np.float32), "s")
    z = numpy_helper.from_array(np.array(0, np.int8), "z")
    nodes = [conv(out="c"), helper.make_node("QuantizeLinear", ["c", "s", "z"], ["cq"], "q0"), helper.make_node("DequantizeLinear", ["cq", "s", "z"], ["y"], "dq0")]
    cli_error(tmp_path, capsys, model(nodes, [s, z]), "QuantizeLinear 'q0'", "scale")


def test_weights_overflowing_float_give_no_runtime_warning(tmp_path, capsys):
    """Weights of 1e38 overflow the float reference: one `error:` line, no RuntimeWarning before it."""
    w = numpy_helper.from_array(np.full((4, 2, 3, 3), 3e38, np.float32), "w")
    g = helper.make_graph([conv()], "m", [helper.make_tensor_value_info("x", F, [1, 2, 8, 8])], [helper.make_tensor_value_info("y", F, None)], [w])
    cli_error(tmp_path, capsys, helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), "non-finite")


def test_shape_inference_crash_is_one_error(monkeypatch):
    """onnx's C++ shape inference aborting (as it did on a huge dilation) kills only a child process."""
    from tinyconv.frontend import onnx_isolated

    monkeypatch.setattr(onnx_isolated.shape_inference, "infer_shapes", lambda *a, **k: os.abort())
    with pytest.raises(ModelError, match="shape inference crashed.*SIGABRT"):
        onnx_isolated.infer_shapes(model([conv()]), "model.onnx")
