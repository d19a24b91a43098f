"""Isolated ONNX shape inference (tinyconv/frontend/onnx_isolated.py) works on a copy of the model
whose large initializers are typed inputs without values: the shapes and types it reports equal
onnx's own inference on the full model, and the caller's model is untouched."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, given, settings
from onnx import TensorProto, helper, numpy_helper, shape_inference

from random_onnx import random_cnn, random_cnn1d
from tinyconv.frontend import onnx_isolated
from tinyconv.frontend.onnx_model import _value_types

STRICT = dict(check_type=True, strict_mode=True, data_prop=True)


def reshaping_model(ir_version: int = 8) -> onnx.ModelProto:
    """Conv with 1 MB of weights, then Reshape to a shape computed from a small initializer (data
    propagation needs its values) and from Shape of the conv output."""
    w = numpy_helper.from_array(np.ones((64, 16, 16, 16), np.float32), "w")
    tail = numpy_helper.from_array(np.array([-1], np.int64), "tail")
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], "conv"),
             helper.make_node("Shape", ["c"], ["s"], "shape", end=2),
             helper.make_node("Concat", ["s", "tail"], ["target"], "concat", axis=0),
             helper.make_node("Reshape", ["c", "target"], ["y"], "reshape")]  # fmt: skip
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16, 20, 20])]
    if ir_version < 4:  # initializers listed as graph inputs too, without a shape
        inputs.append(helper.make_tensor_value_info("w", TensorProto.FLOAT, None))
    g = helper.make_graph(nodes, "m", inputs, [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [w, tail])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 15)])
    m.ir_version = ir_version
    return m


@pytest.mark.parametrize("ir_version", [3, 8])
def test_inferred_types_equal_onnx_own_and_the_model_is_untouched(ir_version):
    m = reshaping_model(ir_version)
    before = m.SerializeToString()
    got = onnx_isolated.infer_shapes(m, "model.onnx", **STRICT)
    assert m.SerializeToString() == before
    shapes, dtypes = _value_types(got.graph)
    assert (shapes, dtypes) == _value_types(shape_inference.infer_shapes(m, **STRICT).graph)
    if ir_version >= 4:  # (IR 3: onnx reads the weights' declared, shapeless input type instead)
        assert shapes["y"] == (1, 64, 25)  # Reshape's target came from the small initializer's values
    assert [vi.name for vi in got.graph.input] == [vi.name for vi in m.graph.input]


def test_child_never_sees_large_initializer_values(monkeypatch):
    """What onnx's inference receives: kilobytes, not the 1 MB of weights (before: the whole model)."""
    def report_size(model, **kwargs):
        raise ValueError(f"size {model.ByteSize()} inits {[i.name for i in model.graph.initializer]}")

    monkeypatch.setattr(onnx_isolated.shape_inference, "infer_shapes", report_size)
    with pytest.raises(RuntimeError, match=r"size \d+ inits \['tail'\]") as e:
        onnx_isolated.infer_shapes(reshaping_model(), "model.onnx", **STRICT)
    assert int(str(e.value).split()[1]) < 4096


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(case=random_cnn() | random_cnn1d())
def test_random_graphs_infer_as_onnx_does(case, monkeypatch):
    """With the weights of these small graphs slimmed too (more than 64 elements; shape-carrying
    constants such as Pad's pads and Reshape's targets stay), inference still agrees."""
    monkeypatch.setattr(onnx_isolated, "SLIM_ELEMENTS", 64)
    m, _ = case
    lenient = dict(check_type=False, strict_mode=False, data_prop=True)
    assert _value_types(onnx_isolated.infer_shapes(m, "model.onnx", **lenient).graph) == _value_types(shape_inference.infer_shapes(m, **lenient).graph)
