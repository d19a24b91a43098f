"""Arena planning: tensor lifetimes → byte offsets into one static buffer.

The graph input is read from the caller's buffer and the graph output written to the caller's
buffer, so neither occupies the arena. Every other activation (and per-layer scratch) gets an
offset. Placement is greedy by size, largest first, each buffer at the lowest 16-byte-aligned
offset that does not overlap a buffer live at the same time (the TFLM greedy planner's idea).
An element-wise op whose output has input 0's size may reuse input 0's bytes when input 0 dies there.

`lower_bound` is the largest total of simultaneously live arena buffers over the op order: no plan
with these lifetimes can be smaller.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tinyconv.ir import Graph
from tinyconv.ops import op_of

ALIGN = 16


@dataclass
class Buffer:
    name: str  # tensor name, or "<node>:scratch"
    size: int
    first: int  # index of the node that writes it
    last: int  # index of the last node that reads it
    offset: int = -1
    aliases: list[str] = field(default_factory=list)  # tensors sharing these bytes (in-place ops)


@dataclass
class Plan:
    buffers: dict[str, Buffer]  # by buffer name
    offsets: dict[str, int]  # tensor (or scratch) name → arena offset
    arena_bytes: int
    lower_bound: int


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def lifetimes(graph: Graph, scratch: dict[str, int] | None = None) -> dict[str, Buffer]:
    io = set(graph.inputs) | set(graph.outputs)
    bufs: dict[str, Buffer] = {}
    for i, node in enumerate(graph.nodes):
        for name in node.inputs:
            if name in bufs:
                bufs[name].last = i
        for name in node.outputs:
            if name not in io:
                bufs[name] = Buffer(name, graph.tensors[name].nbytes, i, i)
        if scratch and scratch.get(node.name, 0) > 0:
            key = f"{node.name}:scratch"
            bufs[key] = Buffer(key, scratch[node.name], i, i)
    # In-place: merge an element-wise op's output into input 0's buffer when input 0 dies there.
    for i, node in enumerate(graph.nodes):
        src, dst = node.inputs[0] if node.inputs else None, node.outputs[0]
        if src in bufs and dst in bufs and op_of(node).in_place_ok(node):
            b_src, b_dst = bufs[src], bufs[dst]
            if b_src.last == i and b_src.size == b_dst.size and not b_src.aliases:
                b_src.last = b_dst.last
                b_src.aliases = [dst]
                del bufs[dst]
    return bufs


def plan_memory(graph: Graph, scratch: dict[str, int] | None = None) -> Plan:
    bufs = lifetimes(graph, scratch)
    placed: list[Buffer] = []
    for b in sorted(bufs.values(), key=lambda b: (-b.size, b.first, b.name)):
        live = sorted((p for p in placed if p.first <= b.last and b.first <= p.last), key=lambda p: p.offset)
        offset = 0
        for p in live:
            if offset + b.size <= p.offset:
                break
            offset = max(offset, _align(p.offset + p.size))
        b.offset = offset
        placed.append(b)
    offsets: dict[str, int] = {}
    for b in bufs.values():
        offsets[b.name] = b.offset
        for a in b.aliases:
            offsets[a] = b.offset
    arena = max((_align(b.offset + b.size) for b in bufs.values()), default=0)
    return Plan(bufs, offsets, arena, lower_bound(bufs, len(graph.nodes)))


def lower_bound(bufs: dict[str, Buffer], n_nodes: int) -> int:
    return max((sum(b.size for b in bufs.values() if b.first <= i <= b.last) for i in range(n_nodes)), default=0)


def overlaps(plan: Plan) -> list[tuple[str, str]]:
    """Pairs of buffers that are live at the same time and share bytes (must be empty)."""
    bad = []
    bs = list(plan.buffers.values())
    for i, a in enumerate(bs):
        for b in bs[i + 1 :]:
            if a.first <= b.last and b.first <= a.last:
                if a.offset < b.offset + b.size and b.offset < a.offset + a.size:
                    bad.append((a.name, b.name))
    return bad
