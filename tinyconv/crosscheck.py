"""The onnxruntime cross-check of tinyconv's quantization (`tinyconv quantize --crosscheck`).

Per layer: onnxruntime runs tinyconv's exported QDQ layers on tinyconv's own int8 intermediate
tensors; each layer's int8 output must be within 1 LSB of tinyconv's (the two round requantization
differently: onnxruntime in float with round-half-even, tinyconv in TFLite fixed point), and at
least 99 % of all compared elements must be identical (a single average pool, where ties are
common, can sit just under 99 % on its own). End to end, the same comparison is reported, not bounded: 1-LSB
differences propagate through the layers.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tinyconv import reference
from tinyconv.export_qdq import export_layerwise
from tinyconv.fixedpoint import dequantize
from tinyconv.ir import Graph


@dataclass
class LayerAgreement:
    tensor: str
    elements: int
    identical: int
    max_abs_diff: int

    @property
    def identical_fraction(self) -> float:
        return self.identical / self.elements if self.elements else 1.0


@dataclass
class CrossCheck:
    layers: list[LayerAgreement] = field(default_factory=list)

    @property
    def max_abs_diff(self) -> int:
        return max((lay.max_abs_diff for lay in self.layers), default=0)

    @property
    def identical_fraction(self) -> float:
        total = sum(lay.elements for lay in self.layers)
        return sum(lay.identical for lay in self.layers) / total if total else 1.0

    @property
    def ok(self) -> bool:
        return self.max_abs_diff <= 1 and self.identical_fraction >= 0.99


def layerwise(g: Graph, xq_ir: np.ndarray) -> CrossCheck:
    """xq_ir: int8 inputs in the IR layout, [N, *input shape without batch]."""
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "layerwise.onnx"
        ins, outs = export_layerwise(g, path)
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    (inp,) = g.inputs
    stats: dict[str, list[int]] = {}
    for x in xq_ir:
        vals = reference.run(g, {inp: x.reshape(g.tensors[inp].shape)}, mode="int8", keep=True)
        feeds = {name: dequantize(vals[t], *g.tensors[t].quant.scalar()).astype(np.float32) for t, name in ins.items()}
        got = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds)))
        for t, name in outs.items():
            s, z = g.tensors[t].quant.scalar()
            theirs = np.clip(np.rint(got[name] / s) + z, -128, 127).astype(np.int64)
            diff = np.abs(theirs.reshape(-1) - vals[t].astype(np.int64).reshape(-1))
            acc = stats.setdefault(t, [0, 0, 0])
            acc[0] += diff.size
            acc[1] += int(np.count_nonzero(diff == 0))
            acc[2] = max(acc[2], int(diff.max()) if diff.size else 0)
    return CrossCheck([LayerAgreement(t, *v) for t, v in stats.items()])
