"""Small graph-surgery helpers shared by the passes."""

from __future__ import annotations

from tinyconv.ir import Graph, Node


def sole_consumer(g: Graph, tensor: str) -> Node | None:
    """The only node reading `tensor`, or None if there are several or it is a graph output."""
    users = g.consumers(tensor)
    if len(users) != 1 or tensor in g.outputs:
        return None
    return users[0]


def absorb(g: Graph, producer: Node, follower: Node) -> None:
    """`producer` now computes what `follower` did: it takes over follower's output tensor."""
    old = producer.outputs[0]
    producer.outputs[0] = follower.outputs[0]
    g.nodes.remove(follower)
    g.tensors.pop(old, None)
    g.given_quant.pop(old, None)


def bypass(g: Graph, node: Node) -> bool:
    """Remove a node that copies its input unchanged; False if its output must stay (graph output)."""
    src, out = node.inputs[0], node.outputs[0]
    if out in g.outputs or src in g.inputs and out in g.outputs:
        return False
    for n in g.consumers(out):
        n.inputs = [src if i == out else i for i in n.inputs]
    g.nodes.remove(node)
    g.tensors.pop(out, None)
    if out in g.given_quant:  # the same values: a QDQ model's params move to the source
        g.given_quant.setdefault(src, g.given_quant.pop(out))
    return True


def producer_through_reshape(g: Graph, tensor: str) -> tuple[Node | None, Node | None]:
    """(reshape, producer) when `tensor` is a last-axis-preserving reshape of a single-use op output
    (how 1-D convolutions are lowered), else (None, direct producer). Per-channel rewrites such as BN
    folding and activation fusion may then look through the reshape."""
    p = g.producer(tensor)
    if p is None or p.op != "reshape":
        return None, p
    src = p.inputs[0]
    q = g.producer(src)
    if q is None or sole_consumer(g, src) is not p or g.tensors[src].shape[-1] != g.tensors[tensor].shape[-1]:
        return None, p
    return p, q
