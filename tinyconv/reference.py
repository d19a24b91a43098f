"""Runs an IR graph with the ops' NumPy references: float (before quantization) or int8 (the oracle).

Inputs and outputs are in the IR layout (NHWC) with a leading batch axis; `onnx_in`/`onnx_out`
convert from/to the ONNX layout the user sees. Batches are run one sample at a time through the
same code the int8 graph runs, so a batch of N is exactly N single-sample inferences.
"""

from __future__ import annotations

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


def run_batch(graph: Graph, batch: np.ndarray, *, mode: str = "int8") -> np.ndarray:
    """Single-input, single-output graphs: batch [N, *input shape without batch] → [N, *output shape]."""
    (inp,) = graph.inputs
    (out,) = graph.outputs
    shape = graph.tensors[inp].shape
    results = [run(graph, {inp: x.reshape(shape)}, mode=mode)[out] for x in batch]
    return np.stack([r.reshape(graph.tensors[out].shape[1:]) if r.shape[0] == 1 else r for r in results])


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
