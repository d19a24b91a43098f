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
    g.given_quant.pop(out, None)
    return True
