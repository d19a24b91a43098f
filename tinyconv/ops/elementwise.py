"""Add and Mul with NumPy broadcasting (TFLite int8 arithmetic, QUANT.md)."""

from __future__ import annotations

import numpy as np

from tinyconv.errors import ModelError
from tinyconv.fixedpoint import activation_range, multiply_by_quantized_multiplier, quantize_multiplier
from tinyconv.ops.base import Op, qparams, register
from tinyconv.requant import requant_records
from tinyconv.specialise import Variant

ADD_LEFT_SHIFT = 20


def _broadcast_shape(node, graph):
    shapes = [graph.tensors[i].shape for i in node.inputs]
    try:
        return [tuple(np.broadcast_shapes(*shapes))]
    except ValueError:
        raise ModelError(f"{node.where()}: shapes {shapes} do not broadcast", node=node.name) from None


def _float_act(y, act):
    if act is None:
        return y
    return np.clip(y, -np.inf if act[0] is None else act[0], np.inf if act[1] is None else act[1])


def broadcast_strides(shape, out4) -> list[int]:
    """Element strides of `shape` inside the 4-D output `out4`, 0 along broadcast axes."""
    s4 = (1,) * (4 - len(shape)) + tuple(shape)
    strides, acc = [0] * 4, 1
    for i in range(3, -1, -1):
        strides[i] = acc if s4[i] == out4[i] else 0
        acc *= s4[i]
    return strides


class _Binary(Op):
    kernel_files = ("tc_elementwise",)

    def infer_shapes(self, node, graph):
        return _broadcast_shape(node, graph)

    def in_place_ok(self, node):
        return True

    def template_context(self, node, graph):
        out = (1,) * (4 - len(graph.tensors[node.outputs[0]].shape)) + graph.tensors[node.outputs[0]].shape
        return {"dims": list(out), "strides": [broadcast_strides(graph.tensors[i].shape, out) for i in node.inputs]}

    def macs(self, node, graph):
        return graph.tensors[node.outputs[0]].size


def add_input_term(q: np.ndarray, offset: int, multiplier: int, shift: int, left_shift: int) -> np.ndarray:
    """One input's rescaled contribution to an int8 add (what int8_ref sums)."""
    return multiply_by_quantized_multiplier((np.asarray(q, np.int64) + offset) * (1 << left_shift), multiplier, shift)


@register
class Add(_Binary):
    name = "add"

    def float_ref(self, node, ins):
        return [_float_act(ins[0].astype(np.float32) + ins[1].astype(np.float32), node.attrs.get("act")).astype(np.float32)]

    def prepare(self, node, graph):
        s1, z1 = qparams(graph, node.inputs[0])
        s2, z2 = qparams(graph, node.inputs[1])
        so, zo = qparams(graph, node.outputs[0])
        # Formed in double from the float32 scales, as TFLite Micro's add does.
        twice_max = 2.0 * max(float(np.float32(s1)), float(np.float32(s2)))
        m1, sh1 = quantize_multiplier(float(np.float32(s1)) / twice_max)
        m2, sh2 = quantize_multiplier(float(np.float32(s2)) / twice_max)
        mo, sho = quantize_multiplier(twice_max / ((1 << ADD_LEFT_SHIFT) * float(np.float32(so))))
        act_min, act_max = activation_range(node.attrs.get("act"), so, zo)
        return {
            "input1_offset": -z1, "input2_offset": -z2, "output_offset": zo,
            "input1_multiplier": m1, "input1_shift": sh1,
            "input2_multiplier": m2, "input2_shift": sh2,
            "output_multiplier": mo, "output_shift": sho,
            "left_shift": ADD_LEFT_SHIFT, "act_min": act_min, "act_max": act_max,
        }  # fmt: skip

    def variants(self, node, graph, target):
        """Each input's rescaled value tabulated over its 256 codes (2 KB), when nothing broadcasts."""
        shapes = {graph.tensors[i].shape for i in (*node.inputs, node.outputs[0])}
        if len(shapes) != 1:
            return []
        q = node.qattrs
        codes = np.arange(-128, 128, dtype=np.int64)
        ta = add_input_term(codes, q["input1_offset"], q["input1_multiplier"], q["input1_shift"], q["left_shift"])
        tb = add_input_term(codes, q["input2_offset"], q["input2_multiplier"], q["input2_shift"], q["left_shift"])
        lo, hi = int(ta.min() + tb.min()), int(ta.max() + tb.max())
        found = requant_records([q["output_multiplier"]], [q["output_shift"]], max(-lo, hi), q["output_offset"],
                                acc_range=(np.array([lo]), np.array([hi])))  # fmt: skip
        if found is None:
            return []
        kind, rec = found
        return [Variant("add-lut", "balanced", consts={"lut_a": ta.astype(np.int32), "lut_b": tb.astype(np.int32), "rq": rec.reshape(-1)},
                        values={"rq_kind": kind}, includes=("tc_add_lut.h",))]  # fmt: skip

    def int8_ref(self, node, ins):
        q = node.qattrs
        sa = add_input_term(ins[0], q["input1_offset"], q["input1_multiplier"], q["input1_shift"], q["left_shift"])
        sb = add_input_term(ins[1], q["input2_offset"], q["input2_multiplier"], q["input2_shift"], q["left_shift"])
        y = multiply_by_quantized_multiplier(sa + sb, q["output_multiplier"], q["output_shift"]) + q["output_offset"]
        return [np.clip(y, q["act_min"], q["act_max"]).astype(np.int8)]


@register
class Mul(_Binary):
    name = "mul"

    def float_ref(self, node, ins):
        return [_float_act(ins[0].astype(np.float32) * ins[1].astype(np.float32), node.attrs.get("act")).astype(np.float32)]

    def prepare(self, node, graph):
        s1, z1 = qparams(graph, node.inputs[0])
        s2, z2 = qparams(graph, node.inputs[1])
        so, zo = qparams(graph, node.outputs[0])
        m, sh = quantize_multiplier(float(np.float32(s1)) * float(np.float32(s2)) / float(np.float32(so)))
        act_min, act_max = activation_range(node.attrs.get("act"), so, zo)
        return {
            "input1_offset": -z1, "input2_offset": -z2, "output_offset": zo,
            "output_multiplier": m, "output_shift": sh, "act_min": act_min, "act_max": act_max,
        }  # fmt: skip

    def int8_ref(self, node, ins):
        q = node.qattrs
        p = (ins[0].astype(np.int64) + q["input1_offset"]) * (ins[1].astype(np.int64) + q["input2_offset"])
        y = multiply_by_quantized_multiplier(p, q["output_multiplier"], q["output_shift"]) + q["output_offset"]
        return [np.clip(y, q["act_min"], q["act_max"]).astype(np.int8)]
