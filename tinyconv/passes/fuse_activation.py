"""Relu / Relu6 / Clip become the clamp (`act`) of the op that produces their input.

Fused, the clamp costs nothing: the int8 kernel saturates to [act_min, act_max] anyway, and the
producer's output quantization is calibrated on the clamped range, so no precision is lost on
values the activation would discard.
"""

from __future__ import annotations

import math

from tinyconv.ir import Graph
from tinyconv.passes.rewire import absorb, producer_through_reshape, sole_consumer

FUSIBLE = {"conv2d", "fully_connected", "conv_transpose2d", "add", "mul", "max_pool2d"}


def clamp_of(node) -> tuple[float | None, float | None] | None:
    if node.op != "unary":
        return None
    if node.attrs["fn"] == "relu":
        return (0.0, None)
    if node.attrs["fn"] == "clip":
        lo, hi = node.attrs["params"]["lo"], node.attrs["params"]["hi"]
        return (lo if math.isfinite(lo) else None, hi if math.isfinite(hi) else None)
    return None


def run(g: Graph) -> None:
    for act_node in [n for n in g.nodes if clamp_of(n) is not None]:
        reshape, p = producer_through_reshape(g, act_node.inputs[0])
        if p is None or p.op not in FUSIBLE or sole_consumer(g, act_node.inputs[0]) is not act_node:
            continue
        p.attrs["act"] = intersect(p.attrs.get("act"), clamp_of(act_node))
        p.attrs["act_from_qdq"] = False
        absorb(g, reshape or p, act_node)


def intersect(a, b):
    """clamp(clamp(x, a), b) as one clamp (None bounds are open)."""
    if a is None:
        return b
    lo = max((v for v in (a[0], b[0]) if v is not None), default=None)
    hi = min((v for v in (a[1], b[1]) if v is not None), default=None)
    if lo is not None and hi is not None and lo > hi:
        lo = hi
    return (lo, hi)
