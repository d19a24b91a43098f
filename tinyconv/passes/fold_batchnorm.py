"""BatchNormalization: folded into the conv / fully connected / transposed conv that feeds it.

y = x·m + a per channel. With x = W·in + b: W'[c] = W[c]·m[c], b'[c] = b[c]·m[c] + a[c] (in
float64, then float32). A BN that cannot be folded (its input has other users, or comes from
another op) becomes a per-channel Mul and Add, which tinyconv quantizes like any other.
"""

from __future__ import annotations

import numpy as np

from tinyconv.ir import Graph, Node, Tensor
from tinyconv.passes.rewire import absorb, producer_through_reshape, sole_consumer

FOLDABLE = {"conv2d", "fully_connected", "conv_transpose2d"}


def run(g: Graph) -> None:
    for bn in [n for n in g.nodes if n.op == "batch_norm"]:
        x = bn.inputs[0]
        mult = g.tensors[bn.inputs[1]].data.astype(np.float64).reshape(-1)
        add = g.tensors[bn.inputs[2]].data.astype(np.float64).reshape(-1)
        reshape, p = producer_through_reshape(g, x)
        last_axis = bn.attrs["channel_axis"] == len(g.tensors[x].shape) - 1
        plain = p is not None and (p.attrs.get("act") is None or p.attrs.get("act_from_qdq"))
        if p is not None and p.op in FOLDABLE and last_axis and plain and sole_consumer(g, x) is bn:
            # A QDQ model's fake-quant clamp on the pre-BN tensor goes with that tensor.
            p.attrs["act"], p.attrs["act_from_qdq"] = None, False
            _fold(g, p, mult, add)
            absorb(g, reshape or p, bn)
        else:
            _lower(g, bn)


def _fold(g: Graph, p: Node, mult: np.ndarray, add: np.ndarray) -> None:
    w = g.tensors[p.inputs[1]].data.astype(np.float64)
    cout = w.shape[0]
    mult, add = np.broadcast_to(mult, (cout,)), np.broadcast_to(add, (cout,))
    w_new = (w * mult.reshape((-1,) + (1,) * (w.ndim - 1))).astype(np.float32)
    b = g.tensors[p.inputs[2]].data.astype(np.float64) if len(p.inputs) > 2 else np.zeros(cout)
    b_new = (b * mult + add).astype(np.float32)
    p.inputs[1] = g.add_const(f"{p.name}_w_bn", w_new).name
    if len(p.inputs) > 2:
        p.inputs[2] = g.add_const(f"{p.name}_b_bn", b_new).name
    else:
        p.inputs.append(g.add_const(f"{p.name}_b_bn", b_new).name)


def _lower(g: Graph, bn: Node) -> None:
    x, out = bn.inputs[0], bn.outputs[0]
    mid = g.unique_name(f"{bn.name}_scaled")
    g.add_tensor(Tensor(mid, g.tensors[x].shape))
    k = g.nodes.index(bn)
    mul = Node(f"{bn.name}_mul", "mul", [x, bn.inputs[1]], [mid], {"act": None}, origin=bn.origin)
    addn = Node(f"{bn.name}_add", "add", [mid, bn.inputs[2]], [out], {"act": None}, origin=bn.origin)
    g.nodes[k : k + 1] = [mul, addn]
