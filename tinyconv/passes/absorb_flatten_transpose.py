"""Flatten of an NHWC tensor in ONNX (NCHW) order: permute the fully connected weights instead.

PyTorch's `x.flatten(1) @ W.T` on an NCHW tensor becomes, in tinyconv's NHWC world, a transpose
back to NCHW, a reshape and the fully connected layer. Reordering W's columns to the NHWC order
computes the same sums with no data movement, so the transpose disappears (as TFLite converters do).
"""

from __future__ import annotations

import numpy as np

from tinyconv.ir import Graph
from tinyconv.passes.rewire import bypass, sole_consumer


def run(g: Graph) -> None:
    for fc in [n for n in g.nodes if n.op == "fully_connected"]:
        r = g.producer(fc.inputs[0])
        if r is None or r.op != "reshape" or sole_consumer(g, r.outputs[0]) is not fc:
            continue
        t = g.producer(r.inputs[0])
        if t is None or t.op != "transpose" or sole_consumer(g, t.outputs[0]) is not r or t.attrs["perm"][0] != 0:
            continue
        w = g.tensors[fc.inputs[1]]
        t_shape = g.tensors[t.outputs[0]].shape
        if not w.is_const or w.dtype != "float32" or w.shape[1] != int(np.prod(t_shape[1:])):
            continue
        inv = [int(i) for i in np.argsort(t.attrs["perm"])]

        def reorder(a, t_shape=t_shape, inv=inv):
            return np.ascontiguousarray(a.reshape((a.shape[0], *t_shape[1:])).transpose(inv).reshape(a.shape[0], -1))

        new = g.add_const(f"{fc.name}_w_nhwc", reorder(w.data))
        if w.qdata is not None:
            new.qdata, new.quant = reorder(w.qdata), w.quant
        fc.inputs[1] = new.name
        bypass(g, t)  # the reshape now flattens the NHWC tensor directly
