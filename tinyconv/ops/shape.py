"""Data movement: reshape, transpose, concat, split, slice, pad, nearest resize.

None of these compute; all but concat keep the input's quantization. Concat requantizes an input
only when its params differ from the output's: MBQM(q - zp_in, s_in / s_out) + zp_out.
The C side is one strided 4-D copy (tc_copy.h); each op's strides are computed here at compile time.
"""

from __future__ import annotations

import numpy as np

from tinyconv.errors import ModelError
from tinyconv.fixedpoint import multiply_by_quantized_multiplier, quantize, quantize_multiplier
from tinyconv.ops.base import CALIBRATED, SAME_AS_INPUT, Op, qparams, register


def as4d(shape) -> tuple[int, ...]:
    shape = tuple(shape)
    if len(shape) > 4:
        raise ModelError(f"tensors of rank {len(shape)} are not supported (at most 4)")
    return (1,) * (4 - len(shape)) + shape


def strides_of(shape) -> list[int]:
    s, acc = [], 1
    for d in reversed(shape):
        s.append(acc)
        acc *= d
    return s[::-1]


class _Move(Op):
    output_policy = SAME_AS_INPUT
    kernel_files = ("tc_copy",)

    def template_context(self, node, graph):
        return {"plan": self.copy_plan(node, graph)} if hasattr(self, "copy_plan") else {}

    def int8_ref(self, node, ins):
        return [o.astype(np.int8) for o in self._move(node, ins)]

    def float_ref(self, node, ins):
        return [o.astype(np.float32) for o in self._move(node, ins)]

    def _move(self, node, ins):
        raise NotImplementedError


@register
class Reshape(_Move):
    name = "reshape"

    def infer_shapes(self, node, graph):
        src = graph.tensors[node.inputs[0]]
        shape = tuple(int(d) for d in node.attrs["shape"])
        if int(np.prod(shape)) != src.size:
            raise ModelError(f"{node.where()}: cannot reshape {list(src.shape)} to {list(shape)}", node=node.name)
        return [shape]

    def _move(self, node, ins):
        return [ins[0].reshape(node.attrs["shape"])]

    def in_place_ok(self, node):
        return True


@register
class Transpose(_Move):
    name = "transpose"

    def infer_shapes(self, node, graph):
        s = graph.tensors[node.inputs[0]].shape
        return [tuple(s[p] for p in node.attrs["perm"])]

    def _move(self, node, ins):
        return [np.ascontiguousarray(ins[0].transpose(node.attrs["perm"]))]

    def copy_plan(self, node, graph):
        """[(input index, src offset, src strides 4d, dst offset, dst strides 4d, dims 4d)]."""
        src_shape = graph.tensors[node.inputs[0]].shape
        out_shape = graph.tensors[node.outputs[0]].shape
        pad = 4 - len(src_shape)
        s = strides_of(src_shape)
        src_strides = [0] * pad + [s[p] for p in node.attrs["perm"]]
        return [(0, 0, src_strides, 0, strides_of(as4d(out_shape)), list(as4d(out_shape)))]


@register
class Slice(_Move):
    """attrs: starts, ends, steps — one entry per axis, already clamped by the frontend."""

    name = "slice"

    def infer_shapes(self, node, graph):
        a = node.attrs
        shape = tuple(len(range(s, e, st)) for s, e, st in zip(a["starts"], a["ends"], a["steps"]))
        if 0 in shape:
            raise ModelError(f"{node.where()}: slice is empty", node=node.name)
        return [shape]

    def _move(self, node, ins):
        a = node.attrs
        idx = tuple(slice(s, e, st) for s, e, st in zip(a["starts"], a["ends"], a["steps"]))
        return [np.ascontiguousarray(ins[0][idx])]

    def copy_plan(self, node, graph):
        a = node.attrs
        src_shape = graph.tensors[node.inputs[0]].shape
        out_shape = graph.tensors[node.outputs[0]].shape
        s = strides_of(src_shape)
        offset = sum(st * b for st, b in zip(s, a["starts"]))
        pad = 4 - len(src_shape)
        src_strides = [0] * pad + [st * step for st, step in zip(s, a["steps"])]
        return [(0, offset, src_strides, 0, strides_of(as4d(out_shape)), list(as4d(out_shape)))]


@register
class Split(_Move):
    """attrs: axis, sizes. Several outputs."""

    name = "split"

    def infer_shapes(self, node, graph):
        shape = graph.tensors[node.inputs[0]].shape
        axis, sizes = node.attrs["axis"], node.attrs["sizes"]
        if sum(sizes) != shape[axis]:
            raise ModelError(f"{node.where()}: split sizes {sizes} do not add up to {shape[axis]}", node=node.name)
        return [tuple(sz if i == axis else d for i, d in enumerate(shape)) for sz in sizes]

    def _move(self, node, ins):
        cuts = np.cumsum(node.attrs["sizes"])[:-1]
        return [np.ascontiguousarray(p) for p in np.split(ins[0], cuts, axis=node.attrs["axis"])]

    def copy_plan(self, node, graph):
        src_shape = graph.tensors[node.inputs[0]].shape
        s = strides_of(src_shape)
        pad = 4 - len(src_shape)
        axis, start, plan = node.attrs["axis"], 0, []
        for out, size in zip(node.outputs, node.attrs["sizes"]):
            o_shape = graph.tensors[out].shape
            plan.append((0, start * s[axis], [0] * pad + s, 0, strides_of(as4d(o_shape)), list(as4d(o_shape))))
            start += size
        return plan


@register
class Concat(Op):
    name = "concat"
    output_policy = CALIBRATED
    kernel_files = ("tc_copy",)

    def template_context(self, node, graph):
        return {"plan": self.copy_plan(node, graph)}

    def infer_shapes(self, node, graph):
        shapes = [graph.tensors[i].shape for i in node.inputs]
        axis = node.attrs["axis"]
        base = list(shapes[0])
        for s in shapes[1:]:
            if len(s) != len(base) or any(a != b for i, (a, b) in enumerate(zip(s, base)) if i != axis):
                raise ModelError(f"{node.where()}: cannot concatenate shapes {shapes} on axis {axis}", node=node.name)
        base[axis] = sum(s[axis] for s in shapes)
        return [tuple(base)]

    def float_ref(self, node, ins):
        return [np.concatenate(ins, axis=node.attrs["axis"]).astype(np.float32)]

    def prepare(self, node, graph):
        so, zo = qparams(graph, node.outputs[0])
        parts = []
        for name in node.inputs:
            si, zi = qparams(graph, name)
            same = (si, zi) == (so, zo)
            m, sh = (0, 0) if same else quantize_multiplier(float(np.float32(si)) / float(np.float32(so)))
            parts.append({"requantize": not same, "input_zp": zi, "multiplier": m, "shift": sh})
        return {"parts": parts, "output_zp": zo}

    def int8_ref(self, node, ins):
        q = node.qattrs
        outs = []
        for x, p in zip(ins, q["parts"]):
            if p["requantize"]:
                y = multiply_by_quantized_multiplier(x.astype(np.int64) - p["input_zp"], p["multiplier"], p["shift"])
                x = np.clip(y + q["output_zp"], -128, 127)
            outs.append(x.astype(np.int8))
        return [np.concatenate(outs, axis=node.attrs["axis"])]

    def copy_plan(self, node, graph):
        out_shape = graph.tensors[node.outputs[0]].shape
        axis = node.attrs["axis"]
        d = strides_of(out_shape)
        pad = 4 - len(out_shape)
        start, plan = 0, []
        for k, name in enumerate(node.inputs):
            s_shape = graph.tensors[name].shape
            plan.append((k, 0, strides_of(as4d(s_shape)), start * d[axis], [0] * pad + d, list(as4d(s_shape))))
            start += s_shape[axis]
        return plan


@register
class Pad(_Move):
    """attrs: pads = [begin_0..begin_r-1, end_0..end_r-1] in IR axes, value (float)."""

    name = "pad"

    def infer_shapes(self, node, graph):
        shape = graph.tensors[node.inputs[0]].shape
        p = node.attrs["pads"]
        r = len(shape)
        if any(v < 0 for v in p):
            raise ModelError(f"{node.where()}: negative pads are not supported", node=node.name)
        return [tuple(d + p[i] + p[i + r] for i, d in enumerate(shape))]

    def float_ref(self, node, ins):
        return [self._pad(node, ins[0], node.attrs.get("value", 0.0)).astype(np.float32)]

    def prepare(self, node, graph):
        scale, zp = qparams(graph, node.inputs[0])
        return {"pad_value": int(quantize(np.float32(node.attrs.get("value", 0.0)), scale, zp))}

    def int8_ref(self, node, ins):
        return [self._pad(node, ins[0], node.qattrs["pad_value"]).astype(np.int8)]

    @staticmethod
    def _pad(node, x, value):
        p = node.attrs["pads"]
        r = x.ndim
        return np.pad(x, [(p[i], p[i + r]) for i in range(r)], constant_values=value)

    def copy_plan(self, node, graph):
        src_shape = graph.tensors[node.inputs[0]].shape
        out_shape = graph.tensors[node.outputs[0]].shape
        p = node.attrs["pads"]
        d = strides_of(out_shape)
        offset = sum(st * b for st, b in zip(d, p[: len(src_shape)]))
        pad = 4 - len(src_shape)
        return [(0, 0, strides_of(as4d(src_shape)), offset, [0] * pad + d, list(as4d(src_shape)))]


@register
class ResizeNearest(_Move):
    """attrs: rows, cols — for each output row/column, the input row/column it copies (NHWC)."""

    name = "resize_nearest"
    kernel_files = ("tc_copy",)

    def infer_shapes(self, node, graph):
        n, h, w, c = graph.tensors[node.inputs[0]].shape
        rows, cols = node.attrs["rows"], node.attrs["cols"]
        if min(rows) < 0 or max(rows) >= h or min(cols) < 0 or max(cols) >= w:
            raise ModelError(f"{node.where()}: resize indices out of range", node=node.name)
        return [(n, len(rows), len(cols), c)]

    def _move(self, node, ins):
        return [ins[0][:, node.attrs["rows"]][:, :, node.attrs["cols"]]]

    def kernel_consts(self, node, graph):
        return {"rows": np.asarray(node.attrs["rows"], np.int32), "cols": np.asarray(node.attrs["cols"], np.int32)}
