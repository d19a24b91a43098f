"""Malformed or unsupported ONNX models: one line naming the node, a non-zero exit, no traceback."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from tinyconv.cli import main

F = TensorProto.FLOAT


def conv_model(x_shape=(1, 1, 8, 8), nodes=None, inits=None, out_shape=None, opset=13, extra_outputs=()):
    w = numpy_helper.from_array(np.ones((2, 1, 3, 3), np.float32), "w")
    nodes = nodes or [helper.make_node("Conv", ["x", "w"], ["y"], "conv0", pads=[1, 1, 1, 1])]
    g = helper.make_graph(nodes, "m", [helper.make_tensor_value_info("x", F, list(x_shape))],
                          [helper.make_tensor_value_info("y", F, out_shape)] + list(extra_outputs),
                          [w] + list(inits or []))  # fmt: skip
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def run_cli(tmp_path, model_bytes: bytes, capsys, *extra) -> tuple[int, str]:
    path = tmp_path / "model.onnx"
    path.write_bytes(model_bytes)
    np.save(tmp_path / "calib.npy", np.zeros((2, 1, 8, 8), np.float32))
    rc = main(["compile", str(path), "--calib", str(tmp_path / "calib.npy"), "-o", str(tmp_path / "out"), *extra])
    err = capsys.readouterr().err.strip()
    return rc, err


def assert_one_line_error(rc, err, *needles):
    assert rc != 0
    assert err.startswith("error:"), err
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1, err
    for n in needles:
        assert n in err, f"{n!r} not in {err!r}"


def test_truncated_file(tmp_path, capsys):
    data = conv_model().SerializeToString()
    rc, err = run_cli(tmp_path, data[: len(data) // 2], capsys)
    assert_one_line_error(rc, err, "model.onnx", "truncated")


def test_not_onnx_at_all(tmp_path, capsys):
    rc, err = run_cli(tmp_path, b"\x00\xffthis is not protobuf" * 10, capsys)
    assert_one_line_error(rc, err, "model.onnx")


def test_unknown_op_is_named(tmp_path, capsys):
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], "conv0", pads=[1, 1, 1, 1]),
             helper.make_node("Einsum", ["c"], ["y"], "mystery_einsum", equation="nchw->nchw")]  # fmt: skip
    rc, err = run_cli(tmp_path, conv_model(nodes=nodes).SerializeToString(), capsys)
    assert_one_line_error(rc, err, "Einsum", "mystery_einsum", "unsupported")


def test_custom_domain_op_is_named(tmp_path, capsys):
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], "conv0"), helper.make_node("Fancy", ["c"], ["y"], "fancy0", domain="com.acme")]
    m = conv_model(nodes=nodes)
    m.opset_import.append(helper.make_opsetid("com.acme", 1))
    rc, err = run_cli(tmp_path, m.SerializeToString(), capsys)
    assert_one_line_error(rc, err, "Fancy", "fancy0", "com.acme")


def test_dynamic_spatial_dimension(tmp_path, capsys):
    rc, err = run_cli(tmp_path, conv_model(x_shape=(1, 1, "height", 8)).SerializeToString(), capsys)
    assert_one_line_error(rc, err, "'x'", "dynamic", "height")


def test_symbolic_batch_is_fixed_to_one(tmp_path, capsys):
    rc, err = run_cli(tmp_path, conv_model(x_shape=("N", 1, 8, 8)).SerializeToString(), capsys)
    assert rc == 0, err


def test_missing_initializer(tmp_path, capsys):
    nodes = [helper.make_node("Conv", ["x", "w_missing"], ["y"], "conv_without_weights")]
    rc, err = run_cli(tmp_path, conv_model(nodes=nodes).SerializeToString(), capsys)
    assert_one_line_error(rc, err, "conv_without_weights", "w_missing", "not defined")


def test_cycle(tmp_path, capsys):
    nodes = [helper.make_node("Add", ["x", "b"], ["a"], "add_a"), helper.make_node("Relu", ["a"], ["b"], "relu_b"),
             helper.make_node("Conv", ["b", "w"], ["y"], "conv0")]  # fmt: skip
    rc, err = run_cli(tmp_path, conv_model(nodes=nodes).SerializeToString(), capsys)
    assert_one_line_error(rc, err, "cycle", "add_a", "relu_b")


def test_absurd_size(tmp_path, capsys):
    nodes = [helper.make_node("Resize", ["x", "", "scales"], ["y"], "huge_resize", mode="nearest")]
    scales = numpy_helper.from_array(np.array([1, 1, 100000, 100000], np.float32), "scales")
    rc, err = run_cli(tmp_path, conv_model(nodes=nodes, inits=[scales]).SerializeToString(), capsys)
    assert_one_line_error(rc, err, "huge_resize")


def test_opset_out_of_range(tmp_path, capsys):
    rc, err = run_cli(tmp_path, conv_model(opset=9).SerializeToString(), capsys)
    assert_one_line_error(rc, err, "opset 9")


def test_non_constant_weights(tmp_path, capsys):
    nodes = [helper.make_node("Relu", ["x"], ["r"], "r0"), helper.make_node("Conv", ["x", "r"], ["y"], "conv_dyn_w")]
    rc, err = run_cli(tmp_path, conv_model(nodes=nodes).SerializeToString(), capsys)
    assert_one_line_error(rc, err, "conv_dyn_w", "constant")


def test_unsupported_attribute(tmp_path, capsys):
    nodes = [helper.make_node("Resize", ["x", "", "scales"], ["y"], "cubic_resize", mode="cubic")]
    scales = numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales")
    rc, err = run_cli(tmp_path, conv_model(nodes=nodes, inits=[scales]).SerializeToString(), capsys)
    assert_one_line_error(rc, err, "cubic_resize", "cubic")


def test_missing_file(tmp_path, capsys):
    rc = main(["inspect", str(tmp_path / "nope.onnx")])
    err = capsys.readouterr().err
    assert_one_line_error(rc, err.strip(), "does not exist")


def test_calibration_shape_mismatch(tmp_path, capsys):
    path = tmp_path / "model.onnx"
    onnx.save(conv_model(), path)
    np.save(tmp_path / "calib.npy", np.zeros((2, 3, 8, 8), np.float32))
    rc = main(["compile", str(path), "--calib", str(tmp_path / "calib.npy"), "-o", str(tmp_path / "out")])
    assert_one_line_error(rc, capsys.readouterr().err.strip(), "[N, 1, 8, 8]")


@pytest.mark.parametrize("bad", ["missing.npy", "garbage"])
def test_unreadable_calibration(tmp_path, capsys, bad):
    path = tmp_path / "model.onnx"
    onnx.save(conv_model(), path)
    if bad == "garbage":
        (tmp_path / "garbage").write_bytes(b"nonsense")
    rc = main(["compile", str(path), "--calib", str(tmp_path / bad), "-o", str(tmp_path / "out")])
    assert_one_line_error(rc, capsys.readouterr().err.strip(), "calibration")
