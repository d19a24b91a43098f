"""Runs an IR graph with the ops' NumPy references: float (before quantization) or int8 (the oracle).

Inputs and outputs are in the IR layout (NHWC) with a leading batch axis; `onnx_in`/`onnx_out`
convert from/to the ONNX layout the user sees. `run_batch` runs the whole batch through every op
at once (the ops' references are vectorised over axis 0) when the graph keeps axis 0 as the batch
(`batch_axis_kept`); otherwise, and in `run_batch(per_sample=True)`, one sample at a time. Both
give the same integers: tests compare them byte for byte.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from tinyconv.ir import Graph
from tinyconv.ops import op_of


def run(graph: Graph, inputs: dict[str, np.ndarray], *, mode: str = "int8", keep: bool = False) -> dict[str, np.ndarray]:
    """One inference. `inputs` maps graph input names to arrays of the IR shape (batch 1).

    Returns the graph outputs, or every tensor computed (keep=True) for layer-by-layer diffing.
    """
    values: dict[str, np.ndarray] = {}
    for name, t in graph.tensors.items():
        if t.is_const:
            values[name] = t.data
    for name in graph.inputs:
        want = graph.tensors[name].shape
        x = np.asarray(inputs[name])
        if tuple(x.shape) != tuple(want):
            x = x.reshape(want)
        values[name] = x.astype(np.int8) if mode == "int8" else x.astype(np.float32)
    for node in graph.nodes:
        op = op_of(node)
        ins = [values[i] for i in node.inputs]
        outs = op.int8_ref(node, ins) if mode == "int8" else op.float_ref(node, ins)
        for name, v in zip(node.outputs, outs):
            values[name] = v
    if keep:
        return {k: v for k, v in values.items() if not graph.tensors[k].is_const}
    return {o: values[o] for o in graph.outputs}


def run_batch(graph: Graph, batch: np.ndarray, *, mode: str = "int8", per_sample: bool = False) -> np.ndarray:
    """Single-input, single-output graphs: batch [N, *input shape without batch] → [N, *output shape]."""
    (inp,) = graph.inputs
    (out,) = graph.outputs
    shape = graph.tensors[inp].shape
    out_shape = graph.tensors[out].shape
    batch = np.asarray(batch)
    if not per_sample and len(batch) > 1 and batch_axis_kept(graph):
        step = samples_per_run(graph)
        ys = []
        for k in range(0, len(batch), step):
            part = batch[k : k + step]
            n = len(part)
            ys.append(_run_nodes(graph, {inp: part.reshape((n, *shape[1:]))}, mode, n)[out].reshape((n, *out_shape[1:])))
        return np.concatenate(ys)
    results = [run(graph, {inp: x.reshape(shape)}, mode=mode)[out] for x in batch]
    return np.stack([r.reshape(out_shape[1:]) if r.shape[0] == 1 else r for r in results])


BATCH_BYTES = 256 << 20  # bound on the largest float64 tensor of one batched run


def samples_per_run(graph: Graph) -> int:
    """How many samples one batched run takes so its largest tensor stays within BATCH_BYTES."""
    largest = max((t.size for t in graph.tensors.values() if not t.is_const), default=1)
    return int(max(1, BATCH_BYTES // (8 * max(1, largest))))


def run_batch_tensors(graph: Graph, batch: np.ndarray, *, mode: str = "float") -> dict[str, np.ndarray]:
    """Every computed tensor for a batch [N, *input shape without batch]: name → an array whose
    [k] is sample k's tensor (calibration observes them sample by sample, as if run alone)."""
    (inp,) = graph.inputs
    shape = graph.tensors[inp].shape
    batch = np.asarray(batch)
    n = len(batch)
    if n > 1 and batch_axis_kept(graph):
        values = _run_nodes(graph, {inp: batch.reshape((n, *shape[1:]))}, mode, n)
    else:
        runs = [run(graph, {inp: x.reshape(shape)}, mode=mode, keep=True) for x in batch]
        values = {k: np.stack([r[k] for r in runs]) for k in runs[0]} if runs else {}
    return {k: v for k, v in values.items() if not graph.tensors[k].is_const}


def run_batch_keeping(graph: Graph, batch: np.ndarray, keep: int, *, mode: str = "int8") -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """run_batch's outputs, plus every computed tensor of the first `keep` samples (as
    run_batch_tensors gives them): one reference run serves both the outputs and a per-layer report."""
    (out,) = graph.outputs
    out_shape = graph.tensors[out].shape[1:]
    batch = np.asarray(batch)
    keep = min(keep, len(batch))
    tensors = run_batch_tensors(graph, batch[:keep], mode=mode) if keep else {}
    parts = [tensors[out].reshape((keep, *out_shape))] if keep else []
    if len(batch) > keep:
        parts.append(run_batch(graph, batch[keep:], mode=mode).reshape((len(batch) - keep, *out_shape)))
    return np.concatenate(parts), tensors


# Ops whose attributes never name the batch axis and whose references broadcast over it.
_BATCH_FREE = {"conv2d", "conv_transpose2d", "fully_connected", "max_pool2d", "avg_pool2d", "mean", "global_max_pool",
               "softmax", "unary", "prelu", "resize_nearest"}  # fmt: skip


def batch_axis_kept(graph: Graph) -> bool:
    """True when axis 0 of every computed tensor is a size-1 batch axis that no node mixes with
    another axis, so N samples can ride in it through every op."""
    for t in graph.tensors.values():
        if not t.is_const and (len(t.shape) < 2 or t.shape[0] != 1):  # rank 1: axis 0 may be softmax's
            return False
    for node in graph.nodes:
        a = node.attrs
        ranks = {len(graph.tensors[i].shape) for i in node.inputs if not graph.tensors[i].is_const}
        rank = len(graph.tensors[node.outputs[0]].shape)
        if node.op in ("add", "mul"):
            if ranks != {rank}:  # a lower-rank computed operand would broadcast against the batch axis
                return False
        elif node.op == "transpose":
            if a["perm"][0] != 0:
                return False
        elif node.op in ("concat", "split"):
            if a["axis"] % rank == 0:
                return False
        elif node.op == "pad":
            if a["pads"][0] or a["pads"][rank]:
                return False
        elif node.op == "slice":
            if (a["starts"][0], a["steps"][0]) != (0, 1):
                return False
        elif node.op == "reshape":
            if not a["shape"] or a["shape"][0] != 1:
                return False
        elif node.op not in _BATCH_FREE:
            return False
    return True


def _for_batch(node, n: int):
    """The node with the attributes that spell the batch axis restated for n samples."""
    if node.op == "reshape":
        return dataclasses.replace(node, attrs={**node.attrs, "shape": (n, *node.attrs["shape"][1:])})
    if node.op == "slice":
        return dataclasses.replace(node, attrs={**node.attrs, "ends": (n, *node.attrs["ends"][1:])})
    return node


def _run_nodes(graph: Graph, feed: dict[str, np.ndarray], mode: str, n: int) -> dict[str, np.ndarray]:
    values = {name: t.data for name, t in graph.tensors.items() if t.is_const}
    for name, x in feed.items():
        values[name] = x.astype(np.int8) if mode == "int8" else x.astype(np.float32)
    for node in graph.nodes:
        op = op_of(node)
        ins = [values[i] for i in node.inputs]
        bn = _for_batch(node, n)
        outs = op.int8_ref(bn, ins) if mode == "int8" else op.float_ref(bn, ins)
        for name, v in zip(node.outputs, outs):
            values[name] = v
    return values


def onnx_in(graph: Graph, batch_onnx: np.ndarray) -> np.ndarray:
    """[N, *onnx input shape without batch] → [N, *IR input shape without batch]."""
    (inp,) = graph.inputs
    lay = graph.io_layout.get(inp)
    shape = graph.tensors[inp].shape
    if lay is None:
        return batch_onnx.reshape((-1, *shape[1:]))
    return np.stack([lay.to_ir(x.reshape(lay.onnx_shape), shape)[0] for x in batch_onnx])


def onnx_out(graph: Graph, batch_ir: np.ndarray) -> np.ndarray:
    """[N, *IR output shape without batch] → [N, *onnx output shape without batch]."""
    (out,) = graph.outputs
    lay = graph.io_layout.get(out)
    shape = graph.tensors[out].shape
    if lay is None:
        return batch_ir
    return np.stack([lay.to_onnx(x.reshape(shape))[0] for x in batch_ir])
