"""A bias-less conv / fully connected followed by Add(constant per-channel vector) gets that bias.

This is how PyTorch exports nn.Linear as MatMul + Add, and Keras dense layers often look.
"""

from __future__ import annotations

import numpy as np

from tinyconv.ir import Graph
from tinyconv.passes.rewire import absorb, sole_consumer


def run(g: Graph) -> None:
    for p in [n for n in g.nodes if n.op in ("fully_connected", "conv2d") and len(n.inputs) == 2]:
        add = sole_consumer(g, p.outputs[0])
        if add is None or add.op != "add" or (p.attrs.get("act") is not None and not p.attrs.get("act_from_qdq")):
            continue
        other = add.inputs[1] if add.inputs[0] == p.outputs[0] else add.inputs[0]
        t = g.tensors[other]
        cout = g.tensors[p.inputs[1]].shape[0]
        if not t.is_const or t.size != cout or t.shape[-1] != cout:
            continue
        p.inputs.append(g.add_const(f"{p.name}_bias", np.asarray(t.data, np.float32).reshape(cout)).name)
        # The add's clamp (a Relu fused into it, or a QDQ model's saturation) is now the layer's;
        # a fake-quant clamp on the bias-less product goes away with that tensor.
        p.attrs["act"], p.attrs["act_from_qdq"] = add.attrs.get("act"), add.attrs.get("act_from_qdq", False)
        absorb(g, p, add)
