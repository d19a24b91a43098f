"""Post-training quantization of a float IR graph from calibration data.

Activations: int8 asymmetric per tensor, range from calibration (min/max, percentile or MSE).
Weights: int8 symmetric per output channel ([-127, 127]); biases int32 at input_scale·weight_scale.
Output params follow each op's policy (calibrated / same as input / fixed), then every node is
prepared (integer multipliers, shifts, clamps) exactly as QUANT.md says.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import numpy as np

from tinyconv import reference
from tinyconv.errors import DataError, ModelError, ScaleRangeError, UnsupportedError
from tinyconv.fixedpoint import dequantize
from tinyconv.ir import Graph, QuantParams
from tinyconv.ops import op_of
from tinyconv.ops.base import CALIBRATED, FIXED, SAME_AS_INPUT

METHODS = ("minmax", "percentile", "mse")
SAMPLE_PER_TENSOR = 8192  # values kept per tensor and input for percentile / MSE search


@dataclass
class RangeStats:
    lo: float = math.inf
    hi: float = -math.inf
    samples: list[np.ndarray] = field(default_factory=list)

    def observe(self, v: np.ndarray, rng: np.random.Generator) -> None:
        v = np.asarray(v, np.float32).reshape(-1)
        self.lo = min(self.lo, float(v.min()))
        self.hi = max(self.hi, float(v.max()))
        self.samples.append(v if v.size <= SAMPLE_PER_TENSOR else rng.choice(v, SAMPLE_PER_TENSOR, replace=False))

    def range(self, method: str) -> tuple[float, float]:
        if method == "minmax" or not self.samples:
            return self.lo, self.hi
        vals = np.concatenate(self.samples)
        if method == "percentile":
            return float(np.percentile(vals, 0.01)), float(np.percentile(vals, 99.99))
        return _mse_range(vals, self.lo, self.hi)


def _mse_range(vals: np.ndarray, lo: float, hi: float) -> tuple[float, float]:
    """Shrink [lo, hi] by the factor that minimises the int8 round-trip error on the samples."""
    best, best_err = (lo, hi), math.inf
    for f in np.linspace(0.3, 1.0, 36):
        qp = params_for_range(lo * f, hi * f)
        s, z = qp.scalar()
        q = np.clip(np.round(vals / s) + z, -128, 127)
        err = float(np.mean((vals - (q - z) * s) ** 2))
        if err < best_err:
            best, best_err = (lo * f, hi * f), err
    return best


def params_for_range(lo: float, hi: float) -> QuantParams:
    """Asymmetric int8 params whose grid contains 0 exactly."""
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    if hi - lo < 1e-12:
        return QuantParams.per_tensor(1.0, 0)
    scale = np.float32((hi - lo) / 255.0)
    zp = int(np.clip(round(-128 - lo / float(scale)), -128, 127))
    return QuantParams.per_tensor(float(scale), zp)


BIAS_LIMIT = 2.0**30  # |int32 bias| stays below this, leaving the other half of int32 for the sums


def quantize_weights_per_channel(w: np.ndarray, axis: int = 0, min_scale: np.ndarray | None = None) -> tuple[np.ndarray, QuantParams]:
    """Symmetric int8 per channel; `min_scale` raises a channel's scale where its bias needs it."""
    moved = np.moveaxis(np.asarray(w), axis, 0)
    rows = moved.reshape(moved.shape[0], -1)
    amax = np.abs(rows).max(axis=1).astype(np.float64) if rows.size else np.zeros(len(rows))  # |float32| is exact
    scale = np.where(amax > 0, amax / 127.0, 1.0)
    if min_scale is not None:
        scale = np.maximum(scale, min_scale)
    scale = scale.astype(np.float32)
    q = np.empty(rows.shape, np.int8)
    # round(w / scale) in float64, as one expression would, but a block of channels at a time:
    # the float64 temporaries stay in cache instead of streaming a model-sized copy through memory.
    step = max(1, (1 << 16) // max(1, rows.shape[1]))
    for c0 in range(0, len(rows), step):
        block = rows[c0 : c0 + step].astype(np.float64)
        block /= scale[c0 : c0 + step].astype(np.float64)[:, None]
        np.rint(block, out=block)
        np.clip(block, -127, 127, out=block)
        q[c0 : c0 + step] = block
    return np.moveaxis(q.reshape(moved.shape), 0, axis), QuantParams(scale, np.zeros_like(scale, np.int32), axis)


def quantize_bias(b: np.ndarray, input_scale: float, weight_scale: np.ndarray) -> tuple[np.ndarray, QuantParams]:
    bs = (np.float64(np.float32(input_scale)) * weight_scale.astype(np.float64)).reshape(-1)
    q = np.clip(np.round(np.asarray(b, np.float64) / bs), -(2**31), 2**31 - 1).astype(np.int32)
    return q, QuantParams(bs.astype(np.float32), np.zeros(bs.shape, np.int32), 0)


@dataclass
class LayerSQNR:
    node: str
    op: str
    tensor: str
    sqnr_db: float


def collect_ranges(graph: Graph, calib_ir: np.ndarray, progress=None) -> dict[str, RangeStats]:
    stats: dict[str, RangeStats] = {}
    rng = np.random.default_rng(0)
    # The float reference runs up to 16 samples at once (every tensor of them kept: ~256 MB at
    # most); ranges are still observed sample by sample, so the result is that of one at a time.
    per_sample = 8 * sum(t.size for t in graph.tensors.values() if not t.is_const)
    step = int(max(1, min(16, (256 << 20) // max(1, per_sample))))
    for k0 in range(0, len(calib_ir), step):
        batch = reference.run_batch_tensors(graph, calib_ir[k0 : k0 + step], mode="float")
        for k in range(len(calib_ir[k0 : k0 + step])):
            for name, v in batch.items():
                if not np.all(np.isfinite(v[k])):
                    raise DataError(f"calibration input {k0 + k} produces non-finite values in tensor '{name}'")
                stats.setdefault(name, RangeStats()).observe(v[k], rng)
            if progress:
                progress(k0 + k + 1, len(calib_ir))
    return stats


def _given_after_moves(graph: Graph, name: str) -> QuantParams | None:
    """A pre-quantized model may quantize a tensor only after a Reshape, Transpose or MaxPool (or
    compute a few ops in float, as onnxruntime's QOperator format does around BatchNorm): ops that
    keep their input's params pass the first given params down the chain back up to it."""
    seen = 0
    while name not in graph.given_quant and seen < 8:
        users = graph.consumers(name)
        if len(users) != 1 or op_of(users[0]).output_policy != SAME_AS_INPUT:
            return None
        name, seen = users[0].outputs[0], seen + 1
    return graph.given_quant.get(name)


def _concat_shared_params(g: Graph, stats: dict[str, RangeStats], method: str) -> dict[str, QuantParams]:
    """Concat inputs computed by calibrated ops take the concat's output params (as TFLite does):
    the concat is then a pure copy, with no requantization and no rounding. The output range
    contains every input's, so no input clips; an input with other consumers loses a little
    resolution, which they see too."""
    out: dict[str, QuantParams] = {}
    for node in g.nodes:
        if node.op != "concat" or node.outputs[0] in g.given_quant or node.outputs[0] not in stats:
            continue
        qp = params_for_range(*stats[node.outputs[0]].range(method))
        for name in node.inputs:
            p = g.producer(name)
            if p is not None and op_of(p).output_policy == CALIBRATED and name not in g.given_quant and name not in out:
                out[name] = qp
    return out


def needs_calibration(graph: Graph) -> list[str]:
    """Tensors whose int8 params must come from calibration (none for a complete QDQ model)."""
    missing = [n for n in graph.inputs if n not in graph.given_quant and _given_after_moves(graph, n) is None]
    for node in graph.nodes:
        if op_of(node).output_policy == CALIBRATED:
            missing += [o for o in node.outputs if o not in graph.given_quant and _given_after_moves(graph, o) is None]
    return missing


def quantize_graph(graph: Graph, calib_ir: np.ndarray | None, method: str = "minmax", progress=None) -> Graph:
    """A new int8 graph, prepared for the reference and the code generator.

    Parameters a QDQ model prescribes (graph.given_quant, Tensor.qdata) win over calibration, so a
    QDQ model is compiled with exactly its own scales, zero points and integer weights.
    """
    if method not in METHODS:
        raise DataError(f"unknown calibration method '{method}' (choose from {', '.join(METHODS)})")
    stats: dict[str, RangeStats] = {}
    if calib_ir is not None:
        if len(calib_ir) == 0:
            raise DataError("the calibration set is empty")
        stats = collect_ranges(graph, calib_ir, progress)
    elif needs_calibration(graph):
        missing = needs_calibration(graph)
        raise DataError(f"give calibration inputs with --calib X.npy: {len(missing)} tensors have no quantization parameters in the model (e.g. '{missing[0]}')")
    g = copy.deepcopy(graph)

    def set_act(name: str, qp: QuantParams) -> None:
        t = g.tensors[name]
        t.quant, t.dtype = qp, "int8"

    def calibrated(name: str) -> QuantParams:
        if name in g.given_quant:
            return copy.deepcopy(g.given_quant[name])
        if name in shared:
            return copy.deepcopy(shared[name])
        moved = _given_after_moves(g, name)
        if moved is not None and name not in stats:
            return copy.deepcopy(moved)
        return params_for_range(*stats[name].range(method))

    shared = _concat_shared_params(g, stats, method)

    for name in g.inputs:
        set_act(name, calibrated(name))
    for node in g.nodes:
        op = op_of(node)
        _quantize_const_inputs(g, node, op)
        for out in node.outputs:
            if op.output_policy == SAME_AS_INPUT:
                qp = copy.deepcopy(g.tensors[node.inputs[0]].quant)
            elif op.output_policy == FIXED:
                qp = op.fixed_output_quant(node, g)
            else:
                assert op.output_policy == CALIBRATED
                qp = calibrated(out)
            set_act(out, qp)
    g.prune()  # drops the float weights the quantized copies replaced
    prepare_all(g)
    return g


def _quantize_const_inputs(g: Graph, node, op) -> None:
    x_scale = None
    if g.tensors[node.inputs[0]].quant is not None:
        x_scale = g.tensors[node.inputs[0]].quant.scalar()[0]
    for k, name in enumerate(node.inputs):
        t = g.tensors[name]
        if not t.is_const or t.dtype != "float32" or k in op.float_const_inputs:
            continue
        new = g.unique_name(f"{name}_q")
        if t.qdata is not None:  # a QDQ model's own integers
            if k in op.weight_inputs and np.any(t.quant.zero_point != 0):
                raise UnsupportedError(f"{node.where()}: weights with non-zero zero points are not supported (int8 weights are symmetric)", node=node.name)
            if k not in op.weight_inputs and k != op.bias_input and not t.quant.is_per_tensor:
                raise UnsupportedError(f"{node.where()}: per-channel parameters on input {k} are not supported", node=node.name)
            dtype = np.int32 if k == op.bias_input else np.int8
            g.add_const(new, np.asarray(t.qdata).astype(dtype), copy.deepcopy(t.quant))
            node.inputs[k] = new
            continue
        if k in op.weight_inputs:
            # A channel whose weights are tiny but whose bias is not (a BN-folded, nearly dead
            # channel) would need an int32 bias beyond 2^30: widen that channel's weight scale.
            min_scale = None
            if op.bias_input is not None and len(node.inputs) > op.bias_input and x_scale:
                b = g.tensors[node.inputs[op.bias_input]]
                if b.is_const and b.dtype == "float32":
                    min_scale = np.abs(b.data.astype(np.float64).reshape(-1)) / (np.float64(np.float32(x_scale)) * BIAS_LIMIT)
            q, qp = quantize_weights_per_channel(t.data, op.weight_inputs[k], min_scale)
        elif k == op.bias_input:
            w = g.tensors[node.inputs[min(op.weight_inputs)]]
            q, qp = quantize_bias(t.data, x_scale, w.quant.scale)
        else:
            qp = params_for_range(float(t.data.min()), float(t.data.max()))
            s, z = qp.scalar()
            q = np.clip(np.round(t.data / s) + z, -128, 127).astype(np.int8)
        g.add_const(new, q, qp)
        node.inputs[k] = new


def prepare_all(g: Graph) -> None:
    for node in g.nodes:
        try:
            node.qattrs = op_of(node).prepare(node, g)
        except ScaleRangeError as e:  # raised by fixedpoint.quantize_multiplier, which knows no node
            raise ModelError(f"{node.where()}: {e.message}", hint=e.hint, node=node.name) from None


def sqnr_db(ref: np.ndarray, test: np.ndarray) -> float:
    ref = np.asarray(ref, np.float64)
    noise = float(np.sum((ref - np.asarray(test, np.float64)) ** 2))
    signal = float(np.sum(ref**2))
    if noise == 0:
        return math.inf
    if signal == 0:
        return -math.inf
    return 10.0 * math.log10(signal / noise)


def layer_sqnr(float_graph: Graph, int8_graph: Graph, inputs_ir: np.ndarray) -> list[LayerSQNR]:
    """Per node output: SQNR of the dequantized int8 reference vs the float reference."""
    from tinyconv.fixedpoint import quantize

    (inp,) = int8_graph.inputs
    s_in, z_in = int8_graph.tensors[inp].quant.scalar()
    acc: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    shape = int8_graph.tensors[inp].shape
    for x in inputs_ir:
        fv = reference.run(float_graph, {inp: x.reshape(shape)}, mode="float", keep=True)
        qv = reference.run(int8_graph, {inp: quantize(x, s_in, z_in).reshape(shape)}, mode="int8", keep=True)
        for node in int8_graph.nodes:
            for o in node.outputs:
                if o in fv:
                    s, z = int8_graph.tensors[o].quant.scalar()
                    acc.setdefault(o, []).append((fv[o], dequantize(qv[o], s, z)))
    out = []
    for node in int8_graph.nodes:
        for o in node.outputs:
            if o in acc:
                f = np.concatenate([a.reshape(-1) for a, _ in acc[o]])
                d = np.concatenate([b.reshape(-1) for _, b in acc[o]])
                out.append(LayerSQNR(node.name, node.op, o, sqnr_db(f, d)))
    return out
