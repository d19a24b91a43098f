"""Drop reshapes that keep the shape, transposes with the identity perm, and reshape chains."""

from __future__ import annotations

from tinyconv.ir import Graph
from tinyconv.passes.rewire import bypass


def run(g: Graph) -> None:
    changed = True
    while changed:
        changed = False
        for n in list(g.nodes):
            src = n.inputs[0] if n.inputs else None
            if n.op == "reshape" and g.tensors[src].shape == g.tensors[n.outputs[0]].shape:
                changed |= bypass(g, n)
            elif n.op == "transpose" and tuple(n.attrs["perm"]) == tuple(range(len(n.attrs["perm"]))):
                changed |= bypass(g, n)
            elif n.op == "reshape":
                p = g.producer(src)
                if p is not None and p.op == "reshape" and len(g.consumers(src)) == 1 and src not in g.outputs:
                    n.inputs[0] = p.inputs[0]  # reshape(reshape(x)) = reshape(x)
                    if src in g.given_quant:  # a QDQ model's params on the dropped middle tensor
                        g.given_quant.setdefault(n.outputs[0], g.given_quant[src])
                    changed = True
            if changed:
                break
