"""Error metrics between the int8 result (dequantized) and the float model, as embedded users know
them from vendor validation tools, plus the byte comparison per layer against the reference."""

from __future__ import annotations

import numpy as np

from tinyconv.fixedpoint import dequantize
from tinyconv.ir import Graph


def float_metrics(ref: np.ndarray, got: np.ndarray) -> dict:
    """RMSE, MAE, L2 relative error ‖got − ref‖ / ‖ref‖ and cosine similarity, over all elements."""
    r = np.asarray(ref, np.float64).reshape(-1)
    g = np.asarray(got, np.float64).reshape(-1)
    d = g - r
    nr, ng = float(np.linalg.norm(r)), float(np.linalg.norm(g))
    return {
        "rmse": float(np.sqrt(np.mean(d * d))) if d.size else 0.0,
        "mae": float(np.mean(np.abs(d))) if d.size else 0.0,
        "l2_relative": float(np.linalg.norm(d) / nr) if nr > 0 else (0.0 if not d.any() else None),
        "cosine": float(np.dot(r, g) / (nr * ng)) if nr > 0 and ng > 0 else (1.0 if nr == ng else 0.0),
    }


def layer_float_metrics(int8_graph: Graph, float_values: dict, int8_values: dict) -> dict[str, dict]:
    """Per node output tensor: float_metrics of the dequantized int8 reference vs the float reference,
    from tensors already computed for the same inputs (reference.run_batch_keeping)."""
    out = {}
    for node in int8_graph.nodes:
        o = node.outputs[0]
        if o in float_values and o in int8_values:
            q = dequantize(int8_values[o], *int8_graph.tensors[o].quant.scalar())
            out[o] = float_metrics(float_values[o].reshape(-1), q.reshape(-1))
    return out


def layer_diffs(int8_graph: Graph, device_layers: list[np.ndarray], ref: dict) -> list[dict]:
    """Per layer: mismatching elements and max |diff| of the device's output against the reference,
    for one input (`ref`: that input's reference tensors)."""
    out = []
    for node, d in zip(int8_graph.nodes, device_layers):
        e = ref[node.outputs[0]].reshape(-1).astype(np.int16)
        diff = np.abs(np.asarray(d, np.int16).reshape(-1) - e) if d.size == e.size else None
        out.append({"mismatches": int(np.count_nonzero(diff)) if diff is not None else int(e.size),
                    "max_abs_diff": int(diff.max()) if diff is not None and diff.size else (0 if diff is not None else None)})  # fmt: skip
    return out
